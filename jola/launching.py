"""What a Hydra job adds around :func:`jola.runner.run`: GPU pinning for parallel local sweeps
and a shared logger group for the runs of one sweep."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SWEEP_ID_ENV = "JOLA_SWEEP_ID"


@contextmanager
def claimed_gpu(
    num_gpus: int | None = None, lock_dir: str | Path | None = None, poll_s: float = 2.0
) -> Iterator[int | None]:
    """Hold an exclusive lock on one GPU index for the duration of the block.

    Parallel jobs on one machine (joblib workers) each claim a different GPU through lock files,
    so two concurrent jobs never share a device, whichever worker runs them. Yields None when no
    GPU is visible.
    """
    if num_gpus is None:
        import torch

        num_gpus = torch.cuda.device_count()
    if num_gpus == 0:
        yield None
        return
    folder = Path(lock_dir or tempfile.gettempdir()) / f"jola-gpu-locks-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        for index in range(num_gpus):
            handle = open(folder / f"gpu{index}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(poll_s)


def sweep_id() -> str:
    """One id per sweep launch, inherited by the worker processes the launcher starts."""
    if SWEEP_ID_ENV not in os.environ:
        os.environ[SWEEP_ID_ENV] = time.strftime("sweep-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    return os.environ[SWEEP_ID_ENV]


def new_sweep_id() -> str:
    """Start a new sweep id in this process's environment (the launcher's workers inherit it)."""
    os.environ.pop(SWEEP_ID_ENV, None)
    return sweep_id()


def run_in_job(cfg, hydra_cfg=None, outcome: dict | None = None) -> dict:
    """Run one configured experiment inside a Hydra job (single run or sweep member);
    ``outcome`` receives the run directory and status (see :func:`jola.runner.run`)."""
    from hydra.types import RunMode

    from jola.runner import run

    if hydra_cfg is not None and hydra_cfg.mode == RunMode.MULTIRUN and cfg.logger.group is None:
        cfg.logger.group = sweep_id()
    launcher = str(hydra_cfg.launcher.get("_target_", "") if hydra_cfg is not None else "")
    if "joblib" in launcher.lower() and cfg.model.device == "auto":
        with claimed_gpu() as gpu:
            if gpu is not None:
                cfg.model.device = f"cuda:{gpu}"
            return run(cfg, outcome)
    return run(cfg, outcome)
