"""ReFT / LoReFT (jola/methods/reft.py, jola/edits/lowrank.py, residual.py, positions.py) on the
tiny random Llama: the formula against a hand computation, R's orthonormality through training,
which positions change, the prompt-pass-only rule of generation, padding, save -> load."""

from __future__ import annotations

import json

import pytest
import torch

from jola.config import ModelConfig
from jola.edits.lowrank import LowRankEdits, count_lowrank_parameters
from jola.edits.positions import (
    PassFacts,
    TokenPositions,
    declared_prompts,
    position_masks,
    prompt_lengths_from_labels,
)
from jola.edits.residual import attach_residual, attached_residual_handle, find_decoder_layers
from jola.errors import MergeNotSupported, UserError
from jola.evaluation import score_continuations
from jola.methods import build_method
from jola.methods.reft import ReftConfig
from jola.models import load_model
from jola.runner import as_run_config, run, run_directory
from jola.training import IGNORE_INDEX, causal_lm_loss, train_method
from tasks import load_splits
from tests.helpers import compose_config, tiny_overrides

TINY = ModelConfig(name="tiny_random", source="tiny_random")
HIDDEN = 64


def tiny():
    return load_model(TINY)


def ids(length: int, batch: int = 1, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, 90, (batch, length), generator=torch.Generator().manual_seed(seed))


