"""One experiment, start to end: data -> model -> method -> (training) -> evaluation -> results.

Usable without Hydra: ``run(RunConfig(model=..., task=..., method=...))``.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import tasks
from jola.config import EvalConfig, RunConfig
from jola.errors import UserError
from jola.evaluation import EVAL_MODES, new_token_budget
from jola.methods import build_method
from jola.metrics import compute_metrics, describe_metrics, metric_options
from jola.models import load_model
from jola.profiles import STAND_IN_SOURCES, apply_network_mode, hub_is_offline
from jola.prompts import PromptFormat
from jola.resolution import resolve_profile
from jola.results import (
    FAILED_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    CorruptResults,
    git_state,
    package_versions,
    read_results,
    write_json_atomic,
    write_jsonl,
)
from jola.rundir import discard, promote, remove_leftovers, run_lock, staging_dir
from jola.tracking import make_tracker
from jola.validation import validate
from jola.variants import (
    config_differences,
    differences,
    run_subdir,
    variant_name,
)


def as_run_config(cfg) -> RunConfig:
    """Accept a RunConfig, or a (Hydra) DictConfig built from the registered schemas."""
    if isinstance(cfg, RunConfig):
        cfg = OmegaConf.structured(cfg)
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected RunConfig or DictConfig, got {type(cfg).__name__}")
    for group in ("model", "task", "method"):
        if OmegaConf.is_missing(cfg, group):
            raise UserError(f"the config has no '{group}'; choose one, e.g. {group}=<name>")
    return OmegaConf.to_object(cfg)


def config_dict(cfg: RunConfig) -> dict:
    """The resolved config as plain data (what results.json records)."""
    return dataclasses.asdict(cfg)


def run_directory(cfg: RunConfig) -> Path:
    """``<output_root>/<model>/<method>/<task>/n<n>[/<variant>]/seed<seed>`` (jola.variants);
    Hydra's run and sweep directories use the same function."""
    return Path(cfg.output_root) / run_subdir(resolve_profile(cfg, quiet=True))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run(cfg, outcome: dict | None = None) -> dict:
    """Run one experiment (or skip it if finished) and return its results dictionary.

    Every bad value is refused before anything is loaded (jola.validation). The run holds its
    directory's lock throughout, writes into a staging folder and moves its files into place
    only when it finished, results.json last (jola.rundir); a failure or an interrupt writes
    failed.json and leaves an earlier finished run, an overwritten one included, intact.
    """
    cfg = resolve_profile(as_run_config(cfg))
    validate(cfg)
    run_dir = run_directory(cfg)
    outcome = outcome if outcome is not None else {}
    outcome["run_dir"] = str(run_dir)
    with run_lock(run_dir):
        try:
            finished = read_results(run_dir)
        except CorruptResults as err:
            if not cfg.overwrite:
                record_failure(run_dir, cfg, err)
                raise
            print(f"warning: {err}; replacing it", file=sys.stderr)
            finished = None
        if finished is not None and not cfg.overwrite:
            diffs = config_differences(finished.get("config", {}), config_dict(cfg))
            if diffs:
                raise UserError(
                    f"{run_dir} holds a finished run with a different config "
                    f"({'; '.join(diffs)}); pass overwrite=true to replace it or set "
                    "output_root elsewhere"
                )
            print(f"skip: {run_dir} is finished (results.json exists; overwrite=true reruns it)")
            outcome["status"] = "skipped"
            return finished
        remove_leftovers(run_dir)
        (run_dir / FAILED_FILE).unlink(missing_ok=True)
        staging = staging_dir(run_dir)
        try:
            apply_network_mode(cfg, tuple(tasks.get_task(cfg.task.name, cfg.task).metrics))
            results = execute(cfg, staging, run_dir)
            promote(staging, run_dir, last=RESULTS_FILE)
        except BaseException as err:
            discard(staging)
            record_failure(run_dir, cfg, err)
            raise
    outcome["status"] = "finished"
    summary = ", ".join(f"{k}={v:.4f}" for k, v in results["metrics"].items())
    total = results["timings"]["total_s"]
    print(f"done: {cfg.method.name} on {cfg.task.name}: {summary} ({total:.0f}s) -> {run_dir}")
    return results


