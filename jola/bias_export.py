"""Export a model whose linear layers gained biases as a plain, loadable checkpoint.

Several methods leave biases where the architecture has none (merged JoLA offsets on the
attention output projection, BitFit's added biases). Such a model loads with plain
``AutoModelForCausalLM.from_pretrained`` only when a config flag (``attention_bias``,
``mlp_bias``) makes the architecture create those biases. :func:`plan_bias_flags` checks that
on a weightless (meta-device) copy before anything is changed; :func:`apply_bias_flags` then sets
the flags and gives every other projection governed by them a zero bias.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def text_config(config):
    """The decoder's config (multimodal configs keep it apart; ``get_text_config`` finds it)."""
    get = getattr(config, "get_text_config", None)
    return get() if callable(get) else config


def plan_bias_flags(
    model: nn.Module, flags: Iterable[str], required: Iterable[str], what: str, hint: str
) -> list[str]:
    """Names of the bias parameters that setting ``flags`` adds to ``model``; raise if impossible.

    ``required`` lists the linear modules that must have a bias after the flags are set.
    ``what`` names the edit and ``hint`` the alternative in the error message.
    """
    flags, required = list(flags), list(required)
    model_type = getattr(model.config, "model_type", type(model).__name__)
    new_config = copy.deepcopy(model.config)
    missing_flags = [f for f in flags if not hasattr(text_config(new_config), f)]
    if missing_flags:
        raise NotImplementedError(
            f"cannot export {what} for {model_type!r}: its config has no flag "
            f"{', '.join(missing_flags)} to give the needed linear layers a bias; {hint}"
        )
    for flag in flags:
        setattr(text_config(new_config), flag, True)
    with torch.device("meta"):
        skeleton = type(model)(new_config)
    lacking = [n for n in required if getattr(skeleton.get_submodule(n), "bias", None) is None]
    if lacking:
        raise NotImplementedError(
            f"cannot export {what} for {model_type!r}: setting {', '.join(flags)} gives no bias "
            f"to {lacking[0]} (the architecture hard-codes bias=False there); {hint}"
        )
    have = {n for n, _ in model.named_parameters()}
    added = [n for n, _ in skeleton.named_parameters() if n not in have]
    for name in added:
        owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else None
        if not name.endswith(".bias") or not isinstance(owner, nn.Linear):
            raise NotImplementedError(
                f"cannot export {what} for {model_type!r}: {', '.join(flags)} also adds "
                f"{name!r}, which is not the bias of a linear layer"
            )
    return added


def add_zero_bias(module: nn.Linear) -> nn.Parameter:
    """Give a bias-free linear layer a zero bias (same dtype/device as its weight)."""
    if module.bias is None:
        weight = module.weight
        module.bias = nn.Parameter(
            torch.zeros(module.out_features, dtype=weight.dtype, device=weight.device),
            requires_grad=False,
        )
    return module.bias


def apply_bias_flags(model: nn.Module, flags: Iterable[str], added: Iterable[str]) -> None:
    """Set the config flags and give each listed parameter's linear layer a zero bias."""
    for flag in flags:
        setattr(text_config(model.config), flag, True)
    for name in added:
        owner = model.get_submodule(name.rpartition(".")[0])
        add_zero_bias(owner)
