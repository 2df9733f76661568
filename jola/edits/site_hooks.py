"""Applying :class:`~jola.edits.site_edits.SiteEdits`: hooks at every layer of every site.

:func:`attach_sites` puts one hook per layer and site on the model: a forward pre-hook that
edits the located module's first input (the ``heads`` site) or a forward hook that edits its
output (the ``mlp`` site), as :class:`~jola.edits.site_registry.Site` says. Each hook edits all
units of its layer in one vectorised op, ``z + z * (g_m m) + g_a a`` on the activation split
into ``[units, unit_dim]``. Gates are drawn once per model forward for all sites (before any
layer runs, so that gradient checkpointing recomputes a layer with the same sample: the rule
of :class:`jola.edits.EditHandle`). The base weights are never touched:
:meth:`SiteHandle.detach` restores the model exactly. While attached, the edits are the
submodule ``model.jola_site_edits`` (:data:`SITE_EDITS_ATTR`).

The per-head path of JoLA (:func:`jola.edits.attach`, with head pruning for evaluation) stays
as it is; a model carries either kind of handle, never both.

This module imports only torch and the other modules of :mod:`jola.edits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from jola.edits.handles import GatedHandle
from jola.edits.hooks import attached_handle
from jola.edits.parameters import EditConfig
from jola.edits.site_edits import SiteEdits, build_site_edits, check_layout, locate_sites
from jola.edits.site_registry import SiteLayout, get_site

SITE_EDITS_ATTR = "jola_site_edits"
"""Name under which :func:`attach_sites` registers the :class:`SiteEdits` on the model."""
_SITE_HANDLE_ATTR = "_jola_site_handle"


class SiteHandle(GatedHandle):
    """Hooks that apply a :class:`SiteEdits` to a model; :meth:`detach` removes them."""

    edits_attr = SITE_EDITS_ATTR
    handle_attr = _SITE_HANDLE_ATTR

    def __init__(self, model: nn.Module, edits: SiteEdits, layouts: dict[str, SiteLayout]):
        super().__init__(model, edits)
        self.edits = edits
        self.layouts = layouts

    def _install(self) -> None:
        self._hook_forward_start(next(iter(self.layouts.values())).names[0])
        for name, layout in self.layouts.items():
            site = get_site(name)
            for layer, module in enumerate(layout.modules):
                if site.edits_output:
                    hook = module.register_forward_hook(self._output_hook(name, layer))
                else:
                    hook = module.register_forward_pre_hook(self._input_hook(name, layer))
                self._hooks.append(hook)
        self._register()

    def _sample_gates(self) -> dict[str, tuple[Tensor, Tensor]]:
        return self.edits.gate_pairs()

    def current_gates(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per site ``(gate_mult, gate_add)`` of the current forward (drawn now if none)."""
        return super().current_gates()

    def _input_hook(self, site: str, layer: int) -> Callable[[nn.Module, tuple], tuple]:
        def hook(module: nn.Module, args: tuple) -> tuple:
            return (self.edit(site, layer, args[0]), *args[1:])

        return hook

    def _output_hook(self, site: str, layer: int) -> Callable[[nn.Module, tuple, Any], Any]:
        def hook(module: nn.Module, args: tuple, output: Any) -> Any:
            if isinstance(output, tuple):  # e.g. a decoder layer's (hidden, ...) output
                return (self.edit(site, layer, output[0]), *output[1:])
            return self.edit(site, layer, output)

        return hook

    def edit(self, site: str, layer: int, x: Tensor) -> Tensor:
        """The edited activation ``x`` (``[..., units * unit_dim]``) of ``layer`` at ``site``
        with the current forward's gates."""
        gate_mult, gate_add = self.current_gates()[site]
        mult, add = self.edits[site].layer_terms(layer, gate_mult, gate_add)
        layout = self.layouts[site]
        z = x.unflatten(-1, (layout.num_units, layout.unit_dim))
        # z + z * (g m) rather than z * (1 + g m): in bf16, 1 + 1e-3 rounds to 1.
        if mult is not None:
            z = z + z * mult.to(device=x.device, dtype=x.dtype)
        if add is not None:
            z = z + add.to(device=x.device, dtype=x.dtype)
        return z.flatten(-2)


def attached_site_handle(model: nn.Module) -> SiteHandle | None:
    """The :class:`SiteHandle` currently attached to ``model``, if any."""
    return getattr(model, _SITE_HANDLE_ATTR, None)


def attach_sites(
    model: nn.Module,
    edits_or_configs: SiteEdits | Mapping[str, EditConfig | None],
    *,
    generator: torch.Generator | None = None,
) -> SiteHandle:
    """Attach vector edits at several sites of ``model`` through hooks.

    ``edits_or_configs`` is an existing :class:`SiteEdits` (each site's shape must match the
    model) or a mapping site name -> :class:`EditConfig` (None: the defaults) from which fresh
    edits are built (:func:`build_site_edits`; ``generator`` seeds their init). The edits are
    moved to their sites' devices, set to the model's train/eval mode and registered as
    ``model.jola_site_edits``. ValueError for an unknown site or a model without it;
    RuntimeError when the model already carries edits (of either handle).
    """
    if attached_site_handle(model) is not None or attached_handle(model) is not None:
        raise RuntimeError("model already has edits attached; call handle.detach() first")
    if isinstance(edits_or_configs, SiteEdits):
        edits = edits_or_configs
        layouts = locate_sites(model, edits.names())
        for name, layout in layouts.items():
            check_layout(edits[name], layout)
            edits[name].to(next(layout.modules[0].parameters()).device)
            if edits[name].model_type is None:
                edits[name].model_type = layout.model_type
    else:
        edits = build_site_edits(model, edits_or_configs, generator=generator)
        layouts = locate_sites(model, edits.names())
    edits.train(model.training)
    handle = SiteHandle(model, edits, layouts)
    handle._install()
    return handle
