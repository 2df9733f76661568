"""Dataset checks: each task's source opens, has the splits the loader reads, its first rows
convert with the task's own row conversion, and its sizes fit every ``n`` of the sweep.

A hub dataset is opened with exactly the ``datasets.load_dataset`` arguments of the hub source
(:func:`tasks.sources.hub_load_arguments`): streamed from an online hub (a few rows read, sizes
from the hub's split metadata where it has them), and otherwise as the run will open it, from a
local folder or the datasets cache. Tasks sharing one dataset (the MMLU-Pro domains)
open it once. The local sources (packaged, fixture, llm_adapters) are small and are loaded
whole with their own loaders.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from jola.errors import UserError
from jola.preflight.hub import HubState, describe_hub_error, remote_size
from jola.preflight.report import MISSING, NOTE, OK, PROBLEM, Check

ROWS_READ = 5  # rows converted per split
KEEP_SCAN = 5000  # rows scanned for the first rows a filtered task keeps
ROW_ERRORS = (ValueError, KeyError, TypeError)  # what a row conversion raises (convert_rows)


@dataclass
class TaskUse:
    """A distinct task config of the sweep and the sizes its runs ask for."""

    cfg: object  # TaskConfig, source resolved
    profile: str
    ns: set[int] = field(default_factory=set)


@dataclass
class DatasetFetch:
    """A hub dataset to prefetch: the hub source's exact ``load_dataset`` arguments."""

    where: str
    args: tuple
    kwargs: dict
    size: int | None


def task_uses(runs) -> list[TaskUse]:
    """One TaskUse per distinct task config of the runs, in first-seen order."""
    uses: dict[str, TaskUse] = {}
    for run in runs:
        key = repr(sorted(dataclasses.asdict(run.task).items()))
        uses.setdefault(key, TaskUse(run.task, run.data)).ns.add(run.n)
    return list(uses.values())


def _first_line(err: BaseException) -> str:
    """The error's first line, and its cause's (datasets wraps the reason in a generic one)."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        line += f" ({type(cause).__name__}: {str(cause).strip().splitlines()[0]})"
    return line[:300]


def _filters(task) -> bool:
    from tasks.base import Task

    return type(task).keep_row is not Task.keep_row


def fit_check(use: TaskUse, task, where: str, test: int | None, train, dev=None, test_split=""):
    """The sizes line of a task: test items, the train/dev pool, whether every n fits."""
    cfg, name = use.cfg, use.cfg.name
    max_n = max(use.ns)
    if test is None:
        return Check("dataset", name, OK, f"{where}: sizes unknown until downloaded; rows fit")
    if test == 0:
        return Check("dataset", name, PROBLEM, f"{where}: split '{test_split}' has no rows for it")
    if train is None:
        if not 1 <= cfg.test_size < test:
            detail = f"task.test_size={cfg.test_size} must be in [1, {test - 1}] for {test} labelled rows"
            return Check("dataset", name, PROBLEM, f"{where}: {detail}")
        test_items, pool = cfg.test_size, test - cfg.test_size
        split = f" in '{test_split}'" if test_split else ""
        layout = f"{test} labelled rows{split}: fixed test part {test_items}"
    else:
        test_items, pool = test, train
        layout = f"test {test}" + (f" ('{test_split}')" if test_split else "") + f", train {train}"
    fits = pool if dev is not None else pool // 2
    shown = (
        f"; runs test {min(test_items, cfg.test_limit)} (task.test_limit)" if cfg.test_limit else ""
    )
    detail = f"{where}: {layout}{shown}; train/dev pool {pool} fits n <= {fits}"
    if max_n > fits:
        if not cfg.cap_n:
            need = f"{max_n}" if dev is not None else f"{2 * max_n} (n train + n dev)"
            detail = f"{where}: n={max_n} needs {need} rows but the pool has {pool}; choose n <= {fits} or task.cap_n=true"
            return Check("dataset", name, PROBLEM, detail)
        detail += f" (n={max_n} is capped: task.cap_n=true)"
    if use.profile == "paper" and cfg.source in ("packaged", "fixture"):
        return Check("dataset", name, NOTE, detail + "; a stand-in, not the paper's data")
    return Check("dataset", name, OK, detail)


def check_local_source(use: TaskUse) -> Check:
    """packaged, fixture, llm_adapters: local, loaded whole with the source's own loader."""
    import tasks
    from tasks.sources import SOURCES

    task = tasks.get_task(use.cfg.name, use.cfg)
    where = use.cfg.source
    try:
        raw = SOURCES.get(use.cfg.source)(task, use.cfg)
    except UserError as err:
        status = MISSING if "not installed" in str(err) or "does not exist" in str(err) else PROBLEM
        return Check("dataset", use.cfg.name, status, f"{where}: {_first_line(err)}")
    where = raw.description
    train = None if raw.train is None else len(raw.train)
    dev = None if raw.dev is None else len(raw.dev)
    return fit_check(use, task, where, len(raw.test), train, dev)


