"""What every registered task is and which of its sources load on this machine.

Each task's settings come from its ``conf/task/<name>.yaml`` (the same file ``run.py`` uses); every
source is tried through the real loader, so "loads" means it loaded here, now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from jola.config import TaskConfig
from jola.errors import UserError
from jola.profiles import PROFILES, task_source
from tasks import TASKS, get_task
from tasks.sources import SOURCES

TASK_CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "task"
OFFLINE_SOURCES = ("packaged", "fixture", "hub")  # llm_adapters needs a user's data_dir


@dataclass
class SourceStatus:
    """One source of one task: whether it loaded, and the sizes it gave."""

    name: str
    loads: bool
    detail: str
    applies: bool = True  # False: the task has no such source (e.g. nothing packaged)


@dataclass
class TaskInfo:
    """A task's suite, metrics, default source and the status of each source."""

    name: str
    suite: str
    metrics: tuple[str, ...]
    default_source: str
    sources: list[SourceStatus] = field(default_factory=list)


def task_config(name: str) -> TaskConfig:
    """The TaskConfig of ``conf/task/<name>.yaml``, composed by Hydra as ``run.py task=<name>``
    composes it (shared entries of its defaults list included)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from jola.hydra_glue import register_configs, register_resolvers

    path = TASK_CONF_DIR / f"{name}.yaml"
    if not path.exists():
        raise UserError(f"task '{name}' has no config file {path}")
    register_configs()
    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(TASK_CONF_DIR.parent), version_base="1.3"):
        cfg = compose("config", overrides=[f"task={name}"])
    return OmegaConf.to_object(cfg.task)


def source_status(name: str, cfg: TaskConfig, source: str) -> SourceStatus:
    """Try one source of a task and describe what it gave (or why it did not load)."""
    task = get_task(name, cfg)
    if source == "packaged" and task.packaged_path is None:
        return SourceStatus(source, False, "no packaged copy", applies=False)
    try:
        raw = SOURCES.get(source)(task, cfg)
    except UserError as err:
        return SourceStatus(source, False, str(err).splitlines()[0][:160])
    if raw.train is None:
        pool = len(raw.test) - cfg.test_size
        detail = f"{len(raw.test)} labelled rows: test part {cfg.test_size}, train/dev pool {pool}"
    else:
        detail = f"train {len(raw.train)} / test {len(raw.test)}"
    return SourceStatus(source, True, detail)


def task_catalog(names: list[str] | None = None, sources=OFFLINE_SOURCES) -> list[TaskInfo]:
    """Every task (or ``names``) with its sources tried in turn."""
    infos = []
    for name in names or TASKS.names():
        cfg = task_config(name)
        task = get_task(name, cfg)
        by_profile = ", ".join(
            f"{profile}: {task_source(task, cfg, PROFILES.get(profile))}" for profile in PROFILES
        )
        info = TaskInfo(name, task.suite, tuple(task.metrics), by_profile)
        info.sources = [source_status(name, cfg, source) for source in sources]
        infos.append(info)
    return infos
