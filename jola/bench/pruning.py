"""Evaluation with and without ``eval.prune_closed`` when most heads are closed.

Two weight-sharing copies carry the same JoLA edits, one attached as a run attaches them and one
with ``prune_closed=True`` (layers whose heads are all closed get no hook). Log-likelihood
scoring and greedy batched generation are timed on both, interleaved, with the number of
predictions that differ (0: pruning changes nothing computed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from jola.bench.evaluation import max_score_diff
from jola.bench.models import clone_sharing_weights, with_model
from jola.bench.timing import cpu_speedup, paired_ratio, summarize, time_round_robin
from jola.config import EvalConfig
from jola.edits import EditConfig, attach
from jola.evaluation import evaluate_loglik, generate_responses
from jola.models import LoadedModel, freeze
from tasks import get_task

CLOSED_LOG_ALPHA, OPEN_LOG_ALPHA = -5.0, 3.0


def pruning_models(bench: LoadedModel, closed_fraction: float, seed: int = 0):
    """Two weight-sharing copies with the same JoLA edits, in eval mode: one attached as a run
    attaches them, one with ``prune_closed=True``. A ``closed_fraction`` of the heads (drawn
    with ``seed``) have both gates closed (log_alpha -5), the others both open (+3); the
    vectors are N(0, 0.05) so that the open heads change the output. Returns both and a
    description (head counts, hooked layers)."""
    generator = torch.Generator().manual_seed(seed)
    full, pruned = clone_sharing_weights(bench.model), clone_sharing_weights(bench.model)
    for model in (full, pruned):
        freeze(model).eval()
    handle = attach(full, EditConfig(), generator=generator)
    edits = handle.edits
    layers, heads = edits.num_layers, edits.num_heads
    closed = torch.randperm(layers * heads, generator=generator)[
        : round(closed_fraction * layers * heads)
    ]
    with torch.no_grad():
        edits.scale.normal_(0, 0.05, generator=generator)
        edits.offset.normal_(0, 0.05, generator=generator)
        log_alpha = torch.full((layers * heads,), OPEN_LOG_ALPHA)
        log_alpha[closed] = CLOSED_LOG_ALPHA
        edits.log_alpha_add.copy_(log_alpha.view(layers, heads))
        edits.log_alpha_mult.copy_(log_alpha.view(layers, heads))
    pruned_handle = attach(pruned, edits, prune_closed=True)
    info = {
        "closed_fraction": closed_fraction,
        "heads": layers * heads,
        "open_heads": edits.head_counts()["either"],
        "layers": layers,
        "hooked_layers_full": len(handle.hooked_layers),
        "hooked_layers_pruned": len(pruned_handle.hooked_layers),
    }
    return with_model(bench, full), with_model(bench, pruned), info


def bench_pruning(
    bench: LoadedModel,
    examples,
    prompts: Sequence[str],
    *,
    closed_fraction: float,
    batch_size: int,
    max_new_tokens: int,
    repeats: int,
    task_name: str = "siqa",
    log=print,
) -> dict:
    """Evaluation throughput with and without ``eval.prune_closed`` (see the module)."""
    full, pruned, info = pruning_models(bench, closed_fraction)
    task = get_task(task_name)
    last: dict[str, list] = {}
    cfg = EvalConfig(mode="loglik", batch_size=batch_size, progress=False)

    def loglik(model: LoadedModel, key: str, subset=None):
        def run():
            out = evaluate_loglik(model.model, model.tokenizer, task, subset or examples, cfg)
            if subset is None:
                last[key] = out

        return run

    def generate(model: LoadedModel, key: str, subset=None):
        def run():
            out = generate_responses(
                model.model,
                model.tokenizer,
                list(subset or prompts),
                max_new_tokens=max_new_tokens,
                num_beams=1,
                batch_size=batch_size,
                progress=False,
            )
            if subset is None:
                last[key] = out

        return run

    fns, warm = {}, {}
    for name, model in (("full", full), ("pruned", pruned)):
        fns[f"loglik_{name}"] = loglik(model, f"loglik_{name}")
        warm[f"loglik_{name}"] = loglik(model, "", examples[:2])
        fns[f"generate_{name}"] = generate(model, f"generate_{name}")
        warm[f"generate_{name}"] = generate(model, "", prompts[:2])
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(fns, repeats, 1, bench.device, warmup_fns=warm, log=log, cpu_times=cpu)
    n = len(examples)
    out: dict = {**info, "examples": n, "task": task_name, "max_new_tokens": max_new_tokens}
    for mode in ("loglik", "generate"):
        tf, tp = summarize(times[f"{mode}_full"]), summarize(times[f"{mode}_pruned"])
        a, b = last[f"{mode}_full"], last[f"{mode}_pruned"]
        entry = {
            "full": {**tf, "examples_per_s": n / tf["median"]},
            "pruned": {**tp, "examples_per_s": n / tp["median"]},
            "speedup": tf["median"] / tp["median"],
            "paired_speedup": paired_ratio(times[f"{mode}_full"], times[f"{mode}_pruned"]),
            **cpu_speedup(cpu, f"{mode}_full", f"{mode}_pruned", bench.device),
        }
        if mode == "loglik":
            entry["differing_predictions"] = sum(x.parsed != y.parsed for x, y in zip(a, b))
            entry["max_abs_score_diff"] = max_score_diff(a, b)
        else:
            entry["differing_predictions"] = sum(x != y for x, y in zip(a, b))
        out[mode] = entry
    return out
