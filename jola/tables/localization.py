"""Where the edits are: closed gates, edited heads and the stability of the selected head set
across seeds, per (model, method [variant], task, n), from each run's gates.json.

The selected head set of a run is the set of heads whose additive or multiplicative evaluation
gate is non-zero (a learned JoLA selection, or the fixed set of an equal-budget control). Across
the seeds of one configuration its stability is the mean pairwise Jaccard overlap
``|A & B| / |A | B|`` (1 for two empty sets), printed beside the overlap that two random sets of
the same sizes would have in expectation (:func:`chance_jaccard`), without which a Jaccard of
0.9 means nothing when 90% of the heads are selected.

Written per model: ``<model>/localization.{md,tex,csv}`` and, per (task, n), the plots
``plots/<model>/localization_<task>_n<n>.png`` (closed share vs dev loss and vs the test metric)
and ``plots/<model>/localization_detail_<task>_n<n>.png`` (which gate kind closes, the head-set
overlap across seeds against chance, and every configuration's dev loss side by side, which is
where equal-budget controls meet the learned selection).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from jola.figures import gate_matrix, new_figure, save_png
from jola.results import GATES_FILE
from jola.tables.collect import Run, _mean
from jola.tables.labels import _safe, order_methods
from jola.tables.render import (
    MISSING,
    Stat,
    grid_latex,
    grid_markdown,
    stat_text,
    write_csv,
)
from jola.tables.scales import display

KINDS = ("additive", "multiplicative")
Head = tuple[int, int]


@dataclass(frozen=True)
class GateSummary:
    """What one run's gates.json says about where its edits are."""

    heads: frozenset[Head]  # heads with either evaluation gate open
    total_heads: int
    closed: dict[str, float]  # kind -> fraction of that kind's learned gates that are closed
    closed_slots: float  # fraction of the (head, kind) evaluation gates that are 0


def summarize_gates(gates: dict) -> GateSummary | None:
    """A :class:`GateSummary` of a gates.json dict (None when it holds no gate matrix)."""
    matrices = {k: gate_matrix((gates.get(k) or {}).get("eval_gate")) or [] for k in KINDS}
    present = [m for m in matrices.values() if m]
    if not present:
        return None
    layers, heads = len(present[0]), len(present[0][0])
    open_heads: set[Head] = set()
    closed: dict[str, float] = {}
    zero_slots = 0
    for kind, matrix in matrices.items():
        if not matrix:
            zero_slots += layers * heads
            continue
        values = [v for row in matrix for v in row]
        zero_slots += sum(v == 0.0 for v in values)
        open_heads |= {(i, j) for i, row in enumerate(matrix) for j, v in enumerate(row) if v}
        if (gates.get(kind) or {}).get("log_alpha") is not None:  # learned gates only
            closed[kind] = sum(v == 0.0 for v in values) / len(values)
    total = layers * heads
    return GateSummary(frozenset(open_heads), total, closed, zero_slots / (len(KINDS) * total))


def jaccard(a: Iterable[Head], b: Iterable[Head]) -> float:
    """``|A & B| / |A | B|``; 1.0 when both sets are empty."""
    a, b = set(a), set(b)
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def pairwise_jaccard(sets: Sequence[Iterable[Head]]) -> list[float]:
    """The Jaccard overlap of every pair of sets (in order)."""
    return [jaccard(a, b) for a, b in combinations(sets, 2)]


def chance_jaccard(total: int, a: int, b: int) -> float:
    """Expected Jaccard overlap of two independent uniformly random sets of sizes ``a`` and
    ``b`` out of ``total`` (the intersection is hypergeometric)."""
    if a == 0 and b == 0:
        return 1.0
    norm = math.comb(total, b)
    expected = 0.0
    for i in range(max(0, a + b - total), min(a, b) + 1):
        p = math.comb(a, i) * math.comb(total - a, b - i) / norm
        expected += p * i / (a + b - i)
    return expected


