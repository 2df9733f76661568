"""``make gpu-check`` (:mod:`jola.bench.gpu_check`): without a GPU it reports so and exits 0;
its plan and the readers of each part's output are checked here without running the parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jola.bench import gpu_check

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_without_a_gpu_the_check_says_so_writes_a_report_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, also on a GPU machine
    proc = subprocess.run(
        [sys.executable, "-m", "jola.bench.gpu_check", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no GPU present" in proc.stdout
    report_path = tmp_path / "report.json"
    assert str(report_path) in proc.stdout  # the path is printed
    report = json.loads(report_path.read_text())
    assert report["status"] == "no_gpu" and report["gpu"] is None and report["parts"] == []
    assert report["environment"]["HF_HUB_OFFLINE"] == "1"


def test_make_gpu_check_runs_the_module():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "gpu-check: install\n\t$(BIN)/python -m jola.bench.gpu_check" in makefile


def test_the_plan_covers_every_cuda_check_offline_within_eight_minutes(tmp_path):
    parts = gpu_check.plan(tmp_path, python="python")
    names = [p.name for p in parts]
    assert names == ["cuda_tests", "bench_train", "bench_memory", "jola_tiny_cuda"]
    commands = {p.name: " ".join(p.command) for p in parts}
    assert "tests/test_cuda.py" in commands["cuda_tests"]
    for name in ("bench_train", "bench_memory"):
        assert "-m jola.bench --model llama31_8b_shape --device cuda" in commands[name]
    assert "model.device=cuda" in commands["jola_tiny_cuda"]
    assert "method=jola model=tiny_random" in commands["jola_tiny_cuda"]
    assert sum(p.timeout_s for p in parts) <= 8 * 60
    assert gpu_check.ENVIRONMENT["HF_HUB_OFFLINE"] == gpu_check.ENVIRONMENT["HF_DATASETS_OFFLINE"]
    assert (REPO_ROOT / "tests" / "test_cuda.py").exists()


def test_pytest_summary_fails_skips_on_a_gpu_machine():
    good = gpu_check.pytest_summary("....\n4 passed in 3.10s\n", Path("."))
    assert good["passed"] == 4 and good["ok"]
    skipped = gpu_check.pytest_summary("ssss\n4 skipped in 0.5s\n", Path("."))
    assert skipped["skipped"] == 4 and not skipped["ok"]
    failed = gpu_check.pytest_summary("=== 1 failed, 3 passed in 2s ===", Path("."))
    assert failed["failed"] == 1 and not failed["ok"]


def test_bench_summaries_read_the_targets(tmp_path):
    def entry(ms: float, ratio: float) -> dict:
        return {"median": ms / 1000, "ratio_to_floor": ratio}

    train = {
        "meta": {"gpu": "GPU", "dtype": "torch.bfloat16"},
        "train": {
            "batch": {"batch_size": 8, "padded_length": 144},
            "variants": {"floor": entry(100, 1.0), "jola": entry(103, 1.03)},
            "comparisons": {"jola_loop_vs_jola": {"ratio": 3.5}},
        },
        "loop_equivalence": {"max_abs_logit_diff": 0.01},
    }
    (tmp_path / "bench-train.json").write_text(json.dumps(train))
    out = gpu_check.bench_train_summary("", tmp_path)
    assert out["step_ms"] == {"floor": 100.0, "jola": 103.0}
    assert out["targets"]["jola_step_le_1.05x_floor"]["met"]
    assert out["targets"]["ours_ge_3x_faster_than_loop"]["met"]
    memory = {"memory": {"jola": {"cuda_peak_allocated_mib": 10}, "lora": {"error": "oom"}}}
    (tmp_path / "bench-memory.json").write_text(json.dumps(memory))
    mem = gpu_check.bench_memory_summary("", tmp_path)
    assert mem["failed"] == ["lora"] and not mem["ok"]
    assert "error" in gpu_check.bench_train_summary("", tmp_path / "missing")


def _quick_part(name: str, code: str, timeout_s: float = 30) -> gpu_check.Part:
    return gpu_check.Part(name, [sys.executable, "-c", code], timeout_s, gpu_check.pytest_summary)


def test_each_part_reports_command_rc_seconds_and_key_output(tmp_path, monkeypatch):
    """The GPU path with stand-in parts: the report format, a failure and a timeout."""
    parts = [
        _quick_part("fine", "print('4 passed in 0.1s')"),
        _quick_part("broken", "import sys; print('1 failed in 0.1s'); sys.exit(1)"),
        _quick_part("slow", "import time; time.sleep(10)", timeout_s=0.5),
    ]
    monkeypatch.setattr(gpu_check, "cuda_device", lambda: {"name": "stand-in GPU"})
    monkeypatch.setattr(gpu_check, "plan", lambda work, **kwargs: parts)
    assert gpu_check.main(["--out-dir", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed" and report["gpu"]["name"] == "stand-in GPU"
    fine, broken, slow = report["parts"]
    assert fine["passed"] and fine["rc"] == 0 and fine["key_output"]["passed"] == 4
    assert fine["command"].endswith("print('4 passed in 0.1s')") and fine["seconds"] >= 0
    assert (tmp_path / "fine.log").read_text().strip() == "4 passed in 0.1s"
    assert not broken["passed"] and broken["rc"] == 1
    assert slow["timed_out"] and slow["rc"] == 124 and not slow["passed"]
