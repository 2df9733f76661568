"""What a method supplies to the shared run: how it prepares the model, what it trains, how its
artifact is saved, and the statistics it reports. Training itself is shared (jola.training)."""

from __future__ import annotations

from pathlib import Path

import torch

from jola.config import MethodConfig
from jola.models import LoadedModel


class Method:
    """Base class: a method that changes nothing and trains nothing."""

    name: str = "base"
    config_class: type[MethodConfig] = MethodConfig
    trains: bool = False

    def __init__(self, cfg: MethodConfig):
        self.cfg = cfg

    def prepare(self, loaded: LoadedModel) -> None:
        """Modify ``loaded.model`` in place (attach edits, adapters, biases) before training."""

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates (empty for an untrained method)."""
        return []

    def on_train_begin(self, total_steps: int) -> None:
        """Called once before the first step (e.g. to size a lambda schedule)."""

    def observe_training_loss(self, loss: float) -> None:
        """Called with the task loss of every training step (e.g. for adaptive schedules)."""

    def regularizer(self, model: torch.nn.Module, step: int) -> torch.Tensor | None:
        """An extra loss term added to the task loss at ``step`` (None: no term)."""
        return None

    def training_stats(self) -> dict:
        """Numbers logged at every logging step (e.g. gate sparsity)."""
        return {}

    def final_stats(self) -> dict:
        """Numbers recorded in results.json after training."""
        return {}

    def before_evaluation(self, loaded: LoadedModel, prune_closed: bool) -> None:
        """Called once after training and before the test set is evaluated."""

    def gate_values(self) -> dict | None:
        """Per layer/head gate values for plots and trackers (None: the method has no gates)."""
        return None

    def save(self, run_dir: Path) -> list[Path]:
        """Write the method's artifact into ``run_dir``; return the files written."""
        return []


def linear_module_suffixes(model: torch.nn.Module) -> list[str]:
    """The distinct last name parts of the model's linear layers (for error messages)."""
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
        }
    )
