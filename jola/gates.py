"""Hard-Concrete gates (Louizos et al. 2018) and the expected-L0 penalties of JoLA.

A gate is parameterised by ``log_alpha``. Training draws a stretched, clipped concrete sample
(one uniform draw per gate per call); evaluation uses the deterministic gate
``clamp(sigmoid(log_alpha) * (r - l) + l, 0, 1)``, which is exactly 0 when
``log_alpha <= log(1/11)`` (:data:`CLOSED_THRESHOLD`). The constants match the authors' release
(jola 0.0.1): temperature 0.33, stretch limits (-0.1, 1.1), eps 1e-6.

Gate tensors are laid out ``[num_layers, num_heads]``; the functions below work elementwise on any
shape except where a docstring says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from jola.registry import Registry

TEMPERATURE = 0.33
LIMIT_LEFT = -0.1
LIMIT_RIGHT = 1.1
EPS = 1e-6

CLOSED_THRESHOLD = math.log(1 / 11)
"""Largest log_alpha whose deterministic gate is exactly 0: sigmoid(x) * 1.2 - 0.1 = 0."""

_L0_SHIFT = TEMPERATURE * math.log(-LIMIT_LEFT / LIMIT_RIGHT)

PenaltyFn = Callable[[Tensor | None, Tensor | None, float], Tensor]


def _compute_dtype(log_alpha: Tensor) -> torch.dtype:
    return torch.promote_types(log_alpha.dtype, torch.float32)


def _stretch_and_clip(concrete: Tensor) -> Tensor:
    return torch.clamp(concrete * (LIMIT_RIGHT - LIMIT_LEFT) + LIMIT_LEFT, 0.0, 1.0)


def sample_gate(log_alpha: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw one training-time Hard-Concrete sample per element of ``log_alpha``.

    ``u ~ U(EPS, 1 - EPS)`` from torch's global RNG (or ``generator``),
    ``s = sigmoid((log u - log(1 - u) + log_alpha) / TEMPERATURE)``, then stretched to
    ``[LIMIT_LEFT, LIMIT_RIGHT]`` and clamped to ``[0, 1]``. Differentiable w.r.t. ``log_alpha``
    (the gradient is zero where the sample is clamped). Computed in at least float32 and returned
    in ``log_alpha``'s dtype.
    """
    dtype = _compute_dtype(log_alpha)
    u = torch.rand(log_alpha.shape, dtype=dtype, device=log_alpha.device, generator=generator)
    u = u * (1 - 2 * EPS) + EPS
    logits = (torch.log(u) - torch.log1p(-u) + log_alpha.to(dtype)) / TEMPERATURE
    return _stretch_and_clip(torch.sigmoid(logits)).to(log_alpha.dtype)


def deterministic_gate(log_alpha: Tensor) -> Tensor:
    """Evaluation-time gate ``clamp(sigmoid(log_alpha) * (r - l) + l, 0, 1)``.

    Exactly 0 for ``log_alpha <= CLOSED_THRESHOLD`` (about -2.398); reaches 1 at
    ``log_alpha = log(11)`` (about 2.398) and stays there above it.
    """
    dtype = _compute_dtype(log_alpha)
    return _stretch_and_clip(torch.sigmoid(log_alpha.to(dtype))).to(log_alpha.dtype)


def gate_values(log_alpha: Tensor, training: bool) -> Tensor:
    """Sampled gate when ``training``, deterministic gate otherwise."""
    return sample_gate(log_alpha) if training else deterministic_gate(log_alpha)


def prob_open(log_alpha: Tensor) -> Tensor:
    """Probability that a sampled gate is non-zero (the expected L0 norm per gate).

    ``sigmoid(log_alpha - TEMPERATURE * log(-LIMIT_LEFT / LIMIT_RIGHT))``; about
    ``sigmoid(log_alpha + 0.791)``.
    """
    return torch.sigmoid(log_alpha - _L0_SHIFT)


def init_log_alpha(
    num_layers: int, num_heads: int, generator: torch.Generator | None = None
) -> Tensor:
    """Initial log_alpha of shape ``[num_layers, num_heads]`` (float32), as the release.

    The release applies ``xavier_uniform_`` to each layer's ``[num_heads, 1]`` parameter, i.e.
    ``U(-b, b)`` with ``b = sqrt(6 / (num_heads + 1))``; deterministic gates start near 0.5.
    """
    if num_layers < 1 or num_heads < 1:
        raise ValueError(
            f"num_layers and num_heads must be positive, got {num_layers} and {num_heads}"
        )
    bound = math.sqrt(6.0 / (num_heads + 1))
    out = torch.empty(num_layers, num_heads, dtype=torch.float32)
    return out.uniform_(-bound, bound, generator=generator)


