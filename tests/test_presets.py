"""Every preset in conf/experiment names registered tasks and methods, and paper_main sweeps
every registered task without listing them by hand."""

from __future__ import annotations

import pytest

from jola.methods import build_method
from jola.preflight.sweep import expand_sweep
from tasks import TASKS
from tests.helpers import REPO_ROOT, compose_config

PRESETS = sorted(p.stem for p in (REPO_ROOT / "conf" / "experiment").glob("*.yaml"))
METHOD_CONFIGS = sorted(p.stem for p in (REPO_ROOT / "conf" / "method").glob("*.yaml"))


def preset_values(preset: str, key: str) -> set[str]:
    """The values ``key`` takes over the preset's sweep (its default when not swept)."""
    jobs = expand_sweep(["-m", f"experiment={preset}"], compose_runs=False).jobs
    values = {o.split("=", 1)[1] for job in jobs for o in job if o.split("=", 1)[0] == key}
    return values or {str(compose_config([f"experiment={preset}"])[key].name)}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_names_registered_tasks_and_methods(preset):
    assert preset_values(preset, "task") <= set(TASKS.names())
    assert preset_values(preset, "method") <= set(METHOD_CONFIGS)


@pytest.mark.parametrize("method", METHOD_CONFIGS)
def test_every_method_config_builds_its_registered_method(method):
    cfg = compose_config([f"method={method}", "model=tiny_random"])
    from jola.runner import as_run_config

    method_cfg = as_run_config(cfg).method
    assert build_method(method_cfg).cfg is method_cfg


def test_paper_main_sweeps_every_registered_task_from_the_task_group():
    text = (REPO_ROOT / "conf" / "experiment" / "paper_main.yaml").read_text()
    assert "siqa" not in text  # the list is derived (glob over conf/task), not written out
    assert sorted(preset_values("paper_main", "task")) == TASKS.names()
