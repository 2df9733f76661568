"""Training-step variants, registered by name in :data:`VARIANTS`.

A step is forward + backward + gradient clipping + an AdamW step on one fixed batch, with the
loss on the answer tokens only unless the variant says otherwise. Every variant runs on a
weight-sharing copy of the frozen model (:func:`jola.bench.models.clone_sharing_weights`), so
variants never see each other's hooks, adapters or biases.

- ``floor``: the frozen model, no method. One scalar parameter multiplies the output of the
  input embeddings, so backward runs through the whole network (activation gradients only):
  the least any activation-editing method can cost.
- ``floor_attn0``: the same, with the scalar on the input of layer 0's attention output
  projection instead: backward stops exactly where JoLA's does (``floor`` also back-propagates
  through layer 0's attention, which JoLA never needs; that matters for 2-layer models only).
- ``jola``: ours (:mod:`jola.methods.jola`, forward pre-hooks, all heads of a layer in one op),
  with the release penalty, as :mod:`jola.training` runs it.
- ``jola_loop``: the same math written the way the authors' release does it
  (:mod:`jola.bench.per_head_loop`).
- ``lora`` (peft, r=32 on q,k,v,up,down) and ``bitfit`` (zero biases on q,k,v,gate,up).
- ``jola_full_vocab``: JoLA with the LM head over the full vocabulary at every position.
- ``jola_eager``: JoLA with eager attention instead of SDPA.
- ``jola_checkpointing``: JoLA with activation (gradient) checkpointing.

Adding a variant is one :func:`register_variant` call with a ``prepare`` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from jola.bench.models import clone_sharing_weights, with_model
from jola.bench.per_head_loop import LoopJolaEdits, attach_loop, head_layout
from jola.edits import HeadEdits, find_output_projections
from jola.methods import METHODS, build_method
from jola.models import LoadedModel, freeze
from jola.registry import Registry
from jola.schedules import make_schedule
from jola.training import causal_lm_loss, supports_answer_only_logits

MAX_GRAD_NORM = 1.0  # the HF Trainer's default clipping, done in every variant's step
FLOOR_LR = 5e-3


@dataclass
class Prepared:
    """What a variant's ``prepare`` returns: the model to step (possibly wrapped), the
    parameters the optimiser updates, their learning rate, and an optional extra loss term
    ``regularizer(step)`` added to the task loss."""

    model: nn.Module
    params: list[nn.Parameter]
    lr: float
    regularizer: Callable[[int], Tensor | None] | None = None


@dataclass(frozen=True)
class VariantSpec:
    """A registered variant: ``prepare(bench, total_steps) -> Prepared`` on a frozen copy, and
    the settings applied to the copy first (attention implementation, activation checkpointing)
    and to its loss (full-vocabulary logits)."""

    prepare: Callable[[LoadedModel, int], Prepared]
    attn: str | None = None
    checkpointing: bool = False
    full_vocab: bool = False


VARIANTS: Registry[VariantSpec] = Registry("bench variant")
_ORDER: list[str] = []  # registration order: the order of the tables' rows


def register_variant(name: str, prepare: Callable[[LoadedModel, int], Prepared], **settings):
    """Register a training-step variant (``settings``: the fields of :class:`VariantSpec`)."""
    VARIANTS.add(name, VariantSpec(prepare, **settings))
    _ORDER.append(name)


@dataclass
class StepVariant:
    """One training-step variant: a prepared model, its trainable parameters, its loss."""

    name: str
    model: nn.Module
    params: list[nn.Parameter]
    loss_fn: Callable[[int], Tensor]
    lr: float
    info: dict = field(default_factory=dict)
    steps_done: int = 0
    optimizer: torch.optim.Optimizer | None = None

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.AdamW(self.params, lr=self.lr, weight_decay=0.0)
        self.info["trainable_parameters"] = sum(p.numel() for p in self.params)

    def step(self) -> float:
        """One optimiser step; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.steps_done)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.optimizer.step()
        self.steps_done += 1
        return float(loss.detach())


