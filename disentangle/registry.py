"""The one registry pattern every pluggable kind uses (models, data sets; metrics add fields).

``Registry("model")`` gives a decorator ``register(name)`` that records a class under
a name once and stamps the name on it, ``names()`` (sorted) and ``get(name)``, which
fails with a one-line error listing the names.
"""

from __future__ import annotations

from typing import Callable

from disentangle.errors import DisentangleError


class Registry:
    """Named classes of one kind; ``attribute`` is where a class learns its registered name."""

    def __init__(self, kind: str, attribute: str = "name"):
        self.kind, self.attribute = kind, attribute
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: register under ``name`` (twice is a programming error)."""
        def decorate(cls: type) -> type:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            setattr(cls, self.attribute, name)
            self._entries[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> type:
        """The class registered as ``name``, or a one-line error listing the names."""
        if name not in self._entries:
            raise DisentangleError(f"unknown {self.kind} {name!r}, expected one of {', '.join(self.names())}")
        return self._entries[name]
