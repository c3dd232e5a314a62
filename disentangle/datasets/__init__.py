"""Ground-truth data sets: ``get_dataset(name, root=None, **options)``."""

from __future__ import annotations

from pathlib import Path

from disentangle.datasets.base import GroundTruthDataset
from disentangle.datasets.dsprites import DSprites
from disentangle.datasets.mnist import IdxClassification
from disentangle.errors import DisentangleError

DEFAULT_ROOT = Path("datasets")

_BUILDERS = {
    "dsprites": lambda root, **options: DSprites(root=root, **options),
    "mnist": lambda root, **options: IdxClassification("mnist", root=root, **options),
    "fashion_mnist": lambda root, **options: IdxClassification("fashion_mnist", root=root, **options),
}


def list_datasets() -> list[str]:
    return sorted(_BUILDERS)


def default_root(name: str) -> Path:
    """Where a data set's files live when no root is given: ``datasets/`` (dSprites) or ``datasets/<name>/``."""
    return DEFAULT_ROOT if name == "dsprites" else DEFAULT_ROOT / name


def get_dataset(name: str, root: str | Path | None = None, **options) -> GroundTruthDataset:
    """Build a data set by name; ``root`` is the folder holding its files."""
    if name not in _BUILDERS:
        raise DisentangleError(f"unknown dataset {name!r}, expected one of {', '.join(list_datasets())}")
    try:
        return _BUILDERS[name](root if root is not None else default_root(name), **options)
    except TypeError as error:  # an option the loader does not take
        raise DisentangleError(f"bad option for dataset {name!r}: {error}") from None


__all__ = ["DSprites", "GroundTruthDataset", "IdxClassification", "get_dataset", "list_datasets", "default_root"]