def closed_fraction(log_alpha: Tensor) -> float:
    """Fraction of gates whose deterministic (evaluation) gate is exactly 0; 0.0 if empty."""
    if log_alpha.numel() == 0:
        return 0.0
    return (deterministic_gate(log_alpha.detach()) == 0).float().mean().item()


def expected_open_fraction(*log_alphas: Tensor | None) -> Tensor:
    """Mean P(open) over every gate of the given tensors together (``None`` skipped): the
    expected fraction of gates that a training-time sample leaves open (expected L0 / count).
    Differentiable; at least float32."""
    present = [la for la in log_alphas if la is not None]
    if not present:
        raise ValueError("expected_open_fraction needs at least one log_alpha tensor")
    probs = [prob_open(la.to(_compute_dtype(la))).flatten() for la in present]
    return torch.cat(probs).mean()


def prob_open_histogram(log_alpha: Tensor, bins: int = 10) -> list[int]:
    """Counts of P(open) in ``bins`` equal bins of [0, 1] (the last bin includes 1.0)."""
    p = prob_open(log_alpha.detach().float()).flatten()
    index = torch.clamp((p * bins).floor().long(), 0, bins - 1)
    return torch.bincount(index, minlength=bins).tolist()


class LagrangianController:
    """A budget on the expected fraction of open gates, enforced with learned multipliers.

    The constraint is ``E[open] = target`` where ``E[open]`` is :func:`expected_open_fraction`
    (all gates passed in, together). At step ``s`` the training loss gets the term

        lambda1 * (E[open] - t_s) + lambda2 * (E[open] - t_s) ** 2

    (the form of CoFi's and Sheared-LLaMA's Lagrangian), which the gates minimise, while the
    multipliers maximise it by gradient ascent: after the term of a step is computed, one Adam
    step (``maximize=True``, learning rate ``lr``, torch's default betas and eps, no weight
    decay) on ``(lambda1, lambda2)`` with their gradients ``(gap, gap ** 2)``, ``gap = E[open] -
    t_s``. Both start at 0. lambda1 rises while too many gates are open and falls (below 0)
    when too few are; lambda2 only rises, about ``lr`` per step (a restoring force that
    stiffens over training). Adam, as in CoFi, bounds each change of a multiplier by about
    ``lr``: a plain ascent step, proportional to the gap, winds the multipliers up while the
    gates (which move at most about gate_lr per step) lag, and the gates then overshoot.

    ``t_s`` ramps linearly from the first ``E[open]`` seen to ``target`` over ``warmup_steps``
    optimiser steps (0: the target from step 0).
    """

    def __init__(self, target: float, lr: float, warmup_steps: int = 0) -> None:
        self.check_settings(target, lr, warmup_steps)
        self.target = float(target)
        self.lr = float(lr)
        self.warmup_steps = int(warmup_steps)
        self._multipliers = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        self._optimizer = torch.optim.Adam([self._multipliers], lr=self.lr, maximize=True)
        self.start: float | None = None
        self.last_step: int | None = None
        self.last_open: float | None = None

    @staticmethod
    def check_settings(target: float, lr: float, warmup_steps: int = 0) -> None:
        """Refuse (ValueError) settings the controller cannot work with; the constructor calls
        it, and a config can call it without building a controller."""
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target fraction of open gates must be in [0, 1], got {target}")
        if lr <= 0:
            raise ValueError(f"the multipliers' learning rate must be positive, got {lr}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")

    @property
    def lambda1(self) -> float:
        return float(self._multipliers.detach()[0])

    @property
    def lambda2(self) -> float:
        return float(self._multipliers.detach()[1])

    def target_at(self, step: int) -> float:
        """The target of step ``step`` (the ramp's value during the warm-up)."""
        if self.start is None or self.warmup_steps == 0 or step >= self.warmup_steps:
            return self.target
        return self.start + (self.target - self.start) * max(step, 0) / self.warmup_steps

    def ramp_done(self, step: int) -> bool:
        """Whether step ``step`` is past the target's warm-up ramp."""
        return step >= self.warmup_steps

    def term(self, open_fraction: Tensor, step: int) -> Tensor:
        """The Lagrangian term of this step (differentiable in ``open_fraction``, with the
        multipliers as constants); then one ascent step of the multipliers on it."""
        value = float(open_fraction.detach())
        if self.start is None:
            self.start = value
        target = self.target_at(step)
        gap = open_fraction - target
        lambda1, lambda2 = self.lambda1, self.lambda2
        loss = lambda1 * gap + lambda2 * gap * gap
        violation = value - target
        self._multipliers.grad = torch.tensor(
            [violation, violation * violation], dtype=torch.float64
        )
        self._optimizer.step()
        self._multipliers.grad = None
        self.last_step, self.last_open = step, value
        return loss

    def state(self) -> dict[str, float]:
        """The multipliers, the current target and the last E[open] (for the training log)."""
        step = self.last_step if self.last_step is not None else 0
        out = {
            "lagrangian_lambda1": self.lambda1,
            "lagrangian_lambda2": self.lambda2,
            "target_open_now": self.target_at(step),
        }
        if self.last_open is not None:
            out["expected_open_frac_train"] = self.last_open
        return out


