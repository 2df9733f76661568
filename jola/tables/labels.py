"""Names in tables and file names: method order and labels, file-safe names."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Rows every main, suite and data-size table shows, runs or not (a dash when missing): the
# methods of the paper's Table 1, in its order of our registry.
CANONICAL_METHODS = ("zero_shot", "jola", "lora", "bitfit", "red", "repe", "reft", "lofit")
# Row order: the canonical rows, JoLA's ablations, then the rest sorted. Only the order: a
# method outside CANONICAL_METHODS gets a row when it has runs.
METHOD_ORDER = (
    *CANONICAL_METHODS,
    "jola_no_gates",
    "jola_mlp",
    "jola_mlp_no_gates",
    "jola_both",
    "jola_both_no_gates",
    "jola_shared_gate",
)
METHOD_LABELS = {
    "zero_shot": "zero-shot",
    "jola": "JoLA",
    "lora": "LoRA",
    "bitfit": "BitFit",
    "red": "RED",
    "repe": "RePE",
    "reft": "ReFT",
    "lofit": "LoFiT",
    "jola_no_gates": "JoLA, no gates",
    "jola_mlp": "JoLA on MLP",
    "jola_mlp_no_gates": "JoLA on MLP, no gates",
    "jola_both": "JoLA on heads+MLP",
    "jola_both_no_gates": "JoLA on heads+MLP, no gates",
    "jola_shared_gate": "JoLA, one shared gate",
}


def order_methods(methods: Iterable[str]) -> list[str]:
    """The methods of :data:`METHOD_ORDER` present, in that order, then the rest sorted; a
    variant row (``"jola [lr=0.001]"``) follows its method's place, after the default one."""

    def key(method: str) -> tuple[int, str, str]:
        base, _, variant = method.partition(" [")
        place = METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER)
        return (place, base, variant)

    return sorted(set(methods), key=key)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name))
