"""BitFit: train bias vectors only.

Where a targeted linear layer has a bias, that bias trains. Where it has none (Llama, SmolLM2),
a zero bias is added, so the model computes exactly the same function at step 0. The artifact is
the biases alone; a merged checkpoint sets the config's ``attention_bias`` / ``mlp_bias`` where
the architecture supports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from jola import bias_export
from jola.config import MethodConfig, TrainConfig
from jola.errors import UserError
from jola.methods.base import Method, linear_module_suffixes
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze

BIASES_FILE = "biases.safetensors"
BIAS_CONFIG_FILE = "bitfit_config.json"
BITFIT_DIR = "bitfit"
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"]
# config flag that creates the biases of each projection (Llama family)
BIAS_FLAGS = {
    "q_proj": "attention_bias",
    "k_proj": "attention_bias",
    "v_proj": "attention_bias",
    "o_proj": "attention_bias",
    "gate_proj": "mlp_bias",
    "up_proj": "mlp_bias",
    "down_proj": "mlp_bias",
}


@dataclass
class BitFitConfig(MethodConfig):
    """Target linear layers by name suffix (q, k, v and the MLP's first projections)."""

    name: str = "bitfit"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-3))
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.target_modules:
            raise UserError("method.target_modules is empty")


def targeted_linears(model: nn.Module, targets: list[str]) -> dict[str, nn.Module]:
    """Linear layers (nn.Linear, or GPT-2's Conv1D) whose name ends with one of ``targets``."""
    found = {}
    for name, module in model.named_modules():
        if (
            name.rsplit(".", 1)[-1] in targets
            and hasattr(module, "weight")
            and module.weight.dim() == 2
        ):
            found[name] = module
    return found


def add_trainable_biases(model: nn.Module, targets: list[str]) -> tuple[dict, list[str]]:
    """Biases of the targeted layers, added as zeros where missing; returns (biases, added)."""
    modules = targeted_linears(model, targets)
    missing = [t for t in targets if not any(n.rsplit(".", 1)[-1] == t for n in modules)]
    if missing:
        raise UserError(
            f"BitFit target module(s) {', '.join(missing)} not found; linear modules: "
            f"{', '.join(linear_module_suffixes(model))}"
        )
    added = []
    for name, module in modules.items():
        if module.bias is None:
            bias_export.add_zero_bias(module)
            added.append(name)
    biases = {f"{name}.bias": module.bias for name, module in modules.items()}
    return biases, added


class BitFit(Method):
    """Freeze everything, then train the biases of the targeted layers."""

    trains = True

    def __init__(self, cfg: BitFitConfig):
        super().__init__(cfg)
        self.biases: dict[str, nn.Parameter] = {}
        self.added: list[str] = []

    def prepare(self, loaded: LoadedModel) -> None:
        freeze(loaded.model)
        self.biases, self.added = add_trainable_biases(loaded.model, list(self.cfg.target_modules))
        for bias in self.biases.values():
            bias.requires_grad_(True)

    def trainable_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return list(self.biases.values())

    def parameter_groups(self, model: nn.Module, train: TrainConfig) -> list[dict]:
        """One group without weight decay: biases are never decayed (HF Trainer's own
        grouping, which this project used before methods supplied their groups)."""
        return [
            {
                "name": "biases",
                "params": self.trainable_parameters(model),
                "lr": train.lr,
                "weight_decay": 0.0,
            }
        ]

    def final_stats(self) -> dict:
        return {
            "target_modules": list(self.cfg.target_modules),
            "biases_added": len(self.added),
            "biases_trained": len(self.biases),
        }

    def save(self, run_dir: Path) -> list[Path]:
        return save_biases(self.biases, self.added, Path(run_dir) / BITFIT_DIR)

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Put the biases of ``run_dir/bitfit`` into the fresh model (:func:`load_biases`,
        adding bias slots where the architecture has none), frozen and in eval mode."""
        from safetensors import safe_open

        folder = Path(run_dir) / BITFIT_DIR
        freeze(loaded.model)
        load_biases(loaded.model, folder)
        loaded.model.eval()
        self.added = json.loads((folder / BIAS_CONFIG_FILE).read_text())["added"]
        with safe_open(str(folder / BIASES_FILE), framework="pt") as saved:
            names = set(saved.keys())
        self.biases = {n: p for n, p in loaded.model.named_parameters() if n in names}

    def merge(self, loaded: LoadedModel) -> None:
        """Nothing to fold: the trained biases already are the linear layers' own bias
        parameters, so the model is plain (:func:`export_merged_bitfit` writes it as a
        checkpoint)."""


register_method("bitfit", BitFitConfig, BitFit)


def save_biases(biases: dict[str, nn.Parameter], added: list[str], folder: Path) -> list[Path]:
    """The trained biases (safetensors) and which layers had none originally (JSON)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: b.detach().to("cpu", torch.float32).contiguous() for name, b in biases.items()}
    save_file(tensors, str(folder / BIASES_FILE))
    (folder / BIAS_CONFIG_FILE).write_text(json.dumps({"added": added}, indent=2) + "\n")
    return [folder / BIASES_FILE, folder / BIAS_CONFIG_FILE]


def load_biases(model: nn.Module, folder: str | Path) -> nn.Module:
    """Put saved BitFit biases into a fresh base model (adding bias slots where missing); the
    implementation of :meth:`BitFit.load`."""
    from safetensors.torch import load_file

    tensors = load_file(str(Path(folder) / BIASES_FILE))
    with torch.no_grad():
        for name, value in tensors.items():
            module = model.get_submodule(name.rsplit(".", 1)[0])
            bias = bias_export.add_zero_bias(module)
            bias.copy_(value.to(bias.dtype))
    return model


def export_merged_bitfit(model: nn.Module, directory: str | Path) -> Path:
    """Save a model carrying BitFit biases as a checkpoint plain transformers can load."""
    have_bias = {n for n, m in model.named_modules() if getattr(m, "bias", None) is not None}
    base_has_bias = model.config.to_dict()
    flags = sorted(
        {
            BIAS_FLAGS[n.rsplit(".", 1)[-1]]
            for n in have_bias
            if n.rsplit(".", 1)[-1] in BIAS_FLAGS
            and not base_has_bias.get(BIAS_FLAGS[n.rsplit(".", 1)[-1]], False)
        }
    )
    required = sorted(n for n in have_bias if n.rsplit(".", 1)[-1] in BIAS_FLAGS)
    if flags:
        added = bias_export.plan_bias_flags(
            model,
            flags,
            required,
            "BitFit biases",
            "save the biases alone and load them with load_biases() onto the base model",
        )
        bias_export.apply_bias_flags(model, flags, added)
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory
