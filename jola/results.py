"""Run directories and results files.

A run lives in ``<output_root>/<model>/<method>/<task>/n<n>[/<variant>]/seed<seed>/``
(jola.variants); results.json is written last and atomically, so its presence means the run
finished. Every JSON file is strict JSON (no NaN/Infinity).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from jola.errors import UserError

RESULTS_FILE = "results.json"
FAILED_FILE = "failed.json"
GATES_FILE = "gates.json"  # written by jola/methods/jola.py
TRAIN_LOG_FILE = "train_log.jsonl"  # written by jola/training.py
PREDICTIONS_FILE = "predictions.jsonl"
VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "datasets",
    "hydra-core",
    "accelerate",
    "sacrebleu",
    "rouge-score",
    "bert-score",
)


def strict_json(data: Any) -> Any:
    """``data`` with every NaN/Infinity float replaced by None, so that the JSON written is
    strict (``jq`` and JavaScript parse it); tuples become lists."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write strict JSON to a uniquely named temporary file in the same folder and rename it
    into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(
                strict_json(data), handle, indent=2, sort_keys=True, default=str, allow_nan=False
            )
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, rows) -> None:
    """Write rows as strict JSON lines (atomically, through a uniquely named temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            for row in rows:
                line = json.dumps(strict_json(row), ensure_ascii=False, allow_nan=False)
                handle.write(line + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CorruptResults(UserError):
    """A results.json that is empty, not JSON, or not a JSON object."""


def read_results(run_dir: Path) -> dict | None:
    """The finished run's results, or None when the run has not finished; a corrupt file is
    a :class:`CorruptResults` naming it."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptResults(
            f"{path} is corrupt ({'empty' if not path.stat().st_size else err}); "
            "overwrite=true replaces it"
        ) from err
    if not isinstance(data, dict):
        raise CorruptResults(
            f"{path} is corrupt (a JSON {type(data).__name__}, not an object); "
            "overwrite=true replaces it"
        )
    return data


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: package_version(name) for name in VERSIONED_PACKAGES})
    return versions


def git_state(repo_dir: Path | None = None) -> dict[str, Any]:
    """The commit of the code that ran and whether the work tree had uncommitted changes."""
    cwd = repo_dir or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
