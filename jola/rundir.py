"""The run directory's lifecycle: one writer, nothing finished ever lost.

- :func:`run_lock`: an exclusive POSIX lock on ``<run_dir>/.lock`` for the whole run, so a
  second process on the same directory (a relaunched SLURM array whose first job still runs)
  stops with "running in process N on host H" instead of writing beside it.
- :func:`staging_dir` / :func:`promote`: a run writes every artifact into a fresh staging
  folder inside its directory; only a run that finished moves them into place (an older run's
  files are moved aside first and deleted once the new ones are in), and results.json is
  written last. A failed or interrupted run, an overwrite included, leaves the finished run it
  would have replaced as it was.
- :func:`check_output_root`: a one-line error for an output_root that is not a writable
  directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

from jola.errors import UserError

LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"
PREVIOUS_PREFIX = ".previous-"


class RunInProgress(UserError):
    """Another process holds the run directory."""


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock for the block, or raise :class:`RunInProgress`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    handle = open(path, "a+")
    try:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunInProgress(
                f"{run_dir} is running in {holder}; wait for it or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on host {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.lockf(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def staging_dir(run_dir: Path) -> Path:
    """A fresh, uniquely named folder inside ``run_dir`` for a new run's files."""
    folder = run_dir / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def remove_leftovers(run_dir: Path) -> None:
    """Staging and moved-aside folders of runs that died (the lock is held: none is live)."""
    for entry in run_dir.iterdir() if run_dir.is_dir() else ():
        if entry.is_dir() and entry.name.startswith((STAGING_PREFIX, PREVIOUS_PREFIX)):
            shutil.rmtree(entry, ignore_errors=True)


def promote(staging: Path, run_dir: Path, last: str) -> None:
    """Move a finished run's files from ``staging`` into ``run_dir``. An earlier run's files
    are moved aside first and deleted at the end; ``last`` (results.json) replaces the earlier
    one atomically, after everything else is in place, so the directory always holds one
    finished run's results.json."""
    previous = run_dir / f"{PREVIOUS_PREFIX}{uuid.uuid4().hex[:8]}"
    previous.mkdir()
    protected = {LOCK_FILE, last, staging.name, previous.name}
    for entry in list(run_dir.iterdir()):
        if entry.name not in protected and not entry.name.startswith(STAGING_PREFIX):
            os.replace(entry, previous / entry.name)
    for entry in list(staging.iterdir()):
        if entry.name != last:
            os.replace(entry, run_dir / entry.name)
    os.replace(staging / last, run_dir / last)
    staging.rmdir()
    shutil.rmtree(previous, ignore_errors=True)


def discard(staging: Path) -> None:
    """Remove a failed run's staging folder."""
    shutil.rmtree(staging, ignore_errors=True)


def check_output_root(output_root: str) -> None:
    """One-line error unless ``output_root`` is (or can be created as) a writable directory."""
    path = Path(os.path.expanduser(output_root))
    if path.exists() and not path.is_dir():
        raise UserError(f"output_root={output_root} is not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"output_root={output_root}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"output_root={output_root} is not writable ({existing})")
