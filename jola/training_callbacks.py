"""The Trainer callbacks of the shared training path: early stopping on dev loss with the best
parameters kept in memory, and the jsonl training log (with the method's statistics)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers import TrainerCallback

from jola.errors import TrainingDiverged


class BestParametersCallback(TrainerCallback):
    """Early stopping on dev loss; keeps the best trainable parameters in memory and restores
    them when training ends (no checkpoint of the base model is ever written).

    ``eligible`` (the method's :meth:`~jola.methods.base.Method.accepts_checkpoint`) may rule
    an evaluation out: it then neither becomes the best nor counts for patience. When no
    evaluation was eligible the last parameters are kept."""

    def __init__(
        self,
        parameters: Sequence[torch.nn.Parameter],
        patience: int,
        eligible: Callable[[], bool | None] | None = None,
    ):
        self.parameters = list(parameters)
        self.patience = patience
        self.eligible = eligible
        self.best_loss = math.inf
        self.best_epoch: float | None = None
        self.best_state: list[torch.Tensor] | None = None
        self.bad_evals = 0
        self.history: list[dict] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = metrics["eval_loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged: dev loss is {loss} at step {state.global_step} "
                f"(epoch {state.epoch}); lower method.train.lr"
            )
        entry = {"epoch": state.epoch, "step": state.global_step, "dev_loss": loss}
        verdict = self.eligible() if self.eligible is not None else None
        if verdict is not None:
            entry["eligible"] = bool(verdict)
        self.history.append(entry)
        if not entry.get("eligible", True):
            return  # e.g. a target sparsity not reached yet: neither best nor patience
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_evals = loss, state.epoch, 0
            self.best_state = [p.detach().clone() for p in self.parameters]
        else:
            self.bad_evals += 1
            if self.patience > 0 and self.bad_evals >= self.patience:
                control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self.best_state is not None:
            with torch.no_grad():
                for param, best in zip(self.parameters, self.best_state):
                    param.copy_(best)


class JsonlLogCallback(TrainerCallback):
    """Writes every Trainer log entry, plus the method's statistics, to train_log.jsonl."""

    def __init__(self, path: Path, method, trainer_ref: list, tracker=None):
        self.path = path
        self.method = method
        self.tracker = tracker
        self.trainer_ref = trainer_ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def on_log(self, args, state, control, logs=None, **kwargs):
        entry = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
        trainer = self.trainer_ref[0] if self.trainer_ref else None
        if trainer is not None:
            entry.update(trainer.last_terms)
        entry.update(self.method.training_stats())
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry, default=float) + "\n")
        if self.tracker is not None:
            self.tracker.log(entry, step=state.global_step)
