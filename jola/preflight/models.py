"""Model and BERTScore-encoder checks: can each be loaded here, and how large is the model.

The parameter count comes from the model's config alone (config.json of a folder or of the
cache, the hub's config.json when online, ``ModelConfig.tiny``, the GGUF header), with the
model built on the ``meta`` device: no weight is read or allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jola.errors import UserError
from jola.preflight.hub import (
    HubState,
    cached_snapshot,
    describe_hub_error,
    hf_folder_problem,
    remote_config,
    remote_size,
)
from jola.preflight.report import MISSING, OK, PROBLEM, Check, count, gib


@dataclass
class Fetch:
    """A hub repo the sweep needs that is not in the local cache."""

    kind: str  # model, bertscore encoder
    repo_id: str
    revision: str | None
    size: int | None  # bytes to download (None: unknown)


@dataclass
class ModelFacts:
    check: Check
    parameters: int | None = None
    fetch: Fetch | None = None


def _looks_like_path(path: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else names a folder."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1


def parameters_of_config(config) -> int | None:
    """Parameters of the causal LM a transformers config describes (meta device, no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # an architecture transformers cannot build without remote code
        return None
    return sum(p.numel() for p in model.parameters())


def parameters_of_folder(folder: Path) -> int | None:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except Exception:
        return None
    return parameters_of_config(config)


def _tiny_parameters(cfg) -> int:
    import torch

    from jola.models import load_tiny_random_model

    with torch.device("meta"):
        model, _, _ = load_tiny_random_model(cfg, torch.float32)
    return sum(p.numel() for p in model.parameters())


def _packaged(cfg) -> ModelFacts:
    from jola.models import default_cache_dir, find_package_file

    name = f"{cfg.name} ({cfg.gguf_package}/{cfg.gguf_file})"
    try:
        gguf = find_package_file(cfg.gguf_package, cfg.gguf_file)
    except UserError as err:
        return ModelFacts(Check("model", name, MISSING, str(err)))
    converted = (
        Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir() / "models"
    ) / cfg.name
    if (converted / "config.json").is_file():
        parameters, where = parameters_of_folder(converted), f"converted copy in {converted}"
    else:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            parameters = parameters_of_config(config)
        except Exception:
            parameters = None
        where = f"converted on first use into {converted}"
    size = f", {count(parameters)} parameters" if parameters else ""
    return ModelFacts(Check("model", name, OK, f"packaged GGUF, {where}{size}"), parameters)


def check_model(cfg, hub: HubState) -> ModelFacts:
    """Whether the model of a ModelConfig can be loaded here, and its size."""
    if cfg.source == "tiny_random":
        parameters = _tiny_parameters(cfg)
        detail = f"built in code (random weights), {count(parameters)} parameters"
        return ModelFacts(Check("model", cfg.name, OK, detail), parameters)
    if cfg.source == "packaged_gguf":
        return _packaged(cfg)
    if not cfg.path:
        return ModelFacts(Check("model", cfg.name, PROBLEM, "source=hub needs model.path"))
    name = f"{cfg.name} ({cfg.path})"
    facts = check_hub_repo("model", name, cfg.path, cfg.revision, hub)
    if facts.check.status == OK and facts.parameters:
        facts.check.detail += f", {count(facts.parameters)} parameters"
    return facts


def check_hub_repo(
    kind: str, name: str, path: str, revision: str | None, hub: HubState, tokenizer: bool = True
) -> ModelFacts:
    """A model-type repo given as a local folder or a hub id: cached, on the hub, or missing."""
    folder = Path(os.path.expanduser(path))
    if folder.is_dir():
        problem = hf_folder_problem(folder, tokenizer)
        parameters = parameters_of_folder(folder) if (folder / "config.json").is_file() else None
        if problem:
            return ModelFacts(Check(kind, name, PROBLEM, problem), parameters)
        return ModelFacts(Check(kind, name, OK, f"local folder {folder}"), parameters)
    if _looks_like_path(path):
        return ModelFacts(Check(kind, name, MISSING, f"folder {folder} does not exist"))
    snapshot = cached_snapshot(path, revision)
    if snapshot is not None:
        problem = hf_folder_problem(snapshot, tokenizer)
        if problem is None:
            detail = f"in the HF cache ({snapshot})"
            return ModelFacts(Check(kind, name, OK, detail), parameters_of_folder(snapshot))
        if not hub.online:
            detail = f"incomplete in the HF cache ({problem}; {hub.why_local_only()}); --download completes it"
            return ModelFacts(Check(kind, name, MISSING, detail), parameters_of_folder(snapshot))
    requested = path + (f"@{revision}" if revision else "")
    if not hub.online:
        detail = (
            f"{requested} is not in the HF cache ({hub.why_local_only()}); fetch it with "
            "--download on a machine with network"
        )
        return ModelFacts(Check(kind, name, MISSING, detail))
    try:
        config = remote_config(path, revision)
    except Exception as err:
        return ModelFacts(Check(kind, name, MISSING, describe_hub_error(path, err)))
    size = remote_size(path, revision)
    fetch = Fetch(kind, path, revision, size)
    how = f"{gib(size)} to download" if size is not None else "size unknown"
    detail = f"on the hub and accessible, not cached ({how}; --download fetches it now)"
    return ModelFacts(Check(kind, name, OK, detail), parameters_of_folder(config.parent), fetch)


def check_bertscore_encoder(encoder: str, hub: HubState) -> ModelFacts:
    """The BERTScore encoder a resolved ``eval.bertscore_model`` names."""
    if encoder == "packaged":
        from jola.metrics import PACKAGED_BERTSCORE_NAME, packaged_bertscore_dir

        name = f"packaged ({PACKAGED_BERTSCORE_NAME})"
        try:
            folder = packaged_bertscore_dir()
        except UserError as err:
            return ModelFacts(Check("bertscore encoder", name, MISSING, str(err)))
        return ModelFacts(Check("bertscore encoder", name, OK, f"packaged in {folder}"))
    return check_hub_repo("bertscore encoder", encoder, encoder, None, hub)