def _open(args: tuple, kwargs: dict, hub: HubState):
    """(dataset dict, streamed?) with the hub source's arguments: streamed from an online hub
    (a few rows read, nothing downloaded), else as the run will load it (a local folder, the
    datasets cache)."""
    from datasets import load_dataset

    streaming = hub.online and not Path(args[0]).is_dir()
    return load_dataset(*args, **kwargs, streaming=streaming), streaming


def _split_size(data, split: str, streaming: bool) -> int | None:
    if not streaming:
        return len(data[split])
    splits = data[split].info.splits or {}
    info = splits.get(split)
    return None if info is None or info.num_examples is None else int(info.num_examples)


def _row_problem(task, data, split: str) -> str | None:
    """Convert the first rows this task keeps of ``split`` (the first rows at all when none of
    the first KEEP_SCAN is kept: the schema is the split's); the first failure, in one line."""
    rows = list(itertools.islice(enumerate(data[split]), KEEP_SCAN))
    kept = [(i, r) for i, r in rows if task.keep_row(dict(r))] or rows
    for index, row in kept[:ROWS_READ]:
        row = dict(row)
        try:
            task.example_from_hub_row(row, f"{split}-{index}")
        except ROW_ERRORS as err:
            columns = ", ".join(row)
            return f"split '{split}' row {index} does not fit the loader: {_first_line(err)} (columns: {columns})"
    return None


def _kept_counts(tasks_: list, data, split: str) -> list[int]:
    """Rows of ``split`` each task keeps, in one pass (the filtered tasks, e.g. MMLU-Pro)."""
    counts = [0] * len(tasks_)
    for row in data[split]:
        row = dict(row)
        for i, task in enumerate(tasks_):
            counts[i] += bool(task.keep_row(row))
    return counts


def _sizes(uses, tasks_, data, streaming: bool, pending: list[int]) -> dict:
    """(task index, split) -> rows of that split the task reads (None: unknown)."""
    sizes: dict[tuple[int, str], int | None] = {}
    filtered: dict[str, list[int]] = {}
    for i in pending:
        for split in (uses[i].cfg.hub_test_split, uses[i].cfg.hub_train_split):
            if not split:
                continue
            if _filters(tasks_[i]):
                filtered.setdefault(split, []).append(i)
            else:
                sizes[(i, split)] = _split_size(data, split, streaming)
    for split, members in filtered.items():
        counts = _kept_counts([tasks_[i] for i in members], data, split)
        sizes.update(((i, split), n) for i, n in zip(members, counts))
    return sizes


