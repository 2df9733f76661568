"""What a method supplies to the shared run: how it prepares the model, what it trains, how its
artifact is saved, and the statistics it reports. Training itself is shared (jola.training).

The artifact contract every method keeps (checked for every registered method by
tests/test_method_contract.py):

- :meth:`Method.save` writes the method's edit-only artifact into a run directory;
- :meth:`Method.load` puts that artifact onto a fresh, unprepared :class:`LoadedModel` so that
  it predicts exactly as the trained model did;
- :attr:`Method.supports_merge` says whether :meth:`Method.merge` can fold the edits into the
  base weights exactly (no hooks or adapters left); where it cannot, :meth:`Method.merge`
  raises :class:`jola.errors.MergeNotSupported`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from jola.config import MethodConfig, TrainConfig
from jola.errors import MergeNotSupported
from jola.models import LoadedModel

ShortTrain = Callable[..., list[float]]
"""``short_train(parameters, steps, lr, *, epochs=None, regularizer=None, linear_decay=False)``
(see :meth:`Method.before_training`)."""


class Method:
    """Base class: a method that changes nothing and trains nothing.

    ``name`` is set by :func:`jola.methods.register_method` (the registry holds the config
    class); ``trains`` says whether the shared training path runs (and ``method.train.*`` is
    checked); ``supports_merge`` whether :meth:`merge` folds the method's edits into the base
    weights exactly.
    """

    name: str = "base"
    trains: bool = False
    supports_merge: bool = True

    def __init__(self, cfg: MethodConfig):
        self.cfg = cfg
        self.seed: int | None = None  # the run's seed (set by build_method)

    def prepare(self, loaded: LoadedModel) -> None:
        """Modify ``loaded.model`` in place (attach edits, adapters, biases) before training."""

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates (empty for an untrained method)."""
        return []

    def parameter_groups(self, model: torch.nn.Module, train: TrainConfig) -> list[dict]:
        """The optimiser's parameter groups: dicts with ``name``, ``params``, ``lr`` and
        ``weight_decay``, together holding exactly :meth:`trainable_parameters`.

        Default: one group at ``method.train.lr`` and ``method.train.weight_decay``.
        """
        return [
            {
                "name": "all",
                "params": self.trainable_parameters(model),
                "lr": train.lr,
                "weight_decay": train.weight_decay,
            }
        ]

    def before_training(self, short_train: ShortTrain) -> None:
        """Called once before training. ``short_train(parameters, steps, lr)`` runs ``steps``
        plain AdamW steps of the task loss on the training data (no evaluation, no regulariser
        of the main training) and returns the task losses; a method may use it for a warm-up
        or a first training stage. Keyword options: ``epochs`` (instead of ``steps``: that many
        passes, ``ceil(n / batch_size)`` steps each, as the Trainer counts), ``regularizer`` (a
        callable whose tensor is added to every step's loss) and ``linear_decay`` (lr from
        ``lr`` linearly to 0)."""

    def fit_without_gradients(
        self, loaded: LoadedModel, train_examples, dev_examples, *, task, prompt_format, seed: int
    ) -> dict:
        """Called by the runner, after :meth:`prepare` and instead of training, for a method
        that does not train (``trains`` false) but learns from the data without gradients
        (RePE reads its vectors from the training set and picks their strength on the dev
        set). ``task``, ``prompt_format`` and ``seed`` are the run's. Returns what results.json
        records under ``training``; the default does nothing and returns {}."""
        return {}

    def accepts_checkpoint(self) -> bool | None:
        """Whether the parameters at the current evaluation may be kept as the best ones
        (early stopping counts only such evaluations), e.g. only once a target is met; None:
        the method has no such rule and every evaluation counts."""
        return None

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

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Put the artifact :meth:`save` wrote into ``run_dir`` onto ``loaded``, a fresh model
        that was not prepared, in place (``loaded.model`` may be replaced, e.g. by a wrapper),
        so that it predicts exactly as the trained model did; the model is left in eval mode.

        Default: nothing to load (the base model is the method's model)."""

    def merge(self, loaded: LoadedModel) -> None:
        """Fold the method's edits on ``loaded`` (prepared and trained, or :meth:`load`-ed)
        into its base weights, in place: afterwards ``loaded.model`` is a plain model with the
        same outputs, without hooks or adapters. Raises
        :class:`~jola.errors.MergeNotSupported` when :attr:`supports_merge` is false.

        Default: nothing to fold (the base model is already plain)."""
        if not self.supports_merge:
            raise MergeNotSupported(
                f"method={self.name}: its edits cannot be folded into the weights exactly; "
                "load its artifact with Method.load instead"
            )


def linear_module_suffixes(model: torch.nn.Module) -> list[str]:
    """The distinct last name parts of the model's linear layers (for error messages)."""
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
        }
    )
