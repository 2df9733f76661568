"""Methods: one module per method, each registering itself in :data:`METHODS`."""

from jola.config import MethodConfig
from jola.methods import bitfit, jola, lora, zero_shot  # noqa: F401  (registers)
from jola.methods.base import Method
from jola.methods.registry import METHODS


def build_method(cfg: MethodConfig) -> Method:
    """The method named by ``cfg.name``, configured by ``cfg``."""
    return METHODS.get(cfg.name)(cfg)


__all__ = ["METHODS", "Method", "build_method"]
