"""What Hydra needs from the library: the schemas in its ConfigStore and the resolvers that
conf/config.yaml uses. Called once by each entry point that composes ``conf/`` (run.py, the
demo, preflight, the tests' helpers); the library itself never needs Hydra.

The method schemas come from the method registry (:data:`jola.methods.METHODS`): each
registered method's config class is stored as ``method/<name>_schema``, the entry its
``conf/method/<name>.yaml`` starts from.
"""

from __future__ import annotations

from jola.config import LoggerConfig, ModelConfig, RunConfig, TaskConfig


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore: ``run_schema`` and one per config group
    (``model_schema``, ``task_schema``, ``logger_schema``, ``<method>_schema`` for every
    registered method)."""
    from hydra.core.config_store import ConfigStore

    from jola.methods import METHODS

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="task", name="task_schema", node=TaskConfig)
    cs.store(group="logger", name="logger_schema", node=LoggerConfig)
    for name, entry in METHODS.items():
        cs.store(group="method", name=f"{name}_schema", node=entry.config_class)


def _visible_gpus() -> int:
    import torch

    return max(torch.cuda.device_count(), 1)


def register_resolvers() -> None:
    """``${num_gpus:}``: the number of visible GPUs (at least 1), used by local_parallel;
    ``${jola_run_subdir:}`` and ``${jola_output_root:}``: a run's directory below
    output_root and that root (:mod:`jola.variants`)."""
    from omegaconf import OmegaConf

    from jola.variants import register_resolver

    if not OmegaConf.has_resolver("num_gpus"):
        OmegaConf.register_new_resolver("num_gpus", _visible_gpus)
    register_resolver()
