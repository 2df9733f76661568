"""Methods: one module per method, each registering itself in :data:`METHODS`."""

from jola.config import MethodConfig
from jola.methods import (  # noqa: F401  (registers)
    bitfit,
    jola,
    jola_random_k,
    jola_topk_warmup,
    lora,
    zero_shot,
)
from jola.methods.base import Method
from jola.methods.registry import METHODS


def build_method(cfg: MethodConfig, seed: int | None = None) -> Method:
    """The method configured by ``cfg``; ``seed`` is the run's seed (``method.seed``, for
    methods whose choices depend on it, e.g. which run ``k_from`` reads).

    The method is chosen by the config's schema (so ``conf/method/jola_add_only.yaml``, a
    JolaConfig named ``jola_add_only``, builds JoLA); a bare MethodConfig is looked up by name.
    """
    method_class = next(
        (METHODS.get(name) for name in METHODS if type(cfg) is METHODS.get(name).config_class),
        None,
    )
    method = (method_class or METHODS.get(cfg.name))(cfg)
    method.seed = seed
    return method


__all__ = ["METHODS", "Method", "build_method"]