def build_variant(
    name: str,
    bench: LoadedModel,
    batch: dict[str, Tensor],
    *,
    clone: bool = True,
    total_steps: int = 100,
) -> StepVariant:
    """Prepare variant ``name`` on a weight-sharing copy of the model (or on the model itself
    with ``clone=False``), in training mode."""
    spec = VARIANTS.get(name)
    model = freeze(clone_sharing_weights(bench.model) if clone else bench.model)
    if spec.attn:
        model.set_attn_implementation(spec.attn)
    if spec.checkpointing:
        model.activation_checkpointing_enable()
    attn_implementation = model.config._attn_implementation
    prepared = spec.prepare(with_model(bench, model), total_steps)
    model = prepared.model
    answer_only = not spec.full_vocab and supports_answer_only_logits(model)
    info = {"answer_only_logits": answer_only, "attn_implementation": attn_implementation}
    regularizer = prepared.regularizer

    def loss_fn(step: int) -> Tensor:
        loss = causal_lm_loss(model, batch, answer_only)
        extra = regularizer(step) if regularizer is not None else None
        return loss if extra is None else loss + extra

    model.train()
    return StepVariant(name, model, prepared.params, loss_fn, prepared.lr, info)


# ------------------------------------------------------------------------------ the variants


def _floor_scale(bench: LoadedModel) -> nn.Parameter:
    scale = nn.Parameter(torch.ones((), device=bench.device))
    bench.model.add_module("bench_floor_scale", nn.ParameterDict({"scale": scale}))
    return scale


def prepare_floor(bench: LoadedModel, total_steps: int) -> Prepared:
    """A scalar on the input embeddings' output: backward runs down to the embeddings."""
    scale = _floor_scale(bench)
    bench.model.get_input_embeddings().register_forward_hook(
        lambda module, args, out: out * scale.to(out.dtype)
    )
    return Prepared(bench.model, [scale], FLOOR_LR)


def prepare_floor_attn0(bench: LoadedModel, total_steps: int) -> Prepared:
    """A scalar on layer 0's attention-output input: backward stops where JoLA's does."""
    scale = _floor_scale(bench)
    find_output_projections(bench.model).modules[0].register_forward_pre_hook(
        lambda module, args: (args[0] * scale.to(args[0].dtype), *args[1:])
    )
    return Prepared(bench.model, [scale], FLOOR_LR)


def prepare_jola_loop(bench: LoadedModel, total_steps: int) -> Prepared:
    """The release's per-head loop with JoLA's initial values and the release penalty."""
    edits = HeadEdits(*head_layout(bench.model), generator=torch.Generator().manual_seed(0))
    loop = LoopJolaEdits.from_head_edits(edits.to(bench.device))
    attach_loop(bench.model, loop)
    schedule = make_schedule("expon")

    def regularizer(step: int) -> Tensor:
        return loop.penalty(schedule.value(step, total_steps))

    return Prepared(bench.model, list(loop.parameters()), 5e-3, regularizer)


def method_variant(method_name: str):
    """A ``prepare`` that runs the registered method ``method_name`` with its default config
    (its ``prepare``, trainable parameters, learning rate and regulariser) as the runner does,
    seeded with 0."""

    def prepare(bench: LoadedModel, total_steps: int) -> Prepared:
        method = build_method(METHODS.get(method_name).config_class())
        torch.manual_seed(0)
        method.prepare(bench)
        method.on_train_begin(total_steps)
        model = bench.model  # a method may wrap it (peft)

        def regularizer(step: int) -> Tensor | None:
            return method.regularizer(model, step)

        return Prepared(model, method.trainable_parameters(model), method.cfg.train.lr, regularizer)

    return prepare


register_variant("floor", prepare_floor)
register_variant("floor_attn0", prepare_floor_attn0)
register_variant("jola", method_variant("jola"))
register_variant("jola_loop", prepare_jola_loop)
register_variant("lora", method_variant("lora"))
register_variant("bitfit", method_variant("bitfit"))
register_variant("jola_full_vocab", method_variant("jola"), full_vocab=True)
register_variant("jola_eager", method_variant("jola"), attn="eager")
register_variant("jola_checkpointing", method_variant("jola"), checkpointing=True)

TRAIN_VARIANTS: tuple[str, ...] = tuple(_ORDER)
