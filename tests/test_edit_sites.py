"""The edit layer's sites (jola.edits.site_*): the MLP-output site, the shared gate, edits at
several sites, their merge and persistence, and the ablation methods built on them
(jola/methods/jola_sites.py), on tiny random models (no network)."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

from jola import edits as editing
from jola import gates
from jola.config import ModelConfig
from jola.edits import EditConfig, HeadEdits, SiteEdits
from jola.errors import MergeNotSupported, UserError
from jola.methods import build_method
from jola.methods.jola_sites import JolaSitesConfig
from jola.models import load_model
from jola.runner import as_run_config, run, run_directory
from tests.helpers import compose_config, tiny_overrides

VOCAB = 96
LAYERS, HEADS, HEAD_DIM, HIDDEN = 2, 4, 16, 64
CONFIGS = {
    "llama": lambda: LlamaConfig(
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    ),
    # GPT-2: transposed Conv1D projections that have biases
    "gpt2": lambda: GPT2Config(
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=HEADS,
        vocab_size=VOCAB,
        bos_token_id=1,
        eos_token_id=2,
    ),
}
DOWN = {"llama": "model.layers.{i}.mlp.down_proj", "gpt2": "transformer.h.{i}.mlp.c_proj"}
NEW_METHODS = [
    "jola_mlp",
    "jola_mlp_no_gates",
    "jola_both",
    "jola_both_no_gates",
    "jola_shared_gate",
    "red",
]


def build(arch: str = "llama", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(CONFIGS[arch]()).eval()


def input_ids(batch: int = 2, length: int = 9) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))


def logits(model: nn.Module, ids: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids() if ids is None else ids).logits


def randomize(edits: HeadEdits, seed: int = 0) -> HeadEdits:
    """Large vectors; gates a mix of exactly closed, partly open and exactly open."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (edits.scale, edits.offset):
            if p is not None:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for la in edits.log_alphas().values():
            la.copy_(torch.rand(la.shape, generator=g) * 8 - 4)
            la[0, 0] = 5.0  # gate exactly 1
            la[-1, -1] = -5.0  # gate exactly 0
    return edits


def randomize_all(site_edits: SiteEdits) -> SiteEdits:
    for k, (_, edits) in enumerate(site_edits.items()):
        randomize(edits, seed=k)
    return site_edits


def eval_gate(log_alpha: torch.Tensor | None, shape) -> torch.Tensor:
    """The evaluation gate computed here, not through HeadEdits: clamp(sigmoid * 1.2 - 0.1)."""
    if log_alpha is None:
        return torch.ones(shape)
    return torch.clamp(torch.sigmoid(log_alpha.detach()) * 1.2 - 0.1, 0.0, 1.0)


# ------------------------------------------------------------------------------- MLP site


def test_mlp_site_is_each_layers_down_projection():
    model = build()
    layout = editing.get_site("mlp").locate(model)
    assert layout.names == [DOWN["llama"].format(i=i) for i in range(LAYERS)]
    assert (layout.num_units, layout.unit_dim) == (1, HIDDEN)
    assert layout.modules[1] is model.model.layers[1].mlp.down_proj
    gpt2 = editing.get_site("mlp").locate(build("gpt2"))
    assert gpt2.names[0] == "transformer.h.0.mlp.c_proj" and gpt2.unit_dim == HIDDEN


