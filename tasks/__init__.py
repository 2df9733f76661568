"""Benchmark tasks and their registry: ``get_task(name)`` and ``load_splits(cfg, n, seed)``."""

from __future__ import annotations

from jola.config import TaskConfig
from jola.registry import Registry
from tasks.base import Example, RawData, Splits, Task, carve_splits
from tasks.commonsense import SocialIQA
from tasks.sources import SOURCES

TASKS: Registry = Registry("task")
for _task_class in (SocialIQA,):
    TASKS.add(_task_class.name, _task_class)


def get_task(name: str) -> Task:
    """A fresh instance of the task registered under ``name``."""
    return TASKS.get(name)()


def load_splits(cfg: TaskConfig, n: int, seed: int) -> Splits:
    """Load the task's data from ``cfg.source`` and carve train/dev/test for ``n`` and ``seed``."""
    task = get_task(cfg.name)
    raw = SOURCES.get(cfg.source)(task, cfg)
    splits = carve_splits(raw, n=n, seed=seed, test_size=cfg.test_size, test_limit=cfg.test_limit)
    splits.protocol["source"] = cfg.source
    splits.protocol["description"] = raw.description
    return splits


__all__ = ["TASKS", "Example", "RawData", "Splits", "Task", "get_task", "load_splits"]
