"""Finished runs under outputs/ -> per-seed values grouped by (model, method, task, n, metric).

:func:`scan_outputs` reads every ``results.json`` into a :class:`Run`; :class:`Results` groups
the runs over seeds and gives the :class:`Cell` of one task or of a suite average.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from jola.profiles import STAND_IN_SOURCES
from jola.results import FAILED_FILE, RESULTS_FILE
from jola.tables.labels import _safe, order_methods
from jola.tables.scales import STORED_SCALES, display
from jola.variants import differing_keys

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
    variant: str = ""  # the run's variant segment (jola.variants): one table row per variant
    profile: str = "paper"  # the data profile (jola.profiles); non-paper runs are grouped apart
    stand_in: bool = False  # scored on a packaged carve or a fixture, not the paper's data
    dev_loss: float | None = None  # the evaluated model's dev loss (trainers: the kept best)
    suite_tasks: tuple[str, ...] = ()  # every task of the suite, as the run's registry had it
    trainable: int | None = None  # trainable parameters (count)
    trainable_percent: float | None = None  # ... as a % of the base model
    learn_seconds: float | None = None  # training (or a gradient-free fit) wall time

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


def read_run(results_path: Path, root: Path) -> Run:
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
    suite = data.get("suite") if isinstance(data.get("suite"), str) else "other"
    members = data.get("suite_tasks") if isinstance(data.get("suite_tasks"), list) else []
    n_test = (data.get("data") or {}).get("n_test")
    info = data.get("metric_info") if isinstance(data.get("metric_info"), dict) else {}
    scales = {
        name: entry["scale"]
        for name, entry in info.items()
        if isinstance(entry, dict) and isinstance(entry.get("scale"), str)
    }
    profile, stand_in = _data_origin(data)
    model_group = str(values["model"])
    if profile != "paper":  # never in the same table as paper-data runs of the model
        model_group = f"{model_group}, {profile} data"
    variant = data.get("variant") if isinstance(data.get("variant"), str) else ""
    method = str(values["method"]) + (f" [{variant}]" if variant else "")
    training = data.get("training") if isinstance(data.get("training"), dict) else {}
    dev_loss = data.get("dev_loss")  # every method's (results.json before it: trained only)
    if dev_loss is None:
        dev_loss = training.get("best_dev_loss")
    dev_loss = _number(dev_loss, float)
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    return Run(
        model=model_group,
        method=method,
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
        variant=variant,
        profile=profile,
        stand_in=stand_in,
        dev_loss=dev_loss,
        suite_tasks=tuple(str(name) for name in members),
        trainable=_number(data.get("trainable_parameters"), int),
        trainable_percent=_number(data.get("trainable_percent"), float),
        learn_seconds=_number(timings.get("train_s", timings.get("fit_s")), float),
    )


def _number(value, kind):
    """``value`` as ``kind`` when it is a finite number (not a bool), else None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return kind(value)


def _data_origin(data: dict) -> tuple[str, bool]:
    """(profile, stand_in) of a results.json; runs written before profiles existed are read
    from their task source (packaged and fixture are the offline stand-ins)."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    task_cfg = config.get("task") if isinstance(config.get("task"), dict) else {}
    source = task_cfg.get("source")
    stand_in = bool(data.get("stand_in", source in STAND_IN_SOURCES))
    profile = data.get("profile")
    if not isinstance(profile, str):
        profile = "offline" if source in STAND_IN_SOURCES else "paper"
    return profile, stand_in


def scan_outputs(root: Path) -> Scan:
    """Every finished run under ``root``; folders with failed.json but no results.json count
    as failed runs; results.json files that cannot be read are listed, not fatal."""
    root = Path(root)
    runs, unreadable = [], []
    if root.is_dir():
        for path in sorted(root.rglob(RESULTS_FILE)):
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue  # a run's staging folder (jola.rundir), never a finished run
            try:
                runs.append(read_run(path, root))
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


def conflicting_runs(runs: Sequence[Run]) -> list[str]:
    """Runs that would fill the same table cell (model, method [variant], task, n, seed) with
    configs that compute different things, one message per cell: the per-seed values are keyed
    by seed, so one of them would silently stand for the other. This happens when a preset's
    defaults change between runs (a run's variant names what differed from the preset of its
    day) or when two output trees are scanned together. Copies of one config are not a
    conflict."""
    cells: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        cells[(*run.key, run.seed)].append(run)
    messages = []
    for (model, method, task, n, seed), group in sorted(cells.items()):
        first, *others = group
        differing = sorted({k for run in others for k in differing_keys(first.config, run.config)})
        if differing:
            messages.append(
                f"{model} / {method} / {task} / n={n} / seed {seed}: "
                f"{', '.join(str(r.run_dir) for r in group)} differ in {', '.join(differing)}"
            )
    return messages


def suites_without_members(runs: Sequence[Run]) -> list[str]:
    """Suites none of whose runs recorded the suite's members (results.json written before
    ``suite_tasks`` existed): their averages cover only the tasks found."""
    recorded = {run.suite for run in runs if run.suite_tasks}
    return sorted({run.suite for run in runs} - recorded)


def suite_tasks(runs: Sequence[Run]) -> dict[str, tuple[str, ...]]:
    """Task names per suite, from the results.json files themselves: the union of the suite
    members each run recorded (``suite_tasks``) and the tasks that ran. A suite average is
    complete only over all of them, so a missing task never shrinks what counts as complete."""
    members: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        members[run.suite].update(run.suite_tasks)
        members[run.suite].add(run.task)
    return {suite: tuple(sorted(names)) for suite, names in members.items()}


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Cell:
    """One printed number: a mean over seeds, or an average over a suite's tasks."""

    mean: float | None = None
    std: float | None = None
    seed_counts: tuple[int, ...] = ()
    tasks: int | None = None  # tasks an average covers
    total: int | None = None  # tasks of the suite
    stand_in: bool = False  # a task cell scored on stand-in data (marked in the tables)

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
        self.stand_ins = {run.key for run in self.runs if run.stand_in}
        self.profiles = {run.model: run.profile for run in self.runs}
        self.variants = {(run.model, run.method): run.variant for run in self.runs}
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
                    "variant": self.variants.get((model, method), ""),
                    "profile": self.profiles[model],
                    "stand_in": (model, method, task, n) in self.stand_ins,
                }
            )
        return pd.DataFrame(rows)

    def cell(self, model: str, method: str, task: str, n: int, metric: str) -> Cell:
        per_seed = self.values.get((model, method, task, n, metric))
        if not per_seed:
            return Cell()
        values = [per_seed[s] for s in sorted(per_seed)]
        return Cell(
            mean=_mean(values),
            std=_std(values),
            seed_counts=(len(values),),
            stand_in=(model, method, task, n) in self.stand_ins,
        )

    def paper_data(self, model: str) -> bool:
        """Whether the runs of this table group are on the paper's data profile."""
        return self.profiles.get(model, "paper") == "paper"

    def average(
        self, model: str, method: str, task_names: Sequence[str], n: int, metric: str
    ) -> Cell:
        """Mean of the per-task means over the tasks present (see the module docstring).

        In a paper-data group, a task scored on a stand-in never enters the average (it counts
        as missing, so the average is marked partial)."""
        refuse = self.paper_data(model)
        present = [
            self.values[(model, method, t, n, metric)]
            for t in task_names
            if self.values.get((model, method, t, n, metric))
            and not (refuse and (model, method, t, n) in self.stand_ins)
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


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