def test_mlp_site_outside_the_table_is_found_by_search_and_a_missing_one_is_explained():
    from transformers import MambaConfig, Olmo2Config

    torch.manual_seed(0)
    olmo = AutoModelForCausalLM.from_config(
        Olmo2Config(
            hidden_size=HIDDEN,
            intermediate_size=128,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            vocab_size=VOCAB,
        )
    )
    assert olmo.config.model_type not in editing.site_registry.MLP_ARCHITECTURES
    layout = editing.get_site("mlp").locate(olmo)
    assert layout.names == [f"model.layers.{i}.mlp.down_proj" for i in range(LAYERS)]
    mamba = AutoModelForCausalLM.from_config(
        MambaConfig(hidden_size=32, num_hidden_layers=2, vocab_size=VOCAB)
    )
    with pytest.raises(ValueError, match="cannot locate the MLP down projection.*Modules found"):
        editing.get_site("mlp").locate(mamba)


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_mlp_edit_equals_an_independent_hook_on_the_mlp_output(arch):
    """y' = (1 + g_m m) * y + g_a a on every layer's MLP output, computed by a hook written
    here (on a copy of the model) from the parameters and the gate formula."""
    model = build(arch)
    reference = copy.deepcopy(model)
    handle = editing.attach_sites(model, {"mlp": EditConfig()})
    edits = randomize(handle.edits["mlp"])
    gate_m = eval_gate(edits.log_alpha_mult, (LAYERS, 1))
    gate_a = eval_gate(edits.log_alpha_add, (LAYERS, 1))

    def edit_output(layer):
        def hook(module, args, output):
            scale = 1 + gate_m[layer, 0] * edits.scale[layer, 0].detach()
            return output * scale + gate_a[layer, 0] * edits.offset[layer, 0].detach()

        return hook

    for i in range(LAYERS):
        reference.get_submodule(DOWN[arch].format(i=i)).register_forward_hook(edit_output(i))
    assert {float(gate_m.min()), float(gate_m.max())} == {0.0, 1.0}
    torch.testing.assert_close(logits(model), logits(reference), rtol=0, atol=1e-5)
    handle.detach()
    assert torch.equal(logits(model), logits(build(arch)))


def test_zero_mlp_edits_are_the_identity_and_detach_restores_the_model():
    model = build()
    base = logits(model)
    config = EditConfig(gated=False, init_std=0.0)
    handle = editing.attach_sites(model, {"mlp": config, "heads": config})
    assert torch.equal(logits(model), base)
    randomize_all(handle.edits)
    assert not torch.allclose(logits(model), base)
    handle.detach()
    assert torch.equal(logits(model), base)
    assert not hasattr(model, editing.SITE_EDITS_ATTR)


def test_the_heads_site_is_jolas_per_head_edit():
    """JoLA is one configuration of the site layer: the same seed gives the same parameters
    (the same RNG draws) and the same edited logits as jola.edits.attach."""
    model = build()
    torch.manual_seed(7)
    jola_handle = editing.attach(model, EditConfig())
    torch.manual_seed(7)
    site_edits = editing.build_site_edits(model, {"heads": EditConfig()})
    for (name, p), (site_name, q) in zip(
        jola_handle.edits.named_parameters(), site_edits["heads"].named_parameters(), strict=True
    ):
        assert name == site_name and torch.equal(p, q)
    randomize(jola_handle.edits)
    jola_logits = logits(model)
    jola_handle.detach()
    site_edits["heads"].load_state_dict(jola_handle.edits.state_dict())
    with editing.attach_sites(model, site_edits):
        torch.testing.assert_close(logits(model), jola_logits, rtol=0, atol=0)


# ---------------------------------------------------------------------------- shared gate


def test_shared_gate_is_one_parameter_and_one_sample_per_head(monkeypatch):
    edits = HeadEdits(LAYERS, HEADS, HEAD_DIM, EditConfig(shared_gate=True))
    assert edits.log_alpha_mult is None and edits.log_alpha_add is None
    assert edits.log_alpha_shared.shape == (LAYERS, HEADS)
    assert set(edits.log_alphas()) == {"shared"}
    drawn = []
    real = gates.sample_gate
    monkeypatch.setattr(gates, "sample_gate", lambda la, *a: drawn.append(la.numel()) or real(la))
    edits.train()
    gate_mult, gate_add = edits.gate_pair()
    assert drawn == [LAYERS * HEADS]  # one draw per head, for both kinds
    assert torch.equal(gate_mult, gate_add)
    separate = HeadEdits(LAYERS, HEADS, HEAD_DIM, EditConfig()).train()
    drawn.clear()
    separate.gate_pair()
    assert drawn == [LAYERS * HEADS, LAYERS * HEADS]  # JoLA: one draw per head and kind


