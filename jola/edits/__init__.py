"""Per-head activation edits of JoLA, attached to any Hugging Face decoder through hooks.

For layer ``l`` and head ``h`` the edit is

    z' = (1 + g_m[l, h] * m[l, h]) * z + g_a[l, h] * a[l, h]

with ``z`` the head's slice of the input of the attention output projection, ``m`` and ``a``
vectors of size ``head_dim`` and ``g_m``, ``g_a`` Hard-Concrete gates (:mod:`jola.gates`).

Where each concept lives:

- :mod:`jola.edits.parameters` -- *what is learned*: :class:`EditConfig` (which edits exist, how
  they start, an optional fixed head set via :func:`normalize_heads`), :class:`HeadEdits` (the
  vectors and gates, float32: every edit is a :class:`Float32Module`, which a cast of the host
  model moves but never casts) and :func:`count_edit_parameters` (the count for a model config).
- :mod:`jola.edits.sites` -- *where an edit attaches*: :func:`find_output_projections` locates
  each layer's attention output projection (:data:`ARCHITECTURES`, else a generic search) and
  returns :class:`OutputProjections` with the head layout of their input; the locator itself
  (:class:`LayerModuleSpec`, :func:`find_layer_modules`) serves every site.
- :mod:`jola.edits.handles` -- what every handle shares: :class:`Handle` (hooks plus an edit
  module on the model, ``detach`` restores it exactly) and :class:`GatedHandle` (one gate
  sample per model forward, outside any checkpointed layer).
- :mod:`jola.edits.hooks` -- *applying edits*: :func:`attach` puts forward pre-hooks on the sites
  and returns an :class:`EditHandle` (``detach`` restores the model exactly);
  :func:`attached_handle`.
- :mod:`jola.edits.persistence` -- *edits on disk*: :func:`save_edits`, :func:`load_edits`,
  :func:`load_edit_metadata` (:data:`EDITS_FILE`, :data:`CONFIG_FILE`; never the base weights).
- :mod:`jola.edits.merge` -- *edits in the weights*: :func:`merge_into_model` folds them into the
  projections, :func:`export_merged` saves a plain checkpoint.

Edits at several *sites* (issue 15):

- :mod:`jola.edits.site_registry` -- *sites by name* (:data:`SITES`, :func:`register_site`):
  ``heads`` (the per-head site above) and ``mlp`` (the output of each layer's MLP down
  projection, one unit per layer); each site locates its modules (:class:`SiteLayout`), says
  whether the edit applies to their input or output, and how it folds into the weights.
- :mod:`jola.edits.site_edits` -- :class:`SiteEdits`: one :class:`HeadEdits` per site (its
  "heads" are the site's units), so the kinds (multiplicative / additive vectors, gated per
  unit and kind, or ONE shared gate per unit: ``EditConfig.shared_gate``) are JoLA's at every
  site; JoLA is the configuration ``{"heads": EditConfig()}``.
- :mod:`jola.edits.site_hooks` -- :func:`attach_sites` / :class:`SiteHandle` (hooks on every
  site, gates drawn once per forward).
- :mod:`jola.edits.site_io` -- :func:`save_site_edits`, :func:`load_site_edits`,
  :func:`merge_site_edits` (exact folds, :mod:`jola.edits.folding`: input columns for heads,
  output rows for the MLP; ``MergeNotSupported`` for a site without one).

The residual stream at chosen token positions (issue 15):

- :mod:`jola.edits.positions` -- :class:`TokenPositions` (``f7+l7``: the first and last prompt
  tokens, prompt pass only; or ``all``) and :class:`declared_prompts` (where each row's prompt
  ends, declared by the trainer and log-likelihood scoring).
- :mod:`jola.edits.residual` -- the ``residual`` site (each decoder layer's output; also in
  :data:`SITES`) and :func:`attach_residual` for a :class:`ResidualEdit` at token positions.
- :mod:`jola.edits.lowrank` -- the low-rank kind, LoReFT (:class:`LowRankEdits`, ReFT);
  :mod:`jola.edits.steering` -- reading and adding steering vectors (RePE).

The package imports only torch, :mod:`jola.gates` and :mod:`jola.bias_export` at import time;
transformers and safetensors are imported inside the functions that need them.
"""

from jola.edits.hooks import EDITS_ATTR, EditHandle, attach, attached_handle
from jola.edits.lowrank import LowRankEdits
from jola.edits.merge import export_merged, merge_into_model
from jola.edits.parameters import EditConfig, HeadEdits, count_edit_parameters, normalize_heads
from jola.edits.persistence import (
    CONFIG_FILE,
    EDITS_FILE,
    load_edit_metadata,
    load_edits,
    save_edits,
)
from jola.edits.positions import TokenPositions, declared_prompts
from jola.edits.residual import ResidualEdit, attach_residual, find_decoder_layers
from jola.edits.site_edits import SiteEdits, build_site_edits
from jola.edits.site_hooks import SITE_EDITS_ATTR, SiteHandle, attach_sites, attached_site_handle
from jola.edits.site_io import load_site_edits, merge_site_edits, save_site_edits
from jola.edits.site_registry import SITES, Site, SiteLayout, get_site, register_site
from jola.edits.sites import ARCHITECTURES, OutputProjections, find_output_projections

__all__ = [
    "ARCHITECTURES",
    "CONFIG_FILE",
    "EDITS_ATTR",
    "EDITS_FILE",
    "EditConfig",
    "EditHandle",
    "HeadEdits",
    "LowRankEdits",
    "OutputProjections",
    "ResidualEdit",
    "SITES",
    "SITE_EDITS_ATTR",
    "Site",
    "SiteEdits",
    "SiteHandle",
    "SiteLayout",
    "TokenPositions",
    "attach",
    "attach_residual",
    "attach_sites",
    "attached_handle",
    "attached_site_handle",
    "build_site_edits",
    "count_edit_parameters",
    "declared_prompts",
    "export_merged",
    "find_decoder_layers",
    "find_output_projections",
    "get_site",
    "load_edit_metadata",
    "load_edits",
    "load_site_edits",
    "merge_into_model",
    "merge_site_edits",
    "normalize_heads",
    "register_site",
    "save_edits",
    "save_site_edits",
]
