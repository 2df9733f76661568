"""Metrics over predictions: a registry of ``fn(predictions, references) -> float``.

``references[i]`` is the gold answer of item i (a string), or for generation metrics the list
of acceptable reference texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from jola.registry import Registry

METRICS: Registry = Registry("metric")


@METRICS.register("acc")
def accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of parsed predictions equal to the gold answer."""
    _check_lengths(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("a metric over an empty test set is undefined")


def compute_metrics(names: Sequence[str], predictions, references) -> dict[str, float]:
    """Every named metric on the same predictions."""
    return {name: METRICS.get(name)(predictions, references) for name in names}
