"""Per-head activation edits of JoLA, attached to any Hugging Face decoder through hooks.

For layer ``l`` and head ``h`` the edit is

    z' = (1 + g_m[l, h] * m[l, h]) * z + g_a[l, h] * a[l, h]

with ``z`` the head's slice of the input of the attention output projection, ``m`` and ``a``
vectors of size ``head_dim`` and ``g_m``, ``g_a`` Hard-Concrete gates (:mod:`jola.gates`).

Where each concept lives:

- :mod:`jola.edits.parameters` -- *what is learned*: :class:`EditConfig` (which edits exist, how
  they start, an optional fixed head set via :func:`normalize_heads`), :class:`HeadEdits` (the
  vectors and gates, float32) and :func:`count_edit_parameters` (the count for a model config).
- :mod:`jola.edits.sites` -- *where an edit attaches*: :func:`find_output_projections` locates
  each layer's attention output projection (:data:`ARCHITECTURES`, else a generic search) and
  returns :class:`OutputProjections` with the head layout of their input.
- :mod:`jola.edits.hooks` -- *applying edits*: :func:`attach` puts forward pre-hooks on the sites
  and returns an :class:`EditHandle` (``detach`` restores the model exactly);
  :func:`attached_handle`.
- :mod:`jola.edits.persistence` -- *edits on disk*: :func:`save_edits`, :func:`load_edits`,
  :func:`load_edit_metadata` (:data:`EDITS_FILE`, :data:`CONFIG_FILE`; never the base weights).
- :mod:`jola.edits.merge` -- *edits in the weights*: :func:`merge_into_model` folds them into the
  projections, :func:`export_merged` saves a plain checkpoint.

Growing it (issue 15): a new edit *site* (the MLP output of each layer, the residual stream after
each decoder block at chosen token positions) is a locator beside
:func:`find_output_projections` in ``sites`` and its hook beside the head hook in ``hooks``; a
new edit *kind* (additive / multiplicative vectors per unit, low-rank ReFT) is a parameter module
beside :class:`HeadEdits` in ``parameters`` (or a module of its own next to it); ``merge``
folds a kind into the weights where that is exact and raises where it is not; ``persistence``
records the site and kind with the tensors.

The package imports only torch, :mod:`jola.gates` and :mod:`jola.bias_export` at import time;
transformers and safetensors are imported inside the functions that need them.
"""

from jola.edits.hooks import EDITS_ATTR, EditHandle, attach, attached_handle
from jola.edits.merge import export_merged, merge_into_model
from jola.edits.parameters import EditConfig, HeadEdits, count_edit_parameters, normalize_heads
from jola.edits.persistence import (
    CONFIG_FILE,
    EDITS_FILE,
    load_edit_metadata,
    load_edits,
    save_edits,
)
from jola.edits.sites import ARCHITECTURES, OutputProjections, find_output_projections

__all__ = [
    "ARCHITECTURES",
    "CONFIG_FILE",
    "EDITS_ATTR",
    "EDITS_FILE",
    "EditConfig",
    "EditHandle",
    "HeadEdits",
    "OutputProjections",
    "attach",
    "attached_handle",
    "count_edit_parameters",
    "export_merged",
    "find_output_projections",
    "load_edit_metadata",
    "load_edits",
    "merge_into_model",
    "normalize_heads",
    "save_edits",
]
