"""Applying edits: forward pre-hooks on the output projections, and taking them off again.

:func:`attach` registers a forward pre-hook on every layer's output projection
(:mod:`jola.edits.sites`); each hook edits all heads of its layer in one vectorised op. The base
model's weights are never touched, so :meth:`EditHandle.detach` restores it exactly. While
attached, the :class:`~jola.edits.parameters.HeadEdits` are the submodule ``model.jola_edits``
(:data:`EDITS_ATTR`) and :func:`attached_handle` finds the handle.

This module imports only torch and the other modules of :mod:`jola.edits`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from jola.edits.handles import GatedHandle
from jola.edits.parameters import EditConfig, HeadEdits
from jola.edits.sites import OutputProjections, find_output_projections

EDITS_ATTR = "jola_edits"
"""Name under which :func:`attach` registers the :class:`HeadEdits` as a submodule of the model."""
_HANDLE_ATTR = "_jola_edit_handle"


class EditHandle(GatedHandle):
    """Hooks that apply a :class:`HeadEdits` to a model; :meth:`detach` removes them.

    While attached, the edits are a submodule of the model (``model.jola_edits``), so
    ``model.parameters()``, ``model.to()`` and ``model.train()/eval()`` include them. Gates are
    computed once per model forward (one noise draw per gate in training) and shared by all
    layers, including when gradient checkpointing recomputes a layer (:class:`GatedHandle`).
    """

    edits_attr = EDITS_ATTR
    handle_attr = _HANDLE_ATTR

    def __init__(
        self,
        model: nn.Module,
        edits: HeadEdits,
        projections: OutputProjections,
        open_heads: list[Tensor | None] | None,
    ) -> None:
        super().__init__(model, edits)
        self.edits = edits
        self.projections = projections
        self.pruned = open_heads is not None
        # per layer: None = every head, a 1-D index tensor = those heads; layers absent = no hook
        self._open_heads = (
            open_heads if open_heads is not None else [None] * len(projections.modules)
        )
        self.hooked_layers: list[int] = []

    def _install(self, skip_layers: Iterable[int] = ()) -> None:
        skip = set(skip_layers)
        self._hook_forward_start(self.projections.names[0])
        for layer, module in enumerate(self.projections.modules):
            if layer in skip:
                continue
            self._hooks.append(module.register_forward_pre_hook(self._make_hook(layer)))
            self.hooked_layers.append(layer)
        self._register()

    def _sample_gates(self) -> tuple[Tensor, Tensor]:
        # one sample per gate; a shared gate (EditConfig.shared_gate) serves both kinds
        return self.edits.gate_pair()

    def current_gates(self) -> tuple[Tensor, Tensor]:
        """``(gate_mult, gate_add)`` of the current forward (drawn now if no forward started)."""
        return super().current_gates()

    def _make_hook(self, layer: int) -> Callable[[nn.Module, tuple], tuple]:
        def hook(module: nn.Module, args: tuple) -> tuple:
            return (self._apply(layer, args[0]), *args[1:])

        return hook

    def _apply(self, layer: int, x: Tensor) -> Tensor:
        if self.pruned and self.edits.training:
            raise RuntimeError(
                "edits attached with prune_closed=True are for evaluation only; call "
                "model.eval(), or attach without pruning to train"
            )
        gate_mult, gate_add = self.current_gates()
        heads = self._open_heads[layer]
        if heads is not None:
            heads = heads.to(self.edits.device)
        mult, add = self.edits.layer_terms(layer, gate_mult, gate_add, heads)
        z = x.unflatten(-1, (self.projections.num_heads, self.projections.head_dim))
        target = z if heads is None else z.index_select(-2, heads.to(x.device))
        # z + z * (g m) rather than z * (1 + g m): in bf16, 1 + 1e-3 rounds to 1.
        edited = target
        if mult is not None:
            edited = edited + edited * mult.to(device=x.device, dtype=x.dtype)
        if add is not None:
            edited = edited + add.to(device=x.device, dtype=x.dtype)
        if heads is not None:
            edited = z.index_copy(-2, heads.to(x.device), edited)
        return edited.flatten(-2)


def attached_handle(model: nn.Module) -> EditHandle | None:
    """The :class:`EditHandle` currently attached to ``model``, if any."""
    return getattr(model, _HANDLE_ATTR, None)


def check_shape(edits: HeadEdits, proj: OutputProjections) -> None:
    """ValueError unless ``edits`` has the (layers, heads, head_dim) of the projections."""
    want = (proj.num_layers, proj.num_heads, proj.head_dim)
    have = (edits.num_layers, edits.num_heads, edits.head_dim)
    if want != have:
        raise ValueError(
            f"edits of shape (layers, heads, head_dim)={have} do not fit {proj.model_type} "
            f"with {want}"
        )


def attach(
    model: nn.Module,
    edits_or_config: HeadEdits | EditConfig | None = None,
    *,
    prune_closed: bool = False,
    generator: torch.Generator | None = None,
) -> EditHandle:
    """Attach per-head edits to ``model`` through forward pre-hooks on its output projections.

    ``edits_or_config`` is an existing :class:`HeadEdits` (shapes must match the model) or an
    :class:`EditConfig` from which fresh edits are built (``generator`` seeds their init). The
    edits are moved to the projections' device, set to the model's train/eval mode and
    registered as ``model.jola_edits``. With ``prune_closed=True`` (evaluation only), heads whose
    gates are all closed are skipped and layers without an open head get no hook.
    """
    if attached_handle(model) is not None:
        raise RuntimeError("model already has edits attached; call handle.detach() first")
    proj = find_output_projections(model)
    device = proj.modules[0].weight.device
    if isinstance(edits_or_config, HeadEdits):
        edits = edits_or_config
        check_shape(edits, proj)
        edits.to(device)
    else:
        edits = HeadEdits(
            proj.num_layers,
            proj.num_heads,
            proj.head_dim,
            edits_or_config,
            model_type=proj.model_type,
            generator=generator,
            device=device,
        )
    if edits.model_type is None:
        edits.model_type = proj.model_type
    edits.train(model.training)

    open_heads: list[Tensor | None] | None = None
    closed_layers: list[int] = []
    if prune_closed:
        if model.training:
            raise ValueError("prune_closed=True is for evaluation: call model.eval() first")
        with torch.no_grad():
            is_open = (edits.gate_mult(training=False) != 0) | (edits.gate_add(training=False) != 0)
        open_heads = []
        for layer, row in enumerate(is_open):
            if not row.any():
                closed_layers.append(layer)
                open_heads.append(None)
            elif row.all():
                open_heads.append(None)
            else:
                open_heads.append(row.nonzero().flatten())
    handle = EditHandle(model, edits, proj, open_heads)
    handle._install(skip_layers=closed_layers)
    return handle
