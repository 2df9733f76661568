"""Finished runs -> paper-style tables (Markdown, LaTeX, CSV) and plots (PNG).

``make_tables(outputs, tables)`` scans ``outputs/**/results.json`` (one finished run each),
groups runs by (model, method, task, n) over seeds and writes, per model:

- ``<model>/main_n<n>.*``: the paper's main table at one n (default 200): rows = methods,
  columns = reasoning ACC (average of the commonsense tasks), understanding ACC (average of the
  MMLU-Pro domains), generation BLEU / ROUGE-L / BERTScore (averages over the GEM tasks), with
  the published Llama-3.1-8B-Instruct rows printed below ours (never part of any average);
- ``<model>/<suite>_n<n>.*``: every task of a suite (+ its average), for every n with runs;
- ``<model>/datasize_<task>.*``: method x n for one task (default siqa);
- ``summary.csv``: every (model, method, task, n, metric) group with mean, std and seeds;
- ``plots/<model>/...png``: metric vs n per task, and per JoLA run its gate heatmaps and gate
  sparsity over training.

Conventions (also written under each table):

- a cell is ``mean ± std`` over seeds (sample std, ddof=1); one seed prints the mean alone;
  ``–`` marks a missing cell; the ``seeds`` column gives the seed count (``min–max`` when the
  cells of a row differ);
- numbers are printed on the paper's 0-100 scale with two decimals (:data:`METRIC_DISPLAY`);
- a suite average is the mean of the per-task means. With every task of the suite present it is
  complete; otherwise it is the mean over the tasks present, marked ``†`` and followed by
  ``(k/N)``, the number of tasks it covers. Its std is the std over seeds of the per-seed suite
  average when all its tasks have the same seeds, and omitted otherwise;
- everything is sorted and formatted with fixed precision, and PNGs carry no software/time
  metadata, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

RESULTS_FILE = "results.json"
FAILED_FILE = "failed.json"
GATES_FILE = "gates.json"
TRAIN_LOG_FILE = "train_log.jsonl"

DEFAULT_MAIN_N = 200
DEFAULT_DATASIZE_TASK = "siqa"

# The paper's suites (used when the task registry does not hold a whole suite).
SUITE_TASKS_FALLBACK: dict[str, tuple[str, ...]] = {
    "commonsense": (
        "arc_c",
        "arc_e",
        "boolq",
        "hellaswag",
        "obqa",
        "piqa",
        "siqa",
        "winogrande",
    ),
    "mmlu_pro": tuple(
        f"mmlu_pro_{domain}"
        for domain in (
            "biology",
            "business",
            "chemistry",
            "computer_science",
            "economics",
            "engineering",
            "health",
            "history",
            "law",
            "math",
            "other",
            "philosophy",
            "physics",
            "psychology",
        )
    ),
    "gem": ("common_gen", "e2e_nlg", "web_nlg", "xsum"),
}
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

METHOD_ORDER = ("zero_shot", "jola", "lora", "bitfit")
METHOD_LABELS = {"zero_shot": "zero-shot", "jola": "JoLA", "lora": "LoRA", "bitfit": "BitFit"}

# Published averages (JoLA paper, Llama-3.1-8B-Instruct): reasoning ACC, understanding ACC,
# generation BLEU / ROUGE-L / BERTScore, on the printed (0-100) scale.
PUBLISHED_MODEL = "Llama-3.1-8B-Instruct"
PUBLISHED_MAIN: dict[str, tuple[float, float, float, float, float]] = {
    "zero_shot": (53.70, 40.00, 12.56, 36.70, 77.23),
    "lora": (66.58, 42.07, 13.27, 36.97, 77.74),
    "bitfit": (63.05, 35.02, 9.25, 28.81, 74.83),
}
# Main-table columns: (key, header, suite, metric).
MAIN_COLUMNS = (
    ("reasoning_acc", "Reasoning ACC", "commonsense", "acc"),
    ("understanding_acc", "Understanding ACC", "mmlu_pro", "acc"),
    ("generation_bleu", "Generation BLEU", "gem", "bleu"),
    ("generation_rougeL", "Generation ROUGE-L", "gem", "rougeL"),
    ("generation_bertscore", "Generation BERTScore", "gem", "bertscore"),
)

MISSING = "–"
PARTIAL_MARK = "†"
PLOT_DPI = 100
MIN_Y_SPAN = 5.0  # points on the printed 0-100 scale
PNG_METADATA = {"Software": None}  # no version string; matplotlib writes no timestamp into PNGs


class NoResults(Exception):
    """No finished run under the outputs folder."""


# ----------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class Run:
    """One finished run, from its results.json."""

    model: str
    method: str
    task: str
    suite: str
    n: int
    seed: int
    metrics: dict
    run_dir: Path
    n_test: int | None = None
    method_stats: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    scales: dict = field(default_factory=dict)  # metric -> scale recorded in metric_info

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.model, self.method, self.task, self.n)

    @property
    def slug(self) -> str:
        """A file-name stem derived from the run path (model is the plot folder)."""
        return f"{_safe(self.method)}_{_safe(self.task)}_n{self.n}_seed{self.seed}"


@dataclass
class Scan:
    runs: list[Run]
    failed: list[Path]
    unreadable: list[tuple[Path, str]]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name))


def _path_fields(results_path: Path, root: Path) -> dict:
    """model/method/task/n/seed from ``<model>/<method>/<task>/n<n>/seed<seed>/results.json``."""
    parts = results_path.relative_to(root).parts[:-1]
    fields: dict = {}
    if len(parts) >= 5:
        model, method, task, n_part, seed_part = parts[-5:]
        fields = {"model": model, "method": method, "task": task}
        if re.fullmatch(r"n\d+", n_part):
            fields["n"] = int(n_part[1:])
        if re.fullmatch(r"seed-?\d+", seed_part):
            fields["seed"] = int(seed_part[4:])
    return fields


def read_run(results_path: Path, root: Path, suites: dict[str, tuple[str, ...]]) -> Run:
    """A :class:`Run` from one results.json (the JSON's own fields; the path as a fallback)."""
    data = json.loads(results_path.read_text())
    if not isinstance(data, dict):
        raise ValueError("results.json is not a JSON object")
    fallback = _path_fields(results_path, root)
    model = data.get("model")
    model_name = model.get("name") if isinstance(model, dict) else model
    values = {
        "model": model_name or fallback.get("model"),
        "method": data.get("method") or fallback.get("method"),
        "task": data.get("task") or fallback.get("task"),
        "n": data.get("n", fallback.get("n")),
        "seed": data.get("seed", fallback.get("seed")),
    }
    missing = [key for key, value in values.items() if value is None]
    if missing:
        raise ValueError(f"no {', '.join(missing)} in results.json or its path")
    metrics = {
        name: float(value)
        for name, value in (data.get("metrics") or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }
    suite = data.get("suite") or _suite_of(values["task"], suites)
    n_test = (data.get("data") or {}).get("n_test")
    info = data.get("metric_info") if isinstance(data.get("metric_info"), dict) else {}
    scales = {
        name: entry["scale"]
        for name, entry in info.items()
        if isinstance(entry, dict) and isinstance(entry.get("scale"), str)
    }
    return Run(
        model=str(values["model"]),
        method=str(values["method"]),
        task=str(values["task"]),
        suite=str(suite),
        n=int(values["n"]),
        seed=int(values["seed"]),
        metrics=metrics,
        run_dir=results_path.parent,
        n_test=n_test,
        method_stats=data.get("method_stats") or {},
        config=data.get("config") or {},
        scales=scales,
    )


def _suite_of(task: str, suites: dict[str, tuple[str, ...]]) -> str:
    for suite, names in suites.items():
        if task in names:
            return suite
    return "other"


def scan_outputs(root: Path, suites: dict[str, tuple[str, ...]] | None = None) -> Scan:
    """Every finished run under ``root``; folders with failed.json but no results.json count
    as failed runs; results.json files that cannot be read are listed, not fatal."""
    root = Path(root)
    suites = suites if suites is not None else suite_tasks()
    runs, unreadable = [], []
    if root.is_dir():
        for path in sorted(root.rglob(RESULTS_FILE)):
            try:
                runs.append(read_run(path, root, suites))
            except (OSError, ValueError, TypeError) as err:
                unreadable.append((path, str(err)))
        failed = sorted(
            path.parent
            for path in root.rglob(FAILED_FILE)
            if not (path.parent / RESULTS_FILE).exists()
        )
    else:
        failed = []
    runs.sort(key=lambda r: (r.model, r.method, r.task, r.n, r.seed, str(r.run_dir)))
    return Scan(runs=runs, failed=failed, unreadable=unreadable)


def suite_tasks() -> dict[str, tuple[str, ...]]:
    """Task names per suite: the registry's when it holds the whole suite, else the constants.

    A half-registered suite never shrinks what counts as a complete average.
    """
    suites = dict(SUITE_TASKS_FALLBACK)
    try:
        import tasks as task_registry

        by_suite: dict[str, list[str]] = defaultdict(list)
        for name in task_registry.TASKS.names():
            by_suite[str(task_registry.get_task(name).suite)].append(name)
    except Exception:  # the registry is optional here: tables work from results.json alone
        return suites
    for suite, names in by_suite.items():
        if set(SUITE_TASKS_FALLBACK.get(suite, ())) <= set(names):
            suites[suite] = tuple(sorted(names))
    return suites


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Cell:
    """One printed number: a mean over seeds, or an average over a suite's tasks."""

    mean: float | None = None
    std: float | None = None
    seed_counts: tuple[int, ...] = ()
    tasks: int | None = None  # tasks an average covers
    total: int | None = None  # tasks of the suite

    @property
    def missing(self) -> bool:
        return self.mean is None

    @property
    def partial(self) -> bool:
        """An average over some, not all, of its suite's tasks (False when missing)."""
        return not self.missing and self.tasks is not None and self.tasks < (self.total or 0)


class Results:
    """Per-seed values of every (model, method, task, n, metric), on the printed scale."""

    def __init__(self, runs: Sequence[Run]):
        self.runs = list(runs)
        self.values: dict[tuple, dict[int, float]] = defaultdict(dict)
        self.n_tests: dict[tuple, set] = defaultdict(set)
        for run in self.runs:
            for metric, value in run.metrics.items():
                self.values[(*run.key, metric)][run.seed] = value * display(metric).factor
            self.n_tests[run.key].add(run.n_test)

    def frame(self) -> pd.DataFrame:
        """Long table: one row per (model, method, task, n, metric) with mean, std, seeds.

        ``mean``/``std`` are on the printed scale: the stored value times ``factor``.
        """
        suites = {run.key: run.suite for run in self.runs}
        rows = []
        for key in sorted(self.values):
            model, method, task, n, metric = key
            cell = self.cell(model, method, task, n, metric)
            suite = suites[(model, method, task, n)]
            n_tests = sorted(t for t in self.n_tests[(model, method, task, n)] if t is not None)
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "task": task,
                    "suite": suite,
                    "n": n,
                    "metric": metric,
                    "factor": display(metric).factor,
                    "mean": cell.mean,
                    "std": cell.std,
                    "seeds": len(self.values[key]),
                    "seed_list": " ".join(str(s) for s in sorted(self.values[key])),
                    "n_test": " ".join(str(t) for t in n_tests),
                }
            )
        return pd.DataFrame(rows)

    def cell(self, model: str, method: str, task: str, n: int, metric: str) -> Cell:
        per_seed = self.values.get((model, method, task, n, metric))
        if not per_seed:
            return Cell()
        values = [per_seed[s] for s in sorted(per_seed)]
        return Cell(mean=_mean(values), std=_std(values), seed_counts=(len(values),))

    def average(
        self, model: str, method: str, task_names: Sequence[str], n: int, metric: str
    ) -> Cell:
        """Mean of the per-task means over the tasks present (see the module docstring)."""
        present = [
            self.values[(model, method, t, n, metric)]
            for t in task_names
            if self.values.get((model, method, t, n, metric))
        ]
        if not present:
            return Cell(tasks=0, total=len(task_names))
        means = [_mean([v[s] for s in sorted(v)]) for v in present]
        seed_sets = {tuple(sorted(v)) for v in present}
        std = None
        if len(seed_sets) == 1:
            (seeds,) = seed_sets
            per_seed = [_mean([v[s] for v in present]) for s in seeds]
            std = _std(per_seed)
        return Cell(
            mean=_mean(means),
            std=std,
            seed_counts=tuple(len(v) for v in present),
            tasks=len(present),
            total=len(task_names),
        )

    def models(self) -> list[str]:
        return sorted({r.model for r in self.runs})

    def methods(self, model: str, **where) -> list[str]:
        """Methods with runs of ``model`` (optionally filtered by n/suite/task), paper order."""
        found = {
            r.method
            for r in self.runs
            if r.model == model and all(getattr(r, k) == v for k, v in where.items())
        }
        return order_methods(found)

    def scale_mismatches(self) -> list[str]:
        """Runs whose results.json records a metric scale other than :data:`STORED_SCALES`."""
        return [
            f"{run.run_dir}: {metric} recorded as {scale!r}, tables assume {STORED_SCALES[metric]!r}"
            for run in self.runs
            for metric, scale in sorted(run.scales.items())
            if metric in run.metrics and metric in STORED_SCALES and scale != STORED_SCALES[metric]
        ]

    def mixed_test_sizes(self) -> list[str]:
        """Groups whose seeds were evaluated on different numbers of test items."""
        return [
            f"{model}/{method}/{task}/n{n}: n_test {sorted(t for t in sizes if t is not None)}"
            for (model, method, task, n), sizes in sorted(self.n_tests.items())
            if len({t for t in sizes if t is not None}) > 1
        ]


