"""RePE (jola/methods/repe.py, jola/edits/steering.py): the readers against constructed
activations whose direction is known, the dev-set grid on a constructed case, the steering edit,
the reading of last-token states, save -> load, and a whole run on the tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch

import tasks
from jola.config import ModelConfig
from jola.edits.residual import attach_residual, attached_residual_handle, find_decoder_layers
from jola.edits.steering import (
    READERS,
    SteeringVectors,
    first_principal_component,
    last_token_states,
    mean_difference,
)
from jola.errors import MergeNotSupported, UserError
from jola.methods import build_method
from jola.methods import repe as repe_module
from jola.methods.repe import RepeConfig, contrast_pairs, grid_search, window_layers
from jola.models import LoadedModel, load_model
from jola.prompts import PromptFormat
from jola.runner import as_run_config, run, run_directory
from tests.helpers import compose_config, tiny_overrides

TINY = ModelConfig(name="tiny_random", source="tiny_random")
HIDDEN, LAYERS = 64, 2


def tiny():
    return load_model(TINY)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1))


def constructed_pairs(pairs=200, layers=3, hidden=32, nuisance=5.0, seed=0):
    """Activations whose correct member is shifted along a known unit direction per layer.

    Each pair shares a large random "prompt" state (nuisance, the same for both members); the
    correct member adds ``shift * u_l`` (shift around 2), both add small independent noise."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(layers, hidden, generator=g)
    u = u / u.norm(dim=-1, keepdim=True)
    prompt = nuisance * torch.randn(pairs, layers, hidden, generator=g)
    shift = 2.0 + 0.3 * torch.randn(pairs, 1, 1, generator=g)
    pos = prompt + shift * u + 0.3 * torch.randn(pairs, layers, hidden, generator=g)
    neg = prompt + 0.3 * torch.randn(pairs, layers, hidden, generator=g)
    return pos, neg, u


# ------------------------------------------------------------------------------- readers


@pytest.mark.parametrize("reader", sorted(READERS))
def test_each_reader_recovers_the_known_direction_with_its_sign(reader):
    pos, neg, u = constructed_pairs()
    directions = READERS[reader](pos, neg, torch.Generator().manual_seed(1))
    assert directions.shape == u.shape
    torch.testing.assert_close(directions.norm(dim=-1), torch.ones(3), rtol=0, atol=1e-5)
    for layer in range(3):
        assert cosine(directions[layer], u[layer]) > 0.99  # direction and sign


def test_the_mean_difference_is_the_normalised_difference_of_the_class_means():
    pos, neg, _ = constructed_pairs(pairs=17, layers=2, hidden=8, seed=3)
    expected = pos.double().mean(0) - neg.double().mean(0)
    expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(mean_difference(pos, neg).double(), expected, rtol=0, atol=1e-6)


def test_pca_sign_follows_the_pairs_not_the_random_flips():
    pos, neg, u = constructed_pairs(pairs=60, seed=5)
    for seed in range(4):  # whatever the flips, + means "the correct member projects higher"
        v = first_principal_component(pos, neg, torch.Generator().manual_seed(seed))
        assert all(cosine(v[layer], u[layer]) > 0.98 for layer in range(3))
    swapped = first_principal_component(neg, pos, torch.Generator().manual_seed(0))
    assert all(cosine(swapped[layer], u[layer]) < -0.98 for layer in range(3))


