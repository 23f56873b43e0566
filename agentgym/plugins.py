"""A small name -> implementation registry, shared by policies, agents, estimators and losses.

Implementations are given as objects or as lazy ``"module:attribute"`` strings, so nothing heavy
is imported before it is used; third-party packages extend a registry through its entry-point group.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import threading
import warnings
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from agentgym.core import AgentGymError

T = TypeVar("T")


def load_object(reference: str) -> Any:
    """Imports ``"package.module:attribute"``."""
    module, _, attribute = reference.partition(":")
    if not attribute:
        raise ValueError(f"expected 'module:attribute', got {reference!r}")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


class Registry(Generic[T]):
    """Maps names to implementations; unknown names fail with a close match and the known names."""

    def __init__(self, kind: str, entry_point_group: str | None = None, listing_hint: str = ""):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.listing_hint = listing_hint
        self._entries: dict[str, T | str] = {}
        self._plugins_loaded = entry_point_group is None
        self._lock = threading.RLock()

    def register(self, name: str, implementation: T | str, *, override: bool = False) -> None:
        with self._lock:
            if name in self._entries and not override and self._entries[name] is not implementation:
                raise AgentGymError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = implementation

    def get(self, name: str) -> T:
        self._load_plugins()
        with self._lock:
            if name not in self._entries:
                close = difflib.get_close_matches(name, list(self._entries), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise AgentGymError(
                    f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._entries))}.{self.listing_hint}"
                )
            entry = self._entries[name]
            if isinstance(entry, str):
                entry = load_object(entry)
                self._entries[name] = entry
            return entry  # type: ignore[return-value]

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(sorted(self._entries))

    def _load_plugins(self) -> None:
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            for entry in importlib.metadata.entry_points(group=self.entry_point_group):
                try:
                    hook = entry.load()
                    hook()
                except Exception as error:  # a broken plugin must not break the others
                    warnings.warn(
                        f"agentgym: could not load {self.kind} plugin {entry.value}: {error}", stacklevel=3
                    )
