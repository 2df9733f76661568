"""LoRA (peft) and BitFit on the shared training path, on the tiny Llama."""

import json
import os
import subprocess
import sys

import pytest
import torch

from jola.methods import build_method
from jola.methods.bitfit import export_merged_bitfit, load_biases
from jola.methods.lora import load_lora_adapter, merge_lora
from jola.models import load_model
from jola.runner import as_run_config
from jola.training import train_method
from tasks import load_splits
from tests.helpers import REPO_ROOT, compose_config, tiny_overrides

IDS = torch.tensor([[3, 40, 41, 42, 43, 44, 45, 46, 47, 48]])
TRAIN = (
    "method.train.max_steps=3",
    "method.train.batch_size=4",
    "method.train.warmup_steps=0",
    "method.train.logging_steps=1",
)


def logits(model):
    model.eval()
    with torch.no_grad():
        return model(IDS).logits


def prepared(tmp_path, method_name, *extra):
    cfg = as_run_config(compose_config(tiny_overrides(tmp_path, f"method={method_name}", *extra)))
    loaded = load_model(cfg.model)
    base_logits = logits(loaded.model)
    base_state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    method = build_method(cfg.method)
    method.prepare(loaded)
    return cfg, loaded, method, base_logits, base_state


def train_a_few_steps(cfg, loaded, method, tmp_path, lr_override=None):
    if lr_override:
        cfg.method.train.lr = lr_override
    splits = load_splits(cfg.task, cfg.n, cfg.seed)
    return train_method(method, loaded, splits, cfg, tmp_path / "run")


def expected_lora_count(config, r, targets):
    h, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    shapes = {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (h, h),
        "up_proj": (h, inter),
        "gate_proj": (h, inter),
        "down_proj": (inter, h),
    }
    return config.num_hidden_layers * sum(r * sum(shapes[t]) for t in targets)


def expected_bitfit_count(config, targets):
    h, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    sizes = {
        "q_proj": h,
        "k_proj": kv,
        "v_proj": kv,
        "o_proj": h,
        "gate_proj": inter,
        "up_proj": inter,
        "down_proj": h,
    }
    return config.num_hidden_layers * sum(sizes[t] for t in targets)


@pytest.mark.parametrize("method_name", ["lora", "bitfit"])
def test_step_zero_is_the_base_model(tmp_path, method_name):
    _, loaded, _, base_logits, _ = prepared(tmp_path, method_name)
    assert torch.equal(logits(loaded.model), base_logits)


def test_lora_trains_only_adapters_and_saves_loads_and_merges(tmp_path):
    cfg, loaded, method, base_logits, base_state = prepared(tmp_path, "lora", *TRAIN)
    config = loaded.model.config
    trainable = method.trainable_parameters(loaded.model)
    assert sum(p.numel() for p in trainable) == expected_lora_count(
        config, 32, ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
    )
    train_a_few_steps(cfg, loaded, method, tmp_path, lr_override=1e-2)
    trained_logits = logits(loaded.model)
    assert not torch.allclose(trained_logits, base_logits)
    base_now = loaded.model.get_base_model().state_dict()
    for key, value in base_state.items():
        peft_key = key.replace(".weight", ".base_layer.weight") if key not in base_now else key
        assert torch.equal(base_now[peft_key], value), key

    files = method.save(tmp_path / "art")
    assert any(f.name == "adapter_model.safetensors" for f in files)
    fresh = load_model(cfg.model).model
    reloaded = load_lora_adapter(fresh, tmp_path / "art")
    torch.testing.assert_close(logits(reloaded), trained_logits)
    merged = merge_lora(reloaded)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), trained_logits, rtol=1e-5, atol=1e-5)


def test_bitfit_trains_only_biases_and_saves_loads_and_exports(tmp_path):
    from transformers import AutoModelForCausalLM

    cfg, loaded, method, base_logits, base_state = prepared(tmp_path, "bitfit", *TRAIN)
    targets = ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"]
    trainable = method.trainable_parameters(loaded.model)
    assert sum(p.numel() for p in trainable) == expected_bitfit_count(loaded.model.config, targets)
    assert all(torch.count_nonzero(p) == 0 for p in trainable)
    train_a_few_steps(cfg, loaded, method, tmp_path, lr_override=1e-1)
    trained_logits = logits(loaded.model)
    assert not torch.allclose(trained_logits, base_logits)
    state = loaded.model.state_dict()
    for key, value in base_state.items():
        assert torch.equal(state[key], value), key  # every original weight untouched
    assert set(state) - set(base_state) == {f"{n}.bias" for n in method.added}

    files = method.save(tmp_path / "art")
    assert sum(f.stat().st_size for f in files) < 20_000
    fresh = load_model(cfg.model).model
    load_biases(fresh, tmp_path / "art" / "bitfit")
    torch.testing.assert_close(logits(fresh), trained_logits)

    export_merged_bitfit(loaded.model, tmp_path / "merged")
    exported = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert exported["attention_bias"] is True and exported["mlp_bias"] is True
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(logits(plain), trained_logits, rtol=1e-5, atol=1e-5)


def test_bitfit_export_refuses_an_architecture_without_bias_flags(tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    from jola.methods.bitfit import add_trainable_biases

    model = MistralForCausalLM(
        MistralConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )
    add_trainable_biases(model, ["q_proj", "gate_proj"])
    with pytest.raises(NotImplementedError, match="'mistral'.*load_biases"):
        export_merged_bitfit(model, tmp_path / "out")


def test_unknown_target_modules_are_a_clear_error(tmp_path):
    from jola.errors import UserError

    with pytest.raises(UserError, match=r"c_attn not found.*q_proj"):
        prepared(tmp_path, "lora", "method.target_modules=[c_attn]")
    with pytest.raises(UserError, match=r"c_fc not found.*up_proj"):
        prepared(tmp_path, "bitfit", "method.target_modules=[c_fc]")


def test_multirun_over_all_methods_writes_four_results(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "-m",
            "method=zero_shot,jola,lora,bitfit",
            "task=siqa",
            "model=tiny_random",
            "n=8",
            "task.test_limit=8",
            "eval.num_beams=1",
            "eval.max_new_tokens=4",
            "eval.progress=false",
            f"output_root={tmp_path}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = sorted(p.relative_to(tmp_path).parts[1] for p in tmp_path.rglob("results.json"))
    assert found == ["bitfit", "jola", "lora", "zero_shot"]
    for path in tmp_path.rglob("results.json"):
        data = json.loads(path.read_text())
        assert 0.0 <= data["metrics"]["acc"] <= 1.0
        assert data["trainable_parameters"] >= 0 and "trainable_percent" in data
        assert data["artifact_bytes"] >= 0
