"""Resumable sweeps, failure records, launchers, GPU pinning and the wandb tracker."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from jola.launching import claimed_gpu
from jola.runner import run
from tests.helpers import REPO_ROOT, compose_config, tiny_overrides

SWEEP = [
    "model=tiny_random",
    "task=siqa",
    "task.test_limit=4",
    "eval.num_beams=1",
    "eval.max_new_tokens=4",
    "eval.progress=false",
]


VARIANT = "max_new_tokens=4,num_beams=1,test_limit=4"  # the settings SWEEP changes


def sweep(tmp_path, *args, timeout=600, returncode=0):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "run.py", "-m", *SWEEP, f"output_root={tmp_path}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert result.returncode == returncode, result.stderr[-3000:]
    return result


def finished(tmp_path):
    return {
        p.parent.relative_to(tmp_path).as_posix(): p.stat().st_mtime_ns
        for p in tmp_path.rglob("results.json")
    }


def test_sweep_resumes_skips_finished_and_records_failures(tmp_path):
    first = sweep(tmp_path, "n=4,5,99999", "seed=1,2", returncode=1)
    runs = finished(tmp_path)
    assert sorted(runs) == [
        f"tiny_random/zero_shot/siqa/n{n}/{VARIANT}/seed{s}" for n in (4, 5) for s in (1, 2)
    ]
    assert "| finished | 4 |" in first.stdout and "| failed | 2 |" in first.stdout
    assert first.stdout.count("[failed]") == 2 and "n99999" in first.stdout
    failed = sorted(p.parent.name for p in tmp_path.rglob("failed.json"))
    assert failed == ["seed1", "seed2"]
    record = json.loads(next(tmp_path.rglob("failed.json")).read_text())
    assert record["user_error"] and "n=99999" in record["error"] and record["config"]["n"] == 99999
    assert "pool has 1454" in first.stderr

    again = sweep(tmp_path, "n=4,5", "seed=1,2")
    assert again.stdout.count("skip:") == 4 and finished(tmp_path) == runs

    assert "| skipped | 4 |" in again.stdout

    redo = f"tiny_random/zero_shot/siqa/n5/{VARIANT}/seed2"
    (tmp_path / redo / "results.json").unlink()
    third = sweep(tmp_path, "n=4,5", "seed=1,2")
    assert third.stdout.count("skip:") == 3 and third.stdout.count("done:") == 1
    now = finished(tmp_path)
    assert {k for k in now if now[k] != runs.get(k)} == {redo}


def test_submitit_local_launcher_runs_a_two_job_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep(tmp_path, "hydra/launcher=submitit_local", "n=4,5")
    assert sorted(finished(tmp_path)) == [
        f"tiny_random/zero_shot/siqa/n4/{VARIANT}/seed42",
        f"tiny_random/zero_shot/siqa/n5/{VARIANT}/seed42",
    ]


def test_failed_run_is_retried_and_cleared(tmp_path):
    with pytest.raises(Exception, match="pool has 1454"):
        run(compose_config(tiny_overrides(tmp_path, "n=99999")))
    failed_files = list(tmp_path.rglob("failed.json"))
    assert len(failed_files) == 1 and not list(tmp_path.rglob("results.json"))
    ok = tiny_overrides(tmp_path)
    run(compose_config(ok))
    (run_dir,) = [p.parent for p in tmp_path.rglob("results.json")]
    (run_dir / "failed.json").write_text("{}")  # a stale failure of an earlier attempt
    run(compose_config([*ok, "overwrite=true"]))
    assert not (run_dir / "failed.json").exists()


def test_claimed_gpus_are_exclusive(tmp_path):
    with (
        claimed_gpu(num_gpus=2, lock_dir=tmp_path) as a,
        claimed_gpu(num_gpus=2, lock_dir=tmp_path) as b,
    ):
        assert {a, b} == {0, 1}
    order = []

    def second():
        with claimed_gpu(num_gpus=1, lock_dir=tmp_path, poll_s=0.05) as gpu:
            order.append(("second", gpu))

    with claimed_gpu(num_gpus=1, lock_dir=tmp_path) as gpu:
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append(("first", gpu))
    thread.join(timeout=10)
    assert order == [("first", 0), ("second", 0)]
    with claimed_gpu(num_gpus=0) as none:
        assert none is None


def test_wandb_offline_run_logs_and_a_wandb_failure_is_only_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = ("logger=wandb", "method=jola", "method.train.epochs=1", "method.train.logging_steps=1")
    results = run(compose_config(tiny_overrides(tmp_path / "ok", *args)))
    assert 0 <= results["metrics"]["acc"] <= 1
    offline_runs = list((tmp_path / "ok").rglob("offline-run-*"))
    assert offline_runs and any(p.suffix == ".wandb" for p in offline_runs[0].iterdir())

    import wandb

    def broken_init(*a, **k):
        raise RuntimeError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(UserWarning, match="wandb start failed.*wandb is down"):
        results = run(compose_config(tiny_overrides(tmp_path / "broken", *args)))
    assert list((tmp_path / "broken").rglob("results.json"))
