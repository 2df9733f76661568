"""The evaluation benchmarks: batched vs batch-size-1 generation and log-likelihood scoring.

Batched generation (length-sorted, left-padded, :func:`jola.evaluation.generate_responses`) is
timed against batch size 1 (the release's protocol) and against unsorted batches, greedy and
with beams, and log-likelihood scoring (``eval.mode=loglik``) batched against one sequence per
forward; each reports how many predictions differ between the protocols (0 expected).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from jola.bench.models import clone_sharing_weights, with_model
from jola.bench.timing import cpu_speedup, paired_ratio, summarize, time_round_robin
from jola.config import EvalConfig
from jola.edits import EditConfig, attach
from jola.evaluation import evaluate_loglik, generate_responses
from jola.models import LoadedModel, freeze
from jola.prompts import first_line
from tasks import get_task


def prepare_eval_model(bench: LoadedModel) -> LoadedModel:
    """A weight-sharing copy with freshly initialised JoLA edits attached, in eval mode."""
    model = freeze(clone_sharing_weights(bench.model))
    model.eval()
    attach(model, EditConfig(), generator=torch.Generator().manual_seed(0))
    return with_model(bench, model)


def _throughput(summary: dict, examples: int, batch_size: int) -> dict:
    return {**summary, "batch_size": batch_size, "examples_per_s": examples / summary["median"]}


def bench_generation(
    bench: LoadedModel,
    prompts: Sequence[str],
    *,
    batch_size: int,
    beams: Sequence[int],
    max_new_tokens: int,
    repeats: int,
    log=print,
) -> dict:
    """examples/s of batched vs batch-size-1 generation, and how many responses differ."""
    last: dict[str, list[str]] = {}

    def runner(bs: int, nb: int, subset=None, key: str | None = None, sort: bool = True):
        def run():
            out = generate_responses(
                bench.model,
                bench.tokenizer,
                list(subset if subset is not None else prompts),
                max_new_tokens=max_new_tokens,
                num_beams=nb,
                batch_size=bs,
                progress=False,
                sort_by_length=sort,
            )
            if key is not None:
                last[key] = out

        return run

    fns, warm = {}, {}
    for nb in beams:
        for bs, sort, suffix in (
            (batch_size, True, ""),
            (batch_size, False, "_unsorted"),
            (1, True, ""),
        ):
            key = f"beams{nb}_bs{bs}{suffix}"
            fns[key] = runner(bs, nb, key=key, sort=sort)
            warm[key] = runner(bs, nb, subset=prompts[: min(2, len(prompts))], sort=sort)
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(fns, repeats, 1, bench.device, warmup_fns=warm, log=log, cpu_times=cpu)
    n, effective_bs = len(prompts), min(batch_size, len(prompts))
    out: dict = {"examples": n, "max_new_tokens": max_new_tokens, "modes": {}}
    for nb in beams:
        batched, single = f"beams{nb}_bs{batch_size}", f"beams{nb}_bs1"
        unsorted = f"{batched}_unsorted"
        pairs = list(zip(last[batched], last[single]))
        tb, ts, tu = summarize(times[batched]), summarize(times[single]), summarize(times[unsorted])
        out["modes"][f"beams{nb}"] = {
            "batched": _throughput(tb, n, effective_bs),
            "bs1": _throughput(ts, n, 1),
            "batched_unsorted": _throughput(tu, n, effective_bs),
            "speedup": ts["median"] / tb["median"],
            "sorting_speedup": tu["median"] / tb["median"],
            "paired_sorting_speedup": paired_ratio(times[unsorted], times[batched]),
            "differing_responses_unsorted": sum(
                a != b for a, b in zip(last[unsorted], last[single])
            ),
            "paired_speedup": paired_ratio(times[single], times[batched]),
            **cpu_speedup(cpu, single, batched, bench.device),
            "differing_responses": sum(a != b for a, b in pairs),
            "differing_first_lines": sum(first_line(a) != first_line(b) for a, b in pairs),
            "responses_batched": last[batched],
            "responses_bs1": last[single],
        }
    return out


def profile_generation(bench: LoadedModel, prompts: Sequence[str], max_new_tokens: int) -> dict:
    """Where one batched greedy ``generate`` spends its time: the operators with the largest
    self time (``torch.profiler``), as shares of the total."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if bench.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    kwargs = dict(max_new_tokens=max_new_tokens, batch_size=len(prompts), progress=False)
    generate_responses(bench.model, bench.tokenizer, list(prompts[:2]), **kwargs)  # warm-up
    with profile(activities=activities) as prof:
        generate_responses(bench.model, bench.tokenizer, list(prompts), **kwargs)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    return {
        "prompts": len(prompts),
        "self_cpu_s": total / 1e6,
        "top_ops": [
            {"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in top
        ],
    }


def max_score_diff(a: Sequence, b: Sequence) -> float:
    """The largest difference between two runs' candidate log-likelihoods."""
    return max(abs(x.scores[k] - y.scores[k]) for x, y in zip(a, b) for k in x.scores)


def bench_loglik(
    bench: LoadedModel,
    examples,
    *,
    batch_size: int,
    repeats: int,
    task_name: str = "siqa",
    log=print,
) -> dict:
    """examples/s of batched vs batch-size-1 log-likelihood scoring (``eval.mode=loglik``)."""
    task = get_task(task_name)
    last: dict[int, list] = {}

    def runner(bs: int, subset=None):
        def run():
            cfg = EvalConfig(mode="loglik", batch_size=bs, progress=False)
            preds = evaluate_loglik(bench.model, bench.tokenizer, task, subset or examples, cfg)
            if subset is None:
                last[bs] = preds

        return run

    sizes = (batch_size, 1)
    fns = {f"loglik_bs{bs}": runner(bs) for bs in sizes}
    warm = {f"loglik_bs{bs}": runner(bs, examples[:2]) for bs in sizes}
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(fns, repeats, 1, bench.device, warmup_fns=warm, log=log, cpu_times=cpu)
    batched, single = last[batch_size], last[1]
    many, one = f"loglik_bs{batch_size}", "loglik_bs1"
    tb, ts = summarize(times[many]), summarize(times[one])
    n = len(examples)
    return {
        "examples": n,
        "candidates_per_example": len(batched[0].scores) if batched else 0,
        "batched": _throughput(tb, n, batch_size),
        "bs1": _throughput(ts, n, 1),
        "speedup": ts["median"] / tb["median"],
        "paired_speedup": paired_ratio(times[one], times[many]),
        **cpu_speedup(cpu, one, many, bench.device),
        "differing_predictions": sum(a.parsed != b.parsed for a, b in zip(batched, single)),
        "max_abs_score_diff": max_score_diff(batched, single),
    }
