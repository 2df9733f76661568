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


PENALTIES: dict[str, PenaltyFn] = {
    "paper": paper_penalty,
    "release": release_penalty,
}


def penalty(
    name: str, log_alpha_add: Tensor | None, log_alpha_mult: Tensor | None, lam: float
) -> Tensor:
    """Compute the gate penalty registered under ``name`` (see :data:`PENALTIES`)."""
    try:
        fn = PENALTIES[name]
    except KeyError:
        choices = ", ".join(sorted(PENALTIES))
        raise ValueError(f"unknown penalty {name!r}; choices: {choices}") from None
    return fn(log_alpha_add, log_alpha_mult, lam)
