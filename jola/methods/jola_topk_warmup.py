"""JoLA on the top-k heads of a short ungated warm-up (an equal-budget control, selection in
the style of LoFiT): every head's edits train for ``selection_steps`` plain AdamW steps, the k
heads whose edit vectors moved most (L2 norm of the change of m and a together) are kept, and
the edits restart from their initial values on those heads only for the real training."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jola.errors import UserError
from jola.methods.fixed_heads import FixedHeadsConfig, FixedHeadsJola
from jola.methods.registry import register_method


@dataclass
class JolaTopkWarmupConfig(FixedHeadsConfig):
    """``selection_steps`` warm-up steps on every head at ``selection_lr`` (null:
    ``method.train.lr``), batches of ``method.train.batch_size`` in an order drawn from the
    run's seed; no evaluation, no regulariser."""

    name: str = "jola_topk_warmup"
    selection_steps: int = 50
    selection_lr: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.selection_steps < 1:
            raise UserError(f"method.selection_steps must be >= 1, got {self.selection_steps}")
        if self.selection_lr is not None and self.selection_lr <= 0:
            raise UserError(f"method.selection_lr must be positive, got {self.selection_lr}")


def top_k_heads(scores: torch.Tensor, k: int) -> list[list[int]]:
    """The ``[layer, head]`` pairs of the ``k`` largest scores ``[L, H]`` (ties: lower index)."""
    flat = scores.flatten().tolist()
    order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))[:k]
    num_heads = scores.shape[1]
    return sorted([i // num_heads, i % num_heads] for i in order)


class JolaTopkWarmup(FixedHeadsJola):
    """Edits every head during the warm-up, then the top k only."""

    rule = "topk_warmup"

    def before_training(self, short_train) -> None:
        edits = self.edits
        vectors = [p for p in (edits.scale, edits.offset) if p is not None]
        initial = [p.detach().clone() for p in vectors]
        lr = self.cfg.train.lr if self.cfg.selection_lr is None else self.cfg.selection_lr
        losses = short_train(vectors, self.cfg.selection_steps, lr)
        with torch.no_grad():
            moved = sum(((p - p0) ** 2).sum(dim=-1) for p, p0 in zip(vectors, initial))
            scores = moved.sqrt().cpu()
            for p, p0 in zip(vectors, initial):  # the real training starts afresh
                p.copy_(p0)
        heads = top_k_heads(scores, self.k)
        edits.set_heads(heads)
        self.selection = {
            "selection_steps": self.cfg.selection_steps,
            "selection_lr": lr,
            "warmup_loss_first": losses[0],
            "warmup_loss_last": losses[-1],
            "scores": scores.tolist(),
        }


register_method("jola_topk_warmup", JolaTopkWarmupConfig, JolaTopkWarmup)
