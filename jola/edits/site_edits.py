"""What is learned at several sites: one :class:`~jola.edits.parameters.HeadEdits` per site.

At every site (:mod:`jola.edits.site_registry`) the edit of unit ``u`` of layer ``l`` is JoLA's

    z' = (1 + g_m[l, u] * m[l, u]) * z + g_a[l, u] * a[l, u]

where ``z`` is the unit's slice of the site's activation (a head of the ``heads`` site, the
whole MLP output of a layer at the ``mlp`` site), so the vector *kinds* (multiplicative ``m``,
additive ``a``), their init and their Hard-Concrete gates (one per unit and kind, or one shared
gate per unit: ``EditConfig.shared_gate``) are exactly those of :class:`HeadEdits`, whose
"heads" are the site's units. :class:`SiteEdits` holds them by site name, in the order the
sites are applied and their gates drawn; :func:`build_site_edits` sizes them for a model.

JoLA itself is the configuration ``{"heads": EditConfig()}``: the same parameters, init, gates
and RNG draws as :func:`jola.edits.attach` (tests/test_edit_sites.py checks it).

This module imports only torch and the other modules of :mod:`jola.edits`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from jola.edits.parameters import EditConfig, HeadEdits
from jola.edits.site_registry import SiteLayout, get_site


class SiteEdits(nn.Module):
    """Vector edits at one or more sites (``sites``: a ModuleDict site name -> HeadEdits).

    Gates follow each HeadEdits (sampled in training, deterministic in evaluation); when
    attached (:func:`jola.edits.site_hooks.attach_sites`) the module follows the model's
    ``train()`` / ``eval()``, and casting the model keeps every edit in float32.
    """

    def __init__(self, per_site: Mapping[str, HeadEdits]) -> None:
        super().__init__()
        if not per_site:
            raise ValueError("SiteEdits needs at least one site")
        for name in per_site:
            get_site(name)  # an unknown site fails here, listing the registered ones
        self.sites = nn.ModuleDict(dict(per_site))

    def names(self) -> list[str]:
        """The sites, in application order."""
        return list(self.sites.keys())

    def __getitem__(self, site: str) -> HeadEdits:
        return self.sites[site]

    def items(self) -> Iterator[tuple[str, HeadEdits]]:
        """``(site name, HeadEdits)`` pairs, in application order."""
        return iter(self.sites.items())

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def gate_pairs(self, training: bool | None = None) -> dict[str, tuple[Tensor, Tensor]]:
        """Per site, ``(gate_mult, gate_add)`` of one forward (:meth:`HeadEdits.gate_pair`: one
        draw per gate, one per unit with a shared gate), drawn site after site."""
        return {name: edits.gate_pair(training) for name, edits in self.items()}

    def vectors(self) -> list[nn.Parameter]:
        """Every edit vector (``scale`` m and ``offset`` a) of every site."""
        return [p for _, e in self.items() for p in (e.scale, e.offset) if p is not None]

    def log_alphas(self) -> dict[str, list[Tensor]]:
        """Every gate parameter by kind (``mult``, ``add``, ``shared``), over all sites in
        order; empty when nothing is gated."""
        out: dict[str, list[Tensor]] = {}
        for _, edits in self.items():
            for kind, log_alpha in edits.log_alphas().items():
                out.setdefault(kind, []).append(log_alpha)
        return out

    @property
    def gated(self) -> bool:
        """Whether any site has gates."""
        return any(e.log_alphas() for _, e in self.items())

    def num_parameters(self) -> int:
        """Number of scalar parameters (all trainable), over all sites."""
        return sum(p.numel() for p in self.parameters())

    def unit_counts(self) -> dict[str, dict[str, int]]:
        """Per site, the units edited at evaluation by kind (:meth:`HeadEdits.head_counts`:
        ``additive``, ``multiplicative``, ``either``, ``total``)."""
        return {name: edits.head_counts() for name, edits in self.items()}

    def metadata(self) -> dict[str, Any]:
        """Each site's shape, EditConfig and model type (:meth:`HeadEdits.metadata`; ``num_heads``
        and ``head_dim`` are the site's units and unit size), in application order."""
        return {"sites": {name: edits.metadata() for name, edits in self.items()}}

    def extra_repr(self) -> str:
        return f"sites={self.names()}"


def check_layout(edits: HeadEdits, layout: SiteLayout) -> None:
    """ValueError unless ``edits`` has the (layers, units, unit_dim) of the located site."""
    want = (layout.num_layers, layout.num_units, layout.unit_dim)
    have = (edits.num_layers, edits.num_heads, edits.head_dim)
    if want != have:
        raise ValueError(
            f"edits of site {layout.site!r} with (layers, units, unit_dim)={have} do not fit "
            f"{layout.model_type} with {want}"
        )


def locate_sites(model: nn.Module, sites: list[str]) -> dict[str, SiteLayout]:
    """Each named site located in ``model`` (ValueError for an unknown or missing site)."""
    return {name: get_site(name).locate(model) for name in sites}


def build_site_edits(
    model: nn.Module,
    configs: Mapping[str, EditConfig | None],
    *,
    generator: torch.Generator | None = None,
) -> SiteEdits:
    """Fresh edits for ``model`` at every site of ``configs`` (site name -> EditConfig, None
    for the defaults), in that order, each on its site's device; ``generator`` seeds their
    init (None: torch's global RNG, as :func:`jola.edits.attach`)."""
    layouts = locate_sites(model, list(configs))
    per_site = {}
    for name, layout in layouts.items():
        config = configs[name]
        config = dataclasses.replace(config) if config is not None else EditConfig()
        per_site[name] = HeadEdits(
            layout.num_layers,
            layout.num_units,
            layout.unit_dim,
            config,
            model_type=layout.model_type,
            generator=generator,
            device=next(layout.modules[0].parameters()).device,  # a Linear, or a whole layer
        )
    return SiteEdits(per_site)
