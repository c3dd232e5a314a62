"""A small registry of model families: ``@register_model``, ``build_model``, ``list_models``."""

from __future__ import annotations

from typing import Callable

from disentangle.errors import DisentangleError

_MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: register a model family under ``name`` (once)."""
    def decorate(cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        cls.model_name = name
        _MODELS[name] = cls
        return cls

    return decorate


def list_models() -> list[str]:
    """Names of the registered model families, sorted."""
    return sorted(_MODELS)


def model_class(name: str) -> type:
    """The class registered as ``name``, or a one-line error listing the names."""
    if name not in _MODELS:
        raise DisentangleError(f"unknown model {name!r}, expected one of {', '.join(list_models())}")
    return _MODELS[name]


def build_model(name: str, **config):
    """Build a registered model; unknown options are reported by name."""
    cls = model_class(name)
    accepted = cls.accepted_options()
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise DisentangleError(f"unknown option {unknown[0]!r} for model {name!r}, expected one of {', '.join(sorted(accepted))}")
    return cls(**config)
