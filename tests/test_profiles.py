"""Data profiles: the paper presets read the paper's data, the offline path its stand-ins, and
offline mode follows from what a run needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from jola import profiles
from jola.errors import UserError
from jola.resolution import resolve_profile
from jola.runner import as_run_config, run
from tasks import TASKS, get_task
from tests.helpers import REPO_ROOT, compose_config, tiny_overrides

# The paper's test sets: the full LLM-Adapters test files, i.e. the test split of ARC and OBQA
# and the validation split of the other five commonsense tasks.
PAPER_COMMONSENSE_TEST_SPLIT = {
    "arc_c": "test",
    "arc_e": "test",
    "obqa": "test",
    "boolq": "validation",
    "hellaswag": "validation",
    "piqa": "validation",
    "siqa": "validation",
    "winogrande": "validation",
}


def resolved(overrides: list[str]):
    return resolve_profile(as_run_config(compose_config(overrides)))


def sweep_params(experiment: str) -> dict[str, list[str]]:
    cfg = compose_config([f"experiment={experiment}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    return {key: str(value).split(",") for key, value in params.items()}


@pytest.mark.parametrize("task", TASKS.names())
def test_every_paper_main_task_resolves_to_its_paper_source(task):
    cfg = resolved(["experiment=paper_main", f"task={task}", "model=llama31_8b"])
    assert cfg.data == "paper"
    assert cfg.task.source == "hub" and cfg.task.hub_id
    assert cfg.task.test_limit is None  # the full test set
    assert cfg.eval.bertscore_model == "roberta-large"
    suite = get_task(task).suite
    if suite == "commonsense":
        assert cfg.task.hub_test_split == PAPER_COMMONSENSE_TEST_SPLIT[task]
        assert cfg.task.hub_train_split == "train"
    elif suite == "mmlu_pro":
        assert cfg.task.hub_id == "TIGER-Lab/MMLU-Pro" and cfg.task.hub_test_split == "test"
    else:
        assert suite == "gem" and cfg.task.hub_train_split == "train"


@pytest.mark.parametrize("experiment", ["paper_main", "data_size", "data_size_large", "ablation"])
def test_paper_presets_use_the_paper_profile_even_on_the_default_model(experiment):
    cfg = resolved([f"experiment={experiment}"])
    assert cfg.data == "paper" and cfg.task.source == "hub"


@pytest.mark.parametrize(
    "model, expected",
    [
        ("llama31_8b", "paper"),
        ("llama32_1b", "paper"),
        ("llama31_70b", "paper"),
        ("qwen25_7b", "paper"),
        ("smollm2_135m", "offline"),
        ("tiny_random", "offline"),
    ],
)
def test_auto_profile_follows_the_model(model, expected):
    cfg = resolved([f"model={model}", "task=xsum"])
    assert cfg.data == expected
    if expected == "paper":
        assert (cfg.task.source, cfg.eval.bertscore_model) == ("hub", "roberta-large")
    else:
        assert (cfg.task.source, cfg.eval.bertscore_model) == ("fixture", "packaged")


def test_explicit_choices_win_over_the_profile(capsys):
    cfg = resolved(["model=llama31_8b", "data=offline", "task=siqa"])
    assert (cfg.data, cfg.task.source) == ("offline", "packaged")
    cfg = resolved(["model=llama31_8b", "task=siqa", "task.source=fixture"])
    assert (cfg.data, cfg.task.source) == ("paper", "fixture")
    assert "stand-in" in capsys.readouterr().err
    cfg = resolved(["task=siqa", "task.data_dir=/data/commonsense/SIQA"])
    assert cfg.task.source == "llm_adapters"
    cfg = resolved(["model=llama31_8b", "task=xsum", "eval.bertscore_model=packaged"])
    assert cfg.eval.bertscore_model == "packaged"


def test_unknown_profile_lists_the_choices():
    with pytest.raises(UserError, match="unknown data profile 'papr'; choices: offline, paper"):
        resolved(["data=papr"])


def test_demo_preset_is_offline():
    cfg = resolved(["experiment=demo"])
    assert (cfg.data, cfg.task.source) == ("offline", "packaged")


def test_model_size_preset_covers_the_papers_figure():
    params = sweep_params("model_size")
    assert params["model"] == ["llama32_1b", "llama32_3b", "llama31_8b", "llama31_70b"]
    assert params["task"] == [
        "siqa",
        "winogrande",
        "mmlu_pro_law",
        "mmlu_pro_physics",
        "e2e_nlg",
        "web_nlg",
    ]
    assert params["method"] == ["zero_shot", "lora", "jola"]


def test_data_size_presets_follow_the_papers_grid():
    small, large = sweep_params("data_size"), sweep_params("data_size_large")
    assert small["task"] == large["task"] == ["siqa", "winogrande"]
    assert small["method"] == large["method"] == ["jola", "lora"]
    assert [int(n) for n in small["n"]] == [100, 200, 300, 400, 500, 600, 800, 1000]
    assert [int(n) for n in large["n"]] == [
        1000,
        2000,
        3000,
        5000,
        8000,
        10000,
        20000,
        30000,
        50000,
        80000,
        100000,
    ]
    assert resolved(["experiment=data_size_large"]).task.cap_n is True


# --- offline mode follows from the config --------------------------------------------------


@pytest.fixture()
def clean_network_env(monkeypatch):
    """No offline variables set, and the libraries' import-time copies restored afterwards."""
    for name in profiles.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    hub_constants = sys.modules.get("huggingface_hub.constants")
    datasets_config = sys.modules.get("datasets.config")
    if hub_constants is not None:
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    if datasets_config is not None:
        monkeypatch.setattr(datasets_config, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets_config, "HF_DATASETS_OFFLINE", False)
    yield hub_constants, datasets_config


