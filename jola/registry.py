"""A tiny name -> object registry, used for every such map of the project (models, model sources,
dtypes, tasks, task sources, methods, penalties, schedules, evaluation modes, metrics, ...), and
:class:`Choice`, the str-valued Enum of a config field whose values are a registry's names.

Imports only the standard library (the torch-only modules :mod:`jola.gates` and
:mod:`jola.schedules` use it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import Generic, TypeVar

from jola.errors import unknown_choice

T = TypeVar("T")


class Choice(StrEnum):
    """Base of the str-valued Enums of config fields (``method.penalty``, ``method.schedule``).

    A member is a ``str`` equal to its value, so it compares, hashes, formats and serialises
    (JSON, run-directory names) exactly as the plain name does; :meth:`parse` turns a name into
    a member and refuses any other with :func:`~jola.errors.unknown_choice`.
    """

    @classmethod
    def parse(cls, value: object, kind: str):
        """The member named ``value`` (a member passes through); an unknown name raises an
        :class:`~jola.errors.UnknownChoice` naming ``kind`` and listing the members."""
        try:
            return cls(value)
        except ValueError:
            raise unknown_choice(kind, value, [member.value for member in cls]) from None


class Registry(Generic[T]):
    """Maps names to objects; an unknown name raises a UserError listing the choices.

    ``kind`` names what is registered in that error (``unknown <kind> '<name>'; choices: ...``).
    Lookup is :meth:`get` or ``registry[name]`` (the same); ``name in registry``, iteration (sorted
    names), ``len`` and :meth:`items` work as on a dict.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under ``name``."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a name registered twice is a bug (ValueError)."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The object registered under ``name`` (an UnknownChoice error listing the names)."""
        try:
            return self._items[name]
        except KeyError:
            raise unknown_choice(self.kind, name, self._items) from None

    __getitem__ = get

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def items(self) -> Iterable[tuple[str, T]]:
        """``(name, object)`` pairs in name order."""
        return [(name, self._items[name]) for name in self.names()]

    def choices(self, enum_name: str, module: str | None = None) -> type[Choice]:
        """A :class:`Choice` Enum whose members are the names registered now (a snapshot:
        register everything first), for a config field that names an entry; ``module`` is the
        module that defines it (for pickling)."""
        return Choice(enum_name, [(name, name) for name in self.names()], module=module)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
