"""RED (Wu et al. 2024, "Advancing Parameter Efficiency in Fine-tuning via Representation
Editing", ACL 2024; code github.com/mbzuai-nlp/red): a scaling vector ``l_s`` and a bias vector
``l_b`` per layer on the output ``h`` of the MLP,

    h' = l_s * h + l_b,   l_s = 1 and l_b = 0 at init (the identity),

trained with the base model frozen, no gates and no regulariser.

What was followed: RED's ``ActivationLLama`` replaces every ``mlp.down_proj`` of a Llama (GPT-2:
every ``mlp.c_proj``) by a wrapper whose forward is ``down_proj(x) * activation_scaling +
activation_bias``, with ``activation_scaling = ones(hidden)`` and ``activation_bias =
zeros(hidden)``; ``layer_type`` ``all`` (both, the paper's method), ``scaling`` or ``bias``
(its ablations) are ``method.scaling`` / ``method.bias`` here. This module puts the same edit
on the ``mlp`` site of the shared edit layer (:mod:`jola.edits.site_registry`: the output of
each layer's down projection) with hooks instead of wrapped modules, and parameterises
``l_s = 1 + m`` (the edit layer's ``z + z * m + a``): the same function and the same gradients
(``d/dm = d/dl_s``), with ``m = 0`` exactly at init; the artifact stores ``m`` (``scale``) and
``l_b`` (``offset``). Edits are float32 (RED casts them to the model's bf16).

Hyper-parameters: RED has no commonsense / MMLU-Pro / GEM setting (its paper covers GLUE with
RoBERTa, E2E with GPT-2 and instruction tuning of Llama-2, whose script takes the learning rate
as an argument and uses AdamW, a cosine schedule and 10% warm-up). The JoLA paper does not give
the settings it ran RED with. Defaults are therefore the project's shared training settings
(batch 8, at most 20 epochs, early stopping on dev loss, cosine, 50 warm-up steps) with JoLA's
learning rate 5e-3 (RED's parameters are, like JoLA's, per-layer vectors near the identity);
``method.train.lr`` changes it.

Merging is exact: ``W <- diag(l_s) W``, ``b <- l_s * b + l_b`` on each down projection (a bias
is added where the projection had none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from jola import edits as editing
from jola.config import MethodConfig, TrainConfig
from jola.errors import UserError
from jola.methods.base import Method
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze

RED_DIR = "edits"
SITE = "mlp"


@dataclass
class RedConfig(MethodConfig):
    """``scaling`` (``l_s``) and ``bias`` (``l_b``): which of RED's two vectors per layer are
    learned (both: RED's method; one of them: its ablations)."""

    name: str = "red"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-3))
    scaling: bool = True
    bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.scaling or self.bias):
            raise UserError("method.scaling and method.bias cannot both be false")


def red_edit_config(cfg: RedConfig) -> editing.EditConfig:
    """RED as an edit-layer configuration: ungated vectors on the MLP output, zero at init
    (``l_s = 1 + m = 1``, ``l_b = 0``)."""
    return editing.EditConfig(
        additive=cfg.bias, multiplicative=cfg.scaling, gated=False, init_std=0.0
    )


class Red(Method):
    """Attach RED's per-layer scaling and bias on the MLP outputs; train only them."""

    trains = True
    supports_merge = True

    def __init__(self, cfg: RedConfig):
        super().__init__(cfg)
        self.handle: editing.SiteHandle | None = None

    @property
    def edits(self) -> editing.SiteEdits:
        if self.handle is None:
            raise RuntimeError("RED edits are not attached; call prepare() or load() first")
        return self.handle.edits

    def prepare(self, loaded: LoadedModel) -> None:
        """Freeze the whole base model and attach the identity edit on every MLP output."""
        freeze(loaded.model)
        try:
            self.handle = editing.attach_sites(
                loaded.model,
                {SITE: red_edit_config(self.cfg)},
                # the init is exactly zero whatever the draw: keep the global RNG untouched
                generator=torch.Generator().manual_seed(0),
            )
        except ValueError as err:
            raise UserError(str(err)) from err

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return list(self.edits.parameters())

    def final_stats(self) -> dict:
        edits = self.edits[SITE]
        stats: dict = {"sites": [SITE], "edit_parameters": self.edits.num_parameters()}
        with torch.no_grad():
            if edits.scale is not None:  # how far l_s moved from 1
                stats["mean_abs_scaling_change"] = float(edits.scale.abs().mean())
            if edits.offset is not None:
                stats["mean_abs_bias"] = float(edits.offset.abs().mean())
        return stats

    def save(self, run_dir: Path) -> list[Path]:
        folder = editing.save_site_edits(
            self.edits,
            Path(run_dir) / RED_DIR,
            extra={"method": dict(self.cfg.__dict__, train=None)},
        )
        return [folder / editing.EDITS_FILE, folder / editing.CONFIG_FILE]

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Attach the vectors saved in ``run_dir/edits`` to the fresh model, frozen, in eval
        mode."""
        freeze(loaded.model)
        edits = editing.load_site_edits(Path(run_dir) / RED_DIR)
        loaded.model.eval()
        self.handle = editing.attach_sites(loaded.model, edits)

    def merge(self, loaded: LoadedModel) -> None:
        """Fold ``l_s``, ``l_b`` into every down projection (exact) and take the hooks off."""
        editing.merge_site_edits(loaded.model, self.edits)


register_method("red", RedConfig, Red)
