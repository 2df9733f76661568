"""The training-step benchmark: every variant timed, interleaved, with ratios to ``floor``.

Each entry holds the summary of its wall-clock times (and CPU times on a CPU), its ratio to the
floor (of medians and paired per round) and what the variant is (trainable parameters,
answer-only loss, attention implementation); :data:`COMPARISONS` are the head-to-head ratios
the documentation quotes.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch

from jola.bench.data import describe_batch
from jola.bench.timing import median_ratio, paired_ratio, summarize, time_round_robin
from jola.bench.variants import build_variant
from jola.models import LoadedModel

# comparison name -> (variant, baseline): the ratio is variant / baseline
COMPARISONS = {
    "jola_vs_floor_attn0": ("jola", "floor_attn0"),
    "jola_loop_vs_jola": ("jola_loop", "jola"),
    "full_vocab_vs_answer_only": ("jola_full_vocab", "jola"),
    "eager_vs_sdpa": ("jola_eager", "jola"),
    "checkpointing_vs_none": ("jola_checkpointing", "jola"),
    "lora_vs_jola": ("lora", "jola"),
}


def _variant_entry(name: str, info: dict, times: dict, cpu: dict, on_cpu: bool) -> dict:
    """One variant's row: timings, ratios to ``floor`` when it was timed, and its info."""
    entry = {**summarize(times[name]), **info}
    if "floor" in times:
        entry["ratio_to_floor"] = median_ratio(times, name, "floor")
        entry["paired_ratio_to_floor"] = paired_ratio(times[name], times["floor"])
    if on_cpu:
        entry["cpu"] = summarize(cpu[name])
        if "floor" in cpu:
            entry["cpu_ratio_to_floor"] = median_ratio(cpu, name, "floor")
    return entry


def _comparisons(times: dict, cpu: dict, on_cpu: bool) -> dict:
    """The :data:`COMPARISONS` whose two variants were both timed."""
    out = {}
    for key, (a, b) in COMPARISONS.items():
        if a not in times or b not in times:
            continue
        out[key] = {
            "ratio": median_ratio(times, a, b),
            "paired_ratio": paired_ratio(times[a], times[b]),
        }
        if on_cpu:
            out[key]["cpu_ratio"] = median_ratio(cpu, a, b)
    if {"floor", "jola", "jola_loop"} <= set(times):
        floor = statistics.median(times["floor"])
        out["jola_loop_vs_jola"]["overhead_over_floor_s"] = {
            "jola": statistics.median(times["jola"]) - floor,
            "jola_loop": statistics.median(times["jola_loop"]) - floor,
        }
    return out


def bench_train(bench: LoadedModel, batch: dict, variants: Sequence[str], args, log=print) -> dict:
    """Time each training-step variant, interleaved (``args``: ``repeats``, ``warmup``)."""
    built = {}
    for name in variants:
        built[name] = build_variant(name, bench, batch, total_steps=100)
        log(f"prepared {name}: {built[name].info}")
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(
        {n: v.step for n, v in built.items()},
        args.repeats,
        args.warmup,
        bench.device,
        log=log,
        cpu_times=cpu,
    )
    on_cpu = bench.device.type == "cpu"
    return {
        "batch": describe_batch(batch),
        "threads": torch.get_num_threads(),
        "variants": {
            name: _variant_entry(name, v.info, times, cpu, on_cpu) for name, v in built.items()
        },
        "comparisons": _comparisons(times, cpu, on_cpu),
    }
