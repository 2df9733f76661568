"""Per-head activation edits of JoLA, attached to any Hugging Face decoder through hooks.

For layer ``l`` and head ``h`` the edit is

    z' = (1 + g_m[l, h] * m[l, h]) * z + g_a[l, h] * a[l, h]

where ``z`` is the head's slice of the input of the attention output projection (``o_proj`` in
Llama / Qwen2 / Mistral / Gemma / Phi-3, ``attn.c_proj`` in GPT-2), ``m`` (``scale``) and ``a``
(``offset``) are vectors of size ``head_dim`` and ``g_m``, ``g_a`` are Hard-Concrete gates
(:mod:`jola.gates`). All parameters live in one :class:`HeadEdits` module, always in float32.

:func:`attach` registers a forward pre-hook on every layer's output projection; each hook edits
all heads of its layer in one vectorised op. The base model's weights are never touched, so
:meth:`EditHandle.detach` restores it exactly. :func:`merge_into_model` folds evaluation-mode edits
into the projection weights and bias; :func:`export_merged` writes such a model as a plain
checkpoint where the architecture's config can express the needed bias.

This module imports only torch and :mod:`jola.gates`; transformers and safetensors are imported
inside the functions that need them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from jola import bias_export, gates

EDITS_FILE = "edits.safetensors"
CONFIG_FILE = "edit_config.json"
EDITS_ATTR = "jola_edits"
"""Name under which :func:`attach` registers the :class:`HeadEdits` as a submodule of the model."""
_HANDLE_ATTR = "_jola_edit_handle"

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

_PROJECTION_NAMES = ("o_proj", "out_proj", "c_proj", "dense")
_ATTENTION_MARKERS = ("attn", "attention")


@dataclass
class EditConfig:
    """Which edits exist and how they start.

    ``gated=False`` fixes every gate to 1 (an ablation without localisation). ``init_std`` is the
    standard deviation of the normal initialisation of ``scale`` and ``offset`` (the release uses
    1e-3). ``heads``, a list of ``[layer, head]`` pairs, restricts the edits to those heads (a
    fixed head set: every other head's gates are 0); None edits every head.
    """

    additive: bool = True
    multiplicative: bool = True
    gated: bool = True
    init_std: float = 1e-3
    heads: list[list[int]] | None = None

    def __post_init__(self) -> None:
        if not (self.additive or self.multiplicative):
            raise ValueError("EditConfig needs additive=True or multiplicative=True (or both)")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std}")
        if self.heads is not None:
            self.heads = normalize_heads(self.heads)


def normalize_heads(heads: Iterable[Iterable[int]]) -> list[list[int]]:
    """``[layer, head]`` pairs, sorted and without duplicates; ValueError for anything else."""
    pairs = set()
    for pair in heads:
        pair = list(pair)
        if len(pair) != 2 or not all(isinstance(v, int) and v >= 0 for v in pair):
            raise ValueError(f"a head is a [layer, head] pair of indices >= 0, got {pair}")
        pairs.add((pair[0], pair[1]))
    return [list(pair) for pair in sorted(pairs)]


class HeadEdits(nn.Module):
    """All edit parameters of one model: per-head vectors and gates, in float32.

    Parameters (absent, i.e. ``None``, when the edit kind or the gates are disabled):
    ``scale`` (m) and ``offset`` (a) of shape ``[L, H, D]``; ``log_alpha_mult`` and
    ``log_alpha_add`` of shape ``[L, H]``. Gates are sampled in training mode and deterministic in
    evaluation mode; when attached, the module follows the model's ``train()`` / ``eval()``.
    """

    def __init__(
        self,
        num_layers: int,
        num_heads: int,
        head_dim: int,
        config: EditConfig | None = None,
        *,
        model_type: str | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if min(num_layers, num_heads, head_dim) < 1:
            raise ValueError(
                f"num_layers, num_heads, head_dim must be positive, got "
                f"{num_layers}, {num_heads}, {head_dim}"
            )
        self.edit_config = config if config is not None else EditConfig()
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.model_type = model_type

        shape = (num_layers, num_heads, head_dim)
        self.register_parameter(
            "scale", self._vector(shape, self.edit_config.multiplicative, generator)
        )
        self.register_parameter("offset", self._vector(shape, self.edit_config.additive, generator))
        self.register_parameter(
            "log_alpha_mult", self._log_alpha(self.edit_config.multiplicative, generator)
        )
        self.register_parameter(
            "log_alpha_add", self._log_alpha(self.edit_config.additive, generator)
        )
        self.register_buffer("head_mask", None, persistent=False)
        self.set_heads(self.edit_config.heads)
        if device is not None:
            self.to(device)

    def set_heads(self, heads: Iterable[Iterable[int]] | None) -> None:
        """Restrict the edits to the ``[layer, head]`` pairs ``heads`` (None: every head). The
        set lives in ``edit_config.heads`` (saved with the edits) and as a 0/1 mask ``[L, H]``
        that multiplies every gate."""
        if heads is None:
            self.edit_config.heads = None
            self.head_mask = None
            return
        pairs = normalize_heads(heads)
        mask = torch.zeros(self.num_layers, self.num_heads, dtype=torch.float32)
        for layer, head in pairs:
            if layer >= self.num_layers or head >= self.num_heads:
                raise ValueError(
                    f"head [{layer}, {head}] is outside {self.num_layers} layers x "
                    f"{self.num_heads} heads"
                )
            mask[layer, head] = 1.0
        self.edit_config.heads = pairs
        device = self.scale.device if self.scale is not None else self.offset.device
        self.head_mask = mask.to(device)

    def _vector(
        self, shape: tuple[int, int, int], enabled: bool, generator: torch.Generator | None
    ) -> nn.Parameter | None:
        if not enabled:
            return None
        values = torch.randn(shape, generator=generator, dtype=torch.float32)
        return nn.Parameter(values * self.edit_config.init_std)

    def _log_alpha(self, enabled: bool, generator: torch.Generator | None) -> nn.Parameter | None:
        if not (enabled and self.edit_config.gated):
            return None
        return nn.Parameter(gates.init_log_alpha(self.num_layers, self.num_heads, generator))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> HeadEdits:
        # Casting the host model (model.to(torch.bfloat16), model.half()) moves the edits but
        # keeps them in float32: the device comes from fn, the values from the original tensor.
        def keep_float32(t: Tensor) -> Tensor:
            out = fn(t)
            if t.dtype == torch.float32 and out.dtype != torch.float32:
                out = t.to(device=out.device)
            return out

        return super()._apply(keep_float32, recurse)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    @property
    def additive(self) -> bool:
        """Whether the additive edit exists."""
        return self.edit_config.additive

    @property
    def multiplicative(self) -> bool:
        """Whether the multiplicative edit exists."""
        return self.edit_config.multiplicative

    @property
    def gated(self) -> bool:
        """Whether gates are learned (False: every gate of an enabled kind is 1)."""
        return self.edit_config.gated

    def _gate(self, enabled: bool, log_alpha: Tensor | None, training: bool | None) -> Tensor:
        training = self.training if training is None else training
        device = self.device
        shape = (self.num_layers, self.num_heads)
        if not enabled:
            return torch.zeros(shape, device=device)
        if log_alpha is None:
            gate = torch.ones(shape, device=device)
        else:
            gate = gates.gate_values(log_alpha, training)
        if self.head_mask is not None:
            gate = gate * self.head_mask.to(gate.dtype)
        return gate

    def gate_mult(self, training: bool | None = None) -> Tensor:
        """Multiplicative gates ``[L, H]``: sampled if training, deterministic otherwise.

        ``training`` defaults to ``self.training``. Ones when ungated, zeros when the
        multiplicative edit is disabled; zero outside a fixed head set (``heads``).
        """
        return self._gate(self.multiplicative, self.log_alpha_mult, training)

    def gate_add(self, training: bool | None = None) -> Tensor:
        """Additive gates ``[L, H]``; same conventions as :meth:`gate_mult`."""
        return self._gate(self.additive, self.log_alpha_add, training)

    def layer_terms(
        self, layer: int, gate_mult: Tensor, gate_add: Tensor, heads: Tensor | None = None
    ) -> tuple[Tensor | None, Tensor | None]:
        """The edit of one layer as ``(g_m * m, g_a * a)``, each ``[H, D]`` (or ``[k, D]``).

        ``heads`` optionally selects a subset of heads (a 1-D index tensor). A disabled kind
        gives ``None``. The edited activation is ``z + z * mult + add``.
        """
        mult = add = None
        if self.scale is not None:
            g, v = gate_mult[layer], self.scale[layer]
            if heads is not None:
                g, v = g.index_select(0, heads), v.index_select(0, heads)
            mult = g.unsqueeze(-1) * v
        if self.offset is not None:
            g, v = gate_add[layer], self.offset[layer]
            if heads is not None:
                g, v = g.index_select(0, heads), v.index_select(0, heads)
            add = g.unsqueeze(-1) * v
        return mult, add

    def num_parameters(self) -> int:
        """Number of scalar parameters (all of them are trainable)."""
        return sum(p.numel() for p in self.parameters())

    def head_counts(self) -> dict[str, int]:
        """Heads edited at evaluation (deterministic gate != 0), by kind, and the total ``L*H``.

        Keys: ``additive``, ``multiplicative``, ``either``, ``total``.
        """
        with torch.no_grad():
            add = self.gate_add(training=False) != 0
            mult = self.gate_mult(training=False) != 0
        return {
            "additive": int(add.sum()),
            "multiplicative": int(mult.sum()),
            "either": int((add | mult).sum()),
            "total": self.num_layers * self.num_heads,
        }

    def metadata(self) -> dict[str, Any]:
        """Shape, config and model type, as written to ``edit_config.json`` (``heads`` only
        when the edits are restricted to a head set, so older files stay the same)."""
        config = asdict(self.edit_config)
        if config["heads"] is None:
            del config["heads"]
        return {
            "edit_config": config,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "model_type": self.model_type,
        }

    def extra_repr(self) -> str:
        c = self.edit_config
        return (
            f"layers={self.num_layers}, heads={self.num_heads}, head_dim={self.head_dim}, "
            f"additive={c.additive}, multiplicative={c.multiplicative}, gated={c.gated}"
        )


# --------------------------------------------------------------------------- locating projections


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


def _config_value(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def _is_conv1d(module: nn.Module) -> bool:
    # transformers' Conv1D (GPT-2): y = x @ W + b with W stored [in, out].
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def _in_features(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.in_features
    if _is_conv1d(module):
        return module.weight.shape[0]
    return None


def _generic_search(model: nn.Module, num_layers: int | None) -> list[tuple[str, nn.Module]]:
    groups: dict[str, list[tuple[str, nn.Module]]] = {}
    for name, module in model.named_modules():
        parts = name.split(".")
        if parts[-1] not in _PROJECTION_NAMES or _in_features(module) is None:
            continue
        if not any(m in p.lower() for p in parts[:-1] for m in _ATTENTION_MARKERS):
            continue
        if not any(p.isdigit() for p in parts):
            continue
        pattern = re.sub(r"(?<=\.)\d+(?=\.)", "{i}", name)
        groups.setdefault(pattern, []).append((name, module))
    if num_layers is not None:
        matching = [g for g in groups.values() if len(g) == num_layers]
    else:
        matching = sorted(groups.values(), key=len, reverse=True)[:1]
    return matching[0] if len(matching) == 1 else []


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
    model_type = str(_config_value(config, "model_type") or type(model).__name__)
    num_layers = _config_value(text_config, "num_hidden_layers", "n_layer", "num_layers")
    num_heads = _config_value(text_config, "num_attention_heads", "n_head", "num_heads")

    found: list[tuple[str, nn.Module]] = []
    pattern = ARCHITECTURES.get(model_type)
    if pattern is not None and num_layers is not None:
        try:
            found = [
                (pattern.format(i=i), model.get_submodule(pattern.format(i=i)))
                for i in range(num_layers)
            ]
        except AttributeError:
            found = []
    if not found:
        found = _generic_search(model, num_layers)
    if not found or num_heads is None:
        names = [n for n, _ in model.named_modules() if n]
        sample = ", ".join(names[:25]) + (
            f", ... ({len(names)} modules)" if len(names) > 25 else ""
        )
        reason = "no attention head count in its config" if found else "none found"
        raise ValueError(
            f"cannot locate the attention output projection of model_type={model_type!r} "
            f"({type(model).__name__}): {reason}. Looked for "
            f"{repr(pattern) + ' and ' if pattern else ''}modules named "
            f"{'/'.join(_PROJECTION_NAMES)} inside an attention block, one per layer "
            f"({num_layers} layers). Modules found: {sample or '(none)'}"
        )
    names, modules = [n for n, _ in found], [m for _, m in found]
    in_features = {_in_features(m) for m in modules}
    if len(in_features) != 1 or next(iter(in_features)) % num_heads:
        raise ValueError(
            f"{model_type}: output projections have input sizes {sorted(in_features)}, "
            f"not one size divisible by {num_heads} heads"
        )
    head_dim = next(iter(in_features)) // num_heads
    return OutputProjections(names, modules, int(num_heads), head_dim, model_type)


def count_edit_parameters(config: Any, edit_config: EditConfig | None = None) -> int:
    """Trainable edit parameters for a model config, without building the model.

    ``2 * L * H * head_dim + 2 * L * H`` with every edit and gate enabled. ``head_dim`` is the
    config's ``head_dim`` when set, else ``hidden_size // num_attention_heads``.
    """
    edit_config = edit_config if edit_config is not None else EditConfig()
    text = _text_config(config)
    layers = _config_value(text, "num_hidden_layers", "n_layer", "num_layers")
    heads = _config_value(text, "num_attention_heads", "n_head", "num_heads")
    head_dim = _config_value(text, "head_dim")
    if head_dim is None:
        head_dim = _config_value(text, "hidden_size", "n_embd") // heads
    kinds = int(edit_config.additive) + int(edit_config.multiplicative)
    per_kind = layers * heads * head_dim + (layers * heads if edit_config.gated else 0)
    return kinds * per_kind


# ----------------------------------------------------------------------------------- attaching


class EditHandle:
    """Hooks that apply a :class:`HeadEdits` to a model; :meth:`detach` removes them.

    While attached, the edits are a submodule of the model (``model.jola_edits``), so
    ``model.parameters()``, ``model.to()`` and ``model.train()/eval()`` include them. Gates are
    computed once per model forward (one noise draw per gate in training) and shared by all
    layers, including when gradient checkpointing recomputes a layer.
    """

    def __init__(
        self,
        model: nn.Module,
        edits: HeadEdits,
        projections: OutputProjections,
        open_heads: list[Tensor | None] | None,
    ) -> None:
        self.model = model
        self.edits = edits
        self.projections = projections
        self.pruned = open_heads is not None
        # per layer: None = every head, a 1-D index tensor = those heads; layers absent = no hook
        self._open_heads = (
            open_heads if open_heads is not None else [None] * len(projections.modules)
        )
        self._gates: tuple[Tensor, Tensor] | None = None
        self._in_model_forward = False
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self.hooked_layers: list[int] = []
        self.attached = False

    def _install(self, skip_layers: Iterable[int] = ()) -> None:
        skip = set(skip_layers)
        self._hooks.append(self.model.register_forward_pre_hook(self._start_model_forward))
        self._hooks.append(
            self.model.register_forward_hook(self._end_model_forward, always_call=True)
        )
        backbone = self._backbone()
        if backbone is not None:
            self._hooks.append(backbone.register_forward_pre_hook(self._start_backbone_forward))
        for layer, module in enumerate(self.projections.modules):
            if layer in skip:
                continue
            self._hooks.append(module.register_forward_pre_hook(self._make_hook(layer)))
            self.hooked_layers.append(layer)
        self.model.add_module(EDITS_ATTR, self.edits)
        setattr(self.model, _HANDLE_ATTR, self)
        self.attached = True

    def _backbone(self) -> nn.Module | None:
        """The module holding the layer list (e.g. ``model.model``), if not the model itself."""
        parts = self.projections.names[0].split(".")
        index = next((k for k, p in enumerate(parts) if p.isdigit()), None)
        if index is None or index < 2:
            return None
        backbone = self.model.get_submodule(".".join(parts[: index - 1]))
        return None if backbone is self.model else backbone

    # Gates are drawn when a forward starts, outside any gradient-checkpointed layer: a draw
    # inside the first layer would not be repeated when that layer is recomputed, which breaks
    # checkpointing, and a fresh draw there would give gradients of a different sample.
    def _start_model_forward(self, module: nn.Module, args: tuple) -> None:
        self._in_model_forward = True
        self._draw_gates()

    def _end_model_forward(self, module: nn.Module, args: tuple, output: Any) -> None:
        self._in_model_forward = False

    def _start_backbone_forward(self, module: nn.Module, args: tuple) -> None:
        if not self._in_model_forward:  # the backbone was called on its own
            self._draw_gates()

    def _draw_gates(self) -> None:
        self._gates = (self.edits.gate_mult(), self.edits.gate_add())

    def current_gates(self) -> tuple[Tensor, Tensor]:
        """``(gate_mult, gate_add)`` of the current forward (drawn now if no forward started)."""
        if self._gates is None:
            self._draw_gates()
        return self._gates

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

    def detach(self) -> None:
        """Remove the hooks and the edits submodule; the model is exactly the original again."""
        if not self.attached:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        if self.model._modules.get(EDITS_ATTR) is self.edits:
            del self.model._modules[EDITS_ATTR]
        if getattr(self.model, _HANDLE_ATTR, None) is self:
            delattr(self.model, _HANDLE_ATTR)
        self._gates = None
        self.attached = False

    def __enter__(self) -> EditHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def attached_handle(model: nn.Module) -> EditHandle | None:
    """The :class:`EditHandle` currently attached to ``model``, if any."""
    return getattr(model, _HANDLE_ATTR, None)


def _check_shape(edits: HeadEdits, proj: OutputProjections) -> None:
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
        _check_shape(edits, proj)
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


# --------------------------------------------------------------------------------- persistence


def save_edits(edits: HeadEdits, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``edits.safetensors`` (edit tensors only) and ``edit_config.json`` to ``directory``.

    ``extra`` (JSON-serialisable) is stored under ``"extra"`` in the JSON file. Returns the
    directory.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {**edits.metadata(), "extra": extra or {}}
    text = json.dumps(meta, indent=2, sort_keys=True)  # fails before anything is written
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in edits.state_dict().items()
    }
    save_file(tensors, str(directory / EDITS_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(text + "\n")
    return directory


def load_edit_metadata(directory: str | Path) -> dict[str, Any]:
    """The contents of ``edit_config.json`` (shapes, EditConfig, model_type, extra)."""
    return json.loads((Path(directory) / CONFIG_FILE).read_text())


def load_edits(directory: str | Path, device: torch.device | str | None = None) -> HeadEdits:
    """Rebuild the :class:`HeadEdits` written by :func:`save_edits` (in training mode, like any
    new module; :func:`attach` sets it to the model's mode)."""
    from safetensors.torch import load_file

    meta = load_edit_metadata(directory)
    known = {f.name for f in fields(EditConfig)}
    config = EditConfig(**{k: v for k, v in meta["edit_config"].items() if k in known})
    edits = HeadEdits(
        meta["num_layers"],
        meta["num_heads"],
        meta["head_dim"],
        config,
        model_type=meta.get("model_type"),
        generator=torch.Generator().manual_seed(0),  # throwaway init; keeps the global RNG intact
    )
    edits.load_state_dict(load_file(str(Path(directory) / EDITS_FILE)), strict=True)
    if device is not None:
        edits.to(device)
    return edits


# -------------------------------------------------------------------------------------- merging


def _folded_terms(
    edits: HeadEdits, layer: int, gate_mult: Tensor, gate_add: Tensor
) -> tuple[Tensor | None, Tensor | None]:
    """Per-column scale ``s`` and offset ``c`` (each ``[H*D]``, float32) of one layer."""
    mult, add = edits.layer_terms(layer, gate_mult, gate_add)
    scale = None if mult is None else (1.0 + mult.float()).flatten()
    offset = None if add is None else add.float().flatten()
    return scale, offset


def _needs_new_bias(edits: HeadEdits, proj: OutputProjections) -> list[int]:
    """Layers whose projection has no bias but whose additive edit is non-zero."""
    if not edits.additive:
        return []
    with torch.no_grad():
        gate_add = edits.gate_add(training=False)
        offsets = gate_add.unsqueeze(-1) * edits.offset
    return [
        layer
        for layer, module in enumerate(proj.modules)
        if module.bias is None and bool(offsets[layer].any())
    ]


def merge_into_model(model: nn.Module, edits: HeadEdits) -> nn.Module:
    """Fold the evaluation-mode edits into the output projections, in place; returns ``model``.

    With ``z' = s * z + c`` and ``y = W z' + b``: ``W <- W diag(s)`` (the head's input columns;
    rows of GPT-2's transposed Conv1D weight) and ``b <- b + W c`` with the original ``W``. A
    projection without a bias gets a bias parameter where ``c`` is non-zero. Edits attached to
    ``model`` are detached first, so that the hooks do not apply them a second time.
    """
    handle = attached_handle(model)
    if handle is not None:
        handle.detach()
    proj = find_output_projections(model)
    _check_shape(edits, proj)
    with torch.no_grad():
        gate_mult = edits.gate_mult(training=False)
        gate_add = edits.gate_add(training=False)
        for layer, module in enumerate(proj.modules):
            scale, offset = _folded_terms(edits, layer, gate_mult, gate_add)
            weight = module.weight
            transposed = _is_conv1d(module)
            w = (weight.t() if transposed else weight).float()  # [out, in]
            w_scale = scale.to(w.device) if scale is not None else None
            if offset is not None and bool(offset.any()):
                delta = w @ offset.to(w.device)
                if module.bias is None:
                    module.bias = nn.Parameter(
                        torch.zeros(w.shape[0], dtype=weight.dtype, device=weight.device),
                        requires_grad=weight.requires_grad,
                    )
                module.bias.copy_((module.bias.float() + delta).to(module.bias.dtype))
            if w_scale is not None:
                w = w * w_scale.unsqueeze(0)
                weight.copy_((w.t() if transposed else w).to(weight.dtype))
    return model


_EXPORT_HINT = (
    "save the unmerged edits with save_edits() and attach them after loading the base model, "
    "or train multiplicative-only edits (EditConfig(additive=False)), which merge into any "
    "architecture"
)


def export_merged(model: nn.Module, edits: HeadEdits, directory: str | Path) -> Path:
    """Merge ``edits`` into ``model`` (in place) and ``save_pretrained`` it to ``directory``.

    The result loads with plain ``AutoModelForCausalLM.from_pretrained``. When the additive edit
    requires a bias the projection lacks, the config's ``attention_bias`` is set to True and the
    other attention projections get zero biases (Llama, Gemma 1-3, Qwen3, OLMo 2, Granite, ...).
    Architectures whose config cannot express that bias (Qwen2, Mistral, Phi-3, ...) raise
    ``NotImplementedError`` before anything is changed; multiplicative-only edits merge
    everywhere.
    """
    proj = find_output_projections(model)
    _check_shape(edits, proj)
    flags: list[str] = []
    added: list[str] = []
    if _needs_new_bias(edits, proj):
        flags = ["attention_bias"]
        # raises NotImplementedError before the model is modified
        added = bias_export.plan_bias_flags(
            model, flags, proj.names, "merged JoLA edits", _EXPORT_HINT
        )
        added = [n for n in added if not n.startswith(EDITS_ATTR + ".")]
    merge_into_model(model, edits)
    bias_export.apply_bias_flags(model, flags, added)
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory


__all__ = [
    "ARCHITECTURES",
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
    "normalize_heads",
    "load_edits",
    "merge_into_model",
    "save_edits",
]
