"""Folding an affine edit of a linear layer's input or output into its weight and bias.

An edit ``v' = s * v + c`` (``s``, ``c`` vectors; either may be None: ``s = 1``, ``c = 0``)
of a linear layer ``y = W x + b`` is exact in the weights:

- on the layer's **input** ``x`` (the per-head site: the input of the attention output
  projection), :func:`fold_input`: ``y = W (s * x + c) + b`` gives ``W <- W diag(s)`` (the input
  columns) and ``b <- b + W c`` with the original ``W``;
- on the layer's **output** ``y`` (the MLP site: the output of the down projection),
  :func:`fold_output`: ``s * (W x + b) + c`` gives ``W <- diag(s) W`` (the output rows) and
  ``b <- s * b + c``.

A layer without a bias gets one (a new parameter) where the folded bias is non-zero. GPT-2's
``Conv1D`` stores ``W`` transposed (``[in, out]``); both functions handle it. The arithmetic is
done in float32 and stored in the layer's dtype.

This module imports only torch and :mod:`jola.edits.sites`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jola.edits.sites import is_conv1d


def _matrix(module: nn.Module) -> tuple[Tensor, bool]:
    """The weight as float32 ``[out, in]`` and whether it is stored transposed."""
    transposed = is_conv1d(module)
    weight = module.weight
    return (weight.t() if transposed else weight).float(), transposed


def _store_matrix(module: nn.Module, w: Tensor, transposed: bool) -> None:
    weight = module.weight
    weight.copy_((w.t() if transposed else w).to(weight.dtype))


def _ensure_bias(module: nn.Module, out_features: int) -> nn.Parameter:
    if module.bias is None:
        weight = module.weight
        module.bias = nn.Parameter(
            torch.zeros(out_features, dtype=weight.dtype, device=weight.device),
            requires_grad=weight.requires_grad,
        )
    return module.bias


@torch.no_grad()
def fold_input(module: nn.Module, scale: Tensor | None, offset: Tensor | None) -> None:
    """Fold ``x' = scale * x + offset`` of the layer's input into it, in place (see the module
    docstring: ``W <- W diag(s)``, ``b <- b + W c``)."""
    w, transposed = _matrix(module)
    if offset is not None and bool(offset.any()):
        delta = w @ offset.float().to(w.device)
        bias = _ensure_bias(module, w.shape[0])
        bias.copy_((bias.float() + delta).to(bias.dtype))
    if scale is not None:
        _store_matrix(module, w * scale.float().to(w.device).unsqueeze(0), transposed)


@torch.no_grad()
def fold_output(module: nn.Module, scale: Tensor | None, offset: Tensor | None) -> None:
    """Fold ``y' = scale * y + offset`` of the layer's output into it, in place (see the module
    docstring: ``W <- diag(s) W``, ``b <- s * b + c``)."""
    w, transposed = _matrix(module)
    s = scale.float().to(w.device) if scale is not None else None
    c = offset.float().to(w.device) if offset is not None else None
    if module.bias is not None and (s is not None or c is not None):
        bias = module.bias.float()
        if s is not None:
            bias = s * bias
        if c is not None:
            bias = bias + c
        module.bias.copy_(bias.to(module.bias.dtype))
    elif c is not None and bool(c.any()):
        _ensure_bias(module, w.shape[0]).copy_(c.to(module.weight.dtype))
    if s is not None:
        _store_matrix(module, w * s.unsqueeze(1), transposed)
