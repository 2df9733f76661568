"""The library API for people who bring their own model and data (``import jola``).

    import jola
    jola.attach(model)                                    # gated edits on every head, base frozen
    jola.train(model, tokenizer, [("2 + 2 =", "4"), ...]) # our trainer (early stopping on dev)
    jola.save(model, "edits/")                            # the edits only, never the base weights
    jola.load(fresh_model, "edits/")                      # the same predictions on a fresh copy
    jola.merge(model)                                     # folded into the weights (exact)

After :func:`attach` the model's only trainable parameters are the edits, so an HF ``Trainer``
of your own trains them too (on the task loss alone: JoLA's gate penalty is added by
:func:`train`, or by you with :func:`gate_penalty`). :func:`run` runs a whole experiment of this
project (a :class:`~jola.config.RunConfig` or Hydra overrides, as ``python run.py``).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from jola.config import PromptConfig, RunConfig
from jola.edits import (
    EditHandle,
    HeadEdits,
    attached_handle,
    export_merged,
    load_edits,
    merge_into_model,
    save_edits,
)
from jola.edits import attach as attach_edits
from jola.errors import UserError
from jola.models import LoadedModel, freeze
from tasks.base import Example
from tasks.generation import GenerationTask

__all__ = ["attach", "export", "gate_penalty", "load", "merge", "run", "save", "train"]


class PairsTask(GenerationTask):
    """A user's (instruction, answer) pairs: trained on the answer as it is."""

    name = "pairs"
    suite = "user"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        raise UserError("the pairs task has no hub source")


def _jola_config(**settings):
    from jola.methods.jola import JolaConfig

    return JolaConfig(**settings)


def attach(model: torch.nn.Module, **settings) -> EditHandle:
    """Attach JoLA's gated per-head edits to any supported HF causal LM and freeze the base
    model, so that the edits are its only trainable parameters. ``settings`` are
    :class:`~jola.methods.jola.JolaConfig` fields (``additive``, ``multiplicative``, ``gated``,
    ``init_std``). Returns the handle (``handle.edits``, ``handle.detach()``)."""
    if attached_handle(model) is not None:
        raise UserError("the model already has JoLA edits attached (handle.detach() first)")
    config = _jola_config(**settings)
    from jola.methods.jola import Jola

    freeze(model)
    return attach_edits(model, Jola(config).edit_config())


def _examples(pairs: Sequence[tuple[str, str]], prefix: str) -> list[Example]:
    examples = []
    for index, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(text, str) for text in pair):
            raise UserError(f"{prefix} pair {index} is not an (instruction, answer) pair of str")
        instruction, answer = pair
        examples.append(Example(f"{prefix}-{index}", instruction, answer, answer, (answer,)))
    return examples


