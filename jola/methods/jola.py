"""JoLA: gated per-head additive and multiplicative edits, learned jointly with their gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from jola import edits as editing
from jola import gates
from jola.config import MethodConfig, TrainConfig
from jola.errors import UserError
from jola.methods.head_edits import (  # noqa: F401  (EDITS_DIR, gate_table, attach_trained_edits: this module's API)
    EDITS_DIR,
    HeadEditsMethod,
    attach_trained_edits,
    gate_table,
)
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze
from jola.schedules import SCHEDULES, make_schedule

Penalty = gates.PENALTIES.choices("Penalty", module=__name__)
Penalty.__doc__ = "``method.penalty``: the names of :data:`jola.gates.PENALTIES`."
Schedule = SCHEDULES.choices("Schedule", module=__name__)
Schedule.__doc__ = "``method.schedule``: the names of :data:`jola.schedules.SCHEDULES`."


@dataclass
class JolaConfig(MethodConfig):
    """JoLA's edit, gate and penalty options (defaults: the paper / the authors' release).

    ``penalty``: ``release`` (the authors' code: lam_t mixes the additive and multiplicative
    expected-L0 terms, normalised by layers*heads) or ``paper`` (lambda * sum of P(open)).
    ``schedule`` gives lambda over steps (expon, linear, cyclic, performance, constant) with
    ``schedule_args`` passed to it.

    Localisation options (all ``null`` by default, which is the release's behaviour):
    ``gate_lr`` is the learning rate of the gates' log_alpha (null: ``train.lr``; the vectors
    always use ``train.lr``). ``target_open`` asks for a fraction of open gates, over both gate
    kinds together (e.g. 0.1), enforced by a Lagrangian controller (:class:`jola.gates.
    LagrangianController`) that replaces the penalty; ``target_lr`` is its multipliers' ascent
    rate (null: :data:`DEFAULT_TARGET_LR`), ``target_warmup`` the optimiser steps over which the
    target ramps from the initial fraction (null: :data:`DEFAULT_TARGET_WARMUP`; 0: no ramp),
    and ``target_tolerance``
    how close the expected open fraction must be to the target for an evaluation to count for
    early stopping and the kept parameters (null: :data:`DEFAULT_TARGET_TOLERANCE`).
    ``target_check`` (null: ``expected``; no effect without a target, so that a preset that
    sets it can still switch to the penalty with ``target_open=null`` alone) names what else
    an evaluation must meet to count:
    ``expected`` nothing else; ``eval_gates`` also the evaluation gates, i.e. the edits a
    prediction actually uses: their open fraction (both kinds together) must be at most
    ``target_open + target_tolerance`` (the expectation under the stochastic gates runs below
    the evaluation gates' open share while gates sit just above the closing threshold, so a
    checkpoint at the target in expectation can still use half again as many edits).

    ``penalty`` and ``schedule`` become :class:`Penalty` and :class:`Schedule` members (str
    Enums: they compare and serialise as the plain names); the schema types them ``str`` so that
    an unknown name is refused in one line by :meth:`__post_init__`, as every other bad value is.
    """

    name: str = "jola"
    additive: bool = True
    multiplicative: bool = True
    gated: bool = True
    init_std: float = 1e-3
    penalty: str = Penalty.release
    schedule: str = Schedule.expon
    schedule_args: dict[str, Any] = field(default_factory=dict)
    gate_lr: float | None = None
    target_open: float | None = None
    target_lr: float | None = None
    target_warmup: int | None = None
    target_tolerance: float | None = None
    target_check: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.penalty = Penalty.parse(self.penalty, "method.penalty")
        self.schedule = Schedule.parse(self.schedule, "method.schedule")
        if not (self.additive or self.multiplicative):
            raise UserError("method.additive and method.multiplicative cannot both be false")
        try:
            make_schedule(self.schedule, **dict(self.schedule_args))
        except ValueError as err:
            raise UserError(str(err)) from err
        _check_target_settings(self)


DEFAULT_TARGET_LR = 0.02
"""Adam learning rate of the Lagrangian multipliers when ``method.target_lr`` is null
(provisional: on a toy problem of 100 gates under AdamW it holds targets 0.1-0.9 within about
0.03; the study decides)."""
DEFAULT_TARGET_WARMUP = 100
"""Steps of the target's ramp when ``method.target_warmup`` is null: a fixed target from step 0
winds the multipliers up while the gates (moving at most about gate_lr per step) lag behind."""
DEFAULT_TARGET_TOLERANCE = 0.05
HISTOGRAM_BINS = 10


GATE_KIND_NAMES = {"add": "additive", "mult": "multiplicative", "shared": "shared"}
"""Gate kinds of :meth:`HeadEdits.log_alphas` by the names results.json gives them."""


class Jola(HeadEditsMethod):
    """Attach :class:`~jola.edits.HeadEdits` through hooks; train only them."""

    trains = True

    def __init__(self, cfg: JolaConfig):
        super().__init__(cfg)
        self.schedule = make_schedule(cfg.schedule, **dict(cfg.schedule_args))
        self.controller = _make_controller(cfg)
        self.handle: editing.EditHandle | None = None
        self.total_steps: int | None = None
        self.last_lambda: float | None = None

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
        freeze(loaded.model)
        try:
            self.handle = editing.attach(loaded.model, self.edit_config())
        except ValueError as err:
            raise UserError(str(err)) from err

    def trainable_parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return list(self.edits.parameters())

    def gate_lr(self, train: TrainConfig | None = None) -> float:
        """The learning rate of the gates' log_alpha: ``method.gate_lr``, else ``train.lr``."""
        train = train if train is not None else self.cfg.train
        return train.lr if self.cfg.gate_lr is None else self.cfg.gate_lr

    def parameter_groups(self, model: torch.nn.Module, train: TrainConfig) -> list[dict]:
        """``edits`` (the vectors m and a: ``train.lr``, ``train.weight_decay``) and, when
        gated, ``gates`` (every log_alpha: ``gate_lr``, never weight decay)."""
        edits = self.edits
        vectors = [p for p in (edits.scale, edits.offset) if p is not None]
        log_alphas = [p for p in (edits.log_alpha_mult, edits.log_alpha_add) if p is not None]
        return self.edit_and_gate_groups(vectors, log_alphas, train)

    def edit_and_gate_groups(
        self, vectors: list, log_alphas: list, train: TrainConfig
    ) -> list[dict]:
        """The optimiser groups of JoLA-like edits: ``edits`` at ``train.lr`` with
        ``train.weight_decay``, and (when there are gates) ``gates`` at :meth:`gate_lr`, never
        weight decay (decay would pull log_alpha towards 0, i.e. P(open) towards ~0.5)."""
        groups = [
            {"name": "edits", "params": vectors, "lr": train.lr, "weight_decay": train.weight_decay}
        ]
        if log_alphas:
            groups.append(
                {
                    "name": "gates",
                    "params": log_alphas,
                    "lr": self.gate_lr(train),
                    "weight_decay": 0.0,
                }
            )
        return groups

    def on_train_begin(self, total_steps: int) -> None:
        self.total_steps = total_steps

    def observe_training_loss(self, loss: float) -> None:
        self.schedule.observe(loss)

    def regularizer(self, model: torch.nn.Module, step: int) -> torch.Tensor | None:
        if not self.cfg.gated:
            return None
        edits = self.edits
        if self.controller is not None:  # a target budget replaces the penalty
            fraction = gates.expected_open_fraction(edits.log_alpha_add, edits.log_alpha_mult)
            return self.controller.term(fraction, step)
        lam = self.schedule.value(step, self.total_steps)
        self.last_lambda = lam
        return gates.penalty(self.cfg.penalty, edits.log_alpha_add, edits.log_alpha_mult, lam)

    def _log_alphas(self) -> dict[str, torch.Tensor]:
        edits = self.edits
        pairs = (("add", edits.log_alpha_add), ("mult", edits.log_alpha_mult))
        return {kind: log_alpha for kind, log_alpha in pairs if log_alpha is not None}

    def expected_open_fraction(self) -> float | None:
        """Mean P(open) over every gate of both kinds (None when ungated)."""
        log_alphas = list(self._log_alphas().values())
        if not log_alphas:
            return None
        with torch.no_grad():
            return float(gates.expected_open_fraction(*log_alphas))

    def gate_statistics(self) -> dict:
        """Closed fraction (evaluation gates) and expected L0 per gate kind, and the expected
        fraction of open gates over both kinds."""
        stats: dict[str, float] = {}
        with torch.no_grad():
            for kind, log_alpha in self._log_alphas().items():
                stats[f"closed_frac_{kind}"] = gates.closed_fraction(log_alpha)
                stats[f"expected_l0_{kind}"] = float(gates.prob_open(log_alpha).sum())
        fraction = self.expected_open_fraction()
        if fraction is not None:
            stats["expected_open_frac"] = fraction
        return stats

    def training_stats(self) -> dict:
        stats = self.gate_statistics()
        if self.controller is not None:
            stats.update(self.controller.state())
        elif self.last_lambda is not None:
            stats["lambda"] = self.last_lambda
        return stats

    def accepts_checkpoint(self) -> bool | None:
        """With a target: only once its ramp is over and the expected open fraction is within
        ``target_tolerance`` of it; without one, no rule (None)."""
        controller = self.controller
        if controller is None:
            return None
        if controller.last_step is None or not controller.ramp_done(controller.last_step + 1):
            return False
        tolerance = _target_tolerance(self.cfg) + 1e-12
        if abs(self.expected_open_fraction() - controller.target) > tolerance:
            return False
        if _target_check(self.cfg) == "eval_gates":
            return self.evaluation_open_fraction() <= controller.target + tolerance
        return True

    def evaluation_open_fraction(self) -> float | None:
        """The share of evaluation gates not exactly 0, over every gate of every kind (None
        when ungated): the edits a prediction uses."""
        log_alphas = self._log_alphas()
        if not log_alphas:
            return None
        total = sum(la.numel() for la in log_alphas.values())
        return 1.0 - sum(self.closed_gate_counts().values()) / total

    def closed_gate_counts(self) -> dict[str, int]:
        """Evaluation gates exactly 0, per gate kind (``add``, ``mult``; empty when ungated);
        a head outside a fixed head set counts as closed."""
        edits = self.edits
        with torch.no_grad():
            eval_gates = {"add": edits.gate_add(training=False), "mult": edits.gate_mult(False)}
            return {kind: int((eval_gates[kind] == 0).sum()) for kind in self._log_alphas()}

    def localisation_stats(self) -> dict:
        """Closed gates per kind (``additive``, ``multiplicative``, or ``shared`` for one gate
        serving both), P(open) histograms and the settings that move the gates."""
        out: dict[str, Any] = {}
        log_alphas = self._log_alphas()
        if log_alphas:
            closed = {GATE_KIND_NAMES[k]: n for k, n in self.closed_gate_counts().items()}
            per_kind = next(iter(log_alphas.values())).numel()
            out["closed_gates"] = {**closed, "per_kind": per_kind}
            edges = [round(i / HISTOGRAM_BINS, 10) for i in range(HISTOGRAM_BINS + 1)]
            with torch.no_grad():
                histograms = {
                    GATE_KIND_NAMES[k]: gates.prob_open_histogram(la, HISTOGRAM_BINS)
                    for k, la in log_alphas.items()
                }
            out["prob_open_hist"] = {"edges": edges, **histograms}
            out["gate_lr"] = self.gate_lr()
        if self.controller is not None:
            out["target"] = {
                "target_open": self.controller.target,
                "lr": self.controller.lr,
                "warmup_steps": self.controller.warmup_steps,
                "tolerance": _target_tolerance(self.cfg),
                "check": _target_check(self.cfg),
                "lambda1": self.controller.lambda1,
                "lambda2": self.controller.lambda2,
                "expected_open_frac": self.expected_open_fraction(),
            }
        return out

    def final_stats(self) -> dict:
        return {
            "edited_heads": self.edits.head_counts(),
            **self.gate_statistics(),
            **self.localisation_stats(),
            "penalty": "target" if self.controller is not None else self.cfg.penalty,
            "schedule": self.cfg.schedule,
            "edit_parameters": self.edits.num_parameters(),
        }


