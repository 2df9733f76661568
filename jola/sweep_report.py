"""What a ``-m`` sweep did, told honestly: one table at the end and a non-zero exit code when any
member failed or was refused.

Each member's outcome (finished / skipped / failed / refused / interrupted) is written by the
job itself to ``<output_root>/.sweeps/<sweep id>/<job>.json`` (so launchers whose jobs run in
other processes or on other hosts report too); :class:`SweepReport`, a Hydra callback, reads
them when the sweep ends, prints the table with the run directories of the failures, and
sets the exit code that run.py returns.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from hydra.experimental.callback import Callback

from jola.launching import new_sweep_id, sweep_id
from jola.results import write_json_atomic

STATUSES = ("finished", "skipped", "failed", "refused", "interrupted")
BAD = ("failed", "refused", "interrupted")
_EXIT = {"code": 0}


def outcome_folder(output_root: str, sweep: str) -> Path:
    return Path(os.path.expanduser(output_root)) / ".sweeps" / sweep


def record_outcome(output_root: str, job_id: str, outcome: dict) -> None:
    """Write one member's outcome (called in the member's own process)."""
    write_json_atomic(outcome_folder(output_root, sweep_id()) / f"{job_id}.json", outcome)


def read_outcomes(output_root: str, sweep: str) -> list[dict]:
    folder = outcome_folder(output_root, sweep)
    outcomes = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            outcomes.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            outcomes.append({"status": "failed", "run_dir": str(path), "message": "unreadable"})
    return outcomes


def summary_table(outcomes: list[dict]) -> str:
    """The end-of-sweep report: counts per status, then each bad member's directory. A member
    still marked ``started`` died without a word (killed, out of memory): it counts as failed."""
    outcomes = [
        {**o, "status": "failed", "message": "died without a report (killed? out of memory?)"}
        if o.get("status") == "started"
        else o
        for o in outcomes
    ]
    counts = Counter(o.get("status", "failed") for o in outcomes)
    lines = ["", "sweep summary", "| status | runs |", "|---|---|"]
    lines += [f"| {status} | {counts.get(status, 0)} |" for status in STATUSES]
    bad = [o for o in outcomes if o.get("status") in BAD]
    if bad:
        lines += ["", "not finished:"]
        lines += [f"  [{o['status']}] {o.get('run_dir')}: {o.get('message', '')}" for o in bad]
    return "\n".join(lines)


def exit_code() -> int:
    """1 when the last sweep of this process had a failed, refused or unreported member."""
    return _EXIT["code"]


class SweepReport(Callback):
    """Hydra callback: one sweep id for every member, and the summary at the end."""

    def on_multirun_start(self, config, **kwargs) -> None:
        new_sweep_id()  # in this process's environment before any member starts
        _EXIT["code"] = 0

    def on_multirun_end(self, config, **kwargs) -> None:
        outcomes = read_outcomes(str(config.output_root), sweep_id())
        print(summary_table(outcomes))
        if any(o.get("status") in (*BAD, "started") for o in outcomes):
            _EXIT["code"] = 1
