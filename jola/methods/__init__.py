"""Methods: one module per method, each registering itself in :data:`METHODS`."""

from jola.config import MethodConfig
from jola.methods import bitfit, jola, lora, zero_shot  # noqa: F401  (registers)
from jola.methods.base import Method
from jola.methods.registry import METHODS


def build_method(cfg: MethodConfig) -> Method:
    """The method configured by ``cfg``.

    The method is chosen by the config's schema (so ``conf/method/jola_add_only.yaml``, a
    JolaConfig named ``jola_add_only``, builds JoLA); a bare MethodConfig is looked up by name.
    """
    for name in METHODS:
        method_class = METHODS.get(name)
        if type(cfg) is method_class.config_class:
            return method_class(cfg)
    return METHODS.get(cfg.name)(cfg)


__all__ = ["METHODS", "Method", "build_method"]
