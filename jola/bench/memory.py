"""Peak memory of each training-step variant, each in a fresh process.

:func:`bench_memory` starts ``python -m jola.bench --memory-probe <variant> ...`` once per
variant, one after the other (so they do not compete for the CPU); the probe
(:func:`memory_probe`) loads the model, prepares the variant on it, runs a few steps and prints
one tagged JSON line: the peak RSS during the steps (the kernel's high-water mark, reset after
setup where Linux allows) and, on CUDA, the peak allocated GPU memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from jola.bench.data import training_batch
from jola.bench.models import REPO_ROOT, load_bench_model
from jola.bench.timing import synchronize
from jola.bench.variants import build_variant

MEMORY_TAG = "BENCH_MEMORY "


def _read_status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of this process; False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_probe(args) -> dict:
    """Run in a fresh process: load, prepare one variant, run steps, report peak memory."""
    bench = load_bench_model(
        args.model, args.device, layers=args.layers, shape_divisor=args.shape_divisor
    )
    batch = training_batch(bench, args)
    variant = build_variant(args.memory_probe, bench, batch, clone=False)
    cuda = bench.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        setup_bytes = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    rss_setup_kib = _read_status_kib("VmRSS")
    setup_peak_kib = _read_status_kib("VmHWM")
    can_reset = reset_peak_rss()
    for _ in range(args.memory_steps):
        variant.step()
    synchronize(bench.device)
    hwm_kib = _read_status_kib("VmHWM")
    if hwm_kib is not None:
        source = "VmHWM reset after setup" if can_reset else "VmHWM of the whole process"
    else:  # not Linux; ru_maxrss may include the parent's RSS from before exec
        hwm_kib, source = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    result = {
        "variant": args.memory_probe,
        "steps": args.memory_steps,
        "rss_after_setup_mib": rss_setup_kib / 1024 if rss_setup_kib else None,
        "setup_peak_rss_mib": setup_peak_kib / 1024 if setup_peak_kib else None,
        "peak_rss_during_steps_mib": hwm_kib / 1024,
        "peak_rss_source": source,
        "trainable_parameters": variant.info["trainable_parameters"],
    }
    if rss_setup_kib:
        result["step_rss_increase_mib"] = result["peak_rss_during_steps_mib"] - rss_setup_kib / 1024
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        result["cuda_allocated_after_setup_mib"] = setup_bytes / 2**20
        result["cuda_peak_allocated_mib"] = peak / 2**20
        result["cuda_step_increase_mib"] = (peak - setup_bytes) / 2**20
    return result


def probe_command(variant: str, args) -> list[str]:
    """The command line of one memory probe with the benchmark's model and batch settings."""
    cmd = [
        sys.executable,
        "-m",
        "jola.bench",
        "--memory-probe",
        variant,
        "--model",
        args.model,
        "--device",
        args.device,
        "--batch-size",
        str(args.batch_size),
        "--seq-len",
        str(args.seq_len),
        "--answer-tokens",
        str(args.answer_tokens),
        "--shape-divisor",
        str(args.shape_divisor),
        "--memory-steps",
        str(args.memory_steps),
    ]
    if args.layers is not None:
        cmd += ["--layers", str(args.layers)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def bench_memory(variants: Sequence[str], args, log=print) -> dict:
    """One fresh subprocess per variant (sequential); a failed probe records its error."""
    out = {}
    for name in variants:
        proc = subprocess.run(
            probe_command(name, args), capture_output=True, text=True, cwd=REPO_ROOT
        )
        lines = [x for x in proc.stdout.splitlines() if x.startswith(MEMORY_TAG)]
        if proc.returncode != 0 or not lines:
            out[name] = {"error": (proc.stderr or proc.stdout)[-2000:]}
            log(f"memory {name}: FAILED\n{out[name]['error']}")
            continue
        out[name] = json.loads(lines[-1][len(MEMORY_TAG) :])
        log(f"memory {name}: {out[name]}")
    return out
