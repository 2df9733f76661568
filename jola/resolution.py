"""A RunConfig made concrete before anything runs: its data profile chosen, ``task.source``
and ``eval.bertscore_model`` resolved (no ``auto`` left).

It sits above the task registry (it asks a task where its stand-ins are), which is why it is
not part of :mod:`jola.profiles`, which the tasks themselves import.
"""

from __future__ import annotations

import dataclasses
import sys

import tasks
from jola.profiles import PROFILES, STAND_IN_SOURCES, profile_name, task_source


def resolve_profile(cfg, quiet: bool = False):
    """A copy of the RunConfig with ``data``, ``task.source`` and ``eval.bertscore_model``
    concrete (no ``auto`` left); a stand-in source under the paper profile is announced
    (unless ``quiet``)."""
    profile = PROFILES.get(profile_name(cfg))
    task = tasks.get_task(cfg.task.name, cfg.task)
    source = task_source(task, cfg.task, profile)
    if not quiet and not profile.stand_ins and source in STAND_IN_SOURCES:
        print(
            f"warning: data=paper but task.source={source}: {cfg.task.name} is scored on a "
            "stand-in, not the paper's data (its numbers are labelled as such in tables)",
            file=sys.stderr,
        )
    bertscore = cfg.eval.bertscore_model
    if bertscore == "auto":
        bertscore = profile.bertscore_model
    return dataclasses.replace(
        cfg,
        data=profile.name,
        task=dataclasses.replace(cfg.task, source=source),
        eval=dataclasses.replace(cfg.eval, bertscore_model=bertscore),
    )