def test_shared_gate_hook_applies_the_documented_formula_with_the_drawn_sample():
    """z' = g * ((1 + m) * z - z) + z + g * a with the one training-time sample g, checked on
    the input of each o_proj (pre-hooks run in the order they were registered)."""
    model = build().train()
    raw, edited = {}, {}
    projections = [model.model.layers[i].self_attn.o_proj for i in range(LAYERS)]
    for i, proj in enumerate(projections):  # before the edit hook: the head activations z
        proj.register_forward_pre_hook(lambda m, args, i=i: raw.__setitem__(i, args[0].detach()))
    handle = editing.attach_sites(model, {"heads": EditConfig(shared_gate=True)})
    edits = randomize(handle.edits["heads"])
    for i, proj in enumerate(projections):  # after it: z'
        proj.register_forward_pre_hook(lambda m, args, i=i: edited.__setitem__(i, args[0]))
    torch.manual_seed(3)
    model(input_ids())
    gate_mult, gate_add = (g.detach() for g in handle.current_gates()["heads"])
    assert torch.equal(gate_mult, gate_add)
    assert 0 < float(gate_mult[gate_mult < 1].numel())  # a sample, not the evaluation gate
    for i in range(LAYERS):
        z = raw[i].unflatten(-1, (HEADS, HEAD_DIM))
        m, a, g = edits.scale[i].detach(), edits.offset[i].detach(), gate_mult[i].unsqueeze(-1)
        expected = g * ((1 + m) * z - z) + z + g * a
        torch.testing.assert_close(edited[i].detach().unflatten(-1, (HEADS, HEAD_DIM)), expected)


def test_gates_are_counted_per_unit_at_every_site():
    model = build()
    both = editing.build_site_edits(model, {"heads": EditConfig(), "mlp": EditConfig()})
    assert both["heads"].log_alpha_add.shape == (LAYERS, HEADS)
    assert both["mlp"].log_alpha_add.shape == (LAYERS, 1)  # one gate per layer and kind
    vectors = 2 * LAYERS * HEADS * HEAD_DIM + 2 * LAYERS * HIDDEN
    assert both.num_parameters() == vectors + 2 * (LAYERS * HEADS + LAYERS)
    shared = editing.build_site_edits(model, {"heads": EditConfig(shared_gate=True)})
    count = editing.count_edit_parameters(model.config, EditConfig(shared_gate=True))
    assert shared.num_parameters() == count == 2 * LAYERS * HEADS * HEAD_DIM + LAYERS * HEADS
    ungated = editing.build_site_edits(model, {"mlp": EditConfig(gated=False)})
    assert ungated.num_parameters() == 2 * LAYERS * HIDDEN and not ungated.gated


def test_edit_config_refuses_a_shared_gate_without_gates():
    with pytest.raises(ValueError, match="shared_gate"):
        EditConfig(gated=False, shared_gate=True)


# ----------------------------------------------------------------------------------- merge


@pytest.mark.parametrize("arch", list(CONFIGS))
@pytest.mark.parametrize("shared_gate", [False, True])
def test_merged_site_edits_equal_the_hooked_model(arch, shared_gate):
    model = build(arch)
    config = EditConfig(shared_gate=shared_gate)
    handle = editing.attach_sites(model, {"heads": config, "mlp": config})
    randomize_all(handle.edits)
    hooked = logits(model)
    editing.merge_site_edits(model, handle.edits)
    assert editing.attached_site_handle(model) is None
    assert sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()) == 0
    torch.testing.assert_close(logits(model), hooked, rtol=0, atol=1e-5)
    if arch == "llama":  # bias-free down projections got the folded offset as a new bias
        assert model.model.layers[0].mlp.down_proj.bias is not None


