"""Typed configuration schemas.

The same dataclasses serve two callers: Hydra (stored in its ConfigStore by
:func:`jola.hydra_glue.register_configs`, so that a misspelt key or a wrongly typed value fails at
start-up) and plain Python (build a :class:`RunConfig` and pass it to :func:`jola.runner.run`).
Each method's own schema, a :class:`MethodConfig` subclass, lives with the method
(:mod:`jola.methods`); this module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"  # the project's Hydra configs


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
    """Optimisation shared by every trainable method (HF Trainer, AdamW, cosine, warmup).

    Warm-up is ``warmup_steps`` optimiser steps, or, when ``warmup_ratio`` is set (then
    ``warmup_steps`` must be 0), ``ceil(warmup_ratio * planned steps)`` with the planned steps
    ``max_steps`` or ``epochs * ceil(n / batch_size)`` (HF's ratio rule), so that it scales
    with n as in the recipes that state a ratio (pyreft's 0.1).
    """

    lr: float = 5e-3
    batch_size: int = 8
    eval_batch_size: int = 16
    epochs: float = 20
    max_steps: int = -1
    warmup_steps: int = 50
    warmup_ratio: float | None = None  # a fraction of the planned steps instead of warmup_steps
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    patience: int = 2
    logging_steps: int = 5
    max_length: int = 512
    answer_only_logits: bool = True
    gradient_checkpointing: bool = False


@dataclass
class MethodConfig:
    """Base of every method's schema; each method adds its own fields and registers the pair
    with :func:`jola.methods.register_method`.

    ``train`` holds the optimisation settings of the shared training path; methods that do not
    train (zero-shot) ignore it, which lets one sweep override ``method.train.*`` for all methods.

    A method config checks itself: :meth:`__post_init__` refuses, with a one-line UserError, a
    value that is wrong whatever the run (it runs whenever the dataclass is built: in plain
    Python, and when the runner turns the composed Hydra config into objects with
    ``OmegaConf.to_object``); :meth:`validate` adds the checks that need the run.
    """

    name: str = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        """Refuse bad values and turn names into their Enums (subclasses extend it, calling
        ``super().__post_init__()``). Every method's YAML defaults must pass."""

    def validate(self, seed: int | None = None) -> None:
        """Refuse what only the run can judge (``seed``: the run's seed), e.g. a choice the
        YAML leaves open or a file the config names; called by :func:`jola.validation.validate`
        before anything is loaded. The shared ``train`` settings are checked there too."""


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
