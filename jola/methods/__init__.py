"""Methods: one module per method, each registering itself once with :func:`register_method`
(name, config class, method class) in :data:`METHODS`."""

from jola.config import MethodConfig
from jola.methods import (  # noqa: F401  (registers)
    bitfit,
    jola,
    jola_random_k,
    jola_sites,
    jola_topk_warmup,
    lofit,
    lora,
    red,
    reft,
    repe,
    zero_shot,
)
from jola.methods.base import Method
from jola.methods.registry import METHODS, MethodEntry, method_entry, register_method


def build_method(cfg: MethodConfig, seed: int | None = None) -> Method:
    """The method configured by ``cfg`` (chosen by :func:`method_entry`); ``seed`` is the run's
    seed (``method.seed``, for methods whose choices depend on it, e.g. which run ``k_from``
    reads)."""
    method = method_entry(cfg).method_class(cfg)
    method.seed = seed
    return method


__all__ = ["METHODS", "Method", "MethodEntry", "build_method", "method_entry", "register_method"]
