"""Schedules for the weight ``lam`` of JoLA's gate penalty.

Built by name through :func:`make_schedule`. Every schedule has ``value(step, total_steps)``,
the weight to use at 0-based optimizer step ``step``, and ``observe(metric)``, which only the
``performance`` schedule uses.

Source followed: the authors' release, ``jola/trainers.py`` of github.com/wenlai-lavine/jola
(the code of the ``jola`` 0.0.1 package): classes ``ExponentialDecaySchedule``,
``LinearSchedule``, ``CyclicSchedule``, ``PerformanceBasedSchedule``, selected in
``JoLATrainer.__init__`` by ``gate_scheduler`` in {"expon", "linear", "cyclic", "perform"}
(default "expon" in its ``config.yaml``). There, the step-0 weight is a hard-coded initial value
and each later training step ``t`` uses the schedule's value after ``t`` calls of
``get_lambda``, so ``value(t)`` here equals the release's weight at step ``t`` (see each class for
the step-0 case). Release quirks not copied: its counter advances on every ``compute_loss`` call
(so also on gradient-accumulation micro-batches and evaluation batches) and its linear schedule
is not clamped when training runs longer than its step estimate.
"""

from __future__ import annotations

import math

from jola.errors import unknown_choice
from jola.registry import Registry


class LambdaSchedule:
    """Base class: a schedule maps the optimizer step to the penalty weight."""

    name = ""

    def value(self, step: int, total_steps: int | None = None) -> float:
        """Penalty weight at 0-based optimizer step ``step``."""
        raise NotImplementedError

    def observe(self, metric: float) -> None:
        """Report a loss (lower is better); ignored by all but the performance schedule."""


class ExponSchedule(LambdaSchedule):
    """``base * exp(-rate * step)``; release defaults base 0.1, rate 0.01 (its default schedule)."""

    name = "expon"

    def __init__(self, base: float = 0.1, rate: float = 0.01) -> None:
        self.base = float(base)
        self.rate = float(rate)

    def value(self, step: int, total_steps: int | None = None) -> float:
        """``base * exp(-rate * step)``."""
        return self.base * math.exp(-self.rate * step)


class LinearSchedule(LambdaSchedule):
    """Linear ramp from ``start`` (0.0) to ``end`` (0.2) over ``total_steps``, then held at ``end``.

    The release ramps over ``(len(train) // batch_size) * epochs`` steps and does not clamp; here
    the caller passes ``total_steps`` and the value is clamped at ``end``.
    """

    name = "linear"

    def __init__(self, start: float = 0.0, end: float = 0.2) -> None:
        self.start = float(start)
        self.end = float(end)

    def value(self, step: int, total_steps: int | None = None) -> float:
        """``start + (end - start) * min(step / total_steps, 1)``; needs ``total_steps > 0``."""
        if total_steps is None:
            raise ValueError("the 'linear' lambda schedule needs total_steps (got None)")
        if total_steps <= 0:
            raise ValueError(
                f"the 'linear' lambda schedule needs total_steps > 0, got {total_steps}"
            )
        fraction = min(max(step, 0) / total_steps, 1.0)
        return self.start + (self.end - self.start) * fraction


class CyclicSchedule(LambdaSchedule):
    """``0.5 + 0.5 * sin(2 * pi * step / period)``, period 20, as the release.

    The release uses 0.1 at step 0 (its hard-coded initial weight) instead of the formula's 0.5;
    ``initial`` reproduces that, ``initial=None`` uses the formula at step 0 as well.
    """

    name = "cyclic"

    def __init__(self, period: float = 20, initial: float | None = 0.1) -> None:
        if period <= 0:
            raise ValueError(f"the 'cyclic' lambda schedule needs period > 0, got {period}")
        self.period = float(period)
        self.initial = None if initial is None else float(initial)

    def value(self, step: int, total_steps: int | None = None) -> float:
        """``initial`` at step 0 (if set), else ``0.5 + 0.5 * sin(2 * pi * step / period)``."""
        if step == 0 and self.initial is not None:
            return self.initial
        return 0.5 + 0.5 * math.sin(2 * math.pi * step / self.period)


class PerformanceSchedule(LambdaSchedule):
    """Adapts the weight to a loss reported through :meth:`observe`.

    Starts at ``initial`` (0.1). Each observation that counts as an improvement raises the weight,
    any other lowers it; the weight is clamped to ``[min_value, max_value]`` (``[0, 1]``).

    Defaults follow the release's ``PerformanceBasedSchedule``: ``mode="additive"`` moves the
    weight by ``step_size`` (0.01), and ``compare_to="previous"`` counts an observation as an
    improvement when it is strictly lower than the previous one (the release starts from a
    reference loss of 50, so its first observation is in practice an improvement; here the first
    observation always is). The release feeds it the total training loss of every step; what to
    observe (e.g. the dev loss) is the caller's choice. Options not in the release:
    ``mode="multiplicative"`` multiplies by ``up`` (1.1) or ``down`` (0.9), and
    ``compare_to="best"`` compares against the best loss seen so far.
    """

    name = "performance"
    MODES = ("additive", "multiplicative")
    REFERENCES = ("previous", "best")

    def __init__(
        self,
        initial: float = 0.1,
        mode: str = "additive",
        step_size: float = 0.01,
        up: float = 1.1,
        down: float = 0.9,
        compare_to: str = "previous",
        min_value: float = 0.0,
        max_value: float = 1.0,
    ) -> None:
        if mode not in self.MODES:
            raise unknown_choice("mode", mode, self.MODES, sort=False)
        if compare_to not in self.REFERENCES:
            raise unknown_choice("compare_to", compare_to, self.REFERENCES, sort=False)
        if min_value > max_value:
            raise ValueError(f"min_value {min_value} is greater than max_value {max_value}")
        self.mode = mode
        self.step_size = float(step_size)
        self.up = float(up)
        self.down = float(down)
        self.compare_to = compare_to
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self.current = self._clamp(float(initial))
        self.reference: float | None = None

    def _clamp(self, x: float) -> float:
        return min(self.max_value, max(self.min_value, x))

    def value(self, step: int, total_steps: int | None = None) -> float:
        """The current weight (it depends on the observations, not on ``step``)."""
        return self.current

    def observe(self, metric: float) -> None:
        """Raise the weight if ``metric`` improved on the reference loss, lower it otherwise."""
        metric = float(metric)
        improved = self.reference is None or metric < self.reference
        if self.mode == "additive":
            delta = self.step_size if improved else -self.step_size
            self.current = self._clamp(self.current + delta)
        else:
            self.current = self._clamp(self.current * (self.up if improved else self.down))
        if self.compare_to == "previous" or improved:
            self.reference = metric


class ConstantSchedule(LambdaSchedule):
    """A fixed weight ``value`` (0.1)."""

    name = "constant"

    def __init__(self, value: float = 0.1) -> None:
        self.constant = float(value)

    def value(self, step: int, total_steps: int | None = None) -> float:
        """The constant weight."""
        return self.constant


SCHEDULES: Registry[type[LambdaSchedule]] = Registry("lambda schedule")
"""The schedule classes by their ``name`` (``method.schedule``); an unknown name is an
UnknownChoice (a ValueError)."""
for _cls in (ExponSchedule, LinearSchedule, CyclicSchedule, PerformanceSchedule, ConstantSchedule):
    SCHEDULES.add(_cls.name, _cls)
del _cls


def make_schedule(name: str, **kwargs: object) -> LambdaSchedule:
    """Build the schedule registered under ``name`` with keyword arguments ``kwargs``."""
    cls = SCHEDULES.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for lambda schedule '{name}': {err}") from None