def randomized(edits: LowRankEdits, std: float = 0.5, seed: int = 0) -> LowRankEdits:
    """Move W and b far from their init, so that the edit is large and easy to see."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in edits.source_parameters():
            p.add_(std * torch.randn(p.shape, generator=generator))
    return edits


def lowrank(layers, positions="f2+l3", share=True, rank=4) -> LowRankEdits:
    edits = LowRankEdits(
        HIDDEN,
        layers,
        TokenPositions.parse(positions),
        rank=rank,
        share_weights=share,
        generator=torch.Generator().manual_seed(0),
    )
    return randomized(edits)


class LayerOutputs:
    """Each decoder layer's output, before (``raw``) and after (``edited``) the ReFT hook:
    hooks registered before attaching run before it, hooks registered after run after it."""

    def __init__(self, model):
        self.model = model
        self.layers = find_decoder_layers(model).modules
        self.raw: dict[int, torch.Tensor] = {}
        self.edited: dict[int, torch.Tensor] = {}
        self._hooks = [self._hook(m, i, self.raw) for i, m in enumerate(self.layers)]

    def _hook(self, module, index, store):
        def capture(mod, args, output):
            store[index] = (output[0] if isinstance(output, tuple) else output).detach().clone()

        return module.register_forward_hook(capture)

    def after_attach(self) -> LayerOutputs:
        self._hooks += [self._hook(m, i, self.edited) for i, m in enumerate(self.layers)]
        return self


# ----------------------------------------------------------------------------- the formula


def test_loreft_formula_equals_a_hand_computation_on_the_model_hidden_states():
    loaded = tiny()
    model = loaded.model.eval()
    inputs = ids(12)
    outputs = LayerOutputs(model)
    edits = lowrank([0], positions="f2+l3")
    attach_residual(model, edits)
    outputs.after_attach()
    with torch.no_grad():
        model(inputs)
    h = outputs.raw[0][0].double()  # [seq, hidden]: layer 0's output before the edit
    intervention = edits.intervention(0, "first")
    R = intervention.R.detach().double()  # [r, d]
    W = intervention.source.weight.detach().double()
    b = intervention.source.bias.detach().double()
    by_hand = h + (h @ W.T + b - h @ R.T) @ R  # h + R^T (W h + b - R h), row by row
    edited = outputs.edited[0][0].double()
    chosen = [0, 1, 9, 10, 11]
    others = [p for p in range(12) if p not in chosen]
    torch.testing.assert_close(edited[chosen], by_hand[chosen], rtol=0, atol=1e-5)
    assert torch.equal(edited[others], h[others])
    assert (edited[chosen] - h[chosen]).abs().max() > 1e-2  # the edit is not the identity


def test_unshared_weights_use_one_intervention_per_position_group():
    loaded = tiny()
    model = loaded.model.eval()
    outputs = LayerOutputs(model)
    edits = lowrank([1], positions="f2+l2", share=False)
    assert set(edits.interventions) == {"layer1_first", "layer1_last"}
    attach_residual(model, edits)
    outputs.after_attach()
    with torch.no_grad():
        model(ids(10))
    h = outputs.raw[1][0]
    first, last = edits.intervention(1, "first"), edits.intervention(1, "last")
    with torch.no_grad():
        torch.testing.assert_close(outputs.edited[1][0, :2], first(h[:2]), rtol=0, atol=1e-6)
        torch.testing.assert_close(outputs.edited[1][0, 8:], last(h[8:]), rtol=0, atol=1e-6)


def test_rotation_rows_stay_orthonormal_through_training_steps(tmp_path):
    overrides = tiny_overrides(
        tmp_path,
        "method=reft",
        "method.train.max_steps=6",
        "method.train.batch_size=4",
        "method.train.warmup_steps=0",
        "method.train.lr=0.05",
        "method.train.logging_steps=1",
    )
    cfg = as_run_config(compose_config(overrides))
    loaded = load_model(cfg.model)
    method = build_method(cfg.method, seed=cfg.seed)
    method.prepare(loaded)
    before = {k: v.detach().clone() for k, v in method.edits.state_dict().items()}
    R_before = method.edits.intervention(0, "first").R.detach().clone()
    info = train_method(method, loaded, load_splits(cfg.task, cfg.n, cfg.seed), cfg, tmp_path)
    assert info["steps"] == 6
    assert info["warmup_steps"] == 1  # the default warmup_ratio 0.1 of max_steps 6, rounded up
    assert {g["name"]: g["weight_decay"] for g in info["param_groups"]}["rotation"] == 0.0
    after = method.edits.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)  # R, W and b all moved
    for layer in method.edits.layers:
        R = method.edits.intervention(layer, "first").R.detach().double()
        torch.testing.assert_close(R @ R.T, torch.eye(R.shape[0], dtype=R.dtype), rtol=0, atol=1e-5)
    assert not torch.allclose(method.edits.intervention(0, "first").R, R_before)


# ---------------------------------------------------------------------------- the positions


def test_position_specs_parse_and_cap_at_half_the_prompt_like_pyreft():
    assert TokenPositions.parse("f7+l7") == TokenPositions("prompt", 7, 7)
    assert TokenPositions.parse("l1").describe() == "l1"
    assert TokenPositions.parse("all").kind == "all"
    for bad in ("", "7", "f", "f7+x", "l7+f7"):
        with pytest.raises(ValueError):
            TokenPositions.parse(bad)
    spec = TokenPositions.parse("f7+l7")
    facts = PassFacts(torch.ones(1, 9, dtype=torch.bool), 0, None)
    masks = position_masks(spec, facts, (1, 9), torch.device("cpu"))
    # a 9-token prompt: min(9 // 2, 7) = 4 first and 4 last positions, the middle one untouched
    assert masks["first"][0].nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert masks["last"][0].nonzero().flatten().tolist() == [5, 6, 7, 8]
    assert position_masks(spec, PassFacts(None, 3, None), (1, 1), torch.device("cpu")) is None


def test_left_padding_and_declared_prompts_give_the_real_prompt_tokens():
    spec = TokenPositions.parse("f2+l2")
    real = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    masks = position_masks(spec, PassFacts(real, 0, torch.tensor([6, 5])), (2, 8), real.device)
    assert masks["first"].nonzero().tolist() == [[0, 2], [0, 3], [1, 0], [1, 1]]
    # row 0: its prompt is real tokens 0..5 = columns 2..7; row 1: columns 0..4
    assert masks["last"].nonzero().tolist() == [[0, 6], [0, 7], [1, 3], [1, 4]]
    labels = torch.tensor([[IGNORE_INDEX] * 5 + [7, 8, IGNORE_INDEX], [IGNORE_INDEX] * 8])
    mask = torch.tensor([[1] * 7 + [0], [1] * 6 + [0, 0]])
    assert prompt_lengths_from_labels(labels, mask).tolist() == [5, 6]  # no answer: all prompt


def test_only_the_chosen_positions_change_at_every_edited_layer():
    loaded = tiny()
    model = loaded.model.eval()
    inputs = ids(12)
    with torch.no_grad():
        base = model(inputs, output_hidden_states=True).hidden_states
    outputs = LayerOutputs(model)
    attach_residual(model, lowrank([0, 1], positions="f2+l3"))
    outputs.after_attach()
    with torch.no_grad():
        model(inputs)
    chosen = [0, 1, 9, 10, 11]
    others = [p for p in range(12) if p not in chosen]
    for layer in (0, 1):
        delta = (outputs.edited[layer] - outputs.raw[layer])[0]
        assert torch.equal(delta[others], torch.zeros_like(delta[others]))
        assert (delta[chosen].abs().amax(-1) > 1e-3).all()
    # after the first edited layer, the unchosen positions are the base model's states
    torch.testing.assert_close(outputs.edited[0][0, others], base[1][0, others], rtol=0, atol=0)


def test_training_loss_edits_the_prompt_positions_never_the_answer():
    loaded = tiny()
    model = loaded.model.eval()
    handle = attach_residual(model, lowrank([0, 1], positions="f2+l2"))
    prompt, answer = ids(9)[0].tolist(), [40, 41, 42]
    inputs = {
        "input_ids": torch.tensor([prompt + answer, prompt[:7] + answer + [0, 0]]),
        "attention_mask": torch.tensor([[1] * 12, [1] * 10 + [0, 0]]),
        "labels": torch.tensor(
            [[IGNORE_INDEX] * 9 + answer, [IGNORE_INDEX] * 7 + answer + [IGNORE_INDEX] * 2]
        ),
    }
    for answer_only in (True, False):
        causal_lm_loss(model, inputs, answer_only)
        masks = handle.masks_for(torch.zeros(2, 12, 1))
        edited = (masks["first"] | masks["last"]).nonzero().tolist()
        assert edited == [[0, 0], [0, 1], [0, 7], [0, 8], [1, 0], [1, 1], [1, 5], [1, 6]]


# ---------------------------------------------------------------------------- generation


def test_generation_edits_the_prompt_pass_only():
    loaded = tiny()
    model = loaded.model.eval()
    handle = attach_residual(model, lowrank([0, 1], positions="f3+l3"))
    passes = []
    hook = handle.layers.backbone.register_forward_pre_hook(lambda m, a: passes.append(1))
    prompt = ids(10)
    with torch.no_grad():
        out = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
    hook.remove()
    assert len(passes) == 5 and handle.edited_passes == 1  # 5 passes, only the first edited
    # Independent check: one pass over prompt + generated tokens (no cache), the prompt declared,
    # gives the generated tokens' logits: they were never edited themselves.
    sequence = out.sequences
    with torch.no_grad(), declared_prompts(model, [10]):
        full = model(sequence[:, :-1], use_cache=False).logits[0, 9:]
    torch.testing.assert_close(torch.stack(out.logits)[:, 0], full, rtol=0, atol=1e-5)

    # A pass that continues a cache is never edited, even with several new tokens (a one-token
    # pass would be spared by the half-prompt cap alone).
    more = ids(4, seed=7)
    with torch.no_grad():
        first = model(prompt, use_cache=True)
        step = model(more, cache=first.cache, use_cache=True).logits[0]
        assert handle.masks_for(torch.zeros(1, 4, 1)) is None
        with declared_prompts(model, [10]):
            whole = model(torch.cat([prompt, more], 1), use_cache=False).logits[0, 10:]
    torch.testing.assert_close(step, whole, rtol=0, atol=1e-5)


def test_left_padded_batches_equal_one_prompt_at_a_time():
    loaded = tiny()
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    attach_residual(model, lowrank([0, 1], positions="f3+l3"))
    prompts = ["Question: is fire cold?\nAnswer:", "Is water wet?", "A longer prompt, with more."]
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        batched = model(**batch).logits[:, -1]
        for row, prompt in enumerate(prompts):
            alone = model(**tokenizer([prompt], return_tensors="pt")).logits[0, -1]
            torch.testing.assert_close(batched[row], alone, rtol=0, atol=1e-5)
    pairs = [(p, " yes") for p in prompts] + [(p, " no way") for p in prompts]
    one = score_continuations(model, tokenizer, pairs, batch_size=1, progress=False)
    many = score_continuations(model, tokenizer, pairs, batch_size=6, progress=False)
    torch.testing.assert_close(torch.tensor(many), torch.tensor(one), rtol=0, atol=1e-4)


def test_loglik_scoring_edits_the_prompt_and_not_the_candidate():
    loaded = tiny()
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    prompt, continuation = "Is water wet?", " yes it is"
    p_ids = tokenizer(prompt)["input_ids"]
    c_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    attach_residual(model, lowrank([0, 1], positions="f2+l2"))
    score = score_continuations(model, tokenizer, [(prompt, continuation)], progress=False)[0]
    with torch.no_grad(), declared_prompts(model, [len(p_ids)]):
        logits = model(torch.tensor([p_ids + c_ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, -1)
    by_hand = sum(float(logprobs[len(p_ids) - 1 + k, t]) for k, t in enumerate(c_ids))
    assert score == pytest.approx(by_hand, abs=1e-4)


# ------------------------------------------------------------------- method, artifact, runs


def reft_method(**settings):
    cfg = ReftConfig(**settings)
    return build_method(cfg, seed=3)


def test_save_then_load_on_a_fresh_model_gives_the_same_logits_and_generations(tmp_path):
    method = reft_method()
    loaded = tiny()
    method.prepare(loaded)
    randomized(method.edits)
    inputs = ids(20, batch=2)
    loaded.model.eval()
    with torch.no_grad():
        trained = loaded.model(inputs).logits
        generated = loaded.model.generate(inputs, max_new_tokens=4, do_sample=False)
    files = method.save(tmp_path)
    meta = json.loads((tmp_path / "reft" / "reft_config.json").read_text())
    assert meta["positions"] == "f7+l7" and meta["layers"] == [0, 1] and meta["rank"] == 8
    assert sum(f.stat().st_size for f in files) < 50_000  # the edits only

    fresh = tiny()
    reloaded = reft_method()
    reloaded.load(fresh, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(inputs).logits, trained, rtol=0, atol=1e-6)
        assert torch.equal(
            fresh.model.generate(inputs, max_new_tokens=4, do_sample=False), generated
        )
    with pytest.raises(MergeNotSupported, match="token positions"):
        reloaded.merge(fresh)
    attached_residual_handle(fresh.model).detach()
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(inputs).logits, tiny().model(inputs).logits)


def test_parameter_count_is_two_d_r_plus_r_per_intervention():
    loaded = tiny()
    method = reft_method()
    method.prepare(loaded)
    count = sum(p.numel() for p in method.trainable_parameters(loaded.model))
    assert count == count_lowrank_parameters(HIDDEN, 8, 2) == 2 * (2 * HIDDEN * 8 + 8)
    unshared = reft_method(share_weights=False)
    unshared.prepare(tiny())
    assert unshared.edits.num_parameters() == count_lowrank_parameters(HIDDEN, 8, 2, groups=2)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"positions": "x7"}, "method.positions"),
        ({"positions": "all"}, "prompt positions"),
        ({"rank": 0}, "method.rank"),
        ({"layers": []}, "method.layers is empty"),
        ({"layers": [-1]}, "layer indices"),
        ({"dropout": 1.0}, "method.dropout"),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(UserError, match=message):
        ReftConfig(**settings)


def test_layers_outside_the_model_are_refused_at_prepare():
    with pytest.raises(UserError, match=r"outside the model's 2 decoder layers"):
        reft_method(layers=[0, 5]).prepare(tiny())


def test_a_run_records_positions_and_layers(tmp_path):
    cfg = compose_config(
        tiny_overrides(tmp_path, "method=reft", "method.train.max_steps=2", "method.layers=[1]")
    )
    results = run(cfg)
    stats = results["method_stats"]
    assert stats["positions"] == "f7+l7" and stats["layers"] == [1] and stats["rank"] == 8
    assert results["trainable_parameters"] == count_lowrank_parameters(HIDDEN, 8, 1)
    run_dir = run_directory(as_run_config(cfg))
    assert (run_dir / "reft" / "reft.safetensors").exists()


def test_the_share_table_counts_reft_as_a_run_does():
    from jola.bench.share import method_share

    meta = ModelConfig(name="tiny_random", source="tiny_random", device="meta")
    row = method_share("reft", meta)
    assert row.error is None and row.trainable == count_lowrank_parameters(HIDDEN, 8, 2)


def test_the_residual_site_is_registered_for_vector_kinds_without_a_fold():
    from jola import edits as editing

    loaded = tiny()
    model = loaded.model.eval()
    layout = editing.get_site("residual").locate(model)
    assert layout.names == ["model.layers.0", "model.layers.1"]
    assert (layout.num_units, layout.unit_dim) == (1, HIDDEN)
    inputs = ids(9)
    with torch.no_grad():
        base = model(inputs).logits
    site_edits = editing.build_site_edits(
        model, {"residual": editing.EditConfig(gated=False, init_std=0.1)}
    )
    with editing.attach_sites(model, site_edits):
        with torch.no_grad():
            assert not torch.allclose(model(inputs).logits, base, atol=1e-4)
        with pytest.raises(MergeNotSupported):
            editing.merge_site_edits(model, site_edits)


def test_a_bf16_model_keeps_fp32_interventions_and_trains_them():
    loaded = tiny()
    model = loaded.model.to(torch.bfloat16)
    edits = lowrank([0, 1], positions="f2+l2")
    attach_residual(model, edits)
    model.to(torch.bfloat16)  # casting the host again keeps the edits in float32
    assert all(p.dtype == torch.float32 for p in edits.parameters())
    model.train()
    out = model(ids(8)).logits
    assert out.dtype == torch.bfloat16
    out.float().logsumexp(-1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in edits.parameters())
