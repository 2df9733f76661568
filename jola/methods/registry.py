"""The method registry: one entry per method, name -> (config class, method class).

Both the runner's method lookup (:func:`jola.methods.build_method`) and Hydra's schema entries
(:func:`jola.hydra_glue.register_configs`) are derived from it, so a method is registered once:

    register_method("jola", JolaConfig, Jola)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from jola.config import MethodConfig
from jola.methods.base import Method
from jola.registry import Registry


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its name, its config schema and the class that runs it."""

    name: str
    config_class: type[MethodConfig]
    method_class: type[Method]

    @property
    def trains(self) -> bool:
        """Whether the method trains (its ``method.train.*`` settings matter)."""
        return self.method_class.trains


METHODS: Registry[MethodEntry] = Registry("method")


def register_method(
    name: str, config_class: type[MethodConfig], method_class: type[Method]
) -> type[Method]:
    """Register a method under ``name``: ``config_class`` (a :class:`MethodConfig` dataclass
    whose ``name`` defaults to ``name``; Hydra knows it as ``method/<name>_schema``) and
    ``method_class`` (a :class:`Method`, which gets ``name`` as a class attribute). Returns
    ``method_class``. A name registered twice, or a config whose default
    name differs, is a bug (ValueError)."""
    if not (isinstance(config_class, type) and issubclass(config_class, MethodConfig)):
        raise TypeError(f"method '{name}': {config_class!r} is not a MethodConfig subclass")
    if not dataclasses.is_dataclass(config_class):
        raise TypeError(f"method '{name}': {config_class.__name__} is not a dataclass")
    if not (isinstance(method_class, type) and issubclass(method_class, Method)):
        raise TypeError(f"method '{name}': {method_class!r} is not a Method subclass")
    default_name = {f.name: f.default for f in dataclasses.fields(config_class)}["name"]
    if default_name != name:
        raise ValueError(
            f"method '{name}': {config_class.__name__}.name defaults to {default_name!r}"
        )
    METHODS.add(name, MethodEntry(name, config_class, method_class))
    method_class.name = name
    return method_class


def method_entry(cfg: MethodConfig) -> MethodEntry:
    """The registered method a config belongs to: the entry whose config class is the config's
    type (so ``conf/method/jola_add_only.yaml``, a JolaConfig named ``jola_add_only``, is
    JoLA), else the entry named ``cfg.name`` (a bare MethodConfig); an unknown name lists the
    registered methods."""
    for _, entry in METHODS.items():
        if type(cfg) is entry.config_class:
            return entry
    return METHODS.get(cfg.name)