def display(metric: str) -> MetricDisplay:
    return METRIC_DISPLAY.get(metric, MetricDisplay(metric, 1.0))


def order_methods(methods: Iterable[str]) -> list[str]:
    """zero_shot, jola, lora, bitfit (those present), then the rest sorted."""
    methods = set(methods)
    return [m for m in METHOD_ORDER if m in methods] + sorted(methods - set(METHOD_ORDER))


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


# ----------------------------------------------------------------------------- tables


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


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _rows_for(methods: Sequence[str], make_cells) -> list[Row]:
    return [Row(key=m, label=method_label(m), cells=make_cells(m)) for m in methods]


def main_table(results: Results, model: str, n: int, suites: dict) -> Table:
    """The paper's main table for one model at one n, with the published rows below ours."""
    methods = order_methods(set(METHOD_ORDER) | set(results.methods(model, n=n)))

    def cells(method: str) -> dict[str, Cell]:
        return {
            key: results.average(model, method, suites.get(suite, ()), n, metric)
            for key, _, suite, metric in MAIN_COLUMNS
        }

    rows = _rows_for(methods, cells)
    for method, values in PUBLISHED_MAIN.items():
        rows.append(
            Row(
                key=f"{method}_published",
                label=f"{method_label(method)} (published, {PUBLISHED_MODEL})",
                cells={col[0]: Cell(mean=v) for col, v in zip(MAIN_COLUMNS, values)},
                published=True,
            )
        )
    counts = ", ".join(
        f"{SUITE_TITLES[s].split(' ')[0]} {len(suites.get(s, ()))} tasks"
        for s in ("commonsense", "mmlu_pro", "gem")
    )
    notes = [
        f"Averages over the tasks of each suite ({counts}); ACC in %, BLEU, ROUGE-L and "
        "BERTScore on the 0-100 scale.",
        f"Rows marked 'published' are the JoLA paper's numbers for {PUBLISHED_MODEL}, printed "
        "for reference; they are not runs of this project and enter no average.",
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
    methods = order_methods(set(METHOD_ORDER) | set(results.methods(model, n=n, suite=suite)))

    def cells(method: str) -> dict[str, Cell]:
        out = {}
        for metric in metrics:
            for t in task_names:
                out[f"{t}:{metric}"] = results.cell(model, method, t, n, metric)
            out[f"avg:{metric}"] = results.average(model, method, averaged, n, metric)
        return out

    notes = [f"{_scale_note(metrics)}; Avg = mean over the {len(averaged)} tasks."]
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
    """Method x n for one task (its first metric, acc when it has one); None without runs."""
    runs = [r for r in results.runs if r.model == model and r.task == task]
    if not runs:
        return None
    metric_names = {m for r in runs for m in r.metrics}
    metric = "acc" if "acc" in metric_names else min(metric_names, default="acc")
    ns = sorted({r.n for r in runs})
    methods = order_methods(set(METHOD_ORDER) | {r.method for r in runs})

    def cells(method: str) -> dict[str, Cell]:
        return {f"n{n}": results.cell(model, method, task, n, metric) for n in ns}

    label = display(metric).label
    return Table(
        stem=f"{_safe(model)}/datasize_{_safe(task)}",
        title=f"Data size: {task} {label} by training examples n, {model}",
        row_header="method",
        columns=[Column(f"n{n}", f"n={n}") for n in ns],
        rows=_rows_for(methods, cells),
        notes=[f"{_scale_note([metric])}."],
    )


# ----------------------------------------------------------------------------- rendering

GENERAL_NOTES = (
    f"mean ± std over seeds (sample std); one seed: the mean alone; {MISSING}: no run.",
)


def _fmt(value: float) -> str:
    return f"{value + 0.0:.2f}"  # + 0.0 turns -0.0 into 0.0


def cell_text(cell: Cell, latex: bool = False) -> str:
    """The printed form of a cell (Markdown, or LaTeX with ``latex``)."""
    if cell.missing:
        return "--" if latex else MISSING
    text = _fmt(cell.mean)
    if cell.std is not None:
        text += (r" $\pm$ " if latex else " ± ") + _fmt(cell.std)
    if cell.partial:
        text += (r"$^\dagger$" if latex else PARTIAL_MARK) + f" ({cell.tasks}/{cell.total})"
    return text


def seeds_text(row: Row, latex: bool = False) -> str:
    counts = [c for cell in row.cells.values() for c in cell.seed_counts]
    if row.published or not counts:
        return "--" if latex else MISSING
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}{'--' if latex else '–'}{high}"


