"""ReFT / LoReFT (Wu et al. 2024, "ReFT: Representation Finetuning for Language Models"):
``Phi(h) = h + R^T (W h + b - R h)`` on the residual stream after the chosen decoder layers, at
the first ``p`` and last ``s`` prompt positions (:mod:`jola.edits.lowrank` on the site of
:mod:`jola.edits.residual`), trained by the shared trainer with the loss on the answer tokens.

Followed: pyreft (github.com/stanfordnlp/pyreft) -- ``LoreftIntervention`` for the formula and
its parametrisation, ``get_intervention_locations`` for the positions (``f7+l7``: the first 7 and
last 7 prompt tokens, each count capped at half the prompt), pyvene's ``intervene_on_prompt``
for generation (the prompt's pass only; generated tokens see the edit through the KV cache), and
``examples/loreft/README.md``'s commonsense command for the defaults: every layer (``-l all``),
rank 8, ``f7+l7``, ``--share_weights``, dropout 0, lr 9e-4, 6 epochs, batch 16 x 2 gradient
accumulation (32 here), warm-up ratio 0.1, linear schedule, weight decay 0 (the script's default).

Where the positions come from: a pass over a prompt alone (generation) takes the whole input as
the prompt; the shared trainer declares each row's prompt length from its labels and
log-likelihood scoring from its candidates (:class:`jola.edits.positions.declared_prompts`), as
pyreft passes ``intervention_locations`` with each batch. Positions count real tokens only, so a
left-padded batch edits the same tokens as each prompt alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from jola.config import MethodConfig, TrainConfig
from jola.edits.lowrank import (
    LOWRANK_CONFIG_FILE,
    LOWRANK_FILE,
    LowRankEdits,
    load_lowrank,
    save_lowrank,
)
from jola.edits.positions import TokenPositions
from jola.edits.residual import ResidualHandle, attach_residual, find_decoder_layers
from jola.errors import MergeNotSupported, UserError
from jola.methods.base import Method
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze

REFT_DIR = "reft"


def _pyreft_commonsense_training() -> TrainConfig:
    """pyreft's commonsense training settings (examples/loreft/README.md): lr 9e-4, 6 epochs,
    an effective batch of 32 (16 x 2 accumulation), linear decay, weight decay 0, warm-up ratio
    0.1 of the planned steps (5 of the 42 that 6 epochs of n=200 take at batch 32; it scales
    with n). Early stopping (patience 2 on dev loss) is the project's, as for every
    trained method."""
    return TrainConfig(
        lr=9e-4,
        batch_size=32,
        epochs=6,
        warmup_steps=0,
        warmup_ratio=0.1,
        lr_scheduler="linear",
        weight_decay=0.0,
    )


@dataclass
class ReftConfig(MethodConfig):
    """LoReFT's settings (defaults: pyreft's commonsense setting).

    ``layers``: decoder layer indices to edit (null: every layer, pyreft's ``-l all``);
    ``positions``: pyreft's ``f<p>+l<s>`` (also ``f<p>`` or ``l<s>``); ``rank``: the rows of
    ``R``; ``share_weights``: one intervention per layer for the first and last positions
    (false: one for each); ``dropout`` on the edited states in training.
    """

    name: str = "reft"
    train: TrainConfig = field(default_factory=_pyreft_commonsense_training)
    rank: int = 8
    layers: list[int] | None = None
    positions: str = "f7+l7"
    share_weights: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rank <= 0:
            raise UserError(f"method.rank must be positive, got {self.rank}")
        try:
            spec = TokenPositions.parse(self.positions)
        except ValueError as err:
            raise UserError(f"method.positions: {err}") from err
        if spec.kind != "prompt":
            raise UserError("method.positions: ReFT edits prompt positions (f<n>+l<n>), not all")
        if self.layers is not None:
            if not self.layers:
                raise UserError("method.layers is empty; null edits every layer")
            bad = [layer for layer in self.layers if not isinstance(layer, int) or layer < 0]
            if bad:
                raise UserError(f"method.layers must be layer indices >= 0, got {bad}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"method.dropout must be in [0, 1), got {self.dropout}")


class Reft(Method):
    """Attach fresh :class:`~jola.edits.lowrank.LowRankEdits` to the residual stream of a
    frozen model; train only them."""

    trains = True
    supports_merge = False

    def __init__(self, cfg: ReftConfig):
        super().__init__(cfg)
        self.handle: ResidualHandle | None = None

    @property
    def edits(self) -> LowRankEdits:
        if self.handle is None:
            raise RuntimeError("ReFT edits are not attached; call prepare() or load() first")
        return self.handle.edit

    def _layers(self, model: torch.nn.Module) -> tuple[int, int, str]:
        """(number of decoder layers, hidden size, model type), as a UserError if unknown."""
        try:
            found = find_decoder_layers(model)
        except ValueError as err:
            raise UserError(str(err)) from err
        return found.num_layers, found.hidden_size, found.model_type

    def prepare(self, loaded: LoadedModel) -> None:
        """Freeze the base model and attach LoReFT interventions (initialised from the run's
        seed, as the rest of the run)."""
        cfg = self.cfg
        num_layers, hidden, model_type = self._layers(loaded.model)
        layers = list(range(num_layers)) if cfg.layers is None else list(cfg.layers)
        outside = [layer for layer in layers if layer >= num_layers]
        if outside:
            raise UserError(
                f"method.layers {outside} outside the model's {num_layers} decoder layers "
                f"(0..{num_layers - 1})"
            )
        if cfg.rank > hidden:
            raise UserError(f"method.rank={cfg.rank} exceeds the hidden size {hidden}")
        freeze(loaded.model)
        generator = torch.Generator().manual_seed(0 if self.seed is None else self.seed)
        edits = LowRankEdits(
            hidden,
            layers,
            TokenPositions.parse(cfg.positions),
            rank=cfg.rank,
            share_weights=cfg.share_weights,
            dropout=cfg.dropout,
            model_type=model_type,
            generator=generator,
        )
        self.handle = attach_residual(loaded.model, edits)

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return list(self.edits.parameters())

    def parameter_groups(self, model: torch.nn.Module, train: TrainConfig) -> list[dict]:
        """``source`` (W, b: ``train.lr``, ``train.weight_decay``) and ``rotation`` (R's
        Householder reflectors: ``train.lr``, never weight decay -- their diagonal holds signs
        that decay would erase, see :mod:`jola.edits.lowrank`)."""
        return [
            {
                "name": "source",
                "params": self.edits.source_parameters(),
                "lr": train.lr,
                "weight_decay": train.weight_decay,
            },
            {
                "name": "rotation",
                "params": self.edits.rotation_parameters(),
                "lr": train.lr,
                "weight_decay": 0.0,
            },
        ]

    def final_stats(self) -> dict:
        edits = self.edits
        return {
            "layers": list(edits.layers),
            "positions": edits.positions.describe(),
            "first_n": edits.positions.first_n,
            "last_n": edits.positions.last_n,
            "rank": edits.rank,
            "share_weights": edits.share_weights,
            "interventions": len(edits.interventions),
            "edit_parameters": edits.num_parameters(),
        }

    def save(self, run_dir: Path) -> list[Path]:
        folder = save_lowrank(
            self.edits,
            Path(run_dir) / REFT_DIR,
            extra={"method": dict(self.cfg.__dict__, train=None)},
        )
        return [folder / LOWRANK_FILE, folder / LOWRANK_CONFIG_FILE]

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Attach the interventions saved in ``run_dir/reft`` to a fresh model (eval mode)."""
        edits = load_lowrank(Path(run_dir) / REFT_DIR)
        num_layers, hidden, _ = self._layers(loaded.model)
        if edits.hidden_size != hidden or max(edits.layers) >= num_layers:
            raise UserError(
                f"{run_dir}: ReFT edits for hidden size {edits.hidden_size} and layers "
                f"{list(edits.layers)} do not fit this model ({hidden}, {num_layers} layers)"
            )
        freeze(loaded.model)
        loaded.model.eval()
        self.handle = attach_residual(loaded.model, edits)

    def merge(self, loaded: LoadedModel) -> None:
        raise MergeNotSupported(
            "method=reft: LoReFT edits only some token positions (the first and last of each "
            "prompt), which no weight of the model can express; keep the edits attached "
            "(Method.load) instead of merging"
        )


register_method("reft", ReftConfig, Reft)
