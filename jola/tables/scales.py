"""Metric scales: what results.json stores and how tables print it (label and factor)."""

from __future__ import annotations

from dataclasses import dataclass

# Stored scale -> printed scale (jola/metrics.py documents what results.json holds: acc a
# fraction 0-1, bleu/rougeL/bertscore 0-100, the paper's scale). Everything is printed 0-100.
# A run whose results.json "metric_info" records another scale is reported as a warning.
STORED_SCALES = {"acc": "fraction 0-1", "bleu": "0-100", "rougeL": "0-100", "bertscore": "0-100"}


@dataclass(frozen=True)
class MetricDisplay:
    label: str
    factor: float  # printed value = stored value * factor


METRIC_DISPLAY: dict[str, MetricDisplay] = {
    "acc": MetricDisplay("ACC", 100.0),
    "bleu": MetricDisplay("BLEU", 1.0),
    "rougeL": MetricDisplay("ROUGE-L", 1.0),
    "bertscore": MetricDisplay("BERTScore", 1.0),
}


def display(metric: str) -> MetricDisplay:
    return METRIC_DISPLAY.get(metric, MetricDisplay(metric, 1.0))
