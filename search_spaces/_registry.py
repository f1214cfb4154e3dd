"""A name -> object registry: a dict plus a decorator (timm's pattern)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from search_spaces._errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            warnings.warn(f"{self._kind} {name!r} is registered again; the new one replaces it", stacklevel=3)
        self._entries[name] = entry
        return entry

    def register(self, fn: Callable[..., object]) -> Callable[..., object]:
        """Decorator: register ``fn`` under its own name."""
        self.add(fn.__name__, fn)  # type: ignore[arg-type]
        return fn

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self._kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
