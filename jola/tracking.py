"""Experiment trackers: ``logger=none`` (default) or ``logger=wandb``.

A tracker receives the config at the start, every training log entry (loss, lambda, gate
sparsity), and the final metrics and gate values. A wandb failure never fails a run: it becomes
a warning and the tracker switches itself off.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from jola.registry import Registry

TRACKERS: Registry = Registry("logger")


class Tracker:
    """No-op tracker (``logger=none``)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def start(self, config: dict, run_dir: Path, run_name: str) -> None:
        """Open a tracked run."""

    def log(self, entry: dict, step: int) -> None:
        """Record one training log entry."""

    def finish(self, results: dict, gate_table: dict | None) -> None:
        """Record the final metrics (and gates) and close the run."""


TRACKERS.add("none", Tracker)


@TRACKERS.register("wandb")
class WandbTracker(Tracker):
    """Weights & Biases; mode ``offline`` unless the user sets ``WANDB_MODE`` or logger.mode."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.run = None

    def _guard(self, what: str, fn, *args, **kwargs):
        if what != "start" and self.run is None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # wandb errors must never fail an experiment
            warnings.warn(
                f"wandb {what} failed ({type(err).__name__}: {err}); continuing without wandb",
                stacklevel=3,
            )
            self.run = None
            return None

    def start(self, config: dict, run_dir: Path, run_name: str) -> None:
        def init():
            import wandb

            mode = self.cfg.mode or os.environ.get("WANDB_MODE") or "offline"
            self.run = wandb.init(
                project=self.cfg.project,
                entity=self.cfg.entity,
                group=self.cfg.group,
                name=run_name,
                config=config,
                dir=str(run_dir),
                mode=mode,
                tags=list(self.cfg.tags),
                job_type=config.get("method", {}).get("name"),
                reinit="finish_previous",
            )

        self._guard("start", init)

    def log(self, entry: dict, step: int) -> None:
        numbers = {k: v for k, v in entry.items() if isinstance(v, int | float)}
        self._guard("log", lambda: self.run.log(numbers, step=step))

    def finish(self, results: dict, gate_table: dict | None) -> None:
        def close():
            import wandb

            summary = {f"test/{k}": v for k, v in results.get("metrics", {}).items()}
            summary["trainable_parameters"] = results.get("trainable_parameters")
            self.run.summary.update(summary)
            figure = gate_heatmap_figure(gate_table) if gate_table is not None else None
            if figure is not None:
                self.run.log({"gates": wandb.Image(figure)})
            self.run.finish()

        self._guard("finish", close)
        self.run = None


def gate_heatmap_figure(gate_table: dict):
    """The gates.json heatmaps (:func:`jola.figures.gate_figure`): layers x heads of the
    evaluation gates per kind, and of P(open) when present; None without gate matrices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (wandb.Image reads matplotlib.pyplot for any figure)

    from jola.figures import gate_figure

    return gate_figure(gate_table, "gates at evaluation")


def make_tracker(cfg) -> Tracker:
    """The tracker named by ``cfg.name``."""
    return TRACKERS.get(cfg.name)(cfg)
