"""The shared training path and the JoLA method on the tiny model."""

import json
import math

import pytest
import torch

from jola import gates
from jola.config import EvalConfig, ModelConfig
from jola.edits import EditConfig, attach, load_edits
from jola.evaluation import evaluate_generate
from jola.methods.jola import attach_trained_edits
from jola.models import load_model
from jola.prompts import PromptFormat, build_prompt
from jola.runner import as_run_config, run, run_directory
from jola.training import (
    IGNORE_INDEX,
    BestParametersCallback,
    PadCollator,
    assert_only_trainable,
    causal_lm_loss,
    encode_example,
    encode_examples,
)
from tasks import get_task, load_splits
from tasks.base import Example
from tests.helpers import compose_config, tiny_overrides

EXAMPLE = Example(
    id="e", instruction="Pick one.", target="the correct answer is answer2", answer="answer2"
)


def encode(tokenizer, example, max_length=512, eos=True):
    """An example as training encodes it (release template; EOS as asked)."""
    return encode_example(
        tokenizer, build_prompt(example.instruction), example.target, max_length, eos=eos
    )


@pytest.fixture()
def tiny():
    return load_model(ModelConfig(name="tiny_random", source="tiny_random"))


def test_encode_example_masks_the_prompt(tiny):
    tok = tiny.tokenizer
    enc = encode(tok, EXAMPLE, eos=True)
    n_target = len(tok(EXAMPLE.target, add_special_tokens=False)["input_ids"]) + 1
    assert enc["labels"][:-n_target] == [IGNORE_INDEX] * (len(enc["labels"]) - n_target)
    assert enc["labels"][-n_target:] == enc["input_ids"][-n_target:]
    assert enc["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(enc["input_ids"]).startswith("Below is an instruction")


def test_release_encoding_is_prompt_plus_bare_answer_without_eos(tiny):
    """The release's SFT text: its template + the data's answer field, no EOS."""
    tok = tiny.tokenizer
    task = get_task("siqa")
    example = Example(id="e", instruction="Pick one.", target="answer2", answer="answer2")
    (enc,) = encode_examples(tok, task, [example], PromptFormat(), max_length=512)
    text = tok.decode(enc["input_ids"], skip_special_tokens=True)
    assert text == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n ### Instruction:\nPick one.\n\n### Response:\nanswer2"
    )
    assert enc["input_ids"][-1] != tok.eos_token_id
    n_target = len(tok("answer2", add_special_tokens=False)["input_ids"])
    assert sum(label != IGNORE_INDEX for label in enc["labels"]) == n_target
    sentence = PromptFormat(template="alpaca", target="sentence", eos=True)
    (old,) = encode_examples(tok, task, [example], sentence, max_length=512)
    assert tok.decode(old["input_ids"], skip_special_tokens=True).endswith(
        "request.\n\n### Instruction:\nPick one.\n\n### Response:\nthe correct answer is answer2"
    )
    assert old["input_ids"][-1] == tok.eos_token_id


def test_too_long_a_prompt_keeps_its_end(tiny):
    enc = encode(tiny.tokenizer, EXAMPLE, max_length=16, eos=False)
    assert len(enc["input_ids"]) == 16
    assert tiny.tokenizer.decode(enc["input_ids"]).endswith("answer2")


def test_answer_only_logits_give_the_full_vocabulary_loss(tiny):
    collate = PadCollator(tiny.tokenizer.pad_token_id)
    other = Example(id="f", instruction="A longer instruction " * 4, target="answer1", answer="a")
    batch = collate([encode(tiny.tokenizer, ex) for ex in (EXAMPLE, other)])
    full = causal_lm_loss(tiny.model, batch, answer_only_logits=False)
    fast = causal_lm_loss(tiny.model, batch, answer_only_logits=True)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)


def test_assert_only_trainable_catches_a_trainable_lm_head(tiny):
    handle = attach(tiny.model, EditConfig())
    for p in tiny.model.parameters():
        p.requires_grad_(False)
    for p in handle.edits.parameters():
        p.requires_grad_(True)
    assert_only_trainable(tiny.model, list(handle.edits.parameters()))
    tiny.model.lm_head.weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match="lm_head"):
        assert_only_trainable(tiny.model, list(handle.edits.parameters()))


def test_best_parameters_callback_stops_and_restores_best():
    param = torch.nn.Parameter(torch.zeros(2))
    cb = BestParametersCallback([param], patience=2)

    class State:
        epoch, global_step = 0, 0

    class Control:
        should_training_stop = False

    state, control = State(), Control()
    for epoch, (value, loss) in enumerate([(1.0, 3.0), (2.0, 2.0), (3.0, 2.5), (4.0, 2.1)], 1):
        with torch.no_grad():
            param.fill_(value)
        state.epoch = epoch
        cb.on_evaluate(None, state, control, metrics={"eval_loss": loss})
        assert control.should_training_stop == (epoch == 4)
    cb.on_train_end(None, state, control)
    assert param.tolist() == [2.0, 2.0] and cb.best_epoch == 2 and cb.best_loss == 2.0