@dataclass
class LocalizationRow:
    """One configuration (method [variant], task, n) over its seeds."""

    method: str
    task: str
    n: int
    seeds: list[int]
    closed_add: Stat  # %
    closed_mult: Stat  # %
    closed_all: Stat  # % of (head, kind) evaluation gates that are 0
    heads: Stat  # heads with either edit open
    total_heads: int
    jaccard: Stat  # over the pairs of seeds
    pairs: int
    chance: float | None  # mean over the pairs of the chance overlap
    dev_loss: Stat
    metric: str | None
    metric_value: Stat  # printed scale


def _read_gates(run: Run) -> GateSummary | None:
    path = run.run_dir / GATES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return summarize_gates(data) if isinstance(data, dict) else None


def localization_rows(runs: Sequence[Run]) -> list[LocalizationRow]:
    """One row per (method [variant], task, n) of ``runs`` (one model) with gates.json files."""
    groups: dict[tuple[str, str, int], list[tuple[Run, GateSummary]]] = defaultdict(list)
    for run in runs:
        summary = _read_gates(run)
        if summary is not None:
            groups[(run.method, run.task, run.n)].append((run, summary))
    methods = order_methods({method for method, _, _ in groups})
    rows = []
    for method, task, n in sorted(groups, key=lambda k: (k[1], k[2], methods.index(k[0]))):
        members = sorted(groups[(method, task, n)], key=lambda m: m[0].seed)
        summaries = [s for _, s in members]
        sets = [s.heads for s in summaries]
        overlaps = pairwise_jaccard(sets)
        totals = {s.total_heads for s in summaries}
        chances = [
            chance_jaccard(s.total_heads, len(s.heads), len(t.heads))
            for s, t in combinations(summaries, 2)
        ]
        metric = _metric(r for r, _ in members)
        factor = display(metric).factor if metric else 1.0
        rows.append(
            LocalizationRow(
                method=method,
                task=task,
                n=n,
                seeds=[r.seed for r, _ in members],
                closed_add=Stat.of([_pct(s.closed.get("additive")) for s in summaries]),
                closed_mult=Stat.of([_pct(s.closed.get("multiplicative")) for s in summaries]),
                closed_all=Stat.of([100.0 * s.closed_slots for s in summaries]),
                heads=Stat.of([float(len(h)) for h in sets]),
                total_heads=max(totals),
                jaccard=Stat.of(overlaps),
                pairs=len(overlaps),
                chance=_mean(chances) if chances else None,
                dev_loss=Stat.of([r.dev_loss for r, _ in members]),
                metric=metric,
                metric_value=Stat.of(
                    [
                        r.metrics[metric] * factor if metric in r.metrics else None
                        for r, _ in members
                    ]
                    if metric
                    else []
                ),
            )
        )
    return rows


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _metric(runs: Iterable[Run]) -> str | None:
    names = {m for r in runs for m in r.metrics}
    if not names:
        return None
    return "acc" if "acc" in names else min(names)


# ------------------------------------------------------------------------------- rendering


HEADER = (
    "method",
    "task",
    "n",
    "seeds",
    "closed add %",
    "closed mult %",
    "closed all %",
    "heads edited",
    "Jaccard",
    "chance",
    "dev loss",
    "metric",
)

NOTES = (
    "mean ± std over seeds (sample std); closed %: evaluation gates exactly 0, per learned gate "
    "kind; closed all %: of every (head, kind) evaluation gate, so that fixed head sets "
    "(equal-budget controls) and ablations compare on one axis.",
    "heads edited: heads with the additive or the multiplicative gate open (of the total); "
    "Jaccard: mean ± std over the pairs of seeds of the overlap of these head sets (1 for two "
    "empty sets); chance: the expected overlap of two random sets of the same sizes.",
    "dev loss: the best (kept) dev loss of training; metric: the test metric on its printed "
    "scale (ACC in %).",
)