def test_mlp_fold_is_rows_of_the_weight_and_the_scaled_bias():
    """y' = s * (W x + b) + c  ->  W' = diag(s) W, b' = s * b + c (nn.Linear and Conv1D)."""
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(5, 3)
    s, c = torch.randn(3, generator=g), torch.randn(3, generator=g)
    w, b = linear.weight.detach().clone(), linear.bias.detach().clone()
    editing.site_registry.fold_output(linear, s, c)
    torch.testing.assert_close(linear.weight, torch.diag(s) @ w)
    torch.testing.assert_close(linear.bias, s * b + c)
    x = torch.randn(4, 5, generator=g)
    torch.testing.assert_close(linear(x), s * (x @ w.T + b) + c)
    no_bias = nn.Linear(5, 3, bias=False)
    w = no_bias.weight.detach().clone()
    editing.site_registry.fold_output(no_bias, s, c)
    torch.testing.assert_close(no_bias(x), s * (x @ w.T) + c)


@pytest.fixture()
def unfoldable_site():
    """A test-only site on the MLP output without an exact fold (removed afterwards)."""
    site = dataclasses.replace(editing.get_site("mlp"), name="test_unfoldable", fold=None)
    editing.register_site(site)
    yield site.name
    del editing.SITES[site.name]


def test_merge_refuses_a_site_without_an_exact_fold_and_changes_nothing(unfoldable_site):
    model = build()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    handle = editing.attach_sites(model, {"heads": EditConfig(), unfoldable_site: EditConfig()})
    randomize_all(handle.edits)
    with pytest.raises(MergeNotSupported, match=unfoldable_site):
        editing.merge_site_edits(model, handle.edits)
    assert handle.attached  # nothing was folded, the hooks stay
    handle.detach()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------- persistence


def test_site_edits_save_and_load_reproduce_logits(tmp_path):
    model = build()
    handle = editing.attach_sites(
        model, {"heads": EditConfig(shared_gate=True), "mlp": EditConfig(additive=False)}
    )
    randomize_all(handle.edits)
    edited = logits(model)
    editing.save_site_edits(handle.edits, tmp_path, extra={"note": "x"})
    meta = json.loads((tmp_path / editing.CONFIG_FILE).read_text())
    assert list(meta["sites"]) == ["heads", "mlp"] and meta["extra"] == {"note": "x"}
    assert meta["sites"]["heads"]["edit_config"]["shared_gate"] is True
    loaded = editing.load_site_edits(tmp_path)
    fresh = build()
    with editing.attach_sites(fresh.eval(), loaded):
        torch.testing.assert_close(logits(fresh), edited, rtol=0, atol=0)


def test_load_site_edits_reads_jolas_per_head_artifact(tmp_path):
    model = build()
    handle = editing.attach(model, EditConfig())
    randomize(handle.edits)
    edited = logits(model)
    editing.save_edits(handle.edits, tmp_path)
    meta = json.loads((tmp_path / editing.CONFIG_FILE).read_text())
    assert "shared_gate" not in meta["edit_config"]  # JoLA's files are as before
    loaded = editing.load_site_edits(tmp_path)
    assert loaded.names() == ["heads"]
    fresh = build()
    with editing.attach_sites(fresh, loaded):
        torch.testing.assert_close(logits(fresh), edited, rtol=0, atol=0)


def test_attaching_twice_or_an_unknown_site_is_refused():
    model = build()
    with pytest.raises(ValueError, match="unknown edit site 'nope'; choices: heads, mlp, residual"):
        editing.attach_sites(model, {"nope": EditConfig()})
    handle = editing.attach(model, EditConfig())
    with pytest.raises(RuntimeError, match="already has edits"):
        editing.attach_sites(model, {"mlp": EditConfig()})
    handle.detach()


# ------------------------------------------------------------------------- the methods


def method_for(name: str, tmp_path, *overrides):
    cfg = as_run_config(compose_config(tiny_overrides(tmp_path, f"method={name}", *overrides)))
    return cfg, build_method(cfg.method, seed=cfg.seed)


def tiny():
    return load_model(ModelConfig(name="tiny_random", source="tiny_random"))