def test_bf16_base_keeps_fp32_edits_and_gradients(tiny):
    model = tiny.model.to(torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(False)
    handle = attach(model, EditConfig())
    model.train()
    batch = PadCollator(tiny.tokenizer.pad_token_id)([encode(tiny.tokenizer, EXAMPLE)])
    causal_lm_loss(model, batch, answer_only_logits=True).backward()
    grads = [p.grad for p in handle.edits.parameters()]
    assert all(p.dtype == torch.float32 for p in handle.edits.parameters())
    assert all(g is not None and g.dtype == torch.float32 and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for n, p in model.named_parameters() if "jola_edits" not in n)


JOLA_ARGS = (
    "method=jola",
    "method.train.epochs=2",
    "method.train.batch_size=4",
    "method.train.warmup_steps=1",
    "method.train.logging_steps=1",
    "method.train.lr=0.05",
)


def test_jola_run_trains_only_edits_logs_sparsity_and_saves_a_reloadable_artifact(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, *JOLA_ARGS))
    base = load_model(ModelConfig(name="tiny_random", source="tiny_random")).model
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    results = run(cfg)
    run_dir = run_directory(as_run_config(cfg))

    layers, heads, head_dim = 2, 4, 16
    assert results["trainable_parameters"] == 2 * layers * heads * head_dim + 2 * layers * heads
    assert results["method_stats"]["edited_heads"]["total"] == layers * heads
    assert set(results["method_stats"]["edited_heads"]) == {
        "additive",
        "multiplicative",
        "either",
        "total",
    }
    assert results["training"]["steps"] == 4 and results["training"]["best_dev_loss"] < math.inf
    assert results["artifact_bytes"] < 50_000

    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    step_logs = [e for e in log if "loss" in e and "eval_loss" not in e]
    assert len(step_logs) == 4
    for entry in step_logs:
        assert {
            "closed_frac_add",
            "closed_frac_mult",
            "expected_l0_add",
            "expected_l0_mult",
            "lambda",
        } <= set(entry)
        assert 0.0 <= entry["closed_frac_add"] <= 1.0
    assert step_logs[0]["lambda"] == pytest.approx(0.1 * math.exp(-0.01 * 0))

    table = json.loads((run_dir / "gates.json").read_text())
    assert len(table["additive"]["eval_gate"]) == layers
    assert len(table["multiplicative"]["prob_open"][0]) == heads

    fresh = load_model(ModelConfig(name="tiny_random", source="tiny_random"))
    for key, value in fresh.model.state_dict().items():
        assert torch.equal(value, base_state[key]), key  # the base model is never written
    attach_trained_edits(fresh.model, run_dir)
    task = get_task("siqa")
    splits = load_splits(as_run_config(cfg).task, 8, 42)
    eval_cfg = EvalConfig(num_beams=1, max_new_tokens=8, progress=False)
    reloaded = evaluate_generate(fresh.model, fresh.tokenizer, task, splits.test, eval_cfg)
    saved = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert [p.response for p in reloaded] == [s["response"] for s in saved]
    trained = load_edits(run_dir / "edits")
    assert trained.offset.abs().max() > 1e-2  # lr 0.05 moved the edits away from N(0, 1e-3)


def test_warmup_ratio_is_a_fraction_of_the_planned_steps_rounded_up():
    from jola.config import TrainConfig
    from jola.training import warmup_steps

    assert warmup_steps(TrainConfig(), steps_per_epoch=25) == 50  # the steps themselves
    ratio = TrainConfig(warmup_steps=0, warmup_ratio=0.1, epochs=6, batch_size=32)
    assert warmup_steps(ratio, steps_per_epoch=7) == 5  # ceil(0.1 x 42): n=200 at batch 32
    assert warmup_steps(ratio, steps_per_epoch=32) == 20  # ceil(0.1 x 192): n=1000
    assert warmup_steps(ratio, steps_per_epoch=5) == 3  # 0.1 x 30 in floats is just over 3
    capped = TrainConfig(warmup_steps=0, warmup_ratio=0.25, max_steps=10)
    assert warmup_steps(capped, steps_per_epoch=100) == 3  # max_steps is the plan