def test_a_run_with_only_local_resources_sets_the_offline_variables(clean_network_env, tmp_path):
    hub_constants, datasets_config = clean_network_env
    cfg = resolved(tiny_overrides(tmp_path))
    assert profiles.hub_resources(cfg, ("acc",)) == []
    assert profiles.apply_network_mode(cfg, ("acc",)) is True
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
    if hub_constants is not None:
        assert hub_constants.HF_HUB_OFFLINE is True  # read at import: updated in place
    if datasets_config is not None:
        assert datasets_config.HF_HUB_OFFLINE is True


def test_a_hub_run_leaves_the_environment_alone(clean_network_env):
    cfg = resolved(["model=llama31_8b", "task=xsum"])
    assert profiles.hub_resources(cfg, ("bleu", "rougeL", "bertscore")) == [
        ("model", "meta-llama/Llama-3.1-8B-Instruct"),
        ("dataset", cfg.task.hub_id),
        ("bertscore encoder", "roberta-large"),
    ]
    assert profiles.apply_network_mode(cfg, ("bertscore",)) is False
    assert not any(name in os.environ for name in profiles.OFFLINE_VARIABLES)


def test_local_folders_count_as_local(clean_network_env, tmp_path):
    cfg = resolved(
        ["model=llama31_8b", f"model.path={tmp_path}", "task=siqa", f"task.hub_id={tmp_path}"]
    )
    assert cfg.task.source == "hub" and profiles.hub_resources(cfg, ("acc",)) == []


def test_run_py_sets_offline_mode_only_from_the_config(tmp_path):
    """A local run through run.py, with no offline variable in its environment, runs offline
    (results.json says so) although run.py itself no longer forces it."""
    env = {k: v for k, v in os.environ.items() if k not in profiles.OFFLINE_VARIABLES}
    result = subprocess.run(
        [sys.executable, "run.py", *tiny_overrides(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert results["hub_offline"] is True and results["profile"] == "offline"
    assert results["config"]["task"]["source"] == "packaged" and results["stand_in"] is True
    assert results["prompt"] == {"template": "release", "target": "label", "eos": False}


def test_a_hub_model_that_is_not_cached_fails_in_one_line_with_the_prefetch_command(tmp_path):
    """HF_HUB_OFFLINE=1 (as on a compute node): the hub model is not in the cache."""
    cfg = compose_config(
        [
            *tiny_overrides(tmp_path),
            "model=llama31_8b",
            "model.path=jola-tests/not-a-cached-model",
            "data=offline",
        ]
    )
    with pytest.raises(UserError) as caught:
        run(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert "jola-tests/not-a-cached-model" in message
    assert "scripts/preflight.py" in message and "--download" in message
