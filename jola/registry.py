"""A tiny name -> object registry used for models, tasks, methods and loaders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from jola.errors import unknown_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; an unknown name raises a UserError listing the choices."""

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
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown_choice(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