def _cells(row: LocalizationRow, latex: bool = False) -> list[str]:
    missing = "--" if latex else MISSING
    metric = missing
    if row.metric:
        metric = f"{display(row.metric).label} {stat_text(row.metric_value, 2, latex)}"
    jaccard = f"{stat_text(row.jaccard, 2, latex)} ({row.pairs} pairs)" if row.pairs else missing
    return [
        row.method,
        row.task,
        str(row.n),
        str(len(row.seeds)),
        stat_text(row.closed_add, 1, latex),
        stat_text(row.closed_mult, 1, latex),
        stat_text(row.closed_all, 1, latex),
        f"{stat_text(row.heads, 1, latex)} / {row.total_heads}",
        jaccard,
        missing if row.chance is None else f"{row.chance:.2f}",
        stat_text(row.dev_loss, 4, latex),
        metric,
    ]


def to_markdown(rows: Sequence[LocalizationRow], model: str) -> str:
    body = [_cells(r) for r in rows]
    return grid_markdown(f"Localisation: {model}", HEADER, body, NOTES, text_columns=3)


def to_latex(rows: Sequence[LocalizationRow], model: str) -> str:
    body = [_cells(r, latex=True) for r in rows]
    return grid_latex(f"Localisation: {model}", HEADER, body, NOTES, text_columns=3)


def to_frame(rows: Sequence[LocalizationRow]):
    import pandas as pd

    records = []
    for r in rows:
        record = {"method": r.method, "task": r.task, "n": r.n, "seeds": len(r.seeds)}
        record["seed_list"] = " ".join(str(s) for s in r.seeds)
        for name, stat in (
            ("closed_add_pct", r.closed_add),
            ("closed_mult_pct", r.closed_mult),
            ("closed_all_pct", r.closed_all),
            ("heads_edited", r.heads),
            ("jaccard", r.jaccard),
            ("dev_loss", r.dev_loss),
            ("metric_value", r.metric_value),
        ):
            record[name] = stat.mean
            record[f"{name}_std"] = stat.std
        record.update(
            total_heads=r.total_heads, pairs=r.pairs, chance_jaccard=r.chance, metric=r.metric
        )
        records.append(record)
    return pd.DataFrame(records)


def plot_localization(rows: Sequence[LocalizationRow], title: str, path: Path) -> Path | None:
    """Closed share (all evaluation gates) vs dev loss and vs the test metric, one point per
    configuration (error bars: std over seeds)."""
    points = [r for r in rows if r.closed_all.mean is not None]
    if not points:
        return None
    legend_height = 0.2 * len(points) + 0.3
    fig = new_figure(10.0, 4.2 + legend_height)
    axes = fig.subplots(1, 2)
    metric = next((r.metric for r in points if r.metric), None)
    for ax, (label, getter) in zip(
        axes,
        (
            ("best dev loss", lambda r: r.dev_loss),
            (
                display(metric).label + (" (%)" if metric == "acc" else "") if metric else "metric",
                lambda r: r.metric_value,
            ),
        ),
    ):
        for i, row in enumerate(points):
            stat = getter(row)
            if stat.mean is None:
                continue
            ax.errorbar(
                [row.closed_all.mean],
                [stat.mean],
                xerr=[row.closed_all.std or 0.0],
                yerr=[stat.std or 0.0],
                marker="o",
                capsize=3,
                color=f"C{i % 10}",
                label=f"{row.method} ({len(row.seeds)} seeds)",
            )
        ax.set_xlim(-2, 102)
        ax.set_xlabel("closed evaluation gates, both kinds (%)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    labelled = {}
    for ax in axes:  # one entry per configuration, whichever panel has its point
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labelled.setdefault(label, handle)
    fig.legend(list(labelled.values()), list(labelled), loc="lower center", fontsize=7, ncol=1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, legend_height / (4.2 + legend_height), 1, 1))
    return save_png(fig, path)


