"""The residual-stream site: the output hidden states of each decoder layer, edited at chosen
token positions (:mod:`jola.edits.positions`) by a :class:`ResidualEdit` (ReFT's low-rank
intervention, :mod:`jola.edits.lowrank`; RePE's steering vectors, :mod:`jola.edits.steering`).

:func:`find_decoder_layers` locates the decoder layers through the attention output projections
(:func:`~jola.edits.sites.find_output_projections`: the layer is the module whose index the
projection's name carries, e.g. ``model.layers.3`` of ``model.layers.3.self_attn.o_proj``), and
the backbone that runs them (``model.model``). :func:`attach_residual` puts a forward pre-hook
on the backbone, which reads each pass's facts (real tokens, cached length, declared prompt
lengths), and a forward hook on each edited layer, which replaces the layer's output hidden
states by ``edit.edit(layer, hidden, masks)``. pyvene, which pyreft runs on, does the same:
it hooks the block output ("block_output") and intervenes on the prompt pass of generation only
(``intervene_on_prompt``); the generated tokens see the edit through the KV cache.

Merging is impossible: the edit depends on token positions (ReFT) or sits behind the next
layer's RMSNorm (RePE), so no weight reproduces it (the methods raise ``MergeNotSupported``).
The site is also registered as ``residual`` in :data:`jola.edits.site_registry.SITES` (no fold),
where the vector kinds edit every position.

This module imports only torch and the other modules of :mod:`jola.edits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from jola.edits.handles import Handle
from jola.edits.parameters import Float32Module
from jola.edits.positions import PassFacts, TokenPositions, pass_facts, position_masks
from jola.edits.site_registry import Site, SiteLayout, register_site
from jola.edits.sites import config_value, find_output_projections

RESIDUAL_EDITS_ATTR = "jola_residual_edits"
"""Name under which :func:`attach_residual` registers the edit module on the model."""
_HANDLE_ATTR = "_jola_residual_handle"


@dataclass
class DecoderLayers:
    """The decoder layers of a model (in order), their names, the backbone module that calls
    them, and the width of the residual stream."""

    names: list[str]
    modules: list[nn.Module]
    backbone: nn.Module
    hidden_size: int
    model_type: str

    @property
    def num_layers(self) -> int:
        """Number of decoder layers."""
        return len(self.modules)


def find_decoder_layers(model: nn.Module) -> DecoderLayers:
    """Locate each decoder layer (the output of which is the residual stream after it).

    Raises ``ValueError`` (from :func:`find_output_projections`, listing modules) when the
    model has no attention output projection, or when no layer index is in their names.
    """
    proj = find_output_projections(model)
    parts = proj.names[0].split(".")
    index = next((k for k, p in enumerate(parts) if p.isdigit()), None)
    if index is None:
        raise ValueError(f"{proj.model_type}: no layer index in {proj.names[0]!r}")
    names = [".".join(name.split(".")[: index + 1]) for name in proj.names]
    modules = [model.get_submodule(name) for name in names]
    backbone_name = ".".join(parts[: index - 1])
    backbone = model.get_submodule(backbone_name) if backbone_name else model
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = config_value(text, "hidden_size", "n_embd", "d_model")
    if hidden is None:
        raise ValueError(f"{proj.model_type}: no hidden size in the model config")
    return DecoderLayers(names, modules, backbone, int(hidden), proj.model_type)


def locate_residual(model: nn.Module) -> SiteLayout:
    """The ``residual`` site of :data:`jola.edits.SITES`: each decoder layer's output, one unit
    per layer (``unit_dim`` = the hidden size)."""
    layers = find_decoder_layers(model)
    return SiteLayout(
        "residual", layers.names, layers.modules, 1, layers.hidden_size, layers.model_type
    )


# In the site registry, vector kinds (jola.edits.site_edits) edit every position here; the
# position-dependent kinds (ReFT, RePE) attach with attach_residual below. No fold: the stream
# is the sum of every earlier layer's output and the embeddings, no single weight produces it.
register_site(
    Site(
        "residual",
        locate_residual,
        edits_output=True,
        fold=None,
        unit="layer",
        description="output of each decoder layer (the residual stream), one unit per layer",
    )
)


class ResidualEdit(Float32Module):
    """Base of the edits this site applies: which ``layers`` (indices) are edited, at which
    :class:`~jola.edits.positions.TokenPositions`, and :meth:`edit`. Its parameters stay
    float32 whatever the model's dtype (:class:`~jola.edits.parameters.Float32Module`)."""

    positions: TokenPositions
    layers: tuple[int, ...]

    def edit(self, layer: int, hidden: Tensor, masks: dict[str, Tensor]) -> Tensor:
        """The edited hidden states ``[batch, seq, hidden]`` of ``layer``'s output; ``masks``
        holds one boolean ``[batch, seq]`` mask per position group (see
        :func:`~jola.edits.positions.position_masks`). Positions outside every mask must come
        back unchanged."""
        raise NotImplementedError