def test_ablation_configs_say_where_the_edits_go(tmp_path):
    expected = {
        "jola_mlp": (["mlp"], True, False),
        "jola_mlp_no_gates": (["mlp"], False, False),
        "jola_both": (["heads", "mlp"], True, False),
        "jola_both_no_gates": (["heads", "mlp"], False, False),
        "jola_shared_gate": (["heads"], True, True),
        "jola_sites": (["heads"], True, False),
    }
    for name, (sites, gated, shared) in expected.items():
        cfg, _ = method_for(name, tmp_path)
        assert (cfg.method.sites, cfg.method.gated, cfg.method.shared_gate) == (
            sites,
            gated,
            shared,
        )


def test_jola_sites_yaml_keeps_every_other_setting_of_jola(tmp_path):
    jola_cfg, _ = method_for("jola", tmp_path)
    sites_cfg, _ = method_for("jola_sites", tmp_path)
    jola_values = dataclasses.asdict(jola_cfg.method)
    sites_values = dataclasses.asdict(sites_cfg.method)
    for key in ("name", "sites", "shared_gate"):
        sites_values.pop(key)
    jola_values.pop("name")
    assert sites_values == jola_values


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sites": []}, "method.sites is empty"),
        ({"sites": ["mlp", "nope"]}, "unknown edit site"),
        ({"sites": ["mlp", "mlp"]}, "names a site twice"),
        ({"shared_gate": True, "gated": False}, "method.shared_gate needs gates"),
    ],
)
def test_jola_sites_config_refuses_bad_values(settings, message):
    with pytest.raises(UserError, match=message):
        JolaSitesConfig(**settings)


def test_penalty_target_and_statistics_cover_every_gate_of_every_site(tmp_path):
    cfg, method = method_for("jola_both", tmp_path)
    loaded = tiny()
    method.prepare(loaded)
    edits = method.site_edits
    lam = method.schedule.value(0, None)
    expected = sum(
        gates.penalty("release", e.log_alpha_add, e.log_alpha_mult, lam) for _, e in edits.items()
    )
    torch.testing.assert_close(method.regularizer(loaded.model, 0), expected)
    groups = {g["name"]: g for g in method.parameter_groups(loaded.model, cfg.method.train)}
    assert sum(p.numel() for p in groups["gates"]["params"]) == 2 * (LAYERS * HEADS + LAYERS)
    assert groups["gates"]["weight_decay"] == 0.0
    assert len(groups["edits"]["params"]) == 4
    units = LAYERS * HEADS + LAYERS
    every = [la for _, e in edits.items() for la in (e.log_alpha_add, e.log_alpha_mult)]
    assert method.expected_open_fraction() == pytest.approx(
        float(torch.cat([gates.prob_open(la.detach()).flatten() for la in every]).mean())
    )
    with torch.no_grad():
        edits["mlp"].log_alpha_add.fill_(-5.0)  # every MLP additive gate closed
    stats = method.final_stats()
    assert stats["closed_gates"] == {
        "additive": int((gates.deterministic_gate(edits["heads"].log_alpha_add) == 0).sum())
        + LAYERS,
        "multiplicative": int((gates.deterministic_gate(edits["heads"].log_alpha_mult) == 0).sum()),
        "per_kind": units,
    }
    assert stats["edited_units"]["mlp"]["additive"] == 0
    assert stats["edited_heads"]["total"] == LAYERS * HEADS
    assert method.training_stats()["closed_frac_add"] >= LAYERS / units


def test_target_open_holds_the_fraction_over_both_sites(tmp_path):
    _, method = method_for("jola_both", tmp_path, "method.target_open=0.5")
    loaded = tiny()
    method.prepare(loaded)
    term = method.regularizer(loaded.model, 0)
    assert term.requires_grad
    assert method.controller.last_open == pytest.approx(method.expected_open_fraction())