def _bars(ax, labels: Sequence[str], series: Sequence[tuple[str, Sequence[Stat]]]) -> None:
    width = 0.8 / len(series)
    for k, (name, stats) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        means = [s.mean if s.mean is not None else math.nan for s in stats]
        errors = [s.std or 0.0 for s in stats]
        ax.bar(xs, means, width, yerr=errors, capsize=2, label=name, color=f"C{k}")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)


def plot_localization_detail(
    rows: Sequence[LocalizationRow], title: str, path: Path
) -> Path | None:
    """Three panels, one bar per configuration (error bars: std over seeds): closed additive
    vs multiplicative gates (configurations with learned gates), the head-set Jaccard overlap
    across seeds beside its chance level (configurations with two seeds or more), and the best
    dev loss of every configuration."""
    if not rows:
        return None
    fig = new_figure(15.0, 5.2)
    kinds_ax, overlap_ax, loss_ax = fig.subplots(1, 3)
    learned = [r for r in rows if r.closed_add.mean is not None or r.closed_mult.mean is not None]
    if learned:
        _bars(
            kinds_ax,
            [r.method for r in learned],
            [
                ("additive", [r.closed_add for r in learned]),
                ("multiplicative", [r.closed_mult for r in learned]),
            ],
        )
        kinds_ax.legend(fontsize=7)
    kinds_ax.set_ylim(0, 105)
    kinds_ax.set_ylabel("closed evaluation gates (%)")
    kinds_ax.set_title("which gate kind closes", fontsize=9)
    seeded = [r for r in rows if r.pairs]
    if seeded:
        chance = [Stat(r.chance) for r in seeded]
        _bars(
            overlap_ax,
            [r.method for r in seeded],
            [("across seeds", [r.jaccard for r in seeded]), ("chance", chance)],
        )
        overlap_ax.legend(fontsize=7)
    overlap_ax.set_ylim(0, 1.05)
    overlap_ax.set_ylabel("Jaccard overlap of the edited-head sets")
    overlap_ax.set_title("stability of the selection across seeds", fontsize=9)
    fitted = [r for r in rows if r.dev_loss.mean is not None]
    if fitted:
        _bars(
            loss_ax, [r.method for r in fitted], [("best dev loss", [r.dev_loss for r in fitted])]
        )
        lows = [r.dev_loss.mean - (r.dev_loss.std or 0.0) for r in fitted]
        highs = [r.dev_loss.mean + (r.dev_loss.std or 0.0) for r in fitted]
        margin = max(0.05 * (max(highs) - min(lows)), 1e-3)
        loss_ax.set_ylim(min(lows) - margin, max(highs) + margin)
    loss_ax.set_ylabel("best dev loss")
    loss_ax.set_title("fit (equal-budget controls beside the learned selection)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def localization_outputs(
    runs: Sequence[Run], model: str, tables: Path, plots: Path | None
) -> list[Path]:
    """The localisation table of one model's runs (and its plots when ``plots`` is a folder);
    nothing when no run has a gates.json."""
    rows = localization_rows(runs)
    if not rows:
        return []
    base = tables / _safe(model) / "localization"
    base.parent.mkdir(parents=True, exist_ok=True)
    written = [base.with_suffix(".md"), base.with_suffix(".tex"), base.with_suffix(".csv")]
    written[0].write_text(to_markdown(rows, model))
    written[1].write_text(to_latex(rows, model))
    write_csv(to_frame(rows), written[2])
    if plots is not None:
        for task, n in sorted({(r.task, r.n) for r in rows}):
            members = [r for r in rows if (r.task, r.n) == (task, n)]
            paths = (
                plot_localization(
                    members,
                    f"closed gates vs fit: {task}, n={n} ({model})",
                    plots / f"localization_{_safe(task)}_n{n}.png",
                ),
                plot_localization_detail(
                    members,
                    f"where the edits are: {task}, n={n} ({model})",
                    plots / f"localization_detail_{_safe(task)}_n{n}.png",
                ),
            )
            written += [path for path in paths if path]
    return written
