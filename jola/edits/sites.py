"""Where edits attach: each layer's attention output projection, whose input holds the heads.

A head's activation ``z`` is its ``head_dim`` slice of the input of the attention output
projection (``o_proj`` in Llama / Qwen2 / Mistral / Gemma / Phi-3, ``attn.c_proj`` in GPT-2).
:func:`find_output_projections` locates these modules through :data:`ARCHITECTURES` or a generic
search and reads the head layout of their input; :class:`OutputProjections` is the result. The
helpers that read a model config (:func:`config_value`) and recognise GPT-2's transposed
``Conv1D`` (:func:`is_conv1d`) live here too, for the other modules of :mod:`jola.edits`.

This module imports only torch and :mod:`jola.bias_export`; it never imports transformers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from jola import bias_export

ARCHITECTURES: dict[str, str] = {
    "llama": "model.layers.{i}.self_attn.o_proj",
    "qwen2": "model.layers.{i}.self_attn.o_proj",
    "qwen3": "model.layers.{i}.self_attn.o_proj",
    "mistral": "model.layers.{i}.self_attn.o_proj",
    "gemma": "model.layers.{i}.self_attn.o_proj",
    "gemma2": "model.layers.{i}.self_attn.o_proj",
    "gemma3_text": "model.layers.{i}.self_attn.o_proj",
    "phi3": "model.layers.{i}.self_attn.o_proj",
    "gpt2": "transformer.h.{i}.attn.c_proj",
}
"""config.model_type -> path of layer ``{i}``'s attention output projection (model with LM head).

Other models are searched generically (see :func:`find_output_projections`)."""


@dataclass
class OutputProjections:
    """The attention output projection of every layer, in layer order."""

    names: list[str]
    modules: list[nn.Module]
    num_heads: int
    head_dim: int
    model_type: str

    @property
    def num_layers(self) -> int:
        """Number of layers (one projection each)."""
        return len(self.modules)


_text_config = bias_export.text_config


def config_value(config: Any, *names: str) -> Any:
    """The first of the attributes ``names`` of ``config`` that is set (not None), else None."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def is_conv1d(module: nn.Module) -> bool:
    """Whether ``module`` is transformers' ``Conv1D``, whose weight is stored transposed."""
    # transformers' Conv1D (GPT-2): y = x @ W + b with W stored [in, out].
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def in_features(module: nn.Module) -> int | None:
    """The input width of a linear layer (``nn.Linear`` or GPT-2's ``Conv1D``), else None."""
    if isinstance(module, nn.Linear):
        return module.in_features
    if is_conv1d(module):
        return module.weight.shape[0]
    return None


def out_features(module: nn.Module) -> int | None:
    """The output width of a linear layer (``nn.Linear`` or GPT-2's ``Conv1D``), else None."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if is_conv1d(module):
        return module.weight.shape[1]
    return None


@dataclass(frozen=True)
class LayerModuleSpec:
    """How to find one linear module per decoder layer: the path per ``config.model_type``
    (``{i}`` the layer index) and, for other models, the module names and the names of the
    blocks that hold them (a module qualifies when one of ``names`` ends its path, a part of
    its path contains one of ``markers`` and another part is a layer index)."""

    what: str
    table: dict[str, str]
    names: tuple[str, ...]
    markers: tuple[str, ...]


def _search(model: nn.Module, spec: LayerModuleSpec, num_layers: int | None):
    groups: dict[str, list[tuple[str, nn.Module]]] = {}
    for name, module in model.named_modules():
        parts = name.split(".")
        if parts[-1] not in spec.names or in_features(module) is None:
            continue
        if not any(m in p.lower() for p in parts[:-1] for m in spec.markers):
            continue
        if not any(p.isdigit() for p in parts):
            continue
        groups.setdefault(re.sub(r"(?<=\.)\d+(?=\.)", "{i}", name), []).append((name, module))
    if num_layers is not None:
        matching = [g for g in groups.values() if len(g) == num_layers]
    else:
        matching = sorted(groups.values(), key=len, reverse=True)[:1]
    return matching[0] if len(matching) == 1 else []


def find_layer_modules(
    model: nn.Module, spec: LayerModuleSpec, model_type: str, num_layers: int | None
) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of each layer's module that ``spec`` describes, in layer order:
    through ``spec.table`` for a known ``model_type``, otherwise by search; [] when neither
    finds one per layer."""
    pattern = spec.table.get(model_type)
    if pattern is not None and num_layers is not None:
        try:
            return [
                (pattern.format(i=i), model.get_submodule(pattern.format(i=i)))
                for i in range(num_layers)
            ]
        except AttributeError:
            pass
    return _search(model, spec, num_layers)


def not_found(
    model: nn.Module, spec: LayerModuleSpec, model_type: str, num_layers: int | None, why: str
) -> ValueError:
    """The error for a model without the module ``spec`` describes: what was looked for and
    the first modules the model has."""
    names = [n for n, _ in model.named_modules() if n]
    sample = ", ".join(names[:25]) + (f", ... ({len(names)} modules)" if len(names) > 25 else "")
    pattern = spec.table.get(model_type)
    return ValueError(
        f"cannot locate the {spec.what} of model_type={model_type!r} "
        f"({type(model).__name__}): {why}. Looked for "
        f"{repr(pattern) + ' and ' if pattern else ''}modules named "
        f"{'/'.join(spec.names)} inside {'/'.join(spec.markers)} blocks, one per layer "
        f"({num_layers} layers). Modules found: {sample or '(none)'}"
    )


ATTENTION_OUTPUT = LayerModuleSpec(
    "attention output projection",
    ARCHITECTURES,
    ("o_proj", "out_proj", "c_proj", "dense"),
    ("attn", "attention"),
)


def find_output_projections(model: nn.Module) -> OutputProjections:
    """Locate each layer's attention output projection and the head layout of its input.

    Uses :data:`ARCHITECTURES` for known ``config.model_type`` values, otherwise searches for
    modules named o_proj / out_proj / c_proj / dense inside an attention block, one per layer.
    ``head_dim`` is ``in_features // num_attention_heads`` (right for GQA and for models whose
    ``num_heads * head_dim != hidden_size``). Raises ``ValueError`` listing module names if none
    is found.
    """
    config = getattr(model, "config", None)
    text_config = _text_config(config) if config is not None else None
    model_type = str(config_value(config, "model_type") or type(model).__name__)
    num_layers = config_value(text_config, "num_hidden_layers", "n_layer", "num_layers")
    num_heads = config_value(text_config, "num_attention_heads", "n_head", "num_heads")

    found = find_layer_modules(model, ATTENTION_OUTPUT, model_type, num_layers)
    if not found or num_heads is None:
        why = "no attention head count in its config" if found else "none found"
        raise not_found(model, ATTENTION_OUTPUT, model_type, num_layers, why)
    names, modules = [n for n, _ in found], [m for _, m in found]
    widths = {in_features(m) for m in modules}
    if len(widths) != 1 or next(iter(widths)) % num_heads:
        raise ValueError(
            f"{model_type}: output projections have input sizes {sorted(widths)}, "
            f"not one size divisible by {num_heads} heads"
        )
    head_dim = next(iter(widths)) // num_heads
    return OutputProjections(names, modules, int(num_heads), head_dim, model_type)