def _split_dev(pairs: list, seed: int) -> tuple[list, list]:
    """A seeded fifth of the pairs as the dev set (at least one pair each side)."""
    if len(pairs) < 2:
        raise UserError("jola.train needs at least 2 pairs (or dev=...) to hold out a dev set")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    size = max(1, len(pairs) // 5)
    return [pairs[i] for i in order[size:]], [pairs[i] for i in order[:size]]


def train(
    model: torch.nn.Module,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    dev: Sequence[tuple[str, str]] | None = None,
    *,
    seed: int = 42,
    prompt: PromptConfig | None = None,
    output_dir: str | Path | None = None,
    method: dict | None = None,
    **train_settings,
) -> dict:
    """Train the edits of ``model`` (attached with ``method`` settings when none are) on
    (instruction, answer) ``pairs`` with this project's trainer: the task loss on the answer
    tokens plus JoLA's gate penalty, AdamW with cosine decay, early stopping on the dev loss
    (``dev``, or a seeded fifth of ``pairs``) with the best edits restored.

    ``train_settings`` are :class:`~jola.config.TrainConfig` fields (``epochs``, ``lr``,
    ``batch_size``, ...); ``method`` holds :class:`~jola.methods.jola.JolaConfig` fields
    (``gate_lr``, ``penalty``, ``target_open``, ...); ``prompt`` the template (default: the
    JoLA release's). The training log goes to ``output_dir`` when given. Returns the training
    record (steps, best dev loss, dev history, ...).
    """
    from jola.methods.jola import Jola
    from jola.prompts import PromptFormat
    from jola.training import fit

    train_pairs, dev_pairs = (
        (list(pairs), list(dev)) if dev is not None else _split_dev(list(pairs), seed)
    )
    defaults = _jola_config().train
    try:
        train_cfg = replace(defaults, **train_settings)
    except TypeError as err:
        raise UserError(f"jola.train: {err} (TrainConfig has {', '.join(vars(defaults))})") from err
    jola_method = Jola(replace(_jola_config(**(method or {})), train=train_cfg))
    handle = attached_handle(model)
    if handle is None:
        freeze(model)
        handle = attach_edits(model, jola_method.edit_config())
    jola_method.handle = handle
    parameter = next(iter(handle.edits.parameters()))
    loaded = LoadedModel(model, tokenizer, parameter.device, parameter.dtype)
    with tempfile.TemporaryDirectory() as scratch:
        return fit(
            jola_method,
            loaded,
            _examples(train_pairs, "train"),
            _examples(dev_pairs, "dev"),
            task=PairsTask(),
            train_cfg=train_cfg,
            prompt_format=PromptFormat.from_config(prompt or PromptConfig()),
            seed=seed,
            run_dir=Path(output_dir) if output_dir is not None else Path(scratch),
        )


def gate_penalty(model: torch.nn.Module, strength: float = 1e-3) -> torch.Tensor:
    """JoLA's sparsity term for a training loop of your own: ``strength`` times the expected
    number of open gates (the paper's L0 penalty) of the edits attached to ``model``."""
    from jola import gates

    edits = _handle(model).edits
    return gates.penalty("paper", edits.log_alpha_add, edits.log_alpha_mult, strength)


def _handle(model: torch.nn.Module) -> EditHandle:
    handle = attached_handle(model)
    if handle is None:
        raise UserError("the model has no JoLA edits attached (jola.attach or jola.load first)")
    return handle


def save(model: torch.nn.Module, directory: str | Path) -> Path:
    """Write the attached edits (tensors and their config, never the base weights)."""
    return save_edits(_handle(model).edits, directory)


def load(model: torch.nn.Module, directory: str | Path, prune_closed: bool = False) -> EditHandle:
    """Attach edits written by :func:`save` (or a run's ``edits/`` folder) to a fresh model,
    in evaluation mode with the base frozen; ``prune_closed`` skips heads whose gates are
    both closed (same predictions, faster)."""
    device = next(model.parameters()).device
    edits: HeadEdits = load_edits(directory, device=device)
    freeze(model)
    model.eval()
    return attach_edits(model, edits, prune_closed=prune_closed)


def merge(model: torch.nn.Module) -> torch.nn.Module:
    """Fold the attached edits (their evaluation gates) into the attention output projections
    and detach the hooks: a plain model with the same outputs; returns ``model``."""
    return merge_into_model(model, _handle(model).edits)


def export(model: torch.nn.Module, directory: str | Path) -> Path:
    """:func:`merge`, then ``save_pretrained``: a checkpoint any HF loader reads."""
    return export_merged(model, _handle(model).edits, directory)


def run(config: RunConfig | Sequence[str]) -> dict:
    """Run one experiment of this project and return its results dictionary: a
    :class:`~jola.config.RunConfig`, or the overrides of ``python run.py`` (e.g.
    ``["method=jola", "task=siqa", "n=200"]``) composed from the project's ``conf/``."""
    from jola.runner import run as run_experiment

    if isinstance(config, RunConfig):
        return run_experiment(config)
    if isinstance(config, str):
        raise UserError("jola.run takes a RunConfig or a list of overrides, not one string")
    from hydra import compose, initialize_config_dir

    from jola.config import CONF_DIR
    from jola.hydra_glue import register_configs, register_resolvers

    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return run_experiment(compose("config", overrides=list(config)))
