"""Smoke test of the benchmark package (:mod:`jola.bench`) on the tiny random model: every
function runs, the per-head loop computes what ours computes, batched and unbatched predictions
are compared.

Timings are never asserted (only that they were taken): speed is measured by the benchmark and
written down in docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jola.bench.cli import parse_args
from jola.bench.data import eval_inputs, siqa_batch, synthetic_batch
from jola.bench.evaluation import (
    bench_generation,
    bench_loglik,
    prepare_eval_model,
    profile_generation,
)
from jola.bench.memory import memory_probe
from jola.bench.models import clone_sharing_weights, load_bench_model
from jola.bench.per_head_loop import LoopJolaEdits, check_loop_equivalence
from jola.bench.pruning import bench_pruning, pruning_models
from jola.bench.report import markdown
from jola.bench.training import bench_train
from jola.bench.variants import TRAIN_VARIANTS, VARIANTS, build_variant
from jola.edits import EditConfig, attach
from jola.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny():
    return load_bench_model("tiny_random", "cpu")


@pytest.fixture(scope="module")
def batch(tiny):
    return siqa_batch(tiny.tokenizer, batch_size=2, device=tiny.device)


def _args(*extra: str):
    return parse_args(
        ["--model", "tiny_random", "--repeats", "1", "--warmup", "0", "--batch-size", "2", *extra]
    )


def test_training_batch_labels_only_the_answer(tiny, batch):
    labelled = batch["labels"] != -100
    assert labelled.any(dim=1).all()
    # labels start after the prompt: the first labelled position of each row is well inside it
    assert (labelled.float().argmax(dim=1) > 50).all()
    assert torch.equal(batch["labels"][labelled], batch["input_ids"][labelled])


def test_per_head_loop_gives_our_logits_and_gradients(tiny, batch):
    eq = check_loop_equivalence(tiny, batch)
    assert eq["edit_effect_on_logits"] > 1e-2  # the edits change the output noticeably ...
    assert eq["max_abs_logit_diff"] < 1e-5  # ... and both implementations agree on it
    assert eq["max_abs_grad"] > 0
    assert eq["max_abs_grad_diff"] <= 1e-5 * eq["max_abs_grad"] + 1e-8


def test_loop_edits_copy_every_parameter(tiny):
    model = clone_sharing_weights(tiny.model)
    edits = attach(model, EditConfig()).edits
    loop = LoopJolaEdits.from_head_edits(edits)
    assert torch.equal(torch.stack(list(loop.scale)), edits.scale)
    assert torch.equal(torch.stack(list(loop.offset)), edits.offset)
    assert torch.equal(torch.stack(list(loop.log_alpha_add)), edits.log_alpha_add)
    assert torch.equal(torch.stack(list(loop.log_alpha_mult)), edits.log_alpha_mult)
    assert sum(p.numel() for p in loop.parameters()) == edits.num_parameters()


def test_clones_share_weights_but_not_modules(tiny, batch):
    lora = build_variant("lora", tiny, batch)
    bitfit = build_variant("bitfit", tiny, batch)
    # the base model is untouched: no adapters, no new biases, no hooks
    assert not any("lora_" in n for n, _ in tiny.model.named_parameters())
    assert tiny.model.model.layers[0].self_attn.q_proj.bias is None
    assert bitfit.model.model.layers[0].self_attn.q_proj.bias is not None
    base_weight = tiny.model.model.layers[0].mlp.down_proj.weight
    assert bitfit.model.model.layers[0].mlp.down_proj.weight is base_weight
    assert any("lora_" in n for n, _ in lora.model.named_parameters())


def test_every_step_variant_runs_and_is_timed(tiny, batch):
    out = bench_train(tiny, batch, TRAIN_VARIANTS, _args(), log=lambda _: None)
    assert set(out["variants"]) == set(TRAIN_VARIANTS)
    for name, entry in out["variants"].items():
        assert entry["median"] > 0, name
        assert entry["n"] == 1
        assert entry["trainable_parameters"] > 0
        assert entry["ratio_to_floor"] > 0
        assert entry["cpu"]["n"] == 1 and entry["cpu_ratio_to_floor"] > 0  # CPU time too
    v = out["variants"]
    assert v["floor"]["trainable_parameters"] == v["floor_attn0"]["trainable_parameters"] == 1
    assert v["jola"]["trainable_parameters"] == v["jola_loop"]["trainable_parameters"]
    assert v["jola_full_vocab"]["answer_only_logits"] is False
    assert v["jola"]["answer_only_logits"] is True
    assert v["jola_eager"]["attn_implementation"] == "eager"
    assert v["jola"]["attn_implementation"] == "sdpa"
    assert {"jola_loop_vs_jola", "full_vocab_vs_answer_only", "eager_vs_sdpa"} <= set(
        out["comparisons"]
    )


@pytest.mark.parametrize("name", ["floor", "floor_attn0", "jola", "jola_loop", "lora", "bitfit"])
def test_step_updates_only_the_trainable_parameters(tiny, batch, name):
    variant = build_variant(name, tiny, batch)
    before = [p.detach().clone() for p in variant.params]
    frozen = {n: p.detach().clone() for n, p in tiny.model.named_parameters()}
    loss = variant.step()
    assert loss > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, variant.params))
    for n, p in tiny.model.named_parameters():
        assert torch.equal(frozen[n], p), n


def test_checkpointing_variant_gives_gradients(tiny, batch):
    variant = build_variant("jola_checkpointing", tiny, batch)
    variant.optimizer.zero_grad()
    variant.loss_fn(0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in variant.params)


def test_generation_compares_batched_and_unbatched(tiny):
    _, prompts = eval_inputs(3)
    model = prepare_eval_model(tiny)
    out = bench_generation(
        model, prompts, batch_size=2, beams=[1], max_new_tokens=4, repeats=1, log=lambda _: None
    )
    mode = out["modes"]["beams1"]
    assert mode["batched"]["examples_per_s"] > 0 and mode["bs1"]["examples_per_s"] > 0
    assert mode["cpu_speedup"] > 0
    differ = sum(a != b for a, b in zip(mode["responses_batched"], mode["responses_bs1"]))
    assert mode["differing_responses"] == differ
    assert len(mode["responses_bs1"]) == 3
    # left padding with an attention mask: greedy predictions do not depend on the batch (fp32)
    assert differ == 0
    # the unsorted batches (original order) are timed too, and predict the same
    assert mode["batched_unsorted"]["examples_per_s"] > 0 and mode["sorting_speedup"] > 0
    assert mode["differing_responses_unsorted"] == 0


def test_loglik_compares_batched_and_unbatched(tiny):
    examples, _ = eval_inputs(2)
    model = prepare_eval_model(tiny)
    out = bench_loglik(model, examples, batch_size=4, repeats=1, log=lambda _: None)
    assert out["differing_predictions"] == 0
    assert out["max_abs_score_diff"] < 1e-3
    assert out["batched"]["examples_per_s"] > 0


def test_llama31_8b_shape_builds_and_steps_on_cpu():
    big = load_bench_model("llama31_8b_shape", "cpu", layers=1, shape_divisor=64)
    config = big.model.config
    assert (config.num_attention_heads, config.num_key_value_heads) == (32, 8)
    assert config.rope_parameters["rope_theta"] == 500000.0
    assert config.hidden_size == 4096 // 64 and config.vocab_size == 128256 // 64
    batch = synthetic_batch(config.vocab_size, 2, 16, 4, big.device)
    assert int((batch["labels"] != -100).sum()) == 2 * 4
    for name in ("floor", "jola", "jola_loop"):
        assert build_variant(name, big, batch).step() > 0
    assert check_loop_equivalence(big, batch)["max_abs_logit_diff"] < 1e-4


def test_memory_probe_reports_a_peak(tiny):
    args = _args("--memory-probe", "jola", "--memory-steps", "1")
    result = memory_probe(args)
    assert result["peak_rss_during_steps_mib"] > 0
    assert result["trainable_parameters"] > 0


def test_markdown_renders_every_section(tiny, batch):
    results = {
        "model": "tiny_random",
        "meta": {"device": "cpu"},
        "train": bench_train(tiny, batch, ["floor", "jola"], _args(), log=lambda _: None),
        "loop_equivalence": check_loop_equivalence(tiny, batch),
    }
    text = markdown(results)
    assert "| floor |" in text and "| jola |" in text and "Per-head loop" in text


def test_evaluation_prompts_can_come_from_another_task(tiny):
    examples, prompts = eval_inputs(3, task="boolq")
    assert len(examples) == len(prompts) == 3
    assert all(ex.instruction in p for ex, p in zip(examples, prompts))
    model = prepare_eval_model(tiny)
    out = bench_loglik(
        model, examples, batch_size=4, repeats=1, task_name="boolq", log=lambda _: None
    )
    assert out["candidates_per_example"] == 2  # true / false
    assert out["differing_predictions"] == 0


def test_generation_profile_lists_where_time_goes(tiny):
    _, prompts = eval_inputs(2)
    out = profile_generation(prepare_eval_model(tiny), prompts, max_new_tokens=3)
    shares = [o["share"] for o in out["top_ops"]]
    assert out["prompts"] == 2 and out["self_cpu_s"] > 0
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert all(o["op"] and o["calls"] > 0 for o in out["top_ops"])
    assert "Profile of one batched greedy generate" in markdown(
        {"model": "tiny_random", "meta": {"device": "cpu"}, "generation_profile": out}
    )


def test_pruning_bench_times_both_and_predicts_the_same(tiny):
    examples, prompts = eval_inputs(3)
    out = bench_pruning(
        tiny,
        examples,
        prompts,
        closed_fraction=0.75,
        batch_size=2,
        max_new_tokens=3,
        repeats=1,
        log=lambda _: None,
    )
    assert out["heads"] == 8 and out["open_heads"] == 2
    assert out["hooked_layers_full"] == 2 and out["hooked_layers_pruned"] <= 2
    for mode in ("loglik", "generate"):
        assert out[mode]["differing_predictions"] == 0
        assert out[mode]["full"]["examples_per_s"] > 0 and out[mode]["pruned"]["examples_per_s"] > 0
    assert out["loglik"]["max_abs_score_diff"] == 0.0
    text = markdown({"model": "tiny_random", "meta": {"device": "cpu"}, "prune_closed": out})
    assert "eval.prune_closed" in text and "| loglik |" in text and "| generate |" in text
    full, pruned, _ = pruning_models(tiny, 0.75)
    ids = torch.tensor([[3, 40, 41, 42, 43]])
    with torch.no_grad():
        edited = full.model(ids).logits
        assert torch.equal(edited, pruned.model(ids).logits)
        assert not torch.equal(edited, tiny.model(ids).logits)  # the open heads do edit


def test_variants_are_registered_by_name_in_table_order():
    assert set(TRAIN_VARIANTS) == set(VARIANTS.names())
    assert TRAIN_VARIANTS[:4] == ("floor", "floor_attn0", "jola", "jola_loop")
    with pytest.raises(UserError, match=r"unknown bench variant 'nope'; choices: .*jola_loop"):
        VARIANTS.get("nope")


def test_bench_models_come_from_the_project_loader(tiny):
    from jola.models import MODEL_SOURCES, LoadedModel

    assert isinstance(tiny, LoadedModel)
    assert tiny.info["name"] == "tiny_random" and tiny.info["source"] == "tiny_random"
    assert "llama31_8b_shape" in MODEL_SOURCES  # the 8B shape is one more model source
    with pytest.raises(UserError, match="the full shape needs a GPU"):
        load_bench_model("llama31_8b_shape", "cpu")


def test_unknown_variant_stops_the_cli_before_loading(capsys):
    from jola.bench.cli import main

    with pytest.raises(SystemExit, match=r"^error: unknown bench variant 'nope'"):
        main(["--model", "tiny_random", "--variants", "jola,nope"])


def test_memory_probes_start_the_package_not_a_script():
    from jola.bench.memory import probe_command

    cmd = probe_command("jola", parse_args(["--model", "tiny_random", "--layers", "1"]))
    assert cmd[:5] == [sys.executable, "-m", "jola.bench", "--memory-probe", "jola"]
    assert cmd[-2:] == ["--layers", "1"]


def test_bench_script_is_a_thin_entry_point():
    script = (REPO_ROOT / "scripts" / "bench.py").read_text()
    assert "from jola.bench.cli import main" in script and len(script.splitlines()) <= 15
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "bench.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0 and "--variants" in proc.stdout


def test_jola_bench_console_entry_point_names_the_cli():
    tomllib = pytest.importorskip("tomllib")
    from jola.bench import cli

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["jola-bench"] == "jola.bench.cli:main" and callable(cli.main)