def test_every_run_records_the_dev_loss_the_trainer_computes(tmp_path):
    """results.json's dev_loss: a trained run's is the kept best of training, and the shared
    dev_loss (HF's rule: batch means weighted by batch rows; eval batches of 3 over 8 dev
    items) gives that same number on a fresh model with the saved edits, so zero-shot and
    RePE, which compute it, are on the trainers' axis; zero-shot records the base model's."""
    from jola.training import dev_loss

    args = (*JOLA_ARGS, "method.train.eval_batch_size=3")
    cfg = compose_config(tiny_overrides(tmp_path, *args))
    results = run(cfg)
    run_dir = run_directory(as_run_config(cfg))
    assert results["dev_loss"] == results["training"]["best_dev_loss"]
    run_cfg = as_run_config(cfg)
    task, prompt = get_task("siqa"), PromptFormat.from_config(run_cfg.prompt)
    dev = load_splits(run_cfg.task, 8, 42).dev
    fresh = load_model(ModelConfig(name="tiny_random", source="tiny_random"))
    base = dev_loss(fresh, task, dev, prompt, 512, 3)
    attach_trained_edits(fresh.model, run_dir)
    assert dev_loss(fresh, task, dev, prompt, 512, 3) == pytest.approx(
        results["dev_loss"], abs=1e-6
    )

    zero_args = ("method=zero_shot", "method.train.eval_batch_size=3")
    zero = compose_config(tiny_overrides(tmp_path, *zero_args))
    assert run(zero)["dev_loss"] == pytest.approx(base, abs=1e-6)
    assert base != pytest.approx(results["dev_loss"], abs=1e-4)  # training moved it


def test_dev_loss_weights_batches_by_their_rows_as_hf_trainer_does():
    from jola.training import dev_loss

    tiny = load_model(ModelConfig(name="tiny_random", source="tiny_random"))
    task, prompt = get_task("siqa"), PromptFormat()
    targets = ["answer1", "the correct answer is answer2", "no", "answer3 and more words", "yes"]
    examples = [  # answers of different token counts: row and token weighting differ
        Example(id=str(i), instruction=f"Question {i}?", target=t, answer=t)
        for i, t in enumerate(targets)
    ]
    singles = [dev_loss(tiny, task, [ex], prompt, 512, 1) for ex in examples]
    pair_means = [dev_loss(tiny, task, examples[i : i + 2], prompt, 512, 2) for i in range(0, 5, 2)]
    assert dev_loss(tiny, task, examples, prompt, 512, 1) == pytest.approx(sum(singles) / 5)
    expected = (2 * pair_means[0] + 2 * pair_means[1] + pair_means[2]) / 5
    assert dev_loss(tiny, task, examples, prompt, 512, 2) == pytest.approx(expected)
    tokens = [len(tiny.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets]
    token_weighted = sum(s * n for s, n in zip(singles, tokens)) / sum(tokens)
    assert len(set(tokens)) > 1
    # within a batch the loss is per answer token, across batches per row
    assert dev_loss(tiny, task, examples, prompt, 512, 5) == pytest.approx(token_weighted)
    assert sum(singles) / 5 != pytest.approx(token_weighted, rel=1e-3)


def test_jola_regularizer_matches_the_gate_penalty(tmp_path):
    from jola.methods import build_method

    cfg = as_run_config(
        compose_config(
            tiny_overrides(
                tmp_path,
                "method=jola",
                "method.penalty=paper",
                "method.schedule=constant",
                "+method.schedule_args.value=0.5",
            )
        )
    )
    method = build_method(cfg.method)
    loaded = load_model(cfg.model)
    method.prepare(loaded)
    reg = method.regularizer(loaded.model, step=3)
    edits = method.edits
    expected = 0.5 * (
        gates.prob_open(edits.log_alpha_add).sum() + gates.prob_open(edits.log_alpha_mult).sum()
    )
    torch.testing.assert_close(reg, expected)


def test_jola_ablation_options_and_bad_names(tmp_path):
    from jola.errors import UserError
    from jola.methods import build_method

    def build(*extra):
        cfg = as_run_config(compose_config(tiny_overrides(tmp_path, "method=jola", *extra)))
        method = build_method(cfg.method)
        loaded = load_model(cfg.model)
        method.prepare(loaded)
        return method, loaded

    method, loaded = build("method.multiplicative=false")
    assert sum(p.numel() for p in method.trainable_parameters(loaded.model)) == 2 * 4 * 16 + 2 * 4
    method, loaded = build("method.gated=false")
    assert method.regularizer(loaded.model, 0) is None
    assert sum(p.numel() for p in method.trainable_parameters(loaded.model)) == 2 * 2 * 4 * 16
    with pytest.raises(UserError, match="unknown method.penalty 'l1'"):
        build("method.penalty=l1")
    with pytest.raises(UserError, match="unknown method.schedule 'cosine'"):
        build("method.schedule=cosine")
