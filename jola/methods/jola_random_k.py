"""JoLA on k random heads (an equal-budget control): the edits of JoLA, ungated, on a head set
drawn uniformly at random, so that a learned selection can be compared with chance at the
same number of edited heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jola.methods.fixed_heads import FixedHeadsConfig, FixedHeadsJola
from jola.methods.registry import register_method


@dataclass
class JolaRandomKConfig(FixedHeadsConfig):
    """``selection_seed`` fixes the draw; null uses the run's seed, so each training seed gets
    its own random set."""

    name: str = "jola_random_k"
    selection_seed: int | None = None


def random_heads(num_layers: int, num_heads: int, k: int, seed: int) -> list[list[int]]:
    """``k`` distinct ``[layer, head]`` pairs drawn uniformly (torch.randperm with ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    picked = torch.randperm(num_layers * num_heads, generator=generator)[:k].tolist()
    return sorted([index // num_heads, index % num_heads] for index in picked)


class JolaRandomK(FixedHeadsJola):
    """Draws the k heads before training."""

    rule = "random"

    def choose_heads(self, num_layers: int, num_heads: int) -> list[list[int]]:
        seed = self.cfg.selection_seed
        if seed is None:
            seed = self.seed if self.seed is not None else int(torch.randint(0, 2**31 - 1, ()))
        self.selection = {"selection_seed": seed}
        return random_heads(num_layers, num_heads, self.k, seed)


register_method("jola_random_k", JolaRandomKConfig, JolaRandomK)