def _missing_detail(where: str, err: BaseException, hub: HubState, args: tuple) -> tuple[str, str]:
    if Path(args[0]).is_dir():
        return PROBLEM, f"{where}: cannot load: {_first_line(err)}"
    if args[0].startswith(("/", ".", "~")) or args[0].count("/") > 1:
        return MISSING, f"folder {args[0]} does not exist"
    if not hub.online:
        return MISSING, (
            f"{where} is not in the datasets cache ({hub.why_local_only()}); fetch it with "
            "--download on a machine with network"
        )
    return MISSING, describe_hub_error(args[0], err, "dataset")


def check_hub_group(uses: list[TaskUse], hub: HubState) -> tuple[list[Check], DatasetFetch | None]:
    """Every task of one hub dataset (same load arguments): opened once, rows, sizes."""
    import tasks
    from tasks.sources import hub_load_arguments, hub_source_name

    tasks_ = [tasks.get_task(u.cfg.name, u.cfg) for u in uses]
    args, kwargs = hub_load_arguments(tasks_[0], uses[0].cfg)
    where = hub_source_name(args[0], uses[0].cfg)
    local = Path(args[0]).is_dir()
    fetch = None
    if not local and hub.online:
        fetch = DatasetFetch(
            where, args, kwargs, remote_size(args[0], kwargs.get("revision"), "dataset")
        )
    try:
        data, streaming = _open(args, kwargs, hub)
    except Exception as err:  # datasets raises many types for a missing or unreachable dataset
        status, detail = _missing_detail(where, err, hub, args)
        return [Check("dataset", u.cfg.name, status, detail) for u in uses], fetch
    checks: list[Check | None] = [None] * len(uses)
    for i, (use, task) in enumerate(zip(uses, tasks_)):
        splits = [s for s in (use.cfg.hub_train_split, use.cfg.hub_test_split) if s]
        absent = [s for s in splits if s not in data]
        if absent:
            detail = f"{where} has no split '{absent[0]}'; splits: {', '.join(data.keys())}"
            checks[i] = Check("dataset", use.cfg.name, PROBLEM, detail)
            continue
        try:
            problem = next(filter(None, (_row_problem(task, data, s) for s in splits)), None)
        except Exception as err:  # reading the rows failed (a broken file, the network)
            problem = f"cannot read the rows: {_first_line(err)}"
        if problem:
            checks[i] = Check("dataset", use.cfg.name, PROBLEM, f"{where}: {problem}")
    pending = [i for i in range(len(uses)) if checks[i] is None]
    sizes = _sizes(uses, tasks_, data, streaming, pending)
    for i in pending:
        cfg, task = uses[i].cfg, tasks_[i]
        test = sizes[(i, cfg.hub_test_split)]
        train = sizes[(i, cfg.hub_train_split)] if cfg.hub_train_split else None
        if cfg.hub_train_split and train is None:
            test = None  # sizes unknown: the split metadata does not say
        category = getattr(task, "category", None)
        where_i = where + (f", category {category}" if category else "")
        checks[i] = fit_check(uses[i], task, where_i, test, train, test_split=cfg.hub_test_split)
    return checks, fetch


def check_datasets(runs, hub: HubState) -> tuple[list[Check], list[DatasetFetch]]:
    """One check per distinct task config, in the sweep's order; the hub datasets to fetch."""
    import tasks
    from tasks.sources import hub_load_arguments

    uses = task_uses(runs)
    groups: dict[str, list[int]] = {}
    results: dict[int, Check] = {}
    for index, use in enumerate(uses):
        if use.cfg.source != "hub":
            results[index] = check_local_source(use)
            continue
        try:
            args, kwargs = hub_load_arguments(tasks.get_task(use.cfg.name, use.cfg), use.cfg)
        except UserError as err:
            results[index] = Check("dataset", use.cfg.name, PROBLEM, str(err))
            continue
        groups.setdefault(repr((args, sorted(kwargs.items()))), []).append(index)
    fetches = []
    for members in groups.values():
        checks, fetch = check_hub_group([uses[i] for i in members], hub)
        results.update(zip(members, checks))
        if fetch is not None:
            fetches.append(fetch)
    return [results[i] for i in range(len(uses))], fetches
