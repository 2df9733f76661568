"""The low-rank edit kind: LoReFT (Wu et al. 2024, "ReFT: Representation Finetuning for Language
Models"), on the residual-stream site (:mod:`jola.edits.residual`).

For a hidden state ``h`` (size ``d``) at an edited position,

    Phi(h) = h + R^T (W h + b - R h)

with ``R`` (``r x d``) having orthonormal rows and ``W``, ``b`` a linear map ``d -> r``: the
edit replaces the projection of ``h`` onto the row space of ``R`` by ``W h + b``. Followed:
pyreft's ``LoreftIntervention`` (pyreft/interventions.py): ``R^T`` is the weight of a ``d x r``
layer (orthonormal columns) initialised by ``torch.nn.init.orthogonal_`` and kept orthonormal by
``torch.nn.utils.parametrizations.orthogonal``; ``W, b`` are an ``nn.Linear(d, r)`` with its
default initialisation (so Phi is not the identity at step 0, as in pyreft); dropout acts on
``Phi(h)`` at the edited positions (pyreft: ``dropout(output)``); one intervention per layer
shared by the first and the last positions (``share_weights``, pyreft's commonsense setting), or
one per position group.

Differences, each for a reason: the parametrisation is the Householder map *without*
trivialisation (pyreft uses the default trivialisation, which adds a ``d x d`` buffer per layer:
2 GB on Llama-3.1-8B, and saves the weight only, re-deriving the buffer on load); here the state
is the ``d x r`` reflector matrix alone, which ``load_state_dict`` restores exactly. The
reflectors' diagonal carries only signs (the map reads it as ``int``), so the rotation must get
no weight decay (:class:`~jola.methods.reft.Reft` puts it in its own group). The parameters
stay float32 whatever the model's dtype (pyreft casts them to the model's bf16); the edit is
computed in float32 and added in the model's dtype.

This module imports only torch and the other modules of :mod:`jola.edits`; safetensors is
imported inside :func:`save_lowrank` / :func:`load_lowrank`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from jola.edits.positions import TokenPositions
from jola.edits.residual import ResidualEdit

LOWRANK_FILE = "reft.safetensors"
LOWRANK_CONFIG_FILE = "reft_config.json"


class _Rotation(nn.Module):
    """Holds ``R^T`` (``d x r``) as ``weight``, parametrised to orthonormal columns."""

    def __init__(self, hidden_size: int, rank: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden_size, rank, dtype=torch.float32))
        nn.init.orthogonal_(self.weight, generator=generator)


class LoReFT(nn.Module):
    """One LoReFT intervention ``Phi(h) = h + R^T (W h + b - R h)`` (float32 parameters)."""

    def __init__(
        self,
        hidden_size: int,
        rank: int,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0 < rank <= hidden_size:
            raise ValueError(f"LoReFT rank must be in [1, {hidden_size}], got {rank}")
        self.hidden_size, self.rank = hidden_size, rank
        self.rotation = parametrizations.orthogonal(
            _Rotation(hidden_size, rank, generator),
            "weight",
            orthogonal_map="householder",
            use_trivialization=False,
        )
        # built on the meta device, then initialised as nn.Linear initialises itself
        # (kaiming-uniform weight, uniform bias) but from ``generator``, so that the global RNG
        # is left alone and the run's seed alone decides the values
        self.source = nn.Linear(hidden_size, rank, dtype=torch.float32, device="meta")
        self.source.to_empty(device="cpu")
        nn.init.kaiming_uniform_(self.source.weight, a=5**0.5, generator=generator)
        bound = 1.0 / hidden_size**0.5
        nn.init.uniform_(self.source.bias, -bound, bound, generator=generator)
        self.dropout = nn.Dropout(dropout)

    @property
    def R(self) -> Tensor:
        """The ``r x d`` projection with orthonormal rows."""
        return self.rotation.weight.T

    def delta(self, h: Tensor) -> Tensor:
        """``R^T (W h + b - R h)`` for float32 ``h`` of shape ``[..., d]``."""
        basis = self.rotation.weight  # R^T, [d, r]; the parametrisation runs once per call
        return (self.source(h) - h @ basis) @ basis.T

    def forward(self, h: Tensor) -> Tensor:
        """``dropout(Phi(h))`` in ``h``'s dtype (computed in float32)."""
        h32 = h.float()
        return self.dropout(h32 + self.delta(h32)).to(h.dtype)

    def rotation_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``R`` (the Householder reflectors)."""
        return list(self.rotation.parameters())

    def source_parameters(self) -> list[nn.Parameter]:
        """``W`` and ``b``."""
        return list(self.source.parameters())


def intervention_key(layer: int, group: str | None) -> str:
    """Name of the intervention of ``layer`` for a position group (None: shared)."""
    return f"layer{layer}" if group is None else f"layer{layer}_{group}"


class LowRankEdits(ResidualEdit):
    """LoReFT interventions on the residual stream after ``layers``, at ``positions``.

    ``share_weights``: one intervention per layer for every position group (pyreft's
    ``--share_weights``); otherwise one per layer and group (``first``, ``last``), as pyreft
    doubles the interventions when positions are ``f<p>+l<s>`` without it.
    """

    def __init__(
        self,
        hidden_size: int,
        layers: list[int] | tuple[int, ...],
        positions: TokenPositions,
        rank: int = 8,
        share_weights: bool = True,
        dropout: float = 0.0,
        model_type: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not layers:
            raise ValueError("LowRankEdits needs at least one layer")
        if positions.kind != "prompt":
            raise ValueError("LoReFT edits prompt positions (f<n>+l<n>), not 'all'")
        self.hidden_size, self.rank = hidden_size, rank
        self.layers = tuple(sorted(set(int(layer) for layer in layers)))
        self.positions = positions
        self.share_weights = bool(share_weights) or len(positions.groups) == 1
        self.dropout_p = float(dropout)
        self.model_type = model_type
        groups = [None] if self.share_weights else list(positions.groups)
        self.interventions = nn.ModuleDict(
            {
                intervention_key(layer, group): LoReFT(hidden_size, rank, dropout, generator)
                for layer in self.layers
                for group in groups
            }
        )

    def intervention(self, layer: int, group: str) -> LoReFT:
        """The intervention applied at ``layer`` to the positions of ``group``."""
        return self.interventions[intervention_key(layer, None if self.share_weights else group)]

    def edit(self, layer: int, hidden: Tensor, masks: dict[str, Tensor]) -> Tensor:
        if self.share_weights:  # one intervention: one pass over the union of the groups
            union = torch.stack(list(masks.values())).any(0)
            masks = {self.positions.groups[0]: union}
        out = hidden
        for group, mask in masks.items():
            # Phi at every position, kept where the mask is: r-wide matmuls cost little next
            # to the layer, and no gather/scatter of a data-dependent size is needed
            edited = self.intervention(layer, group)(hidden)
            out = torch.where(mask.unsqueeze(-1), edited, out)
        return out

    def rotation_parameters(self) -> list[nn.Parameter]:
        """Every intervention's ``R`` parameters (no weight decay: see the module docstring)."""
        return [p for module in self.interventions.values() for p in module.rotation_parameters()]

    def source_parameters(self) -> list[nn.Parameter]:
        """Every intervention's ``W`` and ``b``."""
        return [p for module in self.interventions.values() for p in module.source_parameters()]

    def num_parameters(self) -> int:
        """Trainable values (``2 d r + r`` per intervention, as pyreft counts them)."""
        return sum(p.numel() for p in self.parameters())

    def metadata(self) -> dict:
        """What :func:`load_lowrank` needs to rebuild the module (JSON-serialisable)."""
        return {
            "kind": "loreft",
            "site": "residual",
            "hidden_size": self.hidden_size,
            "rank": self.rank,
            "layers": list(self.layers),
            "positions": self.positions.describe(),
            "share_weights": self.share_weights,
            "dropout": self.dropout_p,
            "model_type": self.model_type,
        }


