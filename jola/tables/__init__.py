"""Finished runs -> paper-style tables (Markdown, LaTeX, CSV) and plots (PNG).

``make_tables(outputs, tables)`` scans ``outputs/**/results.json`` (one finished run each),
groups runs by (model, method, task, n) over seeds and writes, per model:

- ``<model>/main_n<n>.*``: the paper's main table at one n (default 200): rows = methods,
  columns = reasoning ACC (average of the commonsense tasks), understanding ACC (average of the
  MMLU-Pro domains), generation BLEU / ROUGE-L / BERTScore (averages over the GEM tasks), with
  the published Llama-3.1-8B-Instruct rows printed below ours (never part of any average);
- ``<model>/<suite>_n<n>.*``: every task of a suite (+ its average), for every n with runs;
- ``<model>/ablation_n<n>.*``: the paper's ablation tasks x JoLA's ablation methods (edit
  sites, gates, one shared gate), at every n with an ablation run, the published ablation rows
  below ours (:mod:`jola.tables.ablation`);
- ``<model>/datasize_<task>.*``: method x n for one task (default siqa), for siqa and
  winogrande with the paper's data-size curves (read off its figure) as published rows;
- ``summary.csv``: every (model, method, task, n, metric) group with mean, std and seeds;
- ``plots/<model>/...png``: metric vs n per task (the paper's curves dashed where it has them),
  and per JoLA run its gate heatmaps and gate sparsity over training;
- ``<model>/localization.*`` and ``plots/<model>/localization[_detail]_<task>_n<n>.png``:
  closed gates, edited heads and the Jaccard overlap of the selected head sets across seeds,
  per configuration, closed share vs dev loss / test metric, which gate kind closes, and every
  configuration's dev loss (:mod:`jola.tables.localization`);
- ``<model>/methods.*``: every method [variant] per task and n with its test metrics, dev
  loss, trainable parameters and learning time (:mod:`jola.tables.methods`).

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

Modules, one job each (everything public is re-exported here):

- :mod:`jola.tables.collect`: scan outputs/ into runs, group them over seeds into cells;
- :mod:`jola.tables.scales`: stored vs printed metric scales;
- :mod:`jola.tables.labels`: method order and labels, file-safe names;
- :mod:`jola.tables.published`: every published number (data only, with its source);
- :mod:`jola.tables.build`: the main, per-suite and data-size tables (published rows included);
- :mod:`jola.tables.ablation`: the ablation table (published rows included);
- :mod:`jola.tables.render`: tables as Markdown, LaTeX and CSV;
- :mod:`jola.tables.plots`: metric vs n, gate heatmaps, gate sparsity (PNG);
- :mod:`jola.tables.localization`: closed gates, edited heads, head-set overlap across seeds;
- :mod:`jola.tables.methods`: fit (dev loss) and cost (trainable share, time) per method;
- this package: :func:`make_tables`, the driver, and index.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jola.figures import PLOT_DPI, PNG_METADATA, gate_figure
from jola.tables.ablation import (
    ABLATION_LABELS,
    ABLATION_METHODS,
    ablation_columns,
    ablation_ns,
    ablation_table,
    published_ablation_rows,
)
from jola.tables.build import (
    MAIN_COLUMNS,
    PUBLISHED_MAIN,
    PUBLISHED_MODEL,
    SUITE_METRICS,
    SUITE_TITLES,
    Column,
    Row,
    Table,
    datasize_table,
    main_table,
    published_row,
    suite_table,
)
from jola.tables.collect import (
    Cell,
    Results,
    Run,
    Scan,
    conflicting_runs,
    read_run,
    scan_outputs,
    suite_tasks,
    suites_without_members,
)
from jola.tables.labels import (
    CANONICAL_METHODS,
    METHOD_LABELS,
    METHOD_ORDER,
    _safe,
    method_label,
    order_methods,
)
from jola.tables.localization import (
    GateSummary,
    LocalizationRow,
    chance_jaccard,
    jaccard,
    localization_outputs,
    localization_rows,
    pairwise_jaccard,
    summarize_gates,
)
from jola.tables.methods import MethodRow, method_rows, methods_outputs
from jola.tables.plots import (
    MIN_Y_SPAN,
    PUBLISHED_CURVE_LABEL,
    metric_vs_n_figure,
    model_plots,
    plot_gates,
    plot_metric_vs_n,
    plot_sparsity,
    published_curves,
    read_train_log,
)
from jola.tables.published import (
    ABLATION_TASKS,
    DATASIZE_READ_ERROR,
    PUBLISHED_ABLATION_SHARED_GATE,
    PUBLISHED_ABLATION_SITES,
    PUBLISHED_DATASIZE,
    PUBLISHED_ZERO_SHOT_DATASIZE,
    QWEN_MODEL,
)
from jola.tables.render import (
    GENERAL_NOTES,
    MISSING,
    PARTIAL_MARK,
    STAND_IN_MARK,
    cell_text,
    latex_escape,
    seeds_text,
    table_notes,
    to_frame,
    to_latex,
    to_markdown,
    write_csv,
    write_table,
)
from jola.tables.scales import METRIC_DISPLAY, STORED_SCALES, MetricDisplay, display

__all__ = [
    "ABLATION_LABELS",
    "ABLATION_METHODS",
    "ABLATION_TASKS",
    "CANONICAL_METHODS",
    "DATASIZE_READ_ERROR",
    "DEFAULT_DATASIZE_TASK",
    "DEFAULT_MAIN_N",
    "GENERAL_NOTES",
    "MAIN_COLUMNS",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "METRIC_DISPLAY",
    "MIN_Y_SPAN",
    "MISSING",
    "PARTIAL_MARK",
    "PLOT_DPI",
    "PNG_METADATA",
    "PUBLISHED_ABLATION_SHARED_GATE",
    "PUBLISHED_ABLATION_SITES",
    "PUBLISHED_CURVE_LABEL",
    "PUBLISHED_DATASIZE",
    "PUBLISHED_MAIN",
    "PUBLISHED_MODEL",
    "PUBLISHED_ZERO_SHOT_DATASIZE",
    "QWEN_MODEL",
    "STAND_IN_MARK",
    "STORED_SCALES",
    "SUITE_METRICS",
    "SUITE_TITLES",
    "Cell",
    "Column",
    "GateSummary",
    "LocalizationRow",
    "MetricDisplay",
    "NoResults",
    "ConflictingRuns",
    "Report",
    "Results",
    "Row",
    "Run",
    "Scan",
    "Table",
    "ablation_columns",
    "ablation_ns",
    "ablation_table",
    "cell_text",
    "chance_jaccard",
    "datasize_table",
    "display",
    "gate_figure",
    "index_markdown",
    "jaccard",
    "latex_escape",
    "localization_outputs",
    "MethodRow",
    "method_rows",
    "methods_outputs",
    "localization_rows",
    "main_table",
    "make_tables",
    "method_label",
    "metric_vs_n_figure",
    "model_plots",
    "order_methods",
    "pairwise_jaccard",
    "plot_gates",
    "plot_metric_vs_n",
    "plot_sparsity",
    "published_ablation_rows",
    "published_curves",
    "published_row",
    "read_run",
    "read_train_log",
    "scan_outputs",
    "seeds_text",
    "suite_table",
    "suite_tasks",
    "suites_without_members",
    "summarize_gates",
    "table_notes",
    "to_frame",
    "to_latex",
    "to_markdown",
    "write_csv",
    "write_table",
]

DEFAULT_MAIN_N = 200
DEFAULT_DATASIZE_TASK = "siqa"


class NoResults(Exception):
    """No finished run under the outputs folder."""


class ConflictingRuns(Exception):
    """Finished runs with different configs would fill one table cell
    (:func:`jola.tables.collect.conflicting_runs`)."""


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
    ablation_markdown: list[str] = field(default_factory=list)

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
    scan = scan_outputs(outputs)
    if not scan.runs:
        raise NoResults(
            f"no finished run under {outputs} ({len(scan.failed)} failed, "
            f"{len(scan.unreadable)} unreadable results.json)"
        )
    conflicts = conflicting_runs(scan.runs)
    if conflicts:
        raise ConflictingRuns(
            "runs with different configs would fill the same table cell (one would silently "
            "stand for the other); move one out of the outputs folder:\n  " + "\n  ".join(conflicts)
        )
    results = Results(scan.runs)
    suites = suite_tasks(scan.runs)
    files: list[Path] = []
    main_markdown: list[str] = []
    ablation_markdown: list[str] = []
    warnings = [f"mixed test sizes in {w}" for w in results.mixed_test_sizes()]
    warnings += [f"metric scale: {w}" for w in results.scale_mismatches()]
    warnings += [
        f"suite {suite}: no run recorded its members (results.json older than suite_tasks); "
        f"its averages cover only the {len(suites[suite])} task(s) found"
        for suite in suites_without_members(scan.runs)
    ]

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
        for n in ablation_ns(model_runs, model):
            table = ablation_table(results, model, n)
            files += write_table(table, folder)
            ablation_markdown.append(to_markdown(table))
        table = datasize_table(results, model, datasize_task)
        if table is not None:
            files += write_table(table, folder)
        plot_folder = folder / "plots" / _safe(model)
        if plots:
            files += model_plots(results, model, model_runs, plot_folder)
        files += localization_outputs(model_runs, model, folder, plot_folder if plots else None)
        files += methods_outputs(model_runs, model, folder)
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
        ablation_markdown=ablation_markdown,
    )


def index_markdown(files: Sequence[Path], folder: Path, scan: Scan, main_n: int) -> str:
    """tables/index.md: what was read, the conventions, and a link to every file."""
    lines = [
        "# Tables and plots",
        "",
        f"Generated by `make tables` (jola.tables) from {len(scan.runs)} finished runs "
        f"({len(scan.failed)} failed runs without results.json were skipped). "
        f"Main tables at n={main_n}.",
        "",
        *(f"- {note}" for note in GENERAL_NOTES),
        "- ACC in %; BLEU, ROUGE-L and BERTScore on the 0-100 scale (stored: "
        f"{', '.join(f'{k} {v}' for k, v in STORED_SCALES.items())}).",
        f"- {PARTIAL_MARK} (k/N): a partial suite average over the k of N tasks that have runs.",
        f"- 'published' rows: the JoLA paper's numbers ({PUBLISHED_MODEL} unless the row names "
        "another model; data-size rows read off its figure, about "
        f"±{DATASIZE_READ_ERROR}); never averaged with ours, never counted as runs.",
        "- Runs on a data profile other than `paper` are grouped apart (`<model>, offline data`): "
        f"their numbers come from stand-ins; {STAND_IN_MARK} marks a stand-in cell, which a "
        "paper-data average never includes.",
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
