"""Fit and cost of every method beside the others, per (method [variant], task, n) over its
seeds: the test metrics, the dev loss of the evaluated model, the trainable parameters (count
and % of the base model) and the time spent learning.

The dev loss is the one number on which methods compare when test accuracy cannot separate
them (a small model near chance): every run records it on one axis (results.json ``dev_loss``:
the kept best of training, the chosen point of a gradient-free fit such as RePE's, or, for
zero-shot, the base model's, all computed the way the shared trainer evaluates).

Written per model: ``<model>/methods.{md,tex,csv}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jola.tables.collect import Run
from jola.tables.labels import _safe, order_methods
from jola.tables.render import MISSING, Stat, grid_latex, grid_markdown, stat_text, write_csv
from jola.tables.scales import display


@dataclass
class MethodRow:
    """One configuration (method [variant], task, n) over its seeds."""

    method: str
    task: str
    n: int
    seeds: list[int]
    metrics: dict[str, Stat]  # printed scale
    dev_loss: Stat
    trainable: Stat
    trainable_percent: Stat
    learn_seconds: Stat


def method_rows(runs: Sequence[Run]) -> list[MethodRow]:
    """One row per (method [variant], task, n) of ``runs`` (one model), ordered by task, n and
    the tables' method order."""
    groups: dict[tuple[str, str, int], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.method, run.task, run.n)].append(run)
    order = order_methods({method for method, _, _ in groups})
    rows = []
    for method, task, n in sorted(groups, key=lambda k: (k[1], k[2], order.index(k[0]))):
        members = sorted(groups[(method, task, n)], key=lambda r: r.seed)
        names = sorted({name for r in members for name in r.metrics})
        metrics = {
            name: Stat.of(
                [
                    r.metrics[name] * display(name).factor if name in r.metrics else None
                    for r in members
                ]
            )
            for name in names
        }
        rows.append(
            MethodRow(
                method=method,
                task=task,
                n=n,
                seeds=[r.seed for r in members],
                metrics=metrics,
                dev_loss=Stat.of([r.dev_loss for r in members]),
                trainable=Stat.of([r.trainable for r in members]),
                trainable_percent=Stat.of([r.trainable_percent for r in members]),
                learn_seconds=Stat.of([r.learn_seconds for r in members]),
            )
        )
    return rows


HEADER = (
    "method",
    "task",
    "n",
    "seeds",
    "test metrics",
    "dev loss",
    "trainable",
    "trainable %",
    "learning s",
)

NOTES = (
    "mean ± std over seeds (sample std); test metrics on the printed scale (ACC in %).",
    "dev loss: answer-token cross-entropy on the run's dev set of the model that was evaluated "
    "(trained methods: the kept best epoch; RePE: the chosen strength and layers; zero-shot: "
    "the base model), computed as the shared trainer evaluates, so that every row is on one "
    "axis; lower is a better fit.",
    "trainable: parameters the method learns (count; % of the base model); learning s: wall "
    "time of training or of a gradient-free fit.",
)


def _count(stat: Stat) -> str:
    if stat.mean is None:
        return MISSING
    return f"{stat.mean:,.0f}" + (f" ± {stat.std:,.0f}" if stat.std else "")


def _percent(stat: Stat) -> str:
    return MISSING if stat.mean is None else f"{stat.mean:.4g}"


def _cells(row: MethodRow, latex: bool = False) -> list[str]:
    metrics = "; ".join(
        f"{display(name).label} {stat_text(stat, 2, latex)}" for name, stat in row.metrics.items()
    )
    count = _count(row.trainable)
    return [
        row.method,
        row.task,
        str(row.n),
        str(len(row.seeds)),
        metrics or ("--" if latex else MISSING),
        stat_text(row.dev_loss, 4, latex),
        count.replace("±", r"$\pm$") if latex else count,
        _percent(row.trainable_percent),
        stat_text(row.learn_seconds, 0, latex),
    ]


def to_frame(rows: Sequence[MethodRow]):
    import pandas as pd

    records = []
    for r in rows:
        record = {"method": r.method, "task": r.task, "n": r.n, "seeds": len(r.seeds)}
        record["seed_list"] = " ".join(str(s) for s in r.seeds)
        stats = {f"{name}": stat for name, stat in r.metrics.items()}
        stats.update(
            dev_loss=r.dev_loss,
            trainable=r.trainable,
            trainable_percent=r.trainable_percent,
            learn_seconds=r.learn_seconds,
        )
        for name, stat in stats.items():
            record[name] = stat.mean
            record[f"{name}_std"] = stat.std
        records.append(record)
    return pd.DataFrame(records)


def methods_outputs(runs: Sequence[Run], model: str, tables: Path) -> list[Path]:
    """``<model>/methods.{md,tex,csv}`` of one model's runs (nothing without runs)."""
    rows = method_rows(runs)
    if not rows:
        return []
    base = tables / _safe(model) / "methods"
    base.parent.mkdir(parents=True, exist_ok=True)
    title = f"Fit and cost of each method: {model}"
    written = [base.with_suffix(".md"), base.with_suffix(".tex"), base.with_suffix(".csv")]
    written[0].write_text(grid_markdown(title, HEADER, [_cells(r) for r in rows], NOTES, 3))
    latex_body = [_cells(r, latex=True) for r in rows]
    written[1].write_text(grid_latex(title, HEADER, latex_body, NOTES, 3))
    write_csv(to_frame(rows), written[2])
    return written