def _target_tolerance(cfg: JolaConfig) -> float:
    return DEFAULT_TARGET_TOLERANCE if cfg.target_tolerance is None else cfg.target_tolerance


TARGET_CHECKS = ("expected", "eval_gates")
"""Values of ``method.target_check`` (:meth:`Jola.accepts_checkpoint`)."""


def _target_check(cfg: JolaConfig) -> str:
    return "expected" if cfg.target_check is None else cfg.target_check


def _check_target_settings(cfg: JolaConfig) -> None:
    """Refuse gate and target values that cannot work, and target settings without a target
    (called by :meth:`JolaConfig.__post_init__`)."""
    if cfg.gate_lr is not None and cfg.gate_lr <= 0:
        raise UserError(f"method.gate_lr must be positive (or null), got {cfg.gate_lr}")
    extras = {
        "target_lr": cfg.target_lr,
        "target_warmup": cfg.target_warmup,
        "target_tolerance": cfg.target_tolerance,
    }
    if cfg.target_open is None:
        given = [f"method.{k}" for k, v in extras.items() if v is not None]
        if given:
            raise UserError(f"{', '.join(given)} needs method.target_open (a fraction, e.g. 0.1)")
        return
    if not cfg.gated:
        raise UserError("method.target_open needs gates (method.gated=true)")
    if not 0.0 <= cfg.target_open <= 1.0:
        raise UserError(f"method.target_open must be a fraction in [0, 1], got {cfg.target_open}")
    if cfg.target_tolerance is not None and cfg.target_tolerance <= 0:
        raise UserError(f"method.target_tolerance must be positive, got {cfg.target_tolerance}")
    if cfg.target_check is not None and cfg.target_check not in TARGET_CHECKS:
        raise UserError(
            f"method.target_check must be one of {', '.join(TARGET_CHECKS)}, "
            f"got {cfg.target_check!r}"
        )
    try:
        gates.LagrangianController.check_settings(*_target_settings(cfg))
    except ValueError as err:
        raise UserError(f"method.target_*: {err}") from err


def _target_settings(cfg: JolaConfig) -> tuple[float, float, int]:
    """The controller's target, learning rate and warm-up steps (defaults for nulls)."""
    return (
        cfg.target_open,
        DEFAULT_TARGET_LR if cfg.target_lr is None else cfg.target_lr,
        DEFAULT_TARGET_WARMUP if cfg.target_warmup is None else cfg.target_warmup,
    )


def _make_controller(cfg: JolaConfig) -> gates.LagrangianController | None:
    """The Lagrangian controller of ``method.target_open`` (None without a target)."""
    if cfg.target_open is None:
        return None
    return gates.LagrangianController(*_target_settings(cfg))


register_method("jola", JolaConfig, Jola)
