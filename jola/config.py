"""Typed configuration schemas.

The same dataclasses serve two callers: Hydra (registered in a ConfigStore by
:func:`register_configs`, so that a misspelt key or a wrongly typed value fails at start-up) and
plain Python (build a :class:`RunConfig` and pass it to :func:`jola.runner.run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class TinyModelConfig:
    """Shape of the random-weight Llama used by tests and smoke runs."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_position_embeddings: int = 2048
    init_seed: int = 0


@dataclass
class ModelConfig:
    """Where a model comes from and how it is placed.

    ``source`` picks a loader from :data:`jola.models.MODEL_SOURCES`: ``packaged_gguf`` (a GGUF
    file inside an installed Python package, converted once to a cached HF folder), ``hub`` (a
    Hugging Face hub id or a local folder) or ``tiny_random``.
    """

    name: str = MISSING
    source: str = MISSING
    path: str | None = None
    revision: str | None = None
    gguf_package: str | None = None
    gguf_file: str | None = None
    cache_dir: str | None = None
    dtype: str = "float32"
    device: str = "auto"
    device_map: str | None = None
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)


@dataclass
class TaskConfig:
    """Which task, from which source, with which test-set protocol.

    ``source: auto`` lets the run's data profile choose (:mod:`jola.profiles`: ``offline``
    reads the packaged/fixture stand-ins, ``paper`` the hub); with ``data_dir`` set, ``auto``
    reads the authors' files there (``llm_adapters``). Any other value forces that source.

    ``test_size`` is the fixed, seed-independent test part carved from the labelled pool when a
    source has no separate test split (the packaged validation-only data). ``test_limit`` caps
    the test set for quick runs (recorded in results.json).

    ``hub_revision: refs/convert/parquet`` reads the hub's parquet export of a script dataset
    (files ``<hub_config or default>/<split>/*.parquet``). ``hub_train_split: null`` means the
    hub dataset has no usable training split: train/dev/test are then carved from
    ``hub_test_split`` with a fixed test part of ``test_size`` items. ``paper_compat`` makes the
    answer parser reproduce the authors' release (e.g. MMLU-Pro's first capital letter A-J).
    """

    name: str = MISSING
    source: str = "auto"
    hub_id: str | None = None
    hub_config: str | None = None
    hub_revision: str | None = None
    hub_train_split: str | None = "train"
    hub_test_split: str = "validation"
    data_dir: str | None = None
    test_size: int = 500
    test_limit: int | None = None
    paper_compat: bool = False
    cap_n: bool = False  # an n larger than the train split allows is capped (with a warning)


@dataclass
class EvalConfig:
    """Evaluation protocol. ``max_new_tokens: null`` means the task's default (16, GEM 64).

    ``mode``: ``generate`` (the paper's protocol) or ``loglik`` (choice tasks: the candidate
    answer with the highest summed log-probability). ``bertscore_model``: ``auto`` (roberta-large
    when the hub is reachable, the packaged all-MiniLM-L6-v2 when HF_HUB_OFFLINE is set),
    ``packaged``, a hub id or a local folder; ``bertscore_num_layers: null`` uses bert-score's
    default layer for known models (6 for the packaged encoder).
    """

    mode: str = "generate"
    num_beams: int = 4
    max_new_tokens: int | None = None
    batch_size: int = 16
    prune_closed: bool = False
    progress: bool = True
    bertscore_model: str = "auto"
    bertscore_num_layers: int | None = None
    bertscore_batch_size: int = 32


@dataclass
class PromptConfig:
    """The prompt template, the target style and EOS (see :mod:`jola.prompts`); the defaults
    are the JoLA release's: its template, the bare label as target, no EOS."""

    template: str = "release"
    target: str = "label"
    eos: bool = False


@dataclass
class LoggerConfig:
    """Experiment tracking: ``name`` none or wandb (mode offline unless WANDB_MODE says else)."""

    name: str = "none"
    project: str = "jola"
    entity: str | None = None
    group: str | None = None
    mode: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """Optimisation shared by every trainable method (HF Trainer, AdamW, cosine, warmup)."""

    lr: float = 5e-3
    batch_size: int = 8
    eval_batch_size: int = 16
    epochs: float = 20
    max_steps: int = -1
    warmup_steps: int = 50
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    patience: int = 2
    logging_steps: int = 5
    max_length: int = 512
    answer_only_logits: bool = True
    gradient_checkpointing: bool = False


@dataclass
class MethodConfig:
    """Base of every method's schema; each method adds its own fields.

    ``train`` holds the optimisation settings of the shared training path; methods that do not
    train (zero-shot) ignore it, which lets one sweep override ``method.train.*`` for all methods.
    """

    name: str = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class ZeroShotConfig(MethodConfig):
    """Zero-shot: the base model as it is, no training."""

    name: str = "zero_shot"


@dataclass
class RunConfig:
    """One experiment. ``n`` train examples and as many dev examples, as in the paper.

    ``data`` is the data profile (:mod:`jola.profiles`): ``offline`` (packaged and fixture
    stand-ins, the packaged BERTScore encoder), ``paper`` (the hub's datasets and full test
    sets, roberta-large BERTScore) or ``auto`` (``offline`` for the packaged and tiny models,
    ``paper`` for every hub model).
    """

    model: Any = MISSING
    task: Any = MISSING
    method: Any = MISSING
    data: str = "auto"
    prompt: PromptConfig = field(default_factory=PromptConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    n: int = 200
    seed: int = 42
    overwrite: bool = False
    output_root: str = "outputs"


METHOD_SCHEMAS: dict[str, type[MethodConfig]] = {"zero_shot": ZeroShotConfig}


def register_method_schema(name: str, schema: type[MethodConfig]) -> None:
    """Make a method's config schema known (called by each method module)."""
    METHOD_SCHEMAS[name] = schema


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore: ``run_schema`` and one per config group."""
    from hydra.core.config_store import ConfigStore

    import jola.methods  # noqa: F401  (registers every method's schema)

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="task", name="task_schema", node=TaskConfig)
    cs.store(group="logger", name="logger_schema", node=LoggerConfig)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="method", name=f"{name}_schema", node=schema)


def _visible_gpus() -> int:
    import torch

    return max(torch.cuda.device_count(), 1)


def register_resolvers() -> None:
    """``${num_gpus:}``: the number of visible GPUs (at least 1), used by local_parallel;
    ``${jola_run_subdir:}``: a run's directory below output_root (jola.variants)."""
    from omegaconf import OmegaConf

    from jola.variants import register_resolver

    if not OmegaConf.has_resolver("num_gpus"):
        OmegaConf.register_new_resolver("num_gpus", _visible_gpus)
    register_resolver()
