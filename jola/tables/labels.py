"""Names in tables and file names: method order and labels, file-safe names."""

from __future__ import annotations

import re
from collections.abc import Iterable

METHOD_ORDER = ("zero_shot", "jola", "lora", "bitfit")
METHOD_LABELS = {"zero_shot": "zero-shot", "jola": "JoLA", "lora": "LoRA", "bitfit": "BitFit"}


def order_methods(methods: Iterable[str]) -> list[str]:
    """zero_shot, jola, lora, bitfit (those present), then the rest sorted."""
    methods = set(methods)
    return [m for m in METHOD_ORDER if m in methods] + sorted(methods - set(METHOD_ORDER))


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name))
