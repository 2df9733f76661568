"""LoRA through peft: low-rank adapters on the chosen projections, trained by the shared path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from jola.config import MethodConfig, TrainConfig
from jola.errors import UserError
from jola.methods.base import Method, linear_module_suffixes
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze

ADAPTER_DIR = "adapter"
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]


@dataclass
class LoraMethodConfig(MethodConfig):
    """Rank, scaling, dropout and target module names (suffixes, as peft matches them)."""

    name: str = "lora"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=3e-4))
    r: int = 32
    alpha: int = 64
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r <= 0:
            raise UserError(f"method.r must be positive, got {self.r}")
        if not self.target_modules:
            raise UserError("method.target_modules is empty")


def peft_lora_config(cfg: LoraMethodConfig):
    """The peft LoraConfig for a method config."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


class Lora(Method):
    """Wraps the model with peft's ``get_peft_model``; only the adapters train."""

    trains = True

    def __init__(self, cfg: LoraMethodConfig):
        super().__init__(cfg)
        self.model = None

    def prepare(self, loaded: LoadedModel) -> None:
        from peft import get_peft_model

        present = {name.rsplit(".", 1)[-1] for name, _ in loaded.model.named_modules()}
        unknown = [t for t in self.cfg.target_modules if t not in present]
        if unknown:
            raise UserError(
                f"LoRA target module(s) {', '.join(unknown)} not found in "
                f"{loaded.info.get('model_type')}; linear modules: "
                f"{', '.join(linear_module_suffixes(loaded.model))}"
            )
        freeze(loaded.model)
        self.model = get_peft_model(loaded.model, peft_lora_config(self.cfg))
        loaded.model = self.model

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]

    def final_stats(self) -> dict:
        return {
            "r": self.cfg.r,
            "alpha": self.cfg.alpha,
            "target_modules": list(self.cfg.target_modules),
        }

    def save(self, run_dir: Path) -> list[Path]:
        folder = Path(run_dir) / ADAPTER_DIR
        self.model.save_pretrained(folder)
        return sorted(p for p in folder.iterdir() if p.is_file())

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Wrap the fresh model with the adapter of ``run_dir/adapter``
        (:func:`load_lora_adapter`); ``loaded.model`` becomes the peft model, in eval mode."""
        freeze(loaded.model)
        self.model = load_lora_adapter(loaded.model, run_dir)
        self.model.eval()
        loaded.model = self.model

    def merge(self, loaded: LoadedModel) -> None:
        """Fold ``B A * alpha / r`` into the targeted weights (:func:`merge_lora`, peft's
        ``merge_and_unload``; exact up to float rounding); ``loaded.model`` becomes the plain
        base model again."""
        if self.model is None:
            raise RuntimeError("LoRA adapters are not attached; call prepare() or load() first")
        loaded.model = merge_lora(self.model)
        self.model = None


register_method("lora", LoraMethodConfig, Lora)


def load_lora_adapter(model: torch.nn.Module, run_dir: str | Path):
    """Apply the adapter saved by a LoRA run to a fresh base model (a peft PeftModel); the
    implementation of :meth:`Lora.load`."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(Path(run_dir) / ADAPTER_DIR))


def merge_lora(peft_model) -> torch.nn.Module:
    """Fold the adapters into the base weights (peft's merge_and_unload); the implementation of
    :meth:`Lora.merge`."""
    return peft_model.merge_and_unload()