def record_failure(run_dir: Path, cfg: RunConfig, err: BaseException) -> None:
    """Write failed.json: what went wrong, where, and with which config."""
    write_json_atomic(
        run_dir / FAILED_FILE,
        {
            "error_type": type(err).__name__,
            "error": str(err) or type(err).__name__,
            "user_error": isinstance(err, UserError),
            "interrupted": isinstance(err, KeyboardInterrupt),
            "traceback": traceback.format_exc(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git": git_state(),
            "config": config_dict(cfg),
        },
    )


def execute(cfg: RunConfig, run_dir: Path, final_dir: Path | None = None) -> dict:
    """The experiment itself: data, model, method, training, evaluation, results.json, all
    written into ``run_dir`` (the staging folder of ``final_dir``)."""
    final_dir = final_dir or run_dir
    started = time.time()
    code = git_state()  # now: a commit made while the run trains is not the code that ran
    timings: dict[str, float] = {}
    seed_everything(cfg.seed)
    task = tasks.get_task(cfg.task.name, cfg.task)
    prompt_format = PromptFormat.from_config(cfg.prompt)
    splits = tasks.load_splits(cfg.task, n=cfg.n, seed=cfg.seed)
    timings["data_s"] = time.time() - started

    t = time.time()
    loaded = load_model(cfg.model)
    timings["model_load_s"] = time.time() - t

    tracker = make_tracker(cfg.logger)
    tracker.start(config_dict(cfg), run_dir, run_name="/".join(final_dir.parts[-5:]))
    method = build_method(cfg.method, seed=cfg.seed)
    method.prepare(loaded)
    trainable = method.trainable_parameters(loaded.model)
    train_info: dict = {}
    if method.trains:
        from jola.training import train_method

        t = time.time()
        train_info = train_method(method, loaded, splits, cfg, run_dir, tracker)
        timings["train_s"] = time.time() - t
    else:  # a method that learns without gradients (RePE); the others return {} at once
        t = time.time()
        train_info = method.fit_without_gradients(
            loaded, splits.train, splits.dev, task=task, prompt_format=prompt_format, seed=cfg.seed
        )
        if train_info:
            timings["fit_s"] = time.time() - t
    t = time.time()
    final_dev_loss = settled_dev_loss(cfg, loaded, task, splits.dev, prompt_format, train_info)
    timings["dev_loss_s"] = time.time() - t
    artifact_files = method.save(run_dir)

    t = time.time()
    method.before_evaluation(loaded, cfg.eval.prune_closed)
    predictions = evaluate(loaded, task, splits.test, cfg.eval, prompt_format)
    timings["eval_s"] = time.time() - t
    write_jsonl(run_dir / PREDICTIONS_FILE, [dataclasses.asdict(p) for p in predictions])
    metric_predictions, metric_references = task.metric_inputs(predictions, splits.test)
    options = metric_options(cfg.eval)
    metrics = compute_metrics(task.metrics, metric_predictions, metric_references, options)
    timings["total_s"] = time.time() - started

    variant_settings = differences(cfg)
    base_params = loaded.info["num_parameters"]
    trainable_count = sum(p.numel() for p in trainable)
    results = {
        "metrics": metrics,
        "metric_info": describe_metrics(task.metrics, options),
        "method": cfg.method.name,
        "task": cfg.task.name,
        "suite": task.suite,
        "suite_tasks": tasks.suite_members(task.suite),
        "profile": cfg.data,
        "variant": variant_name(variant_settings),
        "variant_settings": variant_settings,
        "stand_in": cfg.task.source in STAND_IN_SOURCES,
        "prompt": dataclasses.asdict(cfg.prompt),
        "hub_offline": hub_is_offline(),
        "model": loaded.info,
        "n": cfg.n,
        "seed": cfg.seed,
        "trainable_parameters": trainable_count,
        "trainable_percent": 100.0 * trainable_count / max(base_params, 1),
        "artifact_bytes": sum(f.stat().st_size for f in artifact_files),
        "method_stats": method.final_stats(),
        "dev_loss": final_dev_loss,
        "training": train_info,
        "data": {
            **splits.protocol,
            "n_train": len(splits.train),
            "n_dev": len(splits.dev),
            "n_test": len(splits.test),
            "fingerprint": splits.fingerprint(),
            **task.reference_accuracies(splits.test),
        },
        "eval": {
            **dataclasses.asdict(cfg.eval),
            "max_new_tokens": new_token_budget(cfg.eval, task),
            "parse_failures": sum(p.parsed == "" for p in predictions),
            "truncated_prompts": sum(p.truncated for p in predictions),
        },
        "timings": timings,
        "versions": package_versions(),
        # float reductions follow the thread count: the same config on another count can
        # train along another path (early stopping amplifies it)
        "machine": {"torch_threads": torch.get_num_threads(), "device": str(loaded.device)},
        "git": code,
        "config": config_dict(cfg),
    }
    tracker.finish(results, method.gate_values())
    write_json_atomic(run_dir / RESULTS_FILE, results)
    return results


def settled_dev_loss(cfg: RunConfig, loaded, task, dev_examples, prompt_format, record: dict):
    """The dev loss of the model that is evaluated, on one axis for every method: the kept
    best of training or of a gradient-free fit (``best_dev_loss`` of its record), otherwise
    (zero-shot, a run whose training never evaluated) computed now as the trainer computes it
    (:func:`jola.training.dev_loss`). None without dev examples."""
    recorded = record.get("best_dev_loss")
    if isinstance(recorded, (int, float)) and math.isfinite(recorded):
        return float(recorded)
    if not dev_examples:
        return None
    from jola.training import dev_loss

    train = cfg.method.train
    return dev_loss(
        loaded, task, dev_examples, prompt_format, train.max_length, train.eval_batch_size
    )


def evaluate(loaded, task, examples, eval_cfg: EvalConfig, prompt_format=None):
    """Predictions on ``examples`` with the configured evaluation mode and prompt format."""
    mode = EVAL_MODES[eval_cfg.mode]
    return mode(loaded.model, loaded.tokenizer, task, examples, eval_cfg, prompt_format)
