"""Which token positions of a forward pass an edit on the residual stream touches.

Two kinds of :class:`TokenPositions`:

- ``prompt`` (ReFT's ``f<p>+l<s>``): the first ``p`` and the last ``s`` positions of each row's
  *prompt*, in a pass that starts at position 0 (training, scoring, and the first pass of
  generation over the prompt); a pass that continues a KV cache (a generated token) is left
  alone. As pyreft's ``get_intervention_locations``, each count is capped at half the prompt
  length (``min(P // 2, p)``), so the two groups never overlap on a short prompt.
- ``all`` (RePE): every real token of every pass, generated tokens included.

A row's *real* tokens are those its 2-D attention mask keeps (left padding in batched
generation and scoring, right padding in training); positions are counted over real tokens only,
so a padded row gets the same positions as the row alone. A row's *prompt* is its first ``P``
real tokens: the whole input unless the caller declared ``P`` with :class:`declared_prompts`
(the shared trainer declares it from the labels, log-likelihood scoring from the candidate
lengths), because only the caller knows where a prompt ends and an answer begins.

:func:`position_masks` turns one pass's facts into one boolean ``[batch, seq]`` mask per group
(``first``/``last``, or ``all``); :func:`pass_facts` reads those facts from the arguments of the
module that runs the decoder layers.

This module imports only torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

PROMPT_LENGTHS_ATTR = "_jola_prompt_lengths"
"""Attribute of the model holding the declared prompt lengths of the current forward."""
IGNORE_INDEX = -100  # label of a token without loss (the shared trainer's)
_POSITIONS = re.compile(r"^(?:f(\d+))?\+?(?:l(\d+))?$")


@dataclass(frozen=True)
class TokenPositions:
    """Where a residual edit applies: ``kind`` ``prompt`` (the first ``first_n`` and last
    ``last_n`` prompt positions, prompt pass only) or ``all`` (every real token)."""

    kind: str = "prompt"
    first_n: int = 0
    last_n: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("prompt", "all"):
            raise ValueError(f"token positions kind must be 'prompt' or 'all', got {self.kind!r}")
        if self.first_n < 0 or self.last_n < 0:
            raise ValueError("token position counts must be >= 0")
        if self.kind == "prompt" and self.first_n + self.last_n == 0:
            raise ValueError("prompt positions need first_n > 0 or last_n > 0")

    @classmethod
    def parse(cls, text: str) -> TokenPositions:
        """``"f7+l7"``, ``"f3"``, ``"l1"`` (pyreft's syntax) or ``"all"``; ValueError otherwise."""
        text = str(text).strip()
        if text == "all":
            return cls("all")
        match = _POSITIONS.match(text)
        if not text or match is None or not any(match.groups()):
            raise ValueError(
                f"token positions {text!r}: expected f<n>+l<n> (e.g. f7+l7), f<n>, l<n> or all"
            )
        first, last = (int(g) if g else 0 for g in match.groups())
        return cls("prompt", first, last)

    def describe(self) -> str:
        """The spec in :meth:`parse`'s syntax (``f7+l7``, ``l1``, ``all``)."""
        if self.kind == "all":
            return "all"
        parts = [f"f{self.first_n}"] if self.first_n else []
        return "+".join(parts + ([f"l{self.last_n}"] if self.last_n else []))

    @property
    def groups(self) -> tuple[str, ...]:
        """The mask groups :func:`position_masks` returns for this spec."""
        if self.kind == "all":
            return ("all",)
        return tuple(g for g, n in (("first", self.first_n), ("last", self.last_n)) if n)


@dataclass
class PassFacts:
    """What decides the positions of one forward pass: the real-token mask of the current input
    ``[batch, seq]`` (None: every token is real), the number of cached positions before it, and
    the declared prompt lengths (None: the whole input is the prompt)."""

    real: Tensor | None
    past_length: int
    prompt_lengths: Tensor | None


def cached_length(kwargs: dict[str, Any]) -> int:
    """Positions already in the KV cache (``cache`` in transformers 5, ``past_key_values``
    before; ``cache_position`` when given): 0 for a pass that starts at the beginning."""
    position = kwargs.get("cache_position")
    if isinstance(position, Tensor) and position.numel():
        return int(position.reshape(-1)[0])
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    if isinstance(cache, (tuple, list)) and cache and cache[0] is not None:
        return int(cache[0][0].shape[-2])  # legacy tuple of (key, value) per layer
    return 0


def pass_facts(model: nn.Module, args: tuple, kwargs: dict[str, Any]) -> PassFacts:
    """The :class:`PassFacts` of a call of the module running the decoder layers (the
    backbone, e.g. ``model.model``), from its arguments and the prompt lengths declared on
    ``model``."""
    ids = kwargs.get("input_ids", args[0] if args else None)
    embeds = kwargs.get("inputs_embeds")
    width = (ids if ids is not None else embeds).shape[1]
    mask = kwargs.get("attention_mask")
    real = None
    if isinstance(mask, Tensor) and mask.dim() == 2:  # 4-D custom masks: every token counts
        real = mask[:, -width:].bool()
    return PassFacts(real, cached_length(kwargs), getattr(model, PROMPT_LENGTHS_ATTR, None))


def position_masks(
    positions: TokenPositions, facts: PassFacts, shape: tuple[int, int], device: torch.device
) -> dict[str, Tensor] | None:
    """One boolean ``[batch, seq]`` mask per group of ``positions`` for a pass of ``shape``;
    None when nothing is edited (a prompt-only edit in a pass that continues a cache)."""
    batch, width = shape
    real = facts.real
    if real is None:
        real = torch.ones(shape, dtype=torch.bool, device=device)
    real = real.to(device)
    if positions.kind == "all":
        return {"all": real}
    if facts.past_length > 0:
        return None
    ordinal = real.long().cumsum(-1) - 1  # index of each token among its row's real tokens
    length = real.sum(-1)
    if facts.prompt_lengths is not None:
        declared = facts.prompt_lengths.to(device=device, dtype=length.dtype)
        if declared.shape != (batch,):
            raise RuntimeError(
                f"declared prompt lengths of shape {tuple(declared.shape)} do not fit a batch "
                f"of {batch} rows"
            )
        length = torch.minimum(length, declared)
    half = length // 2
    masks: dict[str, Tensor] = {}
    if positions.first_n:
        first = half.clamp(max=positions.first_n)
        masks["first"] = real & (ordinal < first[:, None])
    if positions.last_n:
        last = half.clamp(max=positions.last_n)
        start = (length - last)[:, None]
        masks["last"] = real & (ordinal >= start) & (ordinal < length[:, None])
    return masks


def prompt_lengths_from_labels(labels: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Per row, the real tokens before the first token with a loss (``labels != -100``): the
    prompt of a training sequence; a row without any such token is all prompt."""
    real = torch.ones_like(labels, dtype=torch.bool)
    if attention_mask is not None:
        real = attention_mask.bool()
    before_answer = (labels != IGNORE_INDEX).long().cumsum(-1) == 0
    return (before_answer & real).sum(-1)


class declared_prompts:
    """Context manager: during it, the prompts of ``model``'s forward passes are the first
    ``lengths[b]`` real tokens of row ``b`` (a ``[batch]`` tensor, or a list). Nests; restores
    the previous declaration on exit. Harmless on a model without position-dependent edits."""

    def __init__(self, model: nn.Module, lengths: Tensor | list[int] | None):
        # a wrapper (DataParallel, DDP) holds the model as .module: declare on the model itself
        while isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        self.model = model
        if lengths is not None and not isinstance(lengths, Tensor):
            lengths = torch.tensor(list(lengths), dtype=torch.long)
        self.lengths = lengths
        self._previous: Tensor | None = None

    def __enter__(self) -> declared_prompts:
        self._previous = getattr(self.model, PROMPT_LENGTHS_ATTR, None)
        # object.__setattr__: a plain attribute, never a registered buffer of the model
        object.__setattr__(self.model, PROMPT_LENGTHS_ATTR, self.lengths)
        return self

    def __exit__(self, *exc: object) -> None:
        object.__setattr__(self.model, PROMPT_LENGTHS_ATTR, self._previous)
