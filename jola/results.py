"""Run directories and results files.

A run lives in ``<output_root>/<model>/<method>/<task>/n<n>/seed<seed>/``; results.json is
written last and atomically, so its presence means the run finished.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

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


def run_dir_for(output_root: str, model: str, method: str, task: str, n: int, seed: int) -> Path:
    """The run directory: a fixed function of the config (Hydra's run.dir uses the same)."""
    return Path(output_root) / model / method / task / f"n{n}" / f"seed{seed}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, rows) -> None:
    """Write rows as JSON lines (atomically, like results.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_results(run_dir: Path) -> dict | None:
    """The finished run's results, or None when the run has not finished."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


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
