"""What every edit handle of :mod:`jola.edits` shares: hooks on a model plus an edit module
registered on it, taken off again exactly (:class:`Handle`), and, for gated edits, one gate
sample per model forward (:class:`GatedHandle`).

The three handles built on these -- :class:`~jola.edits.hooks.EditHandle` (JoLA's per-head
edits), :class:`~jola.edits.site_hooks.SiteHandle` (vector edits at registered sites) and
:class:`~jola.edits.residual.ResidualHandle` (ReFT / RePE on the residual stream) -- differ
only in where they hook and how they edit.

This module imports only torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def backbone_of(model: nn.Module, module_name: str) -> nn.Module | None:
    """The module holding the layer list that ``module_name`` (a module of one layer, e.g.
    ``model.layers.3.self_attn.o_proj``) lives in (``model.model``), or None when that is the
    model itself or the name carries no layer index."""
    parts = module_name.split(".")
    index = next((k for k, p in enumerate(parts) if p.isdigit()), None)
    if index is None or index < 2:
        return None
    backbone = model.get_submodule(".".join(parts[: index - 1]))
    return None if backbone is model else backbone


def unhook(
    model: nn.Module,
    hooks: list[torch.utils.hooks.RemovableHandle],
    edits: tuple[str, nn.Module],
    handle: tuple[str, object],
) -> None:
    """Remove ``hooks`` (the list is emptied) and take the ``(name, edits module)`` and the
    ``(name, handle)`` off ``model`` when they are still the ones registered there: what every
    handle of :mod:`jola.edits` does to detach, leaving the model exactly the original."""
    for hook in hooks:
        hook.remove()
    hooks.clear()
    edits_attr, module = edits
    if model._modules.get(edits_attr) is module:
        del model._modules[edits_attr]
    handle_attr, owner = handle
    if getattr(model, handle_attr, None) is owner:
        delattr(model, handle_attr)


class Handle:
    """Hooks that apply an edit module to a model; :meth:`detach` removes them.

    A subclass names the attribute the edit module takes on the model (``edits_attr``, so that
    ``model.parameters()``, ``model.to()`` and ``train()/eval()`` include it) and the one the
    handle takes (``handle_attr``, where ``attached_*`` functions find it), registers its hooks
    in ``self._hooks`` and calls :meth:`_register`; :meth:`_forget` clears its per-forward state.
    """

    edits_attr: str
    handle_attr: str

    def __init__(self, model: nn.Module, module: nn.Module) -> None:
        self.model = model
        self._module = module
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self.attached = False

    def _register(self) -> None:
        self.model.add_module(self.edits_attr, self._module)
        object.__setattr__(self.model, self.handle_attr, self)
        self.attached = True

    def _forget(self) -> None:
        """Drop what the handle keeps between hooks of one forward (called on detach)."""

    def detach(self) -> None:
        """Remove the hooks and the edit submodule; the model is exactly the original again."""
        if not self.attached:
            return
        unhook(self.model, self._hooks, (self.edits_attr, self._module), (self.handle_attr, self))
        self._forget()
        self.attached = False

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


class GatedHandle(Handle):
    """A :class:`Handle` whose gates are sampled once per model forward and shared by every
    layer's hook (one noise draw per gate in training), including when gradient checkpointing
    recomputes a layer. A subclass says how to sample (:meth:`_sample_gates`) and calls
    :meth:`_hook_forward_start` with the name of one hooked module."""

    def __init__(self, model: nn.Module, module: nn.Module) -> None:
        super().__init__(model, module)
        self._gates: Any = None
        self._in_model_forward = False

    def _sample_gates(self) -> Any:
        raise NotImplementedError

    # Gates are drawn when a forward starts, outside any gradient-checkpointed layer: a draw
    # inside the first layer would not be repeated when that layer is recomputed, which breaks
    # checkpointing, and a fresh draw there would give gradients of a different sample.
    def _hook_forward_start(self, layer_module_name: str) -> None:
        self._hooks.append(self.model.register_forward_pre_hook(self._start_model_forward))
        self._hooks.append(
            self.model.register_forward_hook(self._end_model_forward, always_call=True)
        )
        backbone = backbone_of(self.model, layer_module_name)
        if backbone is not None:
            self._hooks.append(backbone.register_forward_pre_hook(self._start_backbone_forward))

    def _start_model_forward(self, module: nn.Module, args: tuple) -> None:
        self._in_model_forward = True
        self._draw_gates()

    def _end_model_forward(self, module: nn.Module, args: tuple, output: Any) -> None:
        self._in_model_forward = False

    def _start_backbone_forward(self, module: nn.Module, args: tuple) -> None:
        if not self._in_model_forward:  # the backbone was called on its own
            self._draw_gates()

    def _draw_gates(self) -> None:
        self._gates = self._sample_gates()

    def current_gates(self) -> Any:
        """The gates of the current forward (drawn now if no forward started)."""
        if self._gates is None:
            self._draw_gates()
        return self._gates

    def _forget(self) -> None:
        self._gates = None


__all__ = ["GatedHandle", "Handle", "backbone_of", "unhook"]