def count_lowrank_parameters(hidden_size: int, rank: int, num_layers: int, groups: int = 1) -> int:
    """Trainable values of LoReFT on ``num_layers`` layers with ``groups`` interventions each."""
    return num_layers * groups * (2 * hidden_size * rank + rank)


def save_lowrank(edits: LowRankEdits, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``reft.safetensors`` (the interventions' tensors only) and ``reft_config.json``
    (:meth:`LowRankEdits.metadata` and ``extra``) into ``directory``; returns it."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**edits.metadata(), "extra": extra or {}}, indent=2, sort_keys=True)
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in edits.state_dict().items()
    }
    save_file(tensors, str(directory / LOWRANK_FILE), metadata={"format": "pt"})
    (directory / LOWRANK_CONFIG_FILE).write_text(text + "\n")
    return directory


def load_lowrank(directory: str | Path) -> LowRankEdits:
    """Rebuild the :class:`LowRankEdits` written by :func:`save_lowrank` (exactly: the same
    reflectors give the same ``R``)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = json.loads((directory / LOWRANK_CONFIG_FILE).read_text())
    edits = LowRankEdits(
        meta["hidden_size"],
        meta["layers"],
        TokenPositions.parse(meta["positions"]),
        rank=meta["rank"],
        share_weights=meta["share_weights"],
        dropout=meta["dropout"],
        model_type=meta.get("model_type"),
        generator=torch.Generator().manual_seed(0),  # throwaway init; keeps the global RNG intact
    )
    edits.load_state_dict(load_file(str(directory / LOWRANK_FILE)), strict=True)
    return edits
