"""The one registry every pluggable kind uses: models, data sets, metrics and executors.

``Registry("model")`` gives a decorator ``register(name)`` that records a class once and
stamps the name on it, ``names()`` (sorted), ``get(name)`` (a one-line error listing the
names), ``options(name)`` (the typed schema of what the entry takes) and ``build(name,
**options)``, which checks the options against that schema before anything is built.

An entry's schema is read from its ``__init__`` (and its bases', through ``**kwargs``), the
way a dataclass reads its fields: each keyword parameter is an :class:`Option` with its
default and, when annotated with a plain type, its kind. Validation, defaults (run
identity records them), CLI help and error messages all come from that one schema, so
adding a model, data set or executor is one file and nothing else names it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, Callable

from disentangle.base.errors import DisentangleError

REQUIRED = inspect.Parameter.empty
_KINDS = {"int": int, "float": float, "str": str, "bool": bool}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option an entry takes: its name, its default (``REQUIRED`` if none) and its kind
    (``int``, ``float``, ``str``, ``bool``, or None when the annotation is not a plain type)."""

    name: str
    default: Any = REQUIRED
    kind: type | None = None

    def check(self, value, owner: str) -> None:
        """A one-line error when ``value`` is not of this option's kind (ints are floats; None is
        allowed where the default is None)."""
        if self.kind is None or (value is None and self.default is None):
            return
        ok = (isinstance(value, bool) if self.kind is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if self.kind is float else
              isinstance(value, int) and not isinstance(value, bool) if self.kind is int else
              isinstance(value, self.kind))
        if not ok:
            raise DisentangleError(f"bad option value for {owner} ({self.name}={value!r}): expected {self.kind.__name__}")


def schema(cls: type, stop: type | None = None) -> dict[str, Option]:
    """The options ``cls`` takes, from its ``__init__`` and, while a signature passes ``**kwargs``
    on, its bases' (up to ``stop``, exclusive): name -> :class:`Option`, the most derived default winning.
    Read once per class (a sweep of 10,000 runs asks 20,000 times): a fresh dict each call."""
    return dict(_schema(cls, stop))


@functools.lru_cache(maxsize=None)
def _schema(cls: type, stop: type | None) -> dict[str, Option]:
    signatures = []
    for klass in cls.__mro__:
        if klass is object or klass is stop or "__init__" not in vars(klass):
            continue
        signatures.append(inspect.signature(klass.__init__).parameters)
        if not any(p.kind is p.VAR_KEYWORD for p in signatures[-1].values()):
            break
    options: dict[str, Option] = {}
    for parameters in reversed(signatures):  # the base's options first; a subclass's default wins
        for name, parameter in parameters.items():
            if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                options[name] = Option(name, parameter.default, _kind(parameter.annotation))
    return options


def function_schema(function: Callable) -> dict[str, Option]:
    """The keyword options of a function (a metric's settings), as :func:`schema` reads a class's."""
    return {name: Option(name, p.default, _kind(p.annotation)) for name, p in inspect.signature(function).parameters.items()
            if p.kind is p.KEYWORD_ONLY}


def _kind(annotation) -> type | None:
    if isinstance(annotation, str):  # postponed annotations: "int", "float | None" -> the plain type or None
        return _KINDS.get(annotation.replace(" | None", "").strip())
    if annotation in _KINDS.values():
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 and args[0] in _KINDS.values() else None


class Registry:
    """Named entries of one kind; ``attribute`` is where a registered class learns its name."""

    def __init__(self, kind: str, attribute: str = "name", schema_stop: type | None = None):
        self.kind, self.attribute, self.schema_stop = kind, attribute, schema_stop
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: register under ``name`` (twice is a programming error)."""
        def decorate(cls: type) -> type:
            setattr(cls, self.attribute, name)
            return self.add(name, cls)

        return decorate

    def add(self, name: str, entry):
        """Record ``entry`` (a class, or a metric's description) under ``name``; return it."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def entries(self) -> list:
        """Registered entries in registration order."""
        return list(self._entries.values())

    def get(self, name: str):
        """The entry registered as ``name``, or a one-line error listing the names."""
        if name not in self._entries:
            raise DisentangleError(f"unknown {self.kind} {name!r}, expected one of {', '.join(self.names())}")
        return self._entries[name]

    def options(self, name: str) -> dict[str, Option]:
        """The typed schema of the options entry ``name`` takes."""
        return schema(self.get(name), self.schema_stop)

    def check_options(self, name: str, options: dict, hidden: tuple[str, ...] = ()) -> None:
        """One-line errors for an option ``name`` does not take or a value of the wrong kind;
        ``hidden`` options (set by the project, not the user) are left out of the listing."""
        schema_ = self.options(name)
        unknown = sorted(set(options) - set(schema_))
        if unknown:
            shown = ", ".join(sorted(set(schema_) - set(hidden)))
            raise DisentangleError(f"unknown option {unknown[0]!r} for {self.kind} {name!r}, expected one of {shown}")
        for key, value in options.items():
            schema_[key].check(value, f"{self.kind} {name!r}")

    def build(self, name: str, hidden: tuple[str, ...] = (), **options):
        """Entry ``name`` built with ``options``, checked first against its schema; a value its
        own checks refuse (``TypeError``, ``ValueError``) becomes a one-line error naming the entry."""
        self.check_options(name, options, hidden)
        try:
            return self.get(name)(**options)
        except DisentangleError:
            raise
        except (TypeError, ValueError) as error:
            given = ", ".join(f"{k}={v!r}" for k, v in options.items() if k not in hidden)
            raise DisentangleError(f"bad option value for {self.kind} {name!r} ({given}): {error}") from None
