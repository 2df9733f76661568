"""The trainable share of every registered method on a model's configuration, without weights.

``python -m jola.bench.share`` builds the Llama-3.1-8B shape (:mod:`jola.bench.models`) on the
meta device (shapes only: no memory, no download), prepares each method of
:data:`jola.methods.METHODS` on a fresh copy exactly as a run does, and counts what a run
records in results.json: the parameters the method's ``trainable_parameters`` returns after
``prepare``, as a count and a percentage of the base model's parameters. Methods whose
optimised tensors are larger than what they finally edit (a fixed head set inside per-head
tensors; LoFiT's second step) also get the edited count (:data:`EDITED`). The paper's figures
(:data:`PUBLISHED_PERCENT`) are printed beside ours.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from jola import edits as editing
from jola.config import ModelConfig
from jola.methods import METHODS, Method, build_method
from jola.models import LoadedModel, load_model
from jola.registry import Registry

PUBLISHED_PERCENT = {"lora": 0.826, "lofit": 0.0035}
"""Trainable share (% of the base model) of Llama-3.1-8B-Instruct in the JoLA paper."""


def _lofit_budget(num_layers: int, num_heads: int) -> dict:
    """LoFiT's default head budget on the model (32 of the 8B shape's 1024 heads)."""
    from jola.methods.lofit import LofitConfig, head_budget

    return {"k": head_budget(LofitConfig(), num_layers, num_heads)}


SETTINGS: dict[str, Callable[[int, int], dict]] = {
    # the equal-budget controls leave their head budget open: give them LoFiT's
    "jola_random_k": _lofit_budget,
    "jola_topk_warmup": _lofit_budget,
}
"""method name -> config settings for a model of (layers, heads), for methods whose defaults
leave a choice open."""

EDITED: Registry[Callable[[Method, LoadedModel], int]] = Registry("edited-parameter count")
"""method name -> the number of parameters its final artifact edits, where that is fewer than
its trainable tensors hold."""


def _fixed_heads_edited(method, loaded: LoadedModel) -> int:
    """k heads x head_dim x the edit kinds (the controls' ``edited_parameters``)."""
    edits = method.edits
    return method.k * edits.head_dim * (int(edits.additive) + int(edits.multiplicative))


def _lofit_edited(method, loaded: LoadedModel) -> int:
    """Step 2's bias vectors: k heads x head_dim."""
    return method.k * editing.find_output_projections(loaded.model).head_dim


EDITED.add("jola_random_k", _fixed_heads_edited)
EDITED.add("jola_topk_warmup", _fixed_heads_edited)
EDITED.add("lofit", _lofit_edited)


@dataclass
class ShareRow:
    """One method: trainable count and % of the base, the edited count where it differs, the
    published %, or why the method could not be prepared on this model."""

    method: str
    trainable: int | None = None
    percent: float | None = None
    edited: int | None = None
    edited_percent: float | None = None
    published_percent: float | None = None
    error: str | None = None


def shape_model_config() -> ModelConfig:
    """The Llama-3.1-8B shape on the meta device (bf16, as the paper's runs)."""
    from jola.bench.models import SHAPE_MODEL, ShapeModelConfig

    return ShapeModelConfig(name=SHAPE_MODEL, source=SHAPE_MODEL, device="meta", dtype="bfloat16")


def method_share(name: str, model_cfg: ModelConfig) -> ShareRow:
    """The share of method ``name`` (its defaults and :data:`SETTINGS`) on a fresh model of
    ``model_cfg``: prepared as a run prepares it, counted as a run counts it."""
    row = ShareRow(name, published_percent=PUBLISHED_PERCENT.get(name))
    entry = METHODS.get(name)
    try:
        loaded = load_model(dataclasses.replace(model_cfg))
        base = loaded.info["num_parameters"]
        settings = {}
        if name in SETTINGS:
            proj = editing.find_output_projections(loaded.model)
            settings = SETTINGS[name](proj.num_layers, proj.num_heads)
        cfg = entry.config_class(**settings)
        cfg.validate(0)
        method = build_method(cfg, seed=0)
        method.prepare(loaded)
        trainable = method.trainable_parameters(loaded.model)
    except Exception as err:  # a method that cannot run on this model: say why, go on
        row.error = f"{type(err).__name__}: {err}".splitlines()[0][:160]
        return row
    row.trainable = sum(p.numel() for p in trainable)
    row.percent = 100.0 * row.trainable / base
    if name in EDITED:
        row.edited = EDITED.get(name)(method, loaded)
        row.edited_percent = 100.0 * row.edited / base
    return row


def share_table(model_cfg: ModelConfig | None = None) -> tuple[int, list[ShareRow]]:
    """``(base parameters, one row per registered method)`` on ``model_cfg`` (default: the
    Llama-3.1-8B shape on the meta device)."""
    model_cfg = model_cfg if model_cfg is not None else shape_model_config()
    base = load_model(dataclasses.replace(model_cfg)).info["num_parameters"]
    return base, [method_share(name, model_cfg) for name, _ in METHODS.items()]


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}%" if value >= 0.001 else f"{value:.6f}%"


def markdown(base: int, rows: list[ShareRow]) -> str:
    """The table as Markdown, with the base model's parameter count above it."""
    lines = [
        f"Base model: {base:,} parameters.",
        "",
        "| method | trainable | % of base | edited (final) | % of base | paper (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.error is not None:
            lines.append(f"| {row.method} | not preparable here: {row.error} | | | | |")
            continue
        published = "" if row.published_percent is None else f"{row.published_percent}%"
        lines.append(
            f"| {row.method} | {_count(row.trainable)} | {_percent(row.percent)} | "
            f"{_count(row.edited)} | {_percent(row.edited_percent)} | {published} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the share table of the Llama-3.1-8B shape (``--model tiny_random`` for the tiny
    test model)."""
    parser = argparse.ArgumentParser(prog="python -m jola.bench.share", description=__doc__)
    parser.add_argument("--model", choices=["llama31_8b_shape", "tiny_random"])
    args = parser.parse_args(argv)
    model_cfg = None
    if args.model == "tiny_random":
        model_cfg = ModelConfig(name="tiny_random", source="tiny_random", device="meta")
    base, rows = share_table(model_cfg)
    print(markdown(base, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
