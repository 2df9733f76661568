"""Tests of jola.edits on tiny random-weight models of several architectures (no network)."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    GPT2Config,
    LlamaConfig,
    MambaConfig,
    MistralConfig,
    Olmo2Config,
    Phi3Config,
    Qwen2Config,
)

import jola.edits
import jola.gates
from jola.edits import (
    EDITS_FILE,
    EditConfig,
    HeadEdits,
    attach,
    count_edit_parameters,
    export_merged,
    find_output_projections,
    load_edit_metadata,
    load_edits,
    merge_into_model,
    save_edits,
)

VOCAB = 96
SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, vocab_size=VOCAB)
GQA = dict(num_attention_heads=4, num_key_value_heads=2)
TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)

CONFIGS = {
    "llama": lambda: LlamaConfig(**SMALL, **GQA, **TOKENS),
    "qwen2": lambda: Qwen2Config(**SMALL, **GQA, **TOKENS),
    "mistral": lambda: MistralConfig(**SMALL, **GQA, **TOKENS),
    # Gemma: heads * head_dim (128) != hidden_size (64)
    "gemma2": lambda: Gemma2Config(**SMALL, **GQA, **TOKENS, head_dim=32),
    "gemma3_text": lambda: Gemma3TextConfig(**SMALL, **GQA, **TOKENS, head_dim=32),
    "phi3": lambda: Phi3Config(**SMALL, **GQA, **TOKENS),
    "gpt2": lambda: GPT2Config(
        n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB, bos_token_id=1, eos_token_id=2
    ),
}
ARCHS = list(CONFIGS)
LLAMA_8B = dict(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
)


def build(arch: str, attn: str | None = None, seed: int = 0) -> nn.Module:
    """A tiny fp32 model in eval mode; the same seed gives the same weights.

    ``attn=None`` lets transformers choose (sdpa, or eager for Gemma 2, which has no sdpa)."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(CONFIGS[arch](), attn_implementation=attn).eval()


def input_ids(batch: int = 2, length: int = 9) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))


def logits(model: nn.Module, ids: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids() if ids is None else ids).logits