def table_notes(table: Table) -> list[str]:
    notes = list(GENERAL_NOTES) + table.notes
    if table.has_partial():
        notes.append(
            f"{PARTIAL_MARK} partial average: (k/N) = only k of the suite's N tasks have runs; the "
            "mean is over those k and is not comparable with a complete average."
        )
    return notes


def to_markdown(table: Table) -> str:
    header = [table.row_header] + [c.label for c in table.columns] + ["seeds"]
    body = [
        [row.label] + [cell_text(row.cells[c.key]) for c in table.columns] + [seeds_text(row)]
        for row in table.rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    rule = "|" + "|".join(("-" * (w + 1)) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    lines = [f"### {table.title}", "", line(header), rule, *(line(b) for b in body), ""]
    lines += [f"- {note}" for note in table_notes(table)]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#"}
_LATEX_ESCAPES.update({"$": r"\$", "{": r"\{", "}": r"\}", "–": "--", "±": r"$\pm$"})
_LATEX_ESCAPES.update({PARTIAL_MARK: r"$^\dagger$"})


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    spec = "l" + "r" * (len(table.columns) + 1)
    header = [table.row_header] + [c.label for c in table.columns] + ["seeds"]
    lines = [
        "% generated by jola/tables.py (make tables); needs \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in header) + " \\\\",
        "\\midrule",
    ]
    previous_published = False
    for row in table.rows:
        if row.published and not previous_published:
            lines.append("\\midrule")
        previous_published = row.published
        values = [latex_escape(row.label)]
        values += [cell_text(row.cells[c.key], latex=True) for c in table.columns]
        values.append(seeds_text(row, latex=True))
        lines.append(" & ".join(values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "", "\\smallskip"]
    lines += [f"{{\\footnotesize {latex_escape(note)}\\par}}" for note in table_notes(table)]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def to_frame(table: Table) -> pd.DataFrame:
    """Wide CSV layout: per column ``<label>`` (mean), ``<label> std``, ``<label> seeds`` and,
    for averages, ``<label> tasks`` and ``<label> partial``; values on the printed scale."""
    records = []
    averages = {c.key for row in table.rows for c in table.columns if row.cells[c.key].total}
    for row in table.rows:
        record: dict = {table.row_header: row.key, "label": row.label, "published": row.published}
        for column in table.columns:
            cell = row.cells[column.key]
            record[column.label] = cell.mean
            record[f"{column.label} std"] = cell.std
            record[f"{column.label} seeds"] = (
                max(cell.seed_counts) if len(set(cell.seed_counts)) == 1 else None
            )
            if column.key in averages:
                record[f"{column.label} tasks"] = cell.tasks
                record[f"{column.label} partial"] = cell.partial
        records.append(record)
    frame = pd.DataFrame(records)
    for name in frame.columns:
        if name.endswith((" seeds", " tasks")):
            frame[name] = frame[name].astype("Int64")
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(frame.to_csv(index=False, lineterminator="\n"))


def write_table(table: Table, folder: Path) -> list[Path]:
    """``<stem>.md``, ``<stem>.tex`` and ``<stem>.csv`` under ``folder``."""
    base = folder / table.stem
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_suffix(".md"), base.with_suffix(".tex"), base.with_suffix(".csv")]
    paths[0].write_text(to_markdown(table))
    paths[1].write_text(to_latex(table))
    write_csv(to_frame(table), paths[2])
    return paths


# ----------------------------------------------------------------------------- plots


def _figure(width: float, height: float, layout: str | None = None):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=PLOT_DPI, layout=layout)


def _save(fig, path: Path) -> Path:
    import matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "jola-tables", "path.simplify": True}):
        fig.savefig(path, format="png", dpi=PLOT_DPI, metadata=PNG_METADATA)
    return path


