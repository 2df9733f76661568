"""Every YAML composes against the schemas; typos and wrong types fail at start-up."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from jola.runner import as_run_config, run_directory
from tests.helpers import CONF_DIR, compose_config


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["model", "task", "method"])
def test_every_group_option_composes(group):
    options = group_options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        cfg = compose_config([f"{group}={option}"])
        run_cfg = as_run_config(cfg)
        assert getattr(run_cfg, group).name == option


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    assert as_run_config(cfg).n > 0


def test_defaults_are_smollm2_siqa_zero_shot():
    cfg = as_run_config(compose_config([]))
    assert (cfg.model.name, cfg.task.name, cfg.method.name) == ("smollm2_135m", "siqa", "zero_shot")
    assert (cfg.eval.num_beams, cfg.seed, cfg.overwrite) == (4, 42, False)


def test_misspelt_key_fails_at_compose():
    with pytest.raises((ConfigCompositionException, ConfigAttributeError, ConfigKeyError)):
        compose_config(["task.tset_limit=3"])


def test_wrong_type_fails_at_compose():
    with pytest.raises((ConfigCompositionException, ValidationError)) as info:
        compose_config(["n=abc"])
    assert "abc" in str(info.value) or "abc" in str(info.value.__cause__)


def test_unknown_group_option_lists_choices():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["task=nonexistent_task"])
    assert "siqa" in str(info.value)


def test_jola_typo_in_method_key_fails():
    with pytest.raises((ConfigCompositionException, ConfigAttributeError, ConfigKeyError)):
        compose_config(["method=jola", "method.train.learning_rate=1e-3"])


@pytest.mark.parametrize(
    "extra, variant",
    [
        ([], None),
        (["method=jola", "n=16", "seed=3", "model=tiny_random"], None),
        (["method=lora", "method.r=16", "method.train.lr=1e-3"], "r=16,lr=0.001"),
        (["method.train.lr=1e-3", "method=lora", "method.r=16"], "r=16,lr=0.001"),
        (["method=jola", "eval.batch_size=4", "method.train.batch_size=2"], None),
        (["data=paper", "model=tiny_random"], "data=paper"),
    ],
)
def test_hydra_run_and_sweep_dirs_equal_the_runner_dir(extra, variant, tmp_path):
    overrides = [f"output_root={tmp_path}", *extra]
    cfg = compose_config(overrides, return_hydra_config=True)
    expected = run_directory(as_run_config(compose_config(overrides)))
    run_dir = Path(cfg.hydra.run.dir)
    sweep_dir = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
    assert run_dir == expected == sweep_dir
    folder = Path(tmp_path) / cfg.model.name / cfg.method.name / cfg.task.name / f"n{cfg.n}"
    if variant is None and "eval.batch_size=4" in extra:  # two batch sizes: full key names
        assert expected.parent.name == "eval.batch_size=4,method.train.batch_size=2"
        return
    assert expected == (folder / variant if variant else folder) / f"seed{cfg.seed}"
