"""JoLA: gated per-head additive and multiplicative edits, learned jointly with their gates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jola import editing, gates
from jola.config import MethodConfig, register_method_schema
from jola.errors import UserError
from jola.methods.base import Method
from jola.methods.registry import METHODS
from jola.models import LoadedModel
from jola.results import GATES_FILE
from jola.schedules import SCHEDULES, make_schedule

EDITS_DIR = "edits"


@dataclass
class JolaConfig(MethodConfig):
    """JoLA's edit, gate and penalty options (defaults: the paper / the authors' release).

    ``penalty``: ``release`` (the authors' code: lam_t mixes the additive and multiplicative
    expected-L0 terms, normalised by layers*heads) or ``paper`` (lambda * sum of P(open)).
    ``schedule`` gives lambda over steps (expon, linear, cyclic, performance, constant) with
    ``schedule_args`` passed to it.
    """

    name: str = "jola"
    additive: bool = True
    multiplicative: bool = True
    gated: bool = True
    init_std: float = 1e-3
    penalty: str = "release"
    schedule: str = "expon"
    schedule_args: dict[str, Any] = field(default_factory=dict)


register_method_schema("jola", JolaConfig)


def gate_table(edits: editing.HeadEdits) -> dict:
    """Every layer/head gate at evaluation, its P(open) and log_alpha, per kind (gates.json)."""
    table: dict[str, Any] = {"num_layers": edits.num_layers, "num_heads": edits.num_heads}
    with torch.no_grad():
        for kind, log_alpha, gate in (
            ("additive", edits.log_alpha_add, edits.gate_add(training=False)),
            ("multiplicative", edits.log_alpha_mult, edits.gate_mult(training=False)),
        ):
            entry = {"eval_gate": gate.cpu().tolist()}
            if log_alpha is not None:
                entry["prob_open"] = gates.prob_open(log_alpha).cpu().tolist()
                entry["log_alpha"] = log_alpha.detach().cpu().tolist()
            table[kind] = entry
    return table


@METHODS.register("jola")
class Jola(Method):
    """Attach :class:`~jola.editing.HeadEdits` through hooks; train only them."""

    name = "jola"
    config_class = JolaConfig
    trains = True

    def __init__(self, cfg: JolaConfig):
        super().__init__(cfg)
        if cfg.penalty not in gates.PENALTIES:
            raise UserError(
                f"unknown method.penalty '{cfg.penalty}'; choices: {', '.join(sorted(gates.PENALTIES))}"
            )
        if cfg.schedule not in SCHEDULES:
            raise UserError(
                f"unknown method.schedule '{cfg.schedule}'; choices: {', '.join(sorted(SCHEDULES))}"
            )
        if not (cfg.additive or cfg.multiplicative):
            raise UserError("method.additive and method.multiplicative cannot both be false")
        try:
            self.schedule = make_schedule(cfg.schedule, **dict(cfg.schedule_args))
        except ValueError as err:
            raise UserError(str(err)) from err
        self.handle: editing.EditHandle | None = None
        self.total_steps: int | None = None
        self.last_lambda: float | None = None

    @property
    def edits(self) -> editing.HeadEdits:
        if self.handle is None:
            raise RuntimeError("JoLA edits are not attached; call prepare() first")
        return self.handle.edits

    def edit_config(self) -> editing.EditConfig:
        c = self.cfg
        return editing.EditConfig(
            additive=c.additive,
            multiplicative=c.multiplicative,
            gated=c.gated,
            init_std=c.init_std,
        )

    def prepare(self, loaded: LoadedModel) -> None:
        """Freeze the whole base model (lm_head included) and attach fresh edits."""
        for param in loaded.model.parameters():
            param.requires_grad_(False)
        try:
            self.handle = editing.attach(loaded.model, self.edit_config())
        except ValueError as err:
            raise UserError(str(err)) from err

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return list(self.edits.parameters())

    def on_train_begin(self, total_steps: int) -> None:
        self.total_steps = total_steps

    def observe_training_loss(self, loss: float) -> None:
        self.schedule.observe(loss)

    def regularizer(self, model: torch.nn.Module, step: int) -> torch.Tensor | None:
        if not self.cfg.gated:
            return None
        lam = self.schedule.value(step, self.total_steps)
        self.last_lambda = lam
        edits = self.edits
        return gates.penalty(self.cfg.penalty, edits.log_alpha_add, edits.log_alpha_mult, lam)

    def gate_statistics(self) -> dict:
        """Closed fraction (evaluation gates) and expected L0 per gate kind."""
        stats: dict[str, float] = {}
        edits = self.edits
        with torch.no_grad():
            for kind, log_alpha in (("add", edits.log_alpha_add), ("mult", edits.log_alpha_mult)):
                if log_alpha is None:
                    continue
                stats[f"closed_frac_{kind}"] = gates.closed_fraction(log_alpha)
                stats[f"expected_l0_{kind}"] = float(gates.prob_open(log_alpha).sum())
        return stats

    def training_stats(self) -> dict:
        stats = self.gate_statistics()
        if self.last_lambda is not None:
            stats["lambda"] = self.last_lambda
        return stats

    def final_stats(self) -> dict:
        return {
            "edited_heads": self.edits.head_counts(),
            **self.gate_statistics(),
            "penalty": self.cfg.penalty,
            "schedule": self.cfg.schedule,
            "edit_parameters": self.edits.num_parameters(),
        }

    def gate_values(self) -> dict:
        return gate_table(self.edits)

    def save(self, run_dir: Path) -> list[Path]:
        folder = editing.save_edits(
            self.edits,
            Path(run_dir) / EDITS_DIR,
            extra={"method": dict(self.cfg.__dict__, train=None)},
        )
        gates_path = Path(run_dir) / GATES_FILE
        gates_path.write_text(json.dumps(self.gate_values()) + "\n")
        return [folder / editing.EDITS_FILE, folder / editing.CONFIG_FILE, gates_path]

    def before_evaluation(self, loaded: LoadedModel, prune_closed: bool) -> None:
        """With ``eval.prune_closed`` re-attach so that heads with both gates closed are skipped."""
        if prune_closed:
            edits = self.edits
            self.handle.detach()
            loaded.model.eval()
            self.handle = editing.attach(loaded.model, edits, prune_closed=True)


def attach_trained_edits(model: torch.nn.Module, run_dir: str | Path, prune_closed: bool = False):
    """Load the edits saved by a JoLA run onto a fresh base model (for inference)."""
    edits = editing.load_edits(Path(run_dir) / EDITS_DIR)
    model.eval()
    return editing.attach(model, edits, prune_closed=prune_closed)