class ResidualHandle(Handle):
    """Hooks applying a :class:`ResidualEdit` to a model; :meth:`detach` removes them (the
    model is exactly the original again). While attached, the edit is the submodule
    ``model.jola_residual_edits``, so ``model.to()``, ``train()`` and ``eval()`` include it."""

    edits_attr = RESIDUAL_EDITS_ATTR
    handle_attr = _HANDLE_ATTR

    def __init__(self, model: nn.Module, edit: ResidualEdit, layers: DecoderLayers) -> None:
        super().__init__(model, edit)
        self.edit = edit
        self.layers = layers
        self._facts: PassFacts | None = None
        self._masks: dict[str, Tensor] | None = None
        self._masks_ready = False
        self.edited_passes = 0  # forward passes in which at least one position was edited

    def _install(self) -> None:
        self._hooks.append(
            self.layers.backbone.register_forward_pre_hook(self._start_pass, with_kwargs=True)
        )
        for layer in self.edit.layers:
            module = self.layers.modules[layer]
            self._hooks.append(module.register_forward_hook(self._make_hook(layer)))
        self._register()

    def _start_pass(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        self._facts = pass_facts(self.model, args, kwargs)
        self._masks, self._masks_ready = None, False

    def masks_for(self, hidden: Tensor) -> dict[str, Tensor] | None:
        """The position masks of the current pass (computed once per pass, at the first edited
        layer, so gradient checkpointing's recomputation sees the same ones)."""
        if not self._masks_ready:
            facts = self._facts or PassFacts(None, 0, None)
            self._masks = position_masks(
                self.edit.positions, facts, tuple(hidden.shape[:2]), hidden.device
            )
            self._masks_ready = True
            if self._masks is not None and any(bool(m.any()) for m in self._masks.values()):
                self.edited_passes += 1
        return self._masks

    def _make_hook(self, layer: int):
        def hook(module: nn.Module, args: tuple, output: Any) -> Any:
            hidden = output[0] if isinstance(output, tuple) else output
            masks = self.masks_for(hidden)
            if masks is None:
                return output
            edited = self.edit.edit(layer, hidden, masks)
            return (edited, *output[1:]) if isinstance(output, tuple) else edited

        return hook

    def _forget(self) -> None:
        self._facts, self._masks, self._masks_ready = None, None, False


def attached_residual_handle(model: nn.Module) -> ResidualHandle | None:
    """The :class:`ResidualHandle` attached to ``model``, if any."""
    return getattr(model, _HANDLE_ATTR, None)


def attach_residual(model: nn.Module, edit: ResidualEdit) -> ResidualHandle:
    """Attach ``edit`` to the residual stream of ``model`` (after the decoder layers it names).

    The edit is moved to the layers' device and set to the model's train/eval mode. Raises
    ``ValueError`` for a layer index outside the model and ``RuntimeError`` when the model
    already carries a residual edit.
    """
    if attached_residual_handle(model) is not None:
        raise RuntimeError("model already has a residual edit attached; detach it first")
    layers = find_decoder_layers(model)
    bad = [layer for layer in edit.layers if not 0 <= layer < layers.num_layers]
    if bad:
        raise ValueError(
            f"layer(s) {bad} outside the model's {layers.num_layers} decoder layers "
            f"(0..{layers.num_layers - 1})"
        )
    device = next(layers.modules[0].parameters()).device
    edit.to(device)
    edit.train(model.training)
    handle = ResidualHandle(model, edit, layers)
    handle._install()
    return handle