def _zero_like_any(*tensors: Tensor | None) -> Tensor:
    for t in tensors:
        if t is not None:
            return t.new_zeros((), dtype=_compute_dtype(t))
    return torch.zeros(())


def _release_term(log_alpha: Tensor | None) -> Tensor | None:
    if log_alpha is None:
        return None
    p_open = torch.clamp(prob_open(log_alpha.to(_compute_dtype(log_alpha))), EPS, 1.0 - EPS)
    per_layer_mean = p_open.mean(dim=-1)
    return per_layer_mean.sum() / log_alpha.numel()


def release_penalty(
    log_alpha_add: Tensor | None, log_alpha_mult: Tensor | None, lam: float
) -> Tensor:
    """Gate penalty as coded in the authors' release (jola 0.0.1, ``JoLATrainer``).

    ``lam * R_add / (L * H) + (1 - lam) * R_mult / (L * H)``, where ``R`` sums over layers the
    per-layer mean over heads of ``prob_open`` (clamped to ``[EPS, 1 - EPS]`` as the release
    does), and ``L * H`` is the number of gates of that kind (the tensors are ``[L, H]``; the
    last dimension is the head dimension). The per-layer mean is divided by ``L * H`` a second
    time; this double normalisation is the release's and is replicated on purpose, which makes
    the penalty tiny (at most ``1 / H`` per gate kind). ``lam`` weighs the additive gates and
    ``1 - lam`` the multiplicative ones. ``None`` means that gate kind is absent: it adds 0.
    """
    total = _zero_like_any(log_alpha_add, log_alpha_mult)
    add_term = _release_term(log_alpha_add)
    mult_term = _release_term(log_alpha_mult)
    if add_term is not None:
        total = total + lam * add_term
    if mult_term is not None:
        total = total + (1.0 - lam) * mult_term
    return total


def paper_penalty(
    log_alpha_add: Tensor | None, log_alpha_mult: Tensor | None, lam: float
) -> Tensor:
    """Gate penalty as stated in the paper: ``lam * (sum prob_open(add) + sum prob_open(mult))``.

    Sums over every gate of both kinds, unnormalised and unclamped. ``None`` means that gate kind
    is absent: it adds 0.
    """
    total = _zero_like_any(log_alpha_add, log_alpha_mult)
    for log_alpha in (log_alpha_add, log_alpha_mult):
        if log_alpha is not None:
            total = total + prob_open(log_alpha.to(_compute_dtype(log_alpha))).sum()
    return lam * total


PENALTIES: Registry[PenaltyFn] = Registry("penalty")
"""The gate penalties by name (``method.penalty``); an unknown name is an UnknownChoice (a
ValueError)."""
PENALTIES.add("paper", paper_penalty)
PENALTIES.add("release", release_penalty)


def penalty(
    name: str, log_alpha_add: Tensor | None, log_alpha_mult: Tensor | None, lam: float
) -> Tensor:
    """Compute the gate penalty registered under ``name`` (see :data:`PENALTIES`)."""
    return PENALTIES.get(name)(log_alpha_add, log_alpha_mult, lam)