def test_shared_gate_penalty_is_two_tied_gates(tmp_path):
    _, method = method_for(
        "jola_shared_gate", tmp_path, "method.penalty=paper", "method.schedule=constant",
        "+method.schedule_args.value=0.5",
    )  # fmt: skip
    loaded = tiny()
    method.prepare(loaded)
    shared = method.site_edits["heads"].log_alpha_shared
    expected = 0.5 * 2 * gates.prob_open(shared).sum()
    torch.testing.assert_close(method.regularizer(loaded.model, 0), expected)
    table = method.gate_values()
    assert table["shared_gate"] is True
    assert table["additive"]["eval_gate"] == table["multiplicative"]["eval_gate"]


def test_jola_sites_on_heads_trains_exactly_as_jola(tmp_path):
    """Two optimiser steps of method=jola and method=jola_sites (sites: [heads]) from the same
    seed give the same edits: one configuration of the site layer is JoLA."""
    ids = torch.tensor([[3, 40, 41, 42, 43, 44, 45, 46]])
    trained = {}
    for name in ("jola", "jola_sites"):
        cfg, method = method_for(name, tmp_path)
        loaded = tiny()
        torch.manual_seed(11)
        method.prepare(loaded)
        params = method.trainable_parameters(loaded.model)
        optimizer = torch.optim.AdamW(params, lr=0.05, weight_decay=0.0)
        method.on_train_begin(10)
        loaded.model.train()
        for step in range(2):
            loss = loaded.model(ids, labels=ids).loss + method.regularizer(loaded.model, step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        edits = method.edits if name == "jola" else method.site_edits["heads"]
        trained[name] = {k: v.detach().clone() for k, v in edits.state_dict().items()}
    assert trained["jola"].keys() == trained["jola_sites"].keys()
    for key, value in trained["jola"].items():
        assert torch.equal(value, trained["jola_sites"][key]), key


@pytest.mark.parametrize("name", NEW_METHODS)
def test_each_new_method_takes_a_training_step_on_only_its_edits(name, tmp_path):
    cfg, method = method_for(name, tmp_path)
    loaded = tiny()
    method.prepare(loaded)
    params = method.trainable_parameters(loaded.model)
    assert params and all(p.requires_grad for p in params)
    frozen = [p for p in loaded.model.parameters() if all(p is not q for q in params)]
    assert frozen and not any(p.requires_grad for p in frozen)
    before = [p.detach().clone() for p in params]
    groups = method.parameter_groups(loaded.model, cfg.method.train)
    assert sum(len(g["params"]) for g in groups) == len(params)
    optimizer = torch.optim.AdamW(groups)
    method.on_train_begin(10)
    loaded.model.train()
    ids = torch.tensor([[3, 40, 41, 42, 43, 44, 45, 46]])
    loss = loaded.model(ids, labels=ids).loss
    reg = method.regularizer(loaded.model, 0)
    (loss + reg if reg is not None else loss).backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))
    assert all(p.grad is None for p in frozen)


def test_jola_both_runs_end_to_end_and_reloads(tmp_path):
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "method=jola_both",
            "method.train.epochs=1",
            "method.train.batch_size=4",
            "method.train.warmup_steps=0",
            "method.train.logging_steps=1",
        )
    )
    results = run(cfg)
    run_dir = run_directory(as_run_config(cfg))
    units = LAYERS * HEADS + LAYERS
    vectors = 2 * LAYERS * HEADS * HEAD_DIM + 2 * LAYERS * HIDDEN
    assert results["trainable_parameters"] == vectors + 2 * units
    assert results["method_stats"]["sites"] == ["heads", "mlp"]
    assert results["method_stats"]["closed_gates"]["per_kind"] == units
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert any("closed_frac_add" in entry and "lambda" in entry for entry in log)
    table = json.loads((run_dir / "gates.json").read_text())
    assert set(table["sites"]) == {"heads", "mlp"}
    assert len(table["sites"]["mlp"]["additive"]["eval_gate"]) == LAYERS
    method = build_method(as_run_config(cfg).method)
    fresh = tiny()
    method.load(fresh, run_dir)
    assert method.site_edits.names() == ["heads", "mlp"]
