"""LoFiT (Yin, Ye and Durrett, NeurIPS 2024, "LoFiT: Localized Fine-tuning on LLM
Representations"): select attention heads by learned scaling vectors, then tune bias vectors
on those heads only. Both stages run inside one run, on this project's edit layer.

Followed: the paper (Section 3) and the authors' code, github.com/fc2869/lo-fit:
``lofit_trainer.py`` (the two steps, ``--lofit_component A`` then ``v``; the N(0, 1e-3) init
of A and of v; the head ranking by ``np.linalg.norm`` of each head's A and the top-k),
``utils/trainers.py`` (``CustomSFTTrainer.compute_loss``: the task loss plus
``l1_lambda * sum |p|`` over every trainable parameter, i.e. all of A in step 1, with
``l1_lambda=0`` in step 2), ``models/modeling_llama.py`` (the edit of head i's slice of the
attention output, the input of ``o_proj``: ``(A_i + 1) * z_i + v_i``) and
``train_script_mquake.sh`` (Llama-2-7B: step 1 lr 5e-3, l1 1e-3, 5 epochs, batch 8; step 2
the top 32 of 1024 heads, lr 1e-2, 5 epochs).

1. Head selection: multiplicative vectors A (:class:`jola.edits.HeadEdits` ``scale``,
   ungated, every head; the additive vectors stay 0 as in their model) train for
   ``selection_epochs`` passes with AdamW at ``selection_lr`` decaying linearly to 0 (the HF
   Trainer's default schedule, which their step 1 used) on the task loss plus
   ``l1_lambda * sum |A|`` (through the shared warm-up hook ``before_training(short_train)``,
   so the schedule and the final parameters are theirs: their step 1 keeps its last A, with
   no checkpoint selection). The ``k`` heads with the largest ``||A_{l,h}||_2`` are kept.
2. Bias tuning: A is discarded (their step 2 starts from a fresh model whose A are 0); additive
   vectors v on the k heads (HeadEdits with a fixed head set, ``EditConfig.heads``), N(0,
   ``init_std``) there and exactly 0 elsewhere, train with the shared trainer
   (``method.train.*``, their step-2 settings by default) and no penalty.

The artifact is JoLA's (``edits/``: the additive vectors and the head set; ``gates.json`` with
the head mask as the additive evaluation gate), so loading, pruned evaluation and merging (v
folds exactly into the output projection's bias: ``b + W v``) are the edit layer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from jola import edits as editing
from jola.config import MethodConfig, TrainConfig
from jola.errors import UserError
from jola.methods.head_edits import HeadEditsMethod
from jola.methods.jola_topk_warmup import top_k_heads
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze

DEFAULT_K_FRACTION = 32 / 1024
"""Their Llama-2-7B scripts keep 32 of its 32 x 32 heads in step 2 (the paper: "3%")."""


@dataclass
class LofitConfig(MethodConfig):
    """LoFiT's two steps (defaults: the authors' Llama-2-7B MQuAKE script).

    ``k``: heads kept for bias tuning; null: ``k_fraction`` of all heads, rounded, at least 1
    (32 of Llama-3.1-8B's 1024). ``l1_lambda``, ``selection_epochs`` and ``selection_lr``: the
    head-selection step. ``init_std``: the N(0, init_std) init of A and of v. ``train``: the
    bias-tuning step on the shared trainer (their lr 1e-2, 5 epochs, no warm-up, linear decay).
    """

    name: str = "lofit"
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            lr=1e-2, epochs=5, warmup_steps=0, lr_scheduler="linear"
        )
    )
    k: int | None = None
    k_fraction: float = DEFAULT_K_FRACTION
    l1_lambda: float = 1e-3
    selection_epochs: float = 5
    selection_lr: float = 5e-3
    init_std: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k is not None and self.k < 1:
            raise UserError(f"method.k must be at least 1 (or null), got {self.k}")
        if not 0.0 < self.k_fraction <= 1.0:
            raise UserError(f"method.k_fraction must be in (0, 1], got {self.k_fraction}")
        if self.l1_lambda < 0:
            raise UserError(f"method.l1_lambda must be >= 0, got {self.l1_lambda}")
        if self.selection_epochs <= 0:
            raise UserError(
                f"method.selection_epochs must be positive, got {self.selection_epochs}"
            )
        if self.selection_lr <= 0:
            raise UserError(f"method.selection_lr must be positive, got {self.selection_lr}")
        if self.init_std < 0:
            raise UserError(f"method.init_std must be >= 0, got {self.init_std}")


def head_budget(cfg: LofitConfig, num_layers: int, num_heads: int) -> int:
    """The number of heads kept: ``cfg.k``, else ``round(k_fraction * L * H)`` (at least 1);
    refuses more heads than the model has."""
    total = num_layers * num_heads
    k = cfg.k if cfg.k is not None else max(1, round(cfg.k_fraction * total))
    if k > total:
        raise UserError(
            f"method=lofit: k={k} is more than the model's {num_layers} x {num_heads} = "
            f"{total} heads"
        )
    return k


def l1_term(scale: torch.Tensor, l1_lambda: float) -> torch.Tensor:
    """Their step-1 penalty: ``l1_lambda * sum |A|`` over every head's scaling vector."""
    return l1_lambda * scale.abs().sum()


def head_scores(scale: torch.Tensor) -> torch.Tensor:
    """Each head's importance ``||A_{l,h}||_2``, ``[L, H]`` (their ``np.linalg.norm``)."""
    return scale.detach().float().norm(dim=-1)


class Lofit(HeadEditsMethod):
    """Step 1 in :meth:`before_training`, step 2 on the shared trainer."""

    trains = True

    def __init__(self, cfg: LofitConfig):
        super().__init__(cfg)
        self.handle: editing.EditHandle | None = None
        self.k: int | None = None
        self.selection: dict = {}

    def prepare(self, loaded: LoadedModel) -> None:
        """Freeze the model and attach step 1's scaling vectors A on every head (ungated,
        N(0, init_std)), with additive vectors fixed at 0."""
        proj = editing.find_output_projections(loaded.model)
        self.k = head_budget(self.cfg, proj.num_layers, proj.num_heads)
        freeze(loaded.model)
        config = editing.EditConfig(
            additive=False, multiplicative=True, gated=False, init_std=self.cfg.init_std
        )
        self.handle = editing.attach(loaded.model, config)

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        """Step 1: every head's A; step 2: the additive vectors (non-zero on the k heads)."""
        edits = self.edits
        return [p for p in (edits.scale, edits.offset) if p is not None]

    def before_training(self, short_train) -> None:
        """Step 1, the head selection, then the switch to step 2's additive vectors."""
        scale = self.edits.scale
        lam = self.cfg.l1_lambda
        losses = short_train(
            [scale],
            None,
            self.cfg.selection_lr,
            epochs=self.cfg.selection_epochs,
            regularizer=(lambda: l1_term(scale, lam)) if lam > 0 else None,
            linear_decay=True,
        )
        scores = head_scores(scale).cpu()
        heads = top_k_heads(scores, self.k)
        with torch.no_grad():
            abs_sum = float(scale.abs().sum())
        self.start_bias_tuning(heads)
        self.selection = {
            "selection_epochs": self.cfg.selection_epochs,
            "selection_steps": len(losses),
            "selection_lr": self.cfg.selection_lr,
            "l1_lambda": lam,
            "scale_abs_sum": abs_sum,
            "selection_loss_first": losses[0] if losses else None,
            "selection_loss_last": losses[-1] if losses else None,
            "scores": scores.tolist(),
        }

    def start_bias_tuning(self, heads: list[list[int]]) -> None:
        """Replace A by step 2's additive vectors on ``heads``: N(0, init_std) there, exactly 0
        on every other head (which the head mask also keeps unedited)."""
        old = self.handle
        model = old.model
        old.detach()
        config = editing.EditConfig(
            additive=True, multiplicative=False, gated=False, init_std=self.cfg.init_std
        )
        proj = old.projections
        edits = editing.HeadEdits(
            proj.num_layers, proj.num_heads, proj.head_dim, config, model_type=proj.model_type
        )
        edits.set_heads(heads)
        with torch.no_grad():
            edits.offset.mul_(edits.head_mask.unsqueeze(-1))
        self.handle = editing.attach(model, edits)

    def final_stats(self) -> dict:
        edits = self.edits
        heads = edits.edit_config.heads
        return {
            "edited_heads": edits.head_counts(),
            "head_selection": {
                "rule": "lofit",
                "k": len(heads) if heads is not None else None,
                "heads": heads,
                **self.selection,
            },
            "edited_parameters": (len(heads) if heads else 0) * edits.head_dim,
            "selection_parameters": edits.num_layers * edits.num_heads * edits.head_dim,
            "edit_parameters": edits.num_parameters(),
        }

    def save_extra(self) -> dict:
        """The head selection of step 1 beside the method's settings."""
        return {**super().save_extra(), "selection": self.selection}


register_method("lofit", LofitConfig, Lofit)
