"""Saving and loading edits on their own: a safetensors file of the edit tensors and a JSON file
with their shapes, :class:`~jola.edits.parameters.EditConfig` and model type (no base weights).

safetensors is imported inside the functions that need it; at import time this module needs only
torch and :mod:`jola.edits.parameters`.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from jola.edits.parameters import EditConfig, HeadEdits

EDITS_FILE = "edits.safetensors"
CONFIG_FILE = "edit_config.json"


def save_edits(edits: HeadEdits, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``edits.safetensors`` (edit tensors only) and ``edit_config.json`` to ``directory``.

    ``extra`` (JSON-serialisable) is stored under ``"extra"`` in the JSON file. Returns the
    directory.
    """
    return write_edit_files(directory, edits, {**edits.metadata(), "extra": extra or {}})


def write_edit_files(directory: str | Path, module: torch.nn.Module, meta: dict) -> Path:
    """``module``'s tensors (CPU float32) as :data:`EDITS_FILE` and ``meta`` as
    :data:`CONFIG_FILE` in ``directory``; the JSON is serialised first, so a value it cannot
    hold fails before anything is written. Returns the directory."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, indent=2, sort_keys=True)
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in module.state_dict().items()
    }
    save_file(tensors, str(directory / EDITS_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(text + "\n")
    return directory


def load_edit_metadata(directory: str | Path) -> dict[str, Any]:
    """The contents of ``edit_config.json`` (shapes, EditConfig, model_type, extra)."""
    return json.loads((Path(directory) / CONFIG_FILE).read_text())


def edits_from_metadata(meta: dict[str, Any]) -> HeadEdits:
    """An (untrained) :class:`HeadEdits` of the shape and config that :meth:`HeadEdits.metadata`
    describes; unknown config keys are ignored."""
    known = {f.name for f in fields(EditConfig)}
    config = EditConfig(**{k: v for k, v in meta["edit_config"].items() if k in known})
    return HeadEdits(
        meta["num_layers"],
        meta["num_heads"],
        meta["head_dim"],
        config,
        model_type=meta.get("model_type"),
        generator=torch.Generator().manual_seed(0),  # throwaway init; keeps the global RNG intact
    )


def load_edits(directory: str | Path, device: torch.device | str | None = None) -> HeadEdits:
    """Rebuild the :class:`HeadEdits` written by :func:`save_edits` (in training mode, like any
    new module; :func:`attach` sets it to the model's mode)."""
    from safetensors.torch import load_file

    edits = edits_from_metadata(load_edit_metadata(directory))
    edits.load_state_dict(load_file(str(Path(directory) / EDITS_FILE)), strict=True)
    if device is not None:
        edits.to(device)
    return edits
