"""Speed and memory benchmark of the training step, evaluation and memory of every method.

One model per invocation, everything timed in ONE process (:mod:`jola.bench.timing`); peak
memory in a fresh subprocess per training variant (:mod:`jola.bench.memory`). The tables are
printed and the raw data written to ``docs/bench-<model>-<device>.json`` (``--out``).

    jola-bench --quick --model tiny_random          # = python scripts/bench.py ...
    jola-bench --quick --model smollm2_135m
    jola-bench --model llama31_8b_shape --device cuda --layers 8     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from jola.bench.data import describe_batch, eval_inputs, training_batch
from jola.bench.evaluation import (
    bench_generation,
    bench_loglik,
    prepare_eval_model,
    profile_generation,
)
from jola.bench.memory import MEMORY_TAG, bench_memory, memory_probe
from jola.bench.models import BENCH_MODELS, REPO_ROOT, load_bench_model
from jola.bench.per_head_loop import check_loop_equivalence
from jola.bench.pruning import bench_pruning
from jola.bench.report import machine_info, markdown
from jola.bench.training import bench_train
from jola.bench.variants import TRAIN_VARIANTS, VARIANTS
from jola.errors import UserError
from jola.profiles import set_offline_mode

PARTS = ("train", "eval", "loglik", "prune", "memory")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's options; ``--quick`` sets CPU-sized defaults for the counts not given."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=BENCH_MODELS.names(), default="tiny_random")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help="CPU-sized: fewer repeats and prompts")
    p.add_argument("--repeats", type=int, help="timed rounds (default 3 quick, 15 full)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    p.add_argument("--batch-size", type=int, default=8, help="training batch")
    p.add_argument("--seq-len", type=int, default=144, help="synthetic batch length (8B shape)")
    p.add_argument("--answer-tokens", type=int, default=8, help="synthetic labelled tokens")
    p.add_argument("--layers", type=int, help="llama31_8b_shape: number of layers")
    p.add_argument("--shape-divisor", type=int, default=1, help="llama31_8b_shape: width / N")
    p.add_argument("--variants", default=",".join(TRAIN_VARIANTS), help="comma-separated")
    p.add_argument("--eval-examples", type=int, help="prompts for evaluation (8 quick, 64 full)")
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument(
        "--eval-task",
        default="siqa",
        help="task whose packaged test prompts are evaluated (e.g. boolq: passages of varied length)",
    )
    p.add_argument("--eval-repeats", type=int, help="timed evaluation rounds (1 quick, 3 full)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--beams", default="1,4", help="comma-separated beam counts")
    p.add_argument("--memory-steps", type=int, default=2)
    p.add_argument(
        "--profile", action="store_true", help="profile one batched greedy generate (top ops)"
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--skip", default="", help="comma-separated: " + ",".join(PARTS))
    p.add_argument(
        "--prune-closed-fraction",
        type=float,
        default=0.9,
        help="prune benchmark: fraction of heads with both gates closed (default 0.9)",
    )
    p.add_argument("--out", help="JSON results (default docs/bench-<model>-<device>.json)")
    p.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    if args.eval_examples is None:
        args.eval_examples = 8 if args.quick else 64
    if args.eval_repeats is None:
        args.eval_repeats = 1 if args.quick else 3
    return args


def run_evaluation(bench, args, results: dict, skip: set[str], log: Callable[[str], None]):
    """The evaluation parts (generation, optional profile, loglik, pruning) into ``results``."""
    examples, prompts = eval_inputs(args.eval_examples, args.eval_task)
    eval_bench = prepare_eval_model(bench)
    if "eval" not in skip:
        results["generation"] = bench_generation(
            eval_bench,
            prompts,
            batch_size=args.eval_batch_size,
            beams=[int(b) for b in args.beams.split(",") if b],
            max_new_tokens=args.max_new_tokens,
            repeats=args.eval_repeats,
            log=log,
        )
        results["generation"]["task"] = args.eval_task
    if args.profile:
        results["generation_profile"] = profile_generation(
            eval_bench, prompts[: args.eval_batch_size], args.max_new_tokens
        )
        log(f"generation profile: {results['generation_profile']}")
    if "loglik" not in skip:
        results["loglik"] = bench_loglik(
            eval_bench,
            examples,
            batch_size=args.eval_batch_size,
            repeats=args.eval_repeats,
            task_name=args.eval_task,
            log=log,
        )
        results["loglik"]["task"] = args.eval_task
    if "prune" not in skip:
        results["prune_closed"] = bench_pruning(
            bench,
            examples,
            prompts,
            closed_fraction=args.prune_closed_fraction,
            batch_size=args.eval_batch_size,
            max_new_tokens=args.max_new_tokens,
            repeats=args.eval_repeats,
            task_name=args.eval_task,
            log=log,
        )
        log(f"prune_closed: {results['prune_closed']['loglik']['speedup']:.2f}x loglik")


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    """The whole benchmark for one model; returns the results dictionary."""
    skip = {s for s in args.skip.split(",") if s}
    variants = [v for v in args.variants.split(",") if v]
    for name in variants:
        VARIANTS.get(name)  # an unknown variant fails before anything loads
    torch.manual_seed(0)
    started = time.perf_counter()
    bench = load_bench_model(
        args.model, args.device, layers=args.layers, shape_divisor=args.shape_divisor
    )
    log(f"loaded {args.model} on {bench.device} ({bench.dtype}): {bench.info}")
    results: dict = {
        "model": args.model,
        "meta": {**machine_info(bench.device), "dtype": str(bench.dtype), "model_info": bench.info},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: v for k, v in vars(args).items() if k != "memory_probe"},
    }
    batch = training_batch(bench, args)
    log(f"training batch: {describe_batch(batch)}")
    if "train" not in skip:
        results["loop_equivalence"] = check_loop_equivalence(bench, batch)
        log(f"loop equivalence: {results['loop_equivalence']}")
        results["train"] = bench_train(bench, batch, variants, args, log=log)
    if not {"eval", "loglik", "prune"} <= skip:
        run_evaluation(bench, args, results, skip, log)
    if "memory" not in skip:
        results["memory"] = bench_memory(variants, args, log=log)
    results["meta"]["load_average_at_end"] = os.getloadavg()
    results["meta"]["seconds"] = time.perf_counter() - started
    return results


def default_out(model: str, device: str) -> Path:
    """``docs/bench-<model>-<device>.json`` in the checkout."""
    return REPO_ROOT / "docs" / f"bench-{model}-{device}.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print its tables, write its JSON; a user error exits with one line."""
    set_offline_mode()  # nothing here needs the hub; memory probes inherit the environment
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_MODE", "disabled")
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.memory_probe:
            print(MEMORY_TAG + json.dumps(memory_probe(args)))
            return 0
        results = run(args)
    except UserError as err:  # e.g. --device cuda without a GPU, an unknown variant
        raise SystemExit(f"error: {err}") from None
    print()
    print(markdown(results))
    out = Path(args.out or default_out(args.model, results["meta"]["device"].split(":")[0]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {out} ({results['meta']['seconds']:.0f} s)")
    return 0
