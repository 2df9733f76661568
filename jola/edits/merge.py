"""Folding edits into the weights: :func:`merge_into_model` and :func:`export_merged`.

:func:`merge_into_model` folds evaluation-mode edits into the output projections' weights and
bias; :func:`export_merged` writes such a model as a plain checkpoint where the architecture's
config can express the needed bias (:mod:`jola.bias_export`).

This module imports only torch, :mod:`jola.bias_export` and the other modules of
:mod:`jola.edits`; ``save_pretrained`` is the model's own method.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from jola import bias_export
from jola.edits.folding import fold_input
from jola.edits.hooks import EDITS_ATTR, attached_handle, check_shape
from jola.edits.parameters import HeadEdits
from jola.edits.sites import OutputProjections, find_output_projections


def folded_terms(
    edits: HeadEdits, layer: int, gate_mult: Tensor, gate_add: Tensor
) -> tuple[Tensor | None, Tensor | None]:
    """Scale ``s = 1 + g_m m`` and offset ``c = g_a a`` of one layer (each ``[H*D]``, float32,
    None for an absent kind): the edit ``z' = s * z + c`` of the heads (or units) flattened."""
    mult, add = edits.layer_terms(layer, gate_mult, gate_add)
    scale = None if mult is None else (1.0 + mult.float()).flatten()
    offset = None if add is None else add.float().flatten()
    return scale, offset


def _needs_new_bias(edits: HeadEdits, proj: OutputProjections) -> list[int]:
    """Layers whose projection has no bias but whose additive edit is non-zero."""
    if not edits.additive:
        return []
    with torch.no_grad():
        gate_add = edits.gate_add(training=False)
        offsets = gate_add.unsqueeze(-1) * edits.offset
    return [
        layer
        for layer, module in enumerate(proj.modules)
        if module.bias is None and bool(offsets[layer].any())
    ]


def merge_into_model(model: nn.Module, edits: HeadEdits) -> nn.Module:
    """Fold the evaluation-mode edits into the output projections, in place; returns ``model``.

    With ``z' = s * z + c`` and ``y = W z' + b``: ``W <- W diag(s)`` (the head's input columns;
    rows of GPT-2's transposed Conv1D weight) and ``b <- b + W c`` with the original ``W``. A
    projection without a bias gets a bias parameter where ``c`` is non-zero. Edits attached to
    ``model`` are detached first, so that the hooks do not apply them a second time.
    """
    handle = attached_handle(model)
    if handle is not None:
        handle.detach()
    proj = find_output_projections(model)
    check_shape(edits, proj)
    with torch.no_grad():
        gate_mult = edits.gate_mult(training=False)
        gate_add = edits.gate_add(training=False)
        for layer, module in enumerate(proj.modules):
            scale, offset = folded_terms(edits, layer, gate_mult, gate_add)
            fold_input(module, scale, offset)
    return model


_EXPORT_HINT = (
    "save the unmerged edits with save_edits() and attach them after loading the base model, "
    "or train multiplicative-only edits (EditConfig(additive=False)), which merge into any "
    "architecture"
)


def export_merged(model: nn.Module, edits: HeadEdits, directory: str | Path) -> Path:
    """Merge ``edits`` into ``model`` (in place) and ``save_pretrained`` it to ``directory``.

    The result loads with plain ``AutoModelForCausalLM.from_pretrained``. When the additive edit
    requires a bias the projection lacks, the config's ``attention_bias`` is set to True and the
    other attention projections get zero biases (Llama, Gemma 1-3, Qwen3, OLMo 2, Granite, ...).
    Architectures whose config cannot express that bias (Qwen2, Mistral, Phi-3, ...) raise
    ``NotImplementedError`` before anything is changed; multiplicative-only edits merge
    everywhere.
    """
    proj = find_output_projections(model)
    check_shape(edits, proj)
    flags: list[str] = []
    added: list[str] = []
    if _needs_new_bias(edits, proj):
        flags = ["attention_bias"]
        # raises NotImplementedError before the model is modified
        added = bias_export.plan_bias_flags(
            model, flags, proj.names, "merged JoLA edits", _EXPORT_HINT
        )
        added = [n for n in added if not n.startswith(EDITS_ATTR + ".")]
    merge_into_model(model, edits)
    bias_export.apply_bias_flags(model, flags, added)
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory
