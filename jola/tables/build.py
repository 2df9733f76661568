"""Grouped results -> tables (rows x columns of cells): main, per-suite and data-size tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jola.tables.collect import Cell, Results
from jola.tables.labels import CANONICAL_METHODS, _safe, method_label, order_methods
from jola.tables.published import (
    DATASIZE_READ_ERROR,
    MAIN_ORDER,
    PUBLISHED_DATASIZE,
    PUBLISHED_MAIN,
    PUBLISHED_MODEL,
    PUBLISHED_ZERO_SHOT_DATASIZE,
)
from jola.tables.scales import display

SUITE_METRICS: dict[str, tuple[str, ...]] = {
    "commonsense": ("acc",),
    "mmlu_pro": ("acc",),
    "gem": ("bleu", "rougeL", "bertscore"),
}
SUITE_TITLES = {
    "commonsense": "Commonsense reasoning",
    "mmlu_pro": "MMLU-Pro (understanding)",
    "gem": "GEM (generation)",
}

# Main-table columns: (key, header, suite, metric).
MAIN_COLUMNS = (
    ("reasoning_acc", "Reasoning ACC", "commonsense", "acc"),
    ("understanding_acc", "Understanding ACC", "mmlu_pro", "acc"),
    ("generation_bleu", "Generation BLEU", "gem", "bleu"),
    ("generation_rougeL", "Generation ROUGE-L", "gem", "rougeL"),
    ("generation_bertscore", "Generation BERTScore", "gem", "bertscore"),
)


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass
class Row:
    key: str
    label: str
    cells: dict[str, Cell]
    published: bool = False


@dataclass
class Table:
    """A rendered-agnostic table: rows x columns of cells, a title and notes."""

    stem: str  # file name without extension, relative to the tables folder
    title: str
    row_header: str
    columns: list[Column]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def has_partial(self) -> bool:
        return any(cell.partial for row in self.rows for cell in row.cells.values())


def profile_notes(results: Results, model: str) -> list[str]:
    """A table of a non-paper data profile says so in its notes (its title names it too)."""
    if results.paper_data(model):
        return []
    return [
        f"Data profile '{results.profiles[model]}': every number here comes from offline "
        "stand-ins (packaged validation carves, fixtures), not the paper's data; they are not "
        "comparable with the paper's or with paper-data runs."
    ]


def published_row(
    method: str,
    values: dict[str, float | None],
    model: str = PUBLISHED_MODEL,
    key: str = "",
    how: str = "",
    name: str = "",
) -> Row:
    """A row of the paper's numbers (``values``: column key -> printed value, None for a
    column the paper has no number for), labelled
    ``<name, or the method's label> (published, <model>[, <how>])``; it never holds a run of
    ours, so it has no seeds and :class:`Results` never sees it."""
    details = ", ".join(part for part in ("published", model, how) if part)
    return Row(
        key=key or f"{method}_published",
        label=f"{name or method_label(method)} ({details})",
        cells={column: Cell(mean=value) for column, value in values.items()},  # None: missing
        published=True,
    )


def _rows_for(methods: Sequence[str], make_cells) -> list[Row]:
    return [Row(key=m, label=method_label(m), cells=make_cells(m)) for m in methods]


def main_table(results: Results, model: str, n: int, suites: dict) -> Table:
    """The paper's main table for one model at one n, with the published rows below ours."""
    methods = order_methods(set(CANONICAL_METHODS) | set(results.methods(model, n=n)))

    def cells(method: str) -> dict[str, Cell]:
        return {
            key: results.average(model, method, suites.get(suite, ()), n, metric)
            for key, _, suite, metric in MAIN_COLUMNS
        }

    rows = _rows_for(methods, cells)
    rows += [
        published_row(method, dict(zip(MAIN_ORDER, values)))
        for method, values in PUBLISHED_MAIN.items()
    ]
    counts = ", ".join(
        f"{SUITE_TITLES[s].split(' ')[0]} {len(suites.get(s, ()))} tasks"
        for s in ("commonsense", "mmlu_pro", "gem")
    )
    notes = [
        f"Averages over the tasks of each suite ({counts}); ACC in %, BLEU, ROUGE-L and "
        "BERTScore on the 0-100 scale.",
        f"Rows marked 'published' are the JoLA paper's numbers for {PUBLISHED_MODEL}, printed "
        "for reference; they are not runs of this project and enter no average.",
        *profile_notes(results, model),
    ]
    return Table(
        stem=f"{_safe(model)}/main_n{n}",
        title=f"Main results: {model}, n={n}",
        row_header="method",
        columns=[Column(key, label) for key, label, _, _ in MAIN_COLUMNS],
        rows=rows,
        notes=notes,
    )


def _scale_note(metrics: Sequence[str]) -> str:
    labels = [display(m).label for m in metrics]
    if list(metrics) == ["acc"]:
        return "ACC in %"
    return f"{', '.join(labels)} on the 0-100 scale"


def _task_label(suite: str, task: str) -> str:
    return (
        task[len("mmlu_pro_") :] if suite == "mmlu_pro" and task.startswith("mmlu_pro_") else task
    )


def suite_table(results: Results, model: str, suite: str, n: int, suites: dict) -> Table:
    """Every task of a suite (per metric) and the suite average, for one model and n."""
    canonical = tuple(suites.get(suite, ()))
    found = {r.task for r in results.runs if r.model == model and r.suite == suite}
    task_names = list(canonical) + sorted(found - set(canonical))
    metrics = SUITE_METRICS.get(suite) or tuple(
        sorted({m for r in results.runs if r.suite == suite for m in r.metrics})
    )
    averaged = canonical or tuple(task_names)
    single = len(metrics) == 1
    columns: list[Column] = []
    for metric in metrics:
        suffix = "" if single else f" {display(metric).label}"
        columns += [Column(f"{t}:{metric}", _task_label(suite, t) + suffix) for t in task_names]
    for metric in metrics:
        columns.append(
            Column(f"avg:{metric}", "Avg" + ("" if single else f" {display(metric).label}"))
        )
    methods = order_methods(set(CANONICAL_METHODS) | set(results.methods(model, n=n, suite=suite)))

    def cells(method: str) -> dict[str, Cell]:
        out = {}
        for metric in metrics:
            for t in task_names:
                out[f"{t}:{metric}"] = results.cell(model, method, t, n, metric)
            out[f"avg:{metric}"] = results.average(model, method, averaged, n, metric)
        return out

    notes = [f"{_scale_note(metrics)}; Avg = mean over the {len(averaged)} tasks."]
    notes += profile_notes(results, model)
    if set(task_names) - set(averaged):
        notes.append("Tasks outside the paper's suite are shown but not averaged.")
    return Table(
        stem=f"{_safe(model)}/{_safe(suite)}_n{n}",
        title=f"{SUITE_TITLES.get(suite, suite)}: {model}, n={n}",
        row_header="method",
        columns=columns,
        rows=_rows_for(methods, cells),
        notes=notes,
    )


def datasize_table(results: Results, model: str, task: str) -> Table | None:
    """Method x n for one task (its first metric, acc when it has one); None without runs.
    For a task of the paper's data-size figure (acc), its read-off curves are published rows
    and their n are columns too."""
    runs = [r for r in results.runs if r.model == model and r.task == task]
    if not runs:
        return None
    metric_names = {m for r in runs for m in r.metrics}
    metric = "acc" if "acc" in metric_names else min(metric_names, default="acc")
    published = PUBLISHED_DATASIZE.get(task, {}) if metric == "acc" else {}
    published_ns = {n for curve in published.values() for n in curve}
    ns = sorted({r.n for r in runs} | published_ns)
    methods = order_methods(set(CANONICAL_METHODS) | {r.method for r in runs})

    def cells(method: str) -> dict[str, Cell]:
        return {f"n{n}": results.cell(model, method, task, n, metric) for n in ns}

    rows = _rows_for(methods, cells)
    how = f"read from the figure, ±{DATASIZE_READ_ERROR}"
    curves = dict(published)
    if published and task in PUBLISHED_ZERO_SHOT_DATASIZE:
        # zero-shot does not depend on n: the figure's one value, in every published column
        curves = {"zero_shot": dict.fromkeys(published_ns, PUBLISHED_ZERO_SHOT_DATASIZE[task])}
        curves.update(published)
    for method in order_methods(curves):
        values = {f"n{n}": curves[method].get(n) for n in ns}
        rows.append(published_row(method, values, how=how))
    notes = [f"{_scale_note([metric])}.", *profile_notes(results, model)]
    if curves:
        notes.append(
            f"Rows marked 'published' are read by eye from the JoLA paper's data-size figure "
            f"({PUBLISHED_MODEL}), good to about ±{DATASIZE_READ_ERROR} points; the zero-shot "
            "value does not depend on n and is repeated. They are not runs of this project "
            "and enter no average."
        )
    label = display(metric).label
    return Table(
        stem=f"{_safe(model)}/datasize_{_safe(task)}",
        title=f"Data size: {task} {label} by training examples n, {model}",
        row_header="method",
        columns=[Column(f"n{n}", f"n={n}") for n in ns],
        rows=rows,
        notes=notes,
    )