def randomize(edits: HeadEdits, std: float = 0.3, seed: int = 0, closed_layer: int | None = None):
    """Non-trivial edits: large vectors; gates a mix of closed, partial and fully open."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (edits.scale, edits.offset):
            if p is not None:
                p.copy_(torch.randn(p.shape, generator=g) * std)
        for la in (edits.log_alpha_mult, edits.log_alpha_add):
            if la is not None:
                la.copy_(torch.rand(la.shape, generator=g) * 8 - 4)
                la[:, 0] = 5.0  # gate exactly 1
                la[:, 1] = -5.0  # gate exactly 0
                if closed_layer is not None:
                    la[closed_layer] = -5.0
    return edits


def projection_matrix(module: nn.Module) -> torch.Tensor:
    """The projection as [out, in], whatever its storage layout."""
    return module.weight.t() if type(module).__name__ == "Conv1D" else module.weight


# ---------------------------------------------------------------------------------- identity


@pytest.mark.parametrize("arch", ARCHS)
def test_zero_vectors_or_closed_gates_leave_logits_exactly_unchanged(arch):
    model = build(arch)
    base = logits(model)
    handle = attach(model, EditConfig(init_std=0.0))
    assert torch.equal(logits(model), base)
    handle.detach()

    edits = randomize(HeadEdits(2, 4, find_output_projections(model).head_dim))
    with torch.no_grad():
        edits.log_alpha_add.fill_(-5.0)
        edits.log_alpha_mult.fill_(-5.0)
    handle = attach(model, edits)
    assert torch.equal(logits(model), base)
    assert edits.head_counts() == {"additive": 0, "multiplicative": 0, "either": 0, "total": 8}


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_detach_restores_the_untouched_model(arch):
    model = build(arch)
    base = logits(model)
    keys = set(model.state_dict())
    handle = attach(model, EditConfig())
    randomize(handle.edits)
    assert not torch.allclose(logits(model), base)
    assert any(k.startswith("jola_edits.") for k in model.state_dict())
    handle.detach()
    assert torch.equal(logits(model), base)
    assert set(model.state_dict()) == keys
    assert all(not m._forward_pre_hooks for m in model.modules())
    handle.detach()  # idempotent
    attach(model, EditConfig()).detach()  # can attach again


# ------------------------------------------------------------------- the edit, computed by hand


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt2"])
def test_multiplicative_edit_equals_scaling_projection_input_columns(arch):
    model = build(arch)
    reference = copy.deepcopy(model)
    edits = attach(model, EditConfig(additive=False)).edits
    randomize(edits)
    proj = find_output_projections(reference)
    gate = jola.gates.deterministic_gate(edits.log_alpha_mult)
    d = proj.head_dim
    with torch.no_grad():
        for layer, module in enumerate(proj.modules):
            w = projection_matrix(module)  # a view: scaling it scales the stored weight
            for head in range(proj.num_heads):
                s = 1 + gate[layer, head] * edits.scale[layer, head]
                w[:, head * d : (head + 1) * d] *= s
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt2"])
def test_additive_edit_equals_adding_projected_offset(arch):
    model = build(arch)
    reference = copy.deepcopy(model)
    edits = attach(model, EditConfig(multiplicative=False)).edits
    randomize(edits)
    proj = find_output_projections(reference)
    gate = jola.gates.deterministic_gate(edits.log_alpha_add)
    d = proj.head_dim
    with torch.no_grad():
        for layer, module in enumerate(proj.modules):
            w = projection_matrix(module)
            shift = sum(
                w[:, h * d : (h + 1) * d] @ (gate[layer, h] * edits.offset[layer, h])
                for h in range(proj.num_heads)
            )
            if module.bias is None:
                module.bias = nn.Parameter(torch.zeros(w.shape[0]))
            module.bias += shift
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)


def test_hook_edits_each_head_slice_of_the_projection_input():
    model = build("llama")
    captured = {}
    proj = find_output_projections(model)
    hook = proj.modules[0].register_forward_hook(lambda m, a, out: captured.update(z=a[0]))
    logits(model)
    z = captured["z"]
    edits = randomize(attach(model, EditConfig()).edits)
    logits(model)  # forward hooks see the input after the pre-hook edited it
    hook.remove()
    edited = captured["z"].unflatten(-1, (4, proj.head_dim))
    gm = jola.gates.deterministic_gate(edits.log_alpha_mult)[0]
    ga = jola.gates.deterministic_gate(edits.log_alpha_add)[0]
    for h in range(4):
        expected = (1 + gm[h] * edits.scale[0, h]) * z.unflatten(-1, (4, -1))[..., h, :]
        expected = expected + ga[h] * edits.offset[0, h]
        torch.testing.assert_close(edited[..., h, :], expected, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------- merging


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_logits_equal_hooked_logits(arch):
    model = build(arch)
    edits = randomize(attach(model, EditConfig()).edits)
    hooked = logits(model)
    merge_into_model(model, edits)
    assert not hasattr(model, "jola_edits")  # merging detached the hooks
    torch.testing.assert_close(logits(model), hooked, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gemma3_text", "gpt2"])
def test_exported_checkpoint_reloads_with_auto_class(arch, tmp_path):
    model = build(arch)
    edits = randomize(attach(model, EditConfig()).edits)
    hooked = logits(model)
    export_merged(model, edits, tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(reloaded), hooked, atol=1e-5, rtol=0)
    if arch != "gpt2":
        assert reloaded.config.attention_bias is True
        attn = reloaded.model.layers[0].self_attn
        assert torch.count_nonzero(attn.q_proj.bias) == 0
        assert torch.count_nonzero(attn.o_proj.bias) > 0


@pytest.mark.parametrize("arch", ["qwen2", "mistral", "phi3"])
def test_export_without_expressible_bias_raises_and_changes_nothing(arch, tmp_path):
    model = build(arch)
    handle = attach(model, EditConfig())
    randomize(handle.edits)
    hooked = logits(model)
    with pytest.raises(NotImplementedError, match=rf"'{arch}'.*save_edits"):
        export_merged(model, handle.edits, tmp_path)
    assert handle.attached
    assert torch.equal(logits(model), hooked)
    assert not list(tmp_path.iterdir())


def test_multiplicative_only_edits_export_for_qwen2(tmp_path):
    model = build("qwen2")
    edits = randomize(attach(model, EditConfig(additive=False)).edits)
    hooked = logits(model)
    export_merged(model, edits, tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(reloaded), hooked, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ attention kinds and cache


@pytest.mark.parametrize("arch", ["llama", "gemma3_text", "gpt2"])
def test_eager_and_sdpa_give_the_same_edited_logits(arch):
    eager, sdpa = build(arch, attn="eager"), build(arch, attn="sdpa")
    assert (eager.config._attn_implementation, sdpa.config._attn_implementation) == (
        "eager",
        "sdpa",
    )
    handle = attach(eager, EditConfig())
    edits = randomize(handle.edits)
    from_eager = logits(eager)
    handle.detach()
    attach(sdpa, edits)
    torch.testing.assert_close(logits(sdpa), from_eager, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_generate_with_kv_cache_equals_without(arch):
    model = build(arch)
    base = logits(model)
    randomize(attach(model, EditConfig()).edits, std=0.5)
    assert not torch.allclose(logits(model), base, atol=1e-3)
    prompt = input_ids(batch=1, length=5)
    kwargs = dict(max_new_tokens=8, do_sample=False, num_beams=1, pad_token_id=0)
    with_cache = model.generate(prompt, use_cache=True, **kwargs)
    without_cache = model.generate(prompt, use_cache=False, **kwargs)
    assert torch.equal(with_cache, without_cache)
    assert with_cache.shape[1] > prompt.shape[1]


# ------------------------------------------------------------------------------ persistence


def test_save_and_load_reproduce_logits(tmp_path):
    model = build("llama")
    edits = randomize(attach(model, EditConfig()).edits)
    edited = logits(model)
    save_edits(edits, tmp_path, extra={"task": "siqa", "seed": 42})
    assert (tmp_path / EDITS_FILE).stat().st_size < 64_000
    meta = load_edit_metadata(tmp_path)
    assert meta["model_type"] == "llama"
    assert (meta["num_layers"], meta["num_heads"], meta["head_dim"]) == (2, 4, 16)
    assert meta["extra"] == {"task": "siqa", "seed": 42}

    fresh = build("llama")
    loaded = load_edits(tmp_path)
    assert loaded.edit_config == edits.edit_config
    attach(fresh, loaded)
    assert torch.equal(logits(fresh), edited)


def test_save_and_load_partial_config(tmp_path):
    edits = HeadEdits(2, 4, 16, EditConfig(additive=False, gated=False))
    save_edits(edits, tmp_path)
    loaded = load_edits(tmp_path)
    assert loaded.edit_config == edits.edit_config
    assert loaded.offset is None and loaded.log_alpha_mult is None
    assert torch.equal(loaded.scale, edits.scale)


def test_load_into_a_model_of_another_shape_fails(tmp_path):
    save_edits(HeadEdits(3, 4, 16), tmp_path)
    with pytest.raises(ValueError, match="do not fit"):
        attach(build("llama"), load_edits(tmp_path))


# --------------------------------------------------------------------------------- training


def _frozen_llama() -> nn.Module:
    model = build("llama").train()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _loss(model: nn.Module) -> torch.Tensor:
    ids = input_ids()
    return model(ids, labels=ids).loss


def test_gradients_reach_only_the_edit_parameters():
    model = _frozen_llama()
    edits = attach(model, EditConfig()).edits
    assert edits.training
    _loss(model).backward()
    for name, p in model.named_parameters():
        if name.startswith("jola_edits."):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 2 * 2 * 4 * 16 + 2 * 2 * 4


def test_gates_are_drawn_once_per_forward_also_under_checkpointing(monkeypatch):
    calls = []
    real = jola.gates.gate_values

    def counting(log_alpha, training):
        calls.append((tuple(log_alpha.shape), training))
        return real(log_alpha, training)

    monkeypatch.setattr(jola.gates, "gate_values", counting)
    grads = []
    for checkpointing in (False, True):
        model = _frozen_llama()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.model.gradient_checkpointing
        edits = attach(model, EditConfig(), generator=torch.Generator().manual_seed(3)).edits
        calls.clear()
        torch.manual_seed(7)
        _loss(model).backward()
        assert calls == [((2, 4), True), ((2, 4), True)]
        calls.clear()
        model.model(input_ids())  # the backbone called on its own also draws once
        assert len(calls) == 2
        grads.append(torch.cat([p.grad.flatten() for p in edits.parameters()]))
    # recomputed layers reuse the forward's gate sample, so the gradients are the same
    torch.testing.assert_close(grads[0], grads[1])


def test_edits_stay_fp32_on_a_bf16_model():
    model = build("llama").to(torch.bfloat16).train()
    for p in model.parameters():
        p.requires_grad_(False)
    edits = attach(model, EditConfig()).edits
    assert all(p.dtype == torch.float32 for p in edits.parameters())
    out = model(input_ids(), labels=input_ids())
    assert out.logits.dtype == torch.bfloat16
    out.loss.backward()
    assert edits.scale.grad.dtype == torch.float32 and edits.scale.grad.abs().sum() > 0


def test_casting_the_model_keeps_the_edits_in_fp32():
    model = build("llama")
    edits = randomize(attach(model, EditConfig()).edits)
    before = {n: p.clone() for n, p in edits.named_parameters()}
    model.to(torch.bfloat16)
    model.half()
    assert model.lm_head.weight.dtype == torch.float16
    for name, p in edits.named_parameters():
        assert torch.equal(p, before[name]), name


def test_edits_follow_model_train_and_eval():
    model = build("llama")
    edits = attach(model, EditConfig()).edits
    assert not edits.training  # from_config models here are in eval mode
    model.train()
    assert edits.training
    model.eval()
    first, second = logits(model), logits(model)
    assert torch.equal(first, second)  # deterministic gates in eval


# ---------------------------------------------------------------------------------- pruning


def test_prune_closed_gives_the_same_logits_as_unpruned():
    model = build("llama")
    handle = attach(model, EditConfig())
    edits = randomize(handle.edits, closed_layer=0)
    full = logits(model)
    assert handle.hooked_layers == [0, 1]
    handle.detach()
    pruned = attach(model, edits, prune_closed=True)
    assert pruned.hooked_layers == [1]  # every gate of layer 0 is closed
    assert torch.equal(logits(model), full)
    model.train()
    with pytest.raises(RuntimeError, match="evaluation"):
        logits(model)
    pruned.detach()
    with pytest.raises(ValueError, match="eval"):
        attach(model, edits, prune_closed=True)


# ---------------------------------------------------------------------------------- counting


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_count_is_two_vectors_and_two_gates_per_head(arch):
    model = build(arch)
    proj = find_output_projections(model)
    layers, heads, head_dim = proj.num_layers, proj.num_heads, proj.head_dim
    expected = 2 * layers * heads * head_dim + 2 * layers * heads
    edits = attach(model, EditConfig()).edits
    assert edits.num_parameters() == expected
    assert count_edit_parameters(model.config) == expected
    assert head_dim == (32 if arch.startswith("gemma") else 16)


def test_llama_3_1_8b_count_on_meta_device():
    config = LlamaConfig(**LLAMA_8B)
    assert count_edit_parameters(config) == 264_192
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    edits = attach(model, EditConfig()).edits
    assert edits.num_parameters() == 264_192
    assert edits.scale.is_meta


@pytest.mark.parametrize(
    ("edit_config", "names"),
    [
        (EditConfig(additive=False), {"scale", "log_alpha_mult"}),
        (EditConfig(multiplicative=False), {"offset", "log_alpha_add"}),
        (EditConfig(gated=False), {"scale", "offset"}),
        (EditConfig(additive=False, gated=False), {"scale"}),
    ],
)
def test_partial_configs_have_the_right_parameters(edit_config, names):
    layers, heads, head_dim = 2, 4, 16
    model = build("llama")
    edits = attach(model, edit_config).edits
    assert {n for n, _ in edits.named_parameters()} == names
    sizes = {"scale": layers * heads * head_dim, "offset": layers * heads * head_dim}
    expected = sum(sizes.get(n, layers * heads) for n in names)
    assert edits.num_parameters() == expected
    assert count_edit_parameters(model.config, edit_config) == expected
    counts = edits.head_counts()
    if not edit_config.gated:
        assert counts["either"] == counts["total"] == 8
    if not edit_config.additive:
        assert counts["additive"] == 0


def test_head_counts_use_evaluation_gates():
    edits = HeadEdits(2, 4, 16)
    with torch.no_grad():
        edits.log_alpha_add.copy_(torch.tensor([[5.0, -5.0, -5.0, -5.0], [0.0, -2.5, 5, -5]]))
        edits.log_alpha_mult.copy_(torch.tensor([[5.0, 5.0, -5.0, -5.0], [-5.0] * 4]))
    assert edits.head_counts() == {"additive": 3, "multiplicative": 2, "either": 4, "total": 8}


def test_edit_config_rejects_no_edit():
    with pytest.raises(ValueError, match="additive"):
        EditConfig(additive=False, multiplicative=False)


# --------------------------------------------------------------------------------- locating


def test_architecture_outside_the_table_is_found_by_search():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(Olmo2Config(**SMALL, **GQA, **TOKENS)).eval()
    edits = randomize(attach(model, EditConfig()).edits)
    assert find_output_projections(model).names == [
        "model.layers.0.self_attn.o_proj",
        "model.layers.1.self_attn.o_proj",
    ]
    hooked = logits(model)
    merge_into_model(model, edits)
    torch.testing.assert_close(logits(model), hooked, atol=1e-5, rtol=0)


def test_model_without_attention_output_projection_raises_listing_modules():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        MambaConfig(hidden_size=32, num_hidden_layers=2, vocab_size=VOCAB, state_size=4)
    )
    with pytest.raises(ValueError, match=r"model_type='mamba'.*backbone\.layers\.0\.mixer"):
        attach(model, EditConfig())


def test_attaching_twice_is_refused():
    model = build("llama")
    attach(model, EditConfig())
    with pytest.raises(RuntimeError, match="already"):
        attach(model, EditConfig())


# ------------------------------------------------------------------------------- torch only


def edits_modules() -> list[str]:
    return ["jola.edits"] + [
        f"jola.edits.{info.name}" for info in pkgutil.iter_modules(jola.edits.__path__)
    ]


def test_edits_package_imports_only_torch_at_module_level():
    # transformers and safetensors are imported inside the functions that need them
    stdlib = {"__future__", "collections", "dataclasses", "json", "pathlib", "re", "typing"}
    ours = ("jola.gates", "jola.bias_export", "jola.edits")
    for name in edits_modules():
        imported = set()
        for node in ast.parse(inspect.getsource(importlib.import_module(name))).body:
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module == "jola":
                imported.update(f"jola.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
        outside = {
            m
            for m in imported
            if m.split(".")[0] not in stdlib | {"torch"}
            and not any(m == o or m.startswith(o + ".") for o in ours)
        }
        assert not outside, (name, sorted(outside))


def test_importing_the_edits_package_loads_no_transformers_hydra_or_safetensors():
    code = (
        "import importlib, sys\n"
        f"for name in {edits_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = ('transformers', 'hydra', 'omegaconf', 'safetensors', 'peft', 'datasets')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.stdout.strip() == "[]"