def test_last_token_states_are_the_layer_outputs_whatever_the_batch():
    loaded = tiny()
    model = loaded.model.eval()
    sequences = [[3, 40, 41, 42], [3, 50, 51, 52, 53, 54, 55], [3, 60]]
    batched = last_token_states(model, sequences, pad_id=0, batch_size=3)
    alone = torch.cat([last_token_states(model, [s], pad_id=0) for s in sequences])
    assert batched.shape == (3, LAYERS, HIDDEN)
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)
    with torch.no_grad():
        hidden = model(torch.tensor([sequences[1]]), output_hidden_states=True).hidden_states
    torch.testing.assert_close(alone[1, 0], hidden[1][0, -1], rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ steering


def test_steering_adds_alpha_v_at_every_real_token_prompt_and_generated():
    loaded = tiny()
    model = loaded.model.eval()
    layers = find_decoder_layers(model).modules
    seen = {"raw": [], "edited": []}
    layers[1].register_forward_hook(lambda m, a, out: seen["raw"].append(out.detach().clone()))
    vector = torch.randn(1, HIDDEN, generator=torch.Generator().manual_seed(0))
    handle = attach_residual(model, SteeringVectors(vector, [1], alpha=0.5))
    layers[1].register_forward_hook(lambda m, a, out: seen["edited"].append(out.detach().clone()))
    ids = torch.tensor([[0, 0, 3, 40, 41], [3, 50, 51, 52, 53]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    delta = seen["edited"][0] - seen["raw"][0]
    torch.testing.assert_close(delta[mask.bool()], (0.5 * vector).expand(8, -1), rtol=0, atol=1e-6)
    assert torch.equal(delta[~mask.bool()], torch.zeros(2, HIDDEN))  # padding left alone
    with torch.no_grad():
        model.generate(ids[1:], max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert handle.edited_passes == 1 + 3  # the pass above, then generation's three passes
    new_token = seen["edited"][-1] - seen["raw"][-1]
    torch.testing.assert_close(new_token[0, -1], 0.5 * vector[0], rtol=0, atol=1e-6)


def test_window_layers_cover_fractions_of_the_depth():
    assert window_layers([0.25, 0.5], 32) == list(range(8, 16))
    assert window_layers([0.25, 0.75], 30) == list(range(7, 23))
    assert window_layers([0.25, 0.5], 2) == [0]  # never empty
    assert window_layers([0.5, 0.75], 2) == [1]
    assert window_layers([0.9, 1.0], 2) == [1]


# ------------------------------------------------------------------------ the dev-set grid


def test_grid_search_picks_the_lowest_score_and_the_first_of_ties():
    points = [{"alpha": a, "window": w} for w in ("low", "high") for a in (0.01, 0.05, 0.2)]

    def score(point):  # a bowl at alpha = 0.05 on the high window
        return (math.log(point["alpha"]) - math.log(0.05)) ** 2 + (point["window"] == "low")

    best, scores = grid_search(points, score)
    assert points[best] == {"alpha": 0.05, "window": "high"} and scores[best] == 0.0
    assert grid_search(points, lambda p: 1.0)[0] == 0


def siqa_data(n=8):
    cfg = as_run_config(compose_config(tiny_overrides("/tmp", "method=repe")))
    splits = tasks.load_splits(cfg.task, n=n, seed=cfg.seed)
    return tasks.get_task(cfg.task.name, cfg.task), splits


def test_the_dev_selection_keeps_the_best_grid_point_on_a_constructed_case(monkeypatch):
    """With the dev loss replaced by a constructed function of the attached steering (minimal
    at alpha 0.05 on the second window), the fit must score every point of the grid, keep that
    minimum, record it, and leave exactly that steering attached."""
    task, splits = siqa_data()
    loaded = tiny()
    calls = []

    def constructed_dev_loss(loaded, task, examples, prompt_format, max_length, batch):
        handle = attached_residual_handle(loaded.model)
        if handle is None:
            return 10.0
        edit = handle.edit
        calls.append((edit.layers, edit.alpha))
        return abs(edit.alpha - 0.05) + (0.0 if edit.layers == (1,) else 1.0)

    monkeypatch.setattr(repe_module, "dev_loss", constructed_dev_loss)
    method = build_method(RepeConfig(alphas=[0.01, 0.05, 0.2]), seed=0)
    method.prepare(loaded)
    record = method.fit_without_gradients(
        loaded, splits.train, splits.dev, task=task, prompt_format=PromptFormat(), seed=0
    )
    # the default windows on 2 layers: [0], [1], [0, 1]; 3 alphas each
    assert len(record["grid"]) == 9 and len(calls) == 9
    assert record["chosen"]["alpha"] == 0.05 and record["chosen"]["layers"] == [1]
    assert record["chosen"]["dev_loss"] == min(p["dev_loss"] for p in record["grid"])
    assert record["dev_loss_unsteered"] == 10.0
    edit = attached_residual_handle(loaded.model).edit
    assert edit.layers == (1,) and edit.alpha == 0.05
    stats = method.final_stats()
    assert stats["alpha"] == 0.05 and stats["layers"] == [1] and stats["pairs"] == 16


# ------------------------------------------------------------------ data, artifact, runs


def test_contrast_pairs_for_choice_and_generation_tasks():
    task, splits = siqa_data()
    fmt = PromptFormat()
    pairs = contrast_pairs(task, splits.train, fmt, seed=0)
    ex = splits.train[0]
    mine = [p for p in pairs if p[0] == fmt.prompt(ex.instruction)]
    assert {p[1] for p in mine} == {fmt.target_text(task, ex)}  # the correct continuation
    wrong = set(fmt.candidate_texts(task, ex).values()) - {fmt.target_text(task, ex)}
    assert {p[2] for p in mine} == wrong and len(pairs) == 2 * len(splits.train)

    gem = tasks.get_task("e2e_nlg")
    gem_splits = tasks.load_splits(
        as_run_config(compose_config(tiny_overrides("/tmp", "task=e2e_nlg"))).task, n=4, seed=1
    )
    gen_pairs = contrast_pairs(gem, gem_splits.train, fmt, seed=0)
    assert len(gen_pairs) == 4
    own = {fmt.prompt(e.instruction): fmt.target_text(gem, e) for e in gem_splits.train}
    assert all(own[p] == positive and positive != negative for p, positive, negative in gen_pairs)
    assert sorted(n for _, _, n in gen_pairs) == sorted(own.values())  # a derangement


def fitted(seed=0):
    task, splits = siqa_data()
    loaded = tiny()
    method = build_method(RepeConfig(alphas=[0.5, 2.0]), seed=seed)
    method.prepare(loaded)
    method.fit_without_gradients(
        loaded, splits.train, splits.dev, task=task, prompt_format=PromptFormat(), seed=seed
    )
    return method, loaded


def test_save_then_load_on_a_fresh_model_gives_the_same_logits(tmp_path):
    method, loaded = fitted()
    ids = torch.tensor([[3, 40, 41, 42, 43, 44], [3, 50, 51, 52, 53, 54]])
    with torch.no_grad():
        steered = loaded.model(ids).logits
        base = tiny().model(ids).logits
    assert not torch.allclose(steered, base, atol=1e-4)
    files = method.save(tmp_path)
    meta = json.loads((tmp_path / "repe" / "repe_config.json").read_text())
    assert meta["fitted"] and meta["alpha"] in (0.5, 2.0)
    assert sum(f.stat().st_size for f in files) < 20_000
    fresh = tiny()
    reloaded = build_method(RepeConfig(), seed=0)
    reloaded.load(fresh, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(ids).logits, steered, rtol=0, atol=1e-6)
    reloaded.merge(fresh)  # alpha * v_l into the bias of layer l's down projection
    plain = tiny().model
    assert [n for n, _ in fresh.model.named_modules()] == [n for n, _ in plain.named_modules()]
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in fresh.model.modules())
    assert hooks == 0
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(ids).logits, steered, rtol=0, atol=1e-5)


def test_merge_is_refused_where_a_norm_follows_the_mlp():
    method, loaded = fitted()
    from transformers import AutoModelForCausalLM, Gemma2Config

    config = Gemma2Config(
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=300,
    )
    gemma = LoadedModel(
        AutoModelForCausalLM.from_config(config).eval(), None, loaded.device, loaded.dtype
    )
    method.handle.detach()
    method.handle = method._attach(gemma, [0], 1.0)  # the vectors fit: the same hidden size
    with pytest.raises(MergeNotSupported, match="gemma2"):
        method.merge(gemma)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"reader": "lda"}, "unknown method.reader 'lda'"),
        ({"alphas": []}, "method.alphas is empty"),
        ({"alphas": [-0.1]}, "finite and >= 0"),
        ({"layer_windows": [[0.5, 0.25]]}, "0 <= start < end <= 1"),
        ({"layer_windows": []}, "layer_windows is empty"),
        ({"batch_size": 0}, "method.batch_size"),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(UserError, match=message):
        RepeConfig(**settings)


def test_a_run_reads_chooses_and_records_its_choice(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path, "method=repe", "method.alphas=[0.05,0.5]"))
    results = run(cfg)
    training = results["training"]
    assert training["criterion"] == "dev_loss" and len(training["grid"]) == 3 * 2
    chosen = training["chosen"]
    assert chosen["dev_loss"] == min(point["dev_loss"] for point in training["grid"])
    stats = results["method_stats"]
    assert stats["alpha"] == chosen["alpha"] and stats["layers"] == chosen["layers"]
    assert results["trainable_parameters"] == 0 and "fit_s" in results["timings"]
    run_dir = run_directory(as_run_config(cfg))
    assert (run_dir / "repe" / "steering.safetensors").exists()
