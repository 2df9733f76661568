"""RED (jola/methods/red.py): h' = l_s * h + l_b on every layer's MLP output, the identity at
init; checked against an independent computation on the tiny model, merged, saved and
reloaded (no network)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from jola.config import ModelConfig
from jola.errors import UserError
from jola.methods import build_method
from jola.methods.red import RED_DIR, RedConfig
from jola.models import load_model
from jola.runner import as_run_config
from tests.helpers import compose_config, tiny_overrides

TINY = ModelConfig(name="tiny_random", source="tiny_random")
LAYERS, HIDDEN = 2, 64
IDS = torch.tensor([[3, 40, 41, 42, 43, 44, 45, 46, 47], [3, 50, 51, 52, 53, 54, 55, 56, 57]])


def fresh():
    return load_model(dataclasses.replace(TINY))


def logits(loaded) -> torch.Tensor:
    loaded.model.eval()
    with torch.no_grad():
        return loaded.model(IDS).logits


def prepared(cfg: RedConfig | None = None):
    method = build_method(cfg or RedConfig())
    loaded = fresh()
    method.prepare(loaded)
    return method, loaded


def set_vectors(method, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random l_s (around 1) and l_b; returns them as [layers, hidden]."""
    g = torch.Generator().manual_seed(seed)
    edits = method.edits["mlp"]
    with torch.no_grad():
        edits.scale.copy_(torch.randn(edits.scale.shape, generator=g) * 0.3)
        edits.offset.copy_(torch.randn(edits.offset.shape, generator=g) * 0.3)
    return 1 + edits.scale.detach()[:, 0], edits.offset.detach()[:, 0]


def test_red_is_two_vectors_per_layer_on_the_mlp_output_and_the_identity_at_init():
    base = logits(fresh())
    method, loaded = prepared()
    edits = method.edits["mlp"]
    assert edits.scale.shape == edits.offset.shape == (LAYERS, 1, HIDDEN)
    assert not edits.log_alphas()  # no gates
    assert method.trainable_parameters(loaded.model) == [edits.scale, edits.offset]
    assert method.edits.num_parameters() == 2 * LAYERS * HIDDEN
    assert torch.all(1 + edits.scale == 1) and torch.all(edits.offset == 0)  # l_s = 1, l_b = 0
    assert torch.equal(logits(loaded), base)  # bit for bit
    loaded.model.train()
    with torch.no_grad():  # no gate, no noise: training mode is the identity too
        assert torch.equal(loaded.model(IDS).logits, base)


def test_red_formula_against_an_independent_hook_on_each_down_projection():
    method, loaded = prepared()
    reference = fresh()
    l_s, l_b = set_vectors(method)
    for i, layer in enumerate(reference.model.model.layers):
        layer.mlp.down_proj.register_forward_hook(
            lambda module, args, out, i=i: out * l_s[i] + l_b[i]
        )
    torch.testing.assert_close(logits(loaded), logits(reference), rtol=0, atol=1e-5)
    assert not torch.allclose(logits(loaded), logits(fresh()), atol=1e-3)


def test_red_formula_from_the_mlp_block_computed_by_hand():
    """h' = l_s * down_proj(act(gate_proj(x)) * up_proj(x)) + l_b, written out for layer 0."""
    method, loaded = prepared()
    l_s, l_b = set_vectors(method, seed=1)
    mlp = loaded.model.model.layers[0].mlp
    x = torch.randn(3, HIDDEN, generator=torch.Generator().manual_seed(2))
    plain = fresh().model.model.layers[0].mlp  # the same weights, no hooks
    assert plain.down_proj.bias is None
    with torch.no_grad():
        h = plain.down_proj.weight @ (
            plain.act_fn(plain.gate_proj.weight @ x.T) * (plain.up_proj.weight @ x.T)
        )
        torch.testing.assert_close(mlp(x), (l_s[0].unsqueeze(1) * h + l_b[0].unsqueeze(1)).T)


@pytest.mark.parametrize(("scaling", "bias"), [(True, True), (True, False), (False, True)])
def test_red_merge_equals_the_hooked_model(scaling, bias):
    method, loaded = prepared(RedConfig(scaling=scaling, bias=bias))
    edits = method.edits["mlp"]
    with torch.no_grad():
        for p in (edits.scale, edits.offset):
            if p is not None:
                p.normal_(0, 0.3, generator=torch.Generator().manual_seed(4))
    hooked = logits(loaded)
    method.merge(loaded)
    assert sum(len(m._forward_hooks) for m in loaded.model.modules()) == 0
    down = loaded.model.model.layers[0].mlp.down_proj
    assert (down.bias is not None) == bias  # Llama's bias-free down_proj gets l_b as its bias
    torch.testing.assert_close(logits(loaded), hooked, rtol=0, atol=1e-5)


def test_red_save_then_load_on_a_fresh_model_gives_the_same_logits(tmp_path):
    method, loaded = prepared()
    set_vectors(method, seed=3)
    trained = logits(loaded)
    files = method.save(tmp_path)
    assert all(f.exists() for f in files) and all(f.parent.name == RED_DIR for f in files)
    meta = json.loads(files[1].read_text())
    assert list(meta["sites"]) == ["mlp"] and meta["extra"]["method"]["name"] == "red"
    assert sum(f.stat().st_size for f in files) < 10_000  # the vectors only, never the base
    reloaded = fresh()
    other = build_method(RedConfig())
    other.load(reloaded, tmp_path)
    torch.testing.assert_close(logits(reloaded), trained, rtol=0, atol=0)


def test_red_config_defaults_and_bad_values(tmp_path):
    cfg = as_run_config(compose_config(tiny_overrides(tmp_path, "method=red"))).method
    assert isinstance(cfg, RedConfig) and cfg.scaling and cfg.bias and cfg.train.lr == 5e-3
    with pytest.raises(UserError, match="cannot both be false"):
        RedConfig(scaling=False, bias=False)
