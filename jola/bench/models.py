"""The models a benchmark runs on, all loaded through :func:`jola.models.load_model`.

``tiny_random`` and ``smollm2_135m`` are the project's own model configs (``conf/model/``).
``llama31_8b_shape`` is Llama-3.1-8B's configuration with random weights (no download): one more
model source registered in :data:`jola.models.MODEL_SOURCES`, so device, dtype (the project's
dtype table), tokenizer padding and the recorded info come from the same code as a run's.
``--layers`` keeps fewer layers and ``--shape-divisor`` divides the widths (not the head counts)
so that the same code path can be checked on a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from jola.config import ModelConfig
from jola.errors import UserError
from jola.models import (
    MODEL_SOURCES,
    LoadedModel,
    byte_level_tokenizer,
    load_model,
    resolve_device,
)
from jola.registry import Registry

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPE_MODEL = "llama31_8b_shape"

# Llama-3.1-8B(-Instruct) configuration (weights are random; only the shape matters here).
LLAMA31_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}


@dataclass
class ShapeModelConfig(ModelConfig):
    """A :class:`ModelConfig` of the random-weight Llama-3.1-8B shape: ``layers`` (None: all 32)
    and ``shape_divisor`` (hidden size, MLP width and vocabulary divided by it)."""

    layers: int | None = None
    shape_divisor: int = 1


# name -> function(device, attn, layers, shape_divisor, dtype) -> ModelConfig
BENCH_MODELS: Registry = Registry("bench model")


def _project_model_config(name: str):
    """A builder of the ModelConfig in ``conf/model/<name>.yaml``."""

    def build(device: torch.device, attn: str, layers, shape_divisor, dtype) -> ModelConfig:
        from omegaconf import OmegaConf

        path = REPO_ROOT / "conf" / "model" / f"{name}.yaml"
        raw = OmegaConf.to_container(OmegaConf.load(path))
        raw.pop("defaults", None)
        raw.update(device=str(device), attn_implementation=attn)
        if dtype is not None:
            raw["dtype"] = dtype
        return ModelConfig(**raw)

    return build


for _name in ("tiny_random", "smollm2_135m"):
    BENCH_MODELS.add(_name, _project_model_config(_name))


@BENCH_MODELS.register(SHAPE_MODEL)
def _shape_model_config(device: torch.device, attn: str, layers, shape_divisor, dtype):
    """bf16 on CUDA, fp32 on the CPU unless ``dtype`` says otherwise."""
    if device.type == "cpu" and shape_divisor == 1 and (layers is None or layers > 2):
        raise UserError(
            "llama31_8b_shape on a CPU: pass --shape-divisor (e.g. 16) and/or --layers <= 2; "
            "the full shape needs a GPU"
        )
    return ShapeModelConfig(
        name=SHAPE_MODEL,
        source=SHAPE_MODEL,
        device=str(device),
        attn_implementation=attn,
        dtype=dtype or ("bfloat16" if device.type == "cuda" else "float32"),
        layers=layers,
        shape_divisor=shape_divisor,
    )


def llama31_8b_config(layers: int | None = None, shape_divisor: int = 1, attn: str = "sdpa"):
    """LlamaConfig of Llama-3.1-8B and the byte-level tokenizer; ``layers`` keeps fewer layers,
    ``shape_divisor`` divides hidden size, MLP width and vocabulary (head counts stay 32 / 8)."""
    from transformers import LlamaConfig

    values = dict(LLAMA31_8B)
    if layers is not None:
        values["num_hidden_layers"] = layers
    if shape_divisor > 1:
        for key in ("hidden_size", "intermediate_size", "vocab_size"):
            values[key] = values[key] // shape_divisor
        if values["hidden_size"] % values["num_attention_heads"]:
            raise UserError(f"--shape-divisor {shape_divisor}: hidden size not divisible by 32")
    tokenizer = byte_level_tokenizer()
    config = LlamaConfig(
        **values,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config._attn_implementation = attn
    return config, tokenizer


@MODEL_SOURCES.register(SHAPE_MODEL)
def load_llama31_8b_shape(cfg: ModelConfig, dtype: torch.dtype):
    """The model source of ``llama31_8b_shape``: random weights (seed 0), built directly on the
    configured device (an 8B model is never materialised on the CPU first)."""
    from transformers import LlamaForCausalLM

    layers = getattr(cfg, "layers", None)
    shape_divisor = getattr(cfg, "shape_divisor", 1)
    device = resolve_device(cfg.device)
    config, tokenizer = llama31_8b_config(layers, shape_divisor, cfg.attn_implementation)
    cuda_rng = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_rng):
        torch.manual_seed(0)
        with torch.device(device):
            model = LlamaForCausalLM._from_config(config, dtype=dtype)
    info = {
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "shape_divisor": shape_divisor,
    }
    return model, tokenizer, info


def load_bench_model(
    name: str,
    device: str = "auto",
    *,
    attn: str = "sdpa",
    layers: int | None = None,
    shape_divisor: int = 1,
    dtype: str | None = None,
) -> LoadedModel:
    """One of :data:`BENCH_MODELS`, loaded by :func:`jola.models.load_model`."""
    dev = resolve_device(device)
    cfg = BENCH_MODELS.get(name)(dev, attn, layers, shape_divisor, dtype)
    return load_model(cfg)


def model_name(bench: LoadedModel) -> str:
    """The bench model's name (``tiny_random``, ``llama31_8b_shape``, ...)."""
    return bench.info["name"]


def with_model(bench: LoadedModel, model: nn.Module) -> LoadedModel:
    """The same tokenizer, device, dtype and info around another model (e.g. a copy)."""
    return dataclasses.replace(bench, model=model, info=dict(bench.info))


def clone_sharing_weights(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers ARE the original's (no extra weight memory).

    Modules are copied, so hooks, adapters and new biases added to the copy do not touch the
    original or other copies; the shared base weights must stay frozen.
    """
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)
