"""Benchmark tasks and their registry: ``get_task(name)`` and ``load_splits(cfg, n, seed)``.

The registry maps a task name to a factory ``factory(cfg) -> Task``: a Task class, or for the 14
MMLU-Pro domains one parameterised class behind a factory per domain.
"""

from __future__ import annotations

from jola.config import TaskConfig
from jola.profiles import PROFILES, task_source
from jola.registry import Registry
from tasks.base import Example, RawData, Splits, Task, carve_splits
from tasks.commonsense import COMMONSENSE_TASKS
from tasks.gem import GEM_TASKS
from tasks.mmlu_pro import mmlu_pro_factories
from tasks.sources import SOURCES

TASKS: Registry = Registry("task")
for _task_class in (*COMMONSENSE_TASKS, *GEM_TASKS):
    TASKS.add(_task_class.name, _task_class)
for _name, _factory in mmlu_pro_factories().items():
    TASKS.add(_name, _factory)


def get_task(name: str, cfg: TaskConfig | None = None) -> Task:
    """A fresh instance of the task registered under ``name`` (``cfg`` sets parser options)."""
    return TASKS.get(name)(cfg)


def suite_members(suite: str) -> list[str]:
    """The registered tasks of ``suite`` (recorded in each results.json, so that ``make tables``
    knows a suite's size without importing this registry)."""
    return [name for name in TASKS.names() if get_task(name).suite == suite]


def load_splits(cfg: TaskConfig, n: int, seed: int, profile: str = "offline") -> Splits:
    """Load the task's data from ``cfg.source`` and carve train/dev/test for ``n`` and ``seed``.

    ``source: auto`` is resolved with the data ``profile`` (:mod:`jola.profiles`; the runner
    resolves it from the run's ``data`` before calling this).
    """
    task = get_task(cfg.name, cfg)
    source = task_source(task, cfg, PROFILES.get(profile))
    raw = SOURCES.get(source)(task, cfg)
    splits = carve_splits(
        raw,
        n=n,
        seed=seed,
        test_size=cfg.test_size,
        test_limit=cfg.test_limit,
        cap_n=cfg.cap_n,
    )
    splits.protocol["source"] = source
    splits.protocol["description"] = raw.description
    return splits


__all__ = [
    "TASKS",
    "Example",
    "RawData",
    "Splits",
    "Task",
    "get_task",
    "load_splits",
    "suite_members",
]
