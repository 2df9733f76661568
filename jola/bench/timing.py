"""How the benchmark times things: interleaved rounds, medians, IQRs and paired ratios.

Every variant of one comparison is timed in one process, after untimed warm-up rounds, with the
variants' repeats interleaved round-robin (the starting variant rotating) so that background
load on a shared machine hits every variant alike. On a CPU the process CPU time of each call is
recorded too: it is far less sensitive to other processes than wall-clock time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work, so that a timer measures it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_round_robin(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    device: torch.device,
    warmup_fns: dict[str, Callable[[], object]] | None = None,
    log: Callable[[str], None] = print,
    cpu_times: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``warmup`` untimed rounds, then ``repeats`` rounds in
    which every function runs once, the starting function rotating from round to round.

    ``cpu_times``, when given, receives the process CPU seconds of each call (all threads)."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            (warmup_fns or fns)[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    if cpu_times is not None:
        cpu_times.update({name: [] for name in names})
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            synchronize(device)
            cpu_start, start = time.process_time(), time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
            if cpu_times is not None:
                cpu_times[name].append(time.process_time() - cpu_start)
        log(
            f"  round {r + 1}/{repeats}: "
            + ", ".join(f"{n} {times[n][-1] * 1000:.0f}ms" for n in names)
        )
    return times


def summarize(values: Sequence[float]) -> dict:
    """Median, IQR (q3 - q1), min and the raw values."""
    values = list(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = values[0]
    return {
        "median": statistics.median(values),
        "iqr": q3 - q1,
        "min": min(values),
        "n": len(values),
        "values": values,
    }


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[i] / b[i] (robust to load that drifts between rounds)."""
    return statistics.median(x / y for x, y in zip(a, b))


def median_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Ratio of the medians of ``times[a]`` and ``times[b]``."""
    return statistics.median(times[a]) / statistics.median(times[b])


def cpu_speedup(cpu: dict, single: str, batched: str, device: torch.device) -> dict:
    """CPU-time medians of a slow and a fast variant and their ratio (CPU runs only)."""
    if device.type != "cpu":
        return {}
    b, s = statistics.median(cpu[batched]), statistics.median(cpu[single])
    return {"cpu_batched_s": b, "cpu_bs1_s": s, "cpu_speedup": s / b}
