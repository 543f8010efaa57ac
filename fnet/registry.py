"""Named, pluggable parts (detectors, losses, stores), as timm's model registry: no torch here.

    DETECTORS = Registry("detector")

    @DETECTORS.register("mtcnn", "MTCNN cascade (the paper's aligner)")
    def build_mtcnn(device="auto", **settings): ...

    detector = DETECTORS.build("mtcnn", device="cpu", min_face_size=40)

An entry is a factory; its module is imported only when it is built, so listing the
names (for ``--help`` and error messages) never loads a network.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator
from typing import Any

from fnet.errors import SettingsError


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    summary: str
    target: str | Callable[..., Any]  # a factory, or "module:attribute" imported on first use

    def factory(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module, attribute = self.target.split(":")
        return getattr(importlib.import_module(module), attribute)


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, summary: str, target: str | Callable[..., Any] | None = None):
        """Add an entry: ``register(name, summary, "pkg.module:factory")``, or as a decorator."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        if target is not None:
            self._entries[name] = Entry(name, summary, target)
            return target

        def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
            self._entries[name] = Entry(name, summary, factory)
            return factory

        return decorate

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise SettingsError(f"unknown {self.kind} {name!r}; known: {', '.join(self._entries)}") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.entry(name).factory()(*args, **kwargs)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def describe(self) -> str:
        """'name: summary' per entry, for help texts."""
        return "; ".join(f"{e.name} ({e.summary})" for e in self)
