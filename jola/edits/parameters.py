"""What is learned: JoLA's per-head edit vectors and their gates, in one float32 module.

For layer ``l`` and head ``h`` the edit is

    z' = (1 + g_m[l, h] * m[l, h]) * z + g_a[l, h] * a[l, h]

where ``z`` is the head's slice of the input of the attention output projection (the site,
:mod:`jola.edits.sites`), ``m`` (``scale``) and ``a`` (``offset``) are vectors of size ``head_dim``
and ``g_m``, ``g_a`` are Hard-Concrete gates (:mod:`jola.gates`). All parameters live in one
:class:`HeadEdits` module, always in float32. :class:`EditConfig` says which of them exist and how
they start; :func:`count_edit_parameters` counts them for a model config without building it.

This module imports only torch, :mod:`jola.gates`, :mod:`jola.bias_export` and
:mod:`jola.edits.sites` (the last two to read a model config).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from jola import gates
from jola.bias_export import text_config
from jola.edits.sites import config_value


@dataclass
class EditConfig:
    """Which edits exist and how they start.

    ``gated=False`` fixes every gate to 1 (an ablation without localisation). ``init_std`` is the
    standard deviation of the normal initialisation of ``scale`` and ``offset`` (the release uses
    1e-3). ``heads``, a list of ``[layer, head]`` pairs, restricts the edits to those heads (a
    fixed head set: every other head's gates are 0); None edits every head.

    ``shared_gate=True`` (needs ``gated``) gives each head (unit) ONE Hard-Concrete gate for both
    kinds instead of one per kind: ``z' = g * ((1 + m) * z - z) + z + g * a``, the same sample
    ``g`` multiplying both edits (the paper's ablation 2; :meth:`HeadEdits.gate_pair`).
    """

    additive: bool = True
    multiplicative: bool = True
    gated: bool = True
    init_std: float = 1e-3
    heads: list[list[int]] | None = None
    shared_gate: bool = False

    def __post_init__(self) -> None:
        if not (self.additive or self.multiplicative):
            raise ValueError("EditConfig needs additive=True or multiplicative=True (or both)")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std}")
        if self.shared_gate and not self.gated:
            raise ValueError("shared_gate=True needs gated=True (there is no gate to share)")
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


class Float32Module(nn.Module):
    """A module whose float32 tensors stay float32 when the host model is cast
    (``model.to(torch.bfloat16)``, ``model.half()``): a cast moves them to its device only.
    Every edit of :mod:`jola.edits` is one, so that edits train and apply in float32 on a bf16
    base."""

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Float32Module:
        def keep_float32(t: Tensor) -> Tensor:
            out = fn(t)
            if t.dtype == torch.float32 and out.dtype != torch.float32:
                out = t.to(device=out.device)
            return out

        return super()._apply(keep_float32, recurse)


class HeadEdits(Float32Module):
    """All edit parameters of one model: per-head vectors and gates, in float32.

    Parameters (absent, i.e. ``None``, when the edit kind or the gates are disabled):
    ``scale`` (m) and ``offset`` (a) of shape ``[L, H, D]``; ``log_alpha_mult`` and
    ``log_alpha_add`` of shape ``[L, H]``, or with ``shared_gate`` one ``log_alpha_shared``
    ``[L, H]`` instead of both. Gates are sampled in training mode and deterministic in
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
        own = not self.shared_gate  # a shared gate replaces both kinds' own gates
        self.register_parameter(
            "log_alpha_mult", self._log_alpha(self.edit_config.multiplicative and own, generator)
        )
        self.register_parameter(
            "log_alpha_add", self._log_alpha(self.edit_config.additive and own, generator)
        )
        # registered last, so that the RNG draws of unshared edits are the same as before
        self.register_parameter("log_alpha_shared", self._log_alpha(self.shared_gate, generator))
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

    @property
    def shared_gate(self) -> bool:
        """Whether one gate per head serves both kinds (``log_alpha_shared``)."""
        return self.edit_config.gated and self.edit_config.shared_gate

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
        return self._gate(self.multiplicative, self._kind_log_alpha(self.log_alpha_mult), training)

    def gate_add(self, training: bool | None = None) -> Tensor:
        """Additive gates ``[L, H]``; same conventions as :meth:`gate_mult`."""
        return self._gate(self.additive, self._kind_log_alpha(self.log_alpha_add), training)

    def _kind_log_alpha(self, own: Tensor | None) -> Tensor | None:
        return self.log_alpha_shared if self.log_alpha_shared is not None else own

    def gate_pair(self, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(gate_mult, gate_add)`` of one forward. With a shared gate, ONE sample per head
        serves both kinds (calling :meth:`gate_mult` and :meth:`gate_add` in training would
        draw two); otherwise exactly ``(gate_mult(), gate_add())``, in that order."""
        if self.log_alpha_shared is None:
            return self.gate_mult(training), self.gate_add(training)
        gate = self._gate(True, self.log_alpha_shared, training)
        zeros = torch.zeros_like(gate)
        return (
            gate if self.multiplicative else zeros,
            gate if self.additive else zeros,
        )

    def log_alphas(self) -> dict[str, Tensor]:
        """The gate parameters by kind: ``{"mult": ..., "add": ...}`` (those that exist), or
        ``{"shared": ...}`` with a shared gate; empty when ungated."""
        pairs = (
            ("mult", self.log_alpha_mult),
            ("add", self.log_alpha_add),
            ("shared", self.log_alpha_shared),
        )
        return {kind: la for kind, la in pairs if la is not None}

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
        if not config["shared_gate"]:
            del config["shared_gate"]
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
            + (", shared_gate=True" if self.shared_gate else "")
        )


def count_edit_parameters(config: Any, edit_config: EditConfig | None = None) -> int:
    """Trainable edit parameters for a model config, without building the model.

    ``2 * L * H * head_dim + 2 * L * H`` with every edit and gate enabled (``L * H`` gates with
    ``shared_gate``). ``head_dim`` is the config's ``head_dim`` when set, else
    ``hidden_size // num_attention_heads``.
    """
    edit_config = edit_config if edit_config is not None else EditConfig()
    text = text_config(config)
    layers = config_value(text, "num_hidden_layers", "n_layer", "num_layers")
    heads = config_value(text, "num_attention_heads", "n_head", "num_heads")
    head_dim = config_value(text, "head_dim")
    if head_dim is None:
        head_dim = config_value(text, "hidden_size", "n_embd") // heads
    kinds = int(edit_config.additive) + int(edit_config.multiplicative)
    if edit_config.gated and edit_config.shared_gate:
        return kinds * layers * heads * head_dim + layers * heads
    per_kind = layers * heads * head_dim + (layers * heads if edit_config.gated else 0)
    return kinds * per_kind