def _colors(methods: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    known = {m: palette[i] for i, m in enumerate(METHOD_ORDER)}
    others = [m for m in methods if m not in known]
    known.update({m: palette[(len(METHOD_ORDER) + i) % 10] for i, m in enumerate(others)})
    return known


def plot_metric_vs_n(results: Results, model: str, task: str, path: Path) -> Path | None:
    """Metric (acc when present) vs n per method, error bars = std over seeds."""
    runs = [r for r in results.runs if r.model == model and r.task == task]
    if not runs:
        return None
    metric_names = {m for r in runs for m in r.metrics}
    if not metric_names:
        return None
    metric = "acc" if "acc" in metric_names else min(metric_names)
    methods = order_methods({r.method for r in runs})
    colors = _colors(methods)
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    all_ns = sorted({r.n for r in runs})
    for method in methods:
        ns = sorted({r.n for r in runs if r.method == method})
        cells = [results.cell(model, method, task, n, metric) for n in ns]
        points = [(n, c) for n, c in zip(ns, cells) if not c.missing]
        if not points:
            continue
        ax.errorbar(
            [n for n, _ in points],
            [c.mean for _, c in points],
            yerr=[c.std or 0.0 for _, c in points],
            marker="o",
            capsize=4,
            color=colors[method],
            label=f"{method_label(method)} (seeds: {'/'.join(str(c.seed_counts[0]) for _, c in points)})",
        )
    ax.set_xscale("log")
    ax.set_xticks(all_ns)
    ax.set_xticklabels([str(n) for n in all_ns])
    ax.minorticks_off()
    if len(all_ns) == 1:
        ax.set_xlim(all_ns[0] / 1.5, all_ns[0] * 1.5)
    low, high = ax.get_ylim()
    if high - low < MIN_Y_SPAN:  # a lone point would otherwise get a hair-thin axis
        bottom = max(0.0, (low + high) / 2 - MIN_Y_SPAN / 2)  # every metric is >= 0
        ax.set_ylim(bottom, bottom + MIN_Y_SPAN)
    label = display(metric).label + (" (%)" if metric == "acc" else "")
    ax.set_xlabel("training examples n (log scale)")
    ax.set_ylabel(label)
    ax.set_title(f"{task}: {label} vs n ({model}); error bars: std over seeds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def _matrix(values) -> list[list[float]] | None:
    """A layers x heads list from gates.json (squeezing trailing singleton dimensions)."""
    if values is None:
        return None
    rows = []
    for layer in values:
        heads = []
        for head in layer if isinstance(layer, list) else [layer]:
            while isinstance(head, list) and len(head) == 1:
                head = head[0]
            heads.append(float(head))
        rows.append(heads)
    return rows


def plot_gates(gates: dict, title: str, path: Path) -> Path | None:
    """Heatmaps (layers x heads) of the evaluation gates, additive and multiplicative side by
    side, with a second row of P(open) when gates.json has it."""
    kinds = [k for k in ("additive", "multiplicative") if isinstance(gates.get(k), dict)]
    if not kinds:
        return None
    quantities = [("eval_gate", "evaluation gate")]
    if any(gates[k].get("prob_open") is not None for k in kinds):
        quantities.append(("prob_open", "P(gate open)"))
    matrices = {(k, q): _matrix(gates[k].get(q)) for k in kinds for q, _ in quantities}
    sample = next((m for m in matrices.values() if m), None)
    if not sample:
        return None
    layers, heads = len(sample), len(sample[0])
    height = 1.2 + 3.6 * len(quantities)
    fig = _figure(4.2 * len(kinds) + 1.2, height, layout="constrained")
    axes = fig.subplots(len(quantities), len(kinds), squeeze=False)
    image = None
    for row, (quantity, quantity_label) in enumerate(quantities):
        for col, kind in enumerate(kinds):
            ax = axes[row][col]
            matrix = matrices[(kind, quantity)]
            if not matrix:
                ax.set_axis_off()
                ax.set_title(f"{kind}: no {quantity}", fontsize=9)
                continue
            image = ax.imshow(
                matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest"
            )
            values = [v for line in matrix for v in line]
            if quantity == "eval_gate":
                closed = sum(v == 0.0 for v in values)
                detail = f"closed {closed}/{len(values)}"
            else:
                detail = f"mean {_mean(values):.3f}"
            ax.set_title(f"{kind}: {quantity_label} ({detail})", fontsize=9)
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
            ax.set_xticks(range(0, heads, max(1, heads // 8)))
            ax.set_yticks(range(0, layers, max(1, layers // 10)))
    if image is not None:
        fig.colorbar(image, ax=[ax for line in axes for ax in line], shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def read_train_log(path: Path) -> list[dict]:
    """train_log.jsonl entries with gate statistics, one per step (the training entry when a
    step also has an evaluation entry)."""
    by_step: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or "step" not in entry:
            continue
        if not any(k in entry for k in ("closed_frac_add", "closed_frac_mult")):
            continue
        step = int(entry["step"])
        if step not in by_step or ("loss" in entry and "loss" not in by_step[step]):
            by_step[step] = entry
    return [by_step[s] for s in sorted(by_step)]


def plot_sparsity(entries: list[dict], title: str, path: Path) -> Path | None:
    """Closed-gate fractions over training steps, expected L0 on a second axis."""
    if not entries:
        return None
    steps = [e["step"] for e in entries]
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    handles = []
    for key, label, color in (
        ("closed_frac_add", "closed fraction, additive", "C0"),
        ("closed_frac_mult", "closed fraction, multiplicative", "C1"),
    ):
        points = [(e["step"], e[key]) for e in entries if e.get(key) is not None]
        if points:
            (line,) = ax.plot(*zip(*points), marker=".", color=color, label=label)
            handles.append(line)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction of gates closed (evaluation gate = 0)")
    ax.grid(True, alpha=0.3)
    l0_keys = [k for k in ("expected_l0_add", "expected_l0_mult") if any(k in e for e in entries)]
    if l0_keys:
        twin = ax.twinx()
        top = 0.0
        for key, color in zip(l0_keys, ("C0", "C1")):
            points = [(e["step"], e[key]) for e in entries if e.get(key) is not None]
            kind = "additive" if key.endswith("add") else "multiplicative"
            (line,) = twin.plot(
                *zip(*points), linestyle="--", color=color, alpha=0.7, label=f"expected L0, {kind}"
            )
            handles.append(line)
            top = max([top, *(value for _, value in points)])
        twin.set_ylabel("expected L0 (sum of P(open))")
        twin.set_ylim(0, top * 1.15 or 1.0)
    ax.set_xlim(min(steps) - 1, max(steps) + 1)
    ax.legend(handles=handles, fontsize=8, loc="center right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- driver


@dataclass
class Report:
    """What :func:`make_tables` found and wrote."""

    runs: int
    groups: int
    failed: list[Path]
    unreadable: list[tuple[Path, str]]
    files: list[Path]
    main_markdown: list[str]
    warnings: list[str]

    def summary(self) -> str:
        tables = [f for f in self.files if f.suffix in (".md", ".tex", ".csv")]
        plots = [f for f in self.files if f.suffix == ".png"]
        lines = [
            f"runs found: {self.runs} finished ({self.groups} model/method/task/n groups), "
            f"{len(self.failed)} failed (failed.json without results.json), "
            f"{len(self.unreadable)} unreadable results.json",
            f"files written: {len(self.files)} ({len([f for f in tables if f.suffix == '.tex'])} "
            f"tables as md/tex/csv, {len(plots)} plots, summary.csv, index.md)",
        ]
        lines += [f"  failed: {p}" for p in self.failed]
        lines += [f"  unreadable: {p}: {why}" for p, why in self.unreadable]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def make_tables(
    outputs: str | Path = "outputs",
    tables: str | Path = "tables",
    main_n: int = DEFAULT_MAIN_N,
    datasize_task: str = DEFAULT_DATASIZE_TASK,
    plots: bool = True,
) -> Report:
    """Scan ``outputs`` and write every table and plot under ``tables``; raise
    :class:`NoResults` when there is no finished run."""
    outputs, folder = Path(outputs), Path(tables)
    suites = suite_tasks()
    scan = scan_outputs(outputs, suites)
    if not scan.runs:
        raise NoResults(
            f"no finished run under {outputs} ({len(scan.failed)} failed, "
            f"{len(scan.unreadable)} unreadable results.json)"
        )
    results = Results(scan.runs)
    files: list[Path] = []
    main_markdown: list[str] = []
    warnings = [f"mixed test sizes in {w}" for w in results.mixed_test_sizes()]
    warnings += [f"metric scale: {w}" for w in results.scale_mismatches()]

    summary_path = folder / "summary.csv"
    write_csv(results.frame(), summary_path)
    files.append(summary_path)

    for model in results.models():
        model_runs = [r for r in scan.runs if r.model == model]
        if any(r.n == main_n for r in model_runs):
            table = main_table(results, model, main_n, suites)
            files += write_table(table, folder)
            main_markdown.append(to_markdown(table))
        else:
            warnings.append(f"{model}: no run at n={main_n}, so no main table (see --n)")
        for suite, n in sorted({(r.suite, r.n) for r in model_runs}):
            files += write_table(suite_table(results, model, suite, n, suites), folder)
        table = datasize_table(results, model, datasize_task)
        if table is not None:
            files += write_table(table, folder)
        if plots:
            files += _model_plots(results, model, model_runs, folder / "plots" / _safe(model))
    index_path = folder / "index.md"
    index_path.write_text(index_markdown(files, folder, scan, main_n))
    files.append(index_path)
    return Report(
        runs=len(scan.runs),
        groups=len({r.key for r in scan.runs}),
        failed=scan.failed,
        unreadable=scan.unreadable,
        files=files,
        main_markdown=main_markdown,
        warnings=warnings,
    )


def index_markdown(files: Sequence[Path], folder: Path, scan: Scan, main_n: int) -> str:
    """tables/index.md: what was read, the conventions, and a link to every file."""
    lines = [
        "# Tables and plots",
        "",
        f"Generated by `make tables` (jola/tables.py) from {len(scan.runs)} finished runs "
        f"({len(scan.failed)} failed runs without results.json were skipped). "
        f"Main tables at n={main_n}.",
        "",
        *(f"- {note}" for note in GENERAL_NOTES),
        "- ACC in %; BLEU, ROUGE-L and BERTScore on the 0-100 scale (stored: "
        f"{', '.join(f'{k} {v}' for k, v in STORED_SCALES.items())}).",
        f"- {PARTIAL_MARK} (k/N): a partial suite average over the k of N tasks that have runs.",
        f"- 'published' rows: the JoLA paper's {PUBLISHED_MODEL} numbers; never averaged with ours.",
        "- summary.csv: every (model, method, task, n, metric) group; mean/std are the stored "
        "values times `factor`.",
        "",
    ]
    tables_by_stem = sorted({f.with_suffix("") for f in files if f.suffix == ".md"})
    lines.append("## Tables")
    lines.append("")
    for stem in tables_by_stem:
        rel = stem.relative_to(folder).as_posix()
        lines.append(f"- {rel}: [md]({rel}.md) [tex]({rel}.tex) [csv]({rel}.csv)")
    plots = sorted(f.relative_to(folder).as_posix() for f in files if f.suffix == ".png")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"- [{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _model_plots(results: Results, model: str, runs: list[Run], folder: Path) -> list[Path]:
    written = []
    for task in sorted({r.task for r in runs}):
        path = plot_metric_vs_n(results, model, task, folder / f"{_safe(task)}_vs_n.png")
        written += [path] if path else []
    for run in runs:
        title = f"{run.model}/{run.method}/{run.task}/n{run.n}/seed{run.seed}"
        gates_path = run.run_dir / GATES_FILE
        if gates_path.is_file():
            try:
                gates = json.loads(gates_path.read_text())
            except json.JSONDecodeError:
                gates = None
            if isinstance(gates, dict):
                path = plot_gates(
                    gates, f"gates at evaluation: {title}", folder / f"gates_{run.slug}.png"
                )
                written += [path] if path else []
        log_path = run.run_dir / TRAIN_LOG_FILE
        if log_path.is_file():
            entries = read_train_log(log_path)
            path = plot_sparsity(
                entries,
                f"gate sparsity during training: {title}",
                folder / f"sparsity_{run.slug}.png",
            )
            written += [path] if path else []
    return written
