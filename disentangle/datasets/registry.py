"""A small registry of data sets: ``@register_dataset``, ``dataset_class``, ``list_datasets``.

The same pattern as the model registry: a data set declares itself once, with its
factor names and sizes, observation shape and files, and the CLI (``datasets
list/prepare/verify``), study files and the trainer read the declaration.
"""

from __future__ import annotations

from typing import Callable

from disentangle.errors import DisentangleError

_DATASETS: dict[str, type] = {}


def register_dataset(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`GroundTruthDataset` subclass under ``name`` (once)."""
    def decorate(cls: type) -> type:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        cls.name = name
        _DATASETS[name] = cls
        return cls

    return decorate


def list_datasets() -> list[str]:
    """Names of the registered data sets, sorted."""
    return sorted(_DATASETS)


def dataset_class(name: str) -> type:
    """The class registered as ``name``, or a one-line error listing the names."""
    if name not in _DATASETS:
        raise DisentangleError(f"unknown dataset {name!r}, expected one of {', '.join(list_datasets())}")
    return _DATASETS[name]
