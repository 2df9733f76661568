"""Site edits on disk and in the weights: :func:`save_site_edits`, :func:`load_site_edits`,
:func:`merge_site_edits`.

On disk a :class:`~jola.edits.site_edits.SiteEdits` is the same two files as JoLA's edits
(:data:`~jola.edits.persistence.EDITS_FILE` with the tensors, keys ``sites.<site>.<name>``;
:data:`~jola.edits.persistence.CONFIG_FILE` with ``{"format": "sites", "sites": {site:
HeadEdits metadata}, "extra": ...}``), never base weights. :func:`load_site_edits` also reads a
folder written by :func:`jola.edits.save_edits` (JoLA's per-head edits) as the ``heads`` site.

:func:`merge_site_edits` folds evaluation-mode edits into the located modules with each site's
exact fold (:mod:`jola.edits.folding`); a site without one raises
:class:`jola.errors.MergeNotSupported` before anything is changed.

safetensors and :mod:`jola.errors` are imported inside the functions that need them; at import
time this module needs only torch and the other modules of :mod:`jola.edits`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from jola.edits.merge import folded_terms
from jola.edits.persistence import (
    EDITS_FILE,
    edits_from_metadata,
    load_edit_metadata,
    load_edits,
    write_edit_files,
)
from jola.edits.site_edits import SiteEdits, check_layout, locate_sites
from jola.edits.site_hooks import attached_site_handle
from jola.edits.site_registry import get_site

SITES_FORMAT = "sites"


def save_site_edits(edits: SiteEdits, directory: str | Path, extra: dict | None = None) -> Path:
    """Write the edit tensors and their metadata (no base weights) to ``directory``; ``extra``
    (JSON-serialisable) is stored under ``"extra"``. Returns the directory."""
    meta = {"format": SITES_FORMAT, **edits.metadata(), "extra": extra or {}}
    return write_edit_files(directory, edits, meta)


def load_site_edits(directory: str | Path, device: torch.device | str | None = None) -> SiteEdits:
    """Rebuild the :class:`SiteEdits` written by :func:`save_site_edits` (or JoLA's per-head
    edits written by :func:`jola.edits.save_edits`, as the ``heads`` site)."""
    from safetensors.torch import load_file

    meta = load_edit_metadata(directory)
    if meta.get("format") != SITES_FORMAT:
        edits = SiteEdits({"heads": load_edits(directory)})
    else:
        edits = SiteEdits({name: edits_from_metadata(m) for name, m in meta["sites"].items()})
        edits.load_state_dict(load_file(str(Path(directory) / EDITS_FILE)), strict=True)
    if device is not None:
        edits.to(device)
    return edits


def merge_site_edits(model: nn.Module, edits: SiteEdits) -> nn.Module:
    """Fold the evaluation-mode edits of every site into the model's weights, in place;
    returns ``model``. Edits attached to ``model`` are detached first (so that the hooks do
    not apply them a second time). :class:`jola.errors.MergeNotSupported` when a site has no
    exact fold, raised before anything is changed."""
    from jola.errors import MergeNotSupported

    cannot = [name for name in edits.names() if get_site(name).fold is None]
    if cannot:
        raise MergeNotSupported(
            f"edits at site(s) {', '.join(cannot)} cannot be folded into the weights exactly; "
            "keep them attached (save_site_edits / load_site_edits + attach_sites)"
        )
    layouts = locate_sites(model, edits.names())
    for name, layout in layouts.items():
        check_layout(edits[name], layout)
    handle = attached_site_handle(model)
    if handle is not None:
        handle.detach()
    with torch.no_grad():
        for name, layout in layouts.items():
            site_edits, fold = edits[name], get_site(name).fold
            gate_mult, gate_add = site_edits.gate_pair(training=False)
            for layer, module in enumerate(layout.modules):
                # v' = scale * v + offset, scale = 1 + g_m m, offset = g_a a (None: absent kind)
                fold(module, *folded_terms(site_edits, layer, gate_mult, gate_add))
    return model
