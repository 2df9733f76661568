"""Edit sites by name: where in a decoder an edit attaches, how its activation splits into
units (what one gate covers) and how an edit there folds into the weights.

A :class:`Site` locates one module per decoder layer and says whether the edit applies to that
module's input (a forward pre-hook) or its output (a forward hook). The activation there,
``[..., num_units * unit_dim]``, is split into ``num_units`` units of ``unit_dim``; vector edits
(:class:`~jola.edits.parameters.HeadEdits`, whose "heads" are the site's units) act per unit.

Built-in sites (:data:`SITES`):

- ``heads``: the input of each layer's attention output projection (``o_proj``), split into
  attention heads (JoLA's site; :func:`~jola.edits.sites.find_output_projections`). One unit
  per head; folds into the projection's input columns.
- ``mlp``: the output of each layer's MLP down projection (``mlp.down_proj``; GPT-2's
  ``mlp.c_proj``), which is the MLP block's output in the Llama family (GPT-2 applies dropout
  after it, so edits see the projection's output, as in RED's code, which wraps that layer).
  One unit per layer (``unit_dim = hidden_size``); folds into the projection's output rows.

A new site (e.g. the residual stream after each decoder block, at chosen token positions) is
one :class:`Site` given to :func:`register_site`; ``fold=None`` marks edits there as not
foldable into the weights (merging them raises ``MergeNotSupported``). Its hook receives the
module's input or output as the site says; a site whose edit needs more (token positions)
brings its own edit kind.

This module imports only torch, :mod:`jola.bias_export` and the other modules of
:mod:`jola.edits`; the registry is a plain dict (the edits package stays free of the project's
other modules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from jola.bias_export import text_config
from jola.edits.folding import fold_input, fold_output
from jola.edits.sites import (
    LayerModuleSpec,
    config_value,
    find_layer_modules,
    find_output_projections,
    not_found,
    out_features,
)

Fold = Callable[[nn.Module, Tensor | None, Tensor | None], None]


@dataclass
class SiteLayout:
    """A site located in one model: its module per layer (in layer order) and the unit layout
    of the edited activation."""

    site: str
    names: list[str]
    modules: list[nn.Module]
    num_units: int
    unit_dim: int
    model_type: str

    @property
    def num_layers(self) -> int:
        """Number of layers (one module each)."""
        return len(self.modules)


@dataclass(frozen=True)
class Site:
    """Where an edit attaches (see the module docstring).

    ``locate(model)`` returns the :class:`SiteLayout` (ValueError, listing what was looked for,
    when the model has no such site); ``edits_output`` says whether the edit applies to the
    located module's output (else its first input); ``fold(module, scale, offset)`` folds
    ``v' = scale * v + offset`` of that activation into the module, or is None where no exact
    fold exists; ``unit`` names one unit (``head``, ``layer``) for messages and statistics.
    """

    name: str
    locate: Callable[[nn.Module], SiteLayout]
    edits_output: bool
    fold: Fold | None
    unit: str
    description: str = ""


SITES: dict[str, Site] = {}
"""Registered sites by name (:func:`register_site`, :func:`get_site`)."""


def register_site(site: Site) -> Site:
    """Add ``site`` to :data:`SITES`; a name registered twice is a bug (ValueError)."""
    if site.name in SITES:
        raise ValueError(f"edit site {site.name!r} is already registered")
    SITES[site.name] = site
    return site


def get_site(name: str) -> Site:
    """The site registered under ``name``; ValueError listing the choices otherwise."""
    try:
        return SITES[name]
    except KeyError:
        raise ValueError(
            f"unknown edit site '{name}'; choices: {', '.join(sorted(SITES))}"
        ) from None


# ------------------------------------------------------------------------------------ heads


def locate_heads(model: nn.Module) -> SiteLayout:
    """The ``heads`` site: :func:`find_output_projections`, one unit per attention head."""
    proj = find_output_projections(model)
    return SiteLayout(
        "heads", proj.names, proj.modules, proj.num_heads, proj.head_dim, proj.model_type
    )


# -------------------------------------------------------------------------------------- mlp

MLP_ARCHITECTURES: dict[str, str] = {
    "llama": "model.layers.{i}.mlp.down_proj",
    "qwen2": "model.layers.{i}.mlp.down_proj",
    "qwen3": "model.layers.{i}.mlp.down_proj",
    "mistral": "model.layers.{i}.mlp.down_proj",
    "gemma": "model.layers.{i}.mlp.down_proj",
    "gemma2": "model.layers.{i}.mlp.down_proj",
    "gemma3_text": "model.layers.{i}.mlp.down_proj",
    "phi3": "model.layers.{i}.mlp.down_proj",
    "gpt2": "transformer.h.{i}.mlp.c_proj",
}
"""config.model_type -> path of layer ``{i}``'s MLP down projection (model with LM head).

Other models are searched generically (see :func:`find_mlp_outputs`)."""

MLP_OUTPUT = LayerModuleSpec(
    "MLP down projection",
    MLP_ARCHITECTURES,
    ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "w2", "fc_out"),
    ("mlp", "feed_forward", "ffn"),
)


def find_mlp_outputs(model: nn.Module) -> SiteLayout:
    """The ``mlp`` site: each layer's MLP down projection, whose output is edited as one unit
    of ``out_features`` (the hidden size).

    Uses :data:`MLP_ARCHITECTURES` for known ``config.model_type`` values, otherwise searches
    for modules named down_proj / c_proj / fc2 / dense_4h_to_h / w2 / fc_out inside an MLP
    block, one per layer. Raises ``ValueError`` listing module names if none is found (a
    mixture-of-experts block has no single down projection).
    """
    config = getattr(model, "config", None)
    text = text_config(config) if config is not None else None
    model_type = str(config_value(config, "model_type") or type(model).__name__)
    num_layers = config_value(text, "num_hidden_layers", "n_layer", "num_layers")
    found = find_layer_modules(model, MLP_OUTPUT, model_type, num_layers)
    sizes = {out_features(m) for _, m in found}
    if not found or len(sizes) != 1:
        why = f"output sizes {sorted(sizes)}, not one" if found else "none found"
        raise not_found(model, MLP_OUTPUT, model_type, num_layers, why)
    return SiteLayout(
        "mlp", [n for n, _ in found], [m for _, m in found], 1, sizes.pop(), model_type
    )


register_site(
    Site(
        "heads",
        locate_heads,
        edits_output=False,
        fold=fold_input,
        unit="head",
        description="input of each attention output projection, per head (JoLA)",
    )
)
register_site(
    Site(
        "mlp",
        find_mlp_outputs,
        edits_output=True,
        fold=fold_output,
        unit="layer",
        description="output of each MLP down projection, one unit per layer (RED)",
    )
)
