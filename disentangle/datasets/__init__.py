"""Ground-truth data sets: ``get_dataset(name, root=None, **options)``."""

from __future__ import annotations

import os
from pathlib import Path

from disentangle.datasets.base import GroundTruthDataset
from disentangle.datasets.dsprites import DSprites
from disentangle.datasets.mnist import IdxClassification
from disentangle.errors import DisentangleError

DEFAULT_ROOT = Path("datasets")
DATA_ENVIRONMENT_VARIABLE = "DISENTANGLE_DATA"  # overrides DEFAULT_ROOT

_BUILDERS = {
    "dsprites": lambda root, **options: DSprites(root=root, **options),
    "mnist": lambda root, **options: IdxClassification("mnist", root=root, **options),
    "fashion_mnist": lambda root, **options: IdxClassification("fashion_mnist", root=root, **options),
}

OBSERVATION_SHAPES = {"dsprites": DSprites.observation_shape, "mnist": IdxClassification.observation_shape,
                      "fashion_mnist": IdxClassification.observation_shape}


def list_datasets() -> list[str]:
    """Names of the data sets ``get_dataset`` builds, sorted."""
    return sorted(_BUILDERS)


def default_root(name: str) -> Path:
    """Where a data set's files live when no root is given: ``$DISENTANGLE_DATA`` or ``datasets/``,
    then ``<name>/`` under it (dSprites: the folder itself)."""
    base = Path(os.environ.get(DATA_ENVIRONMENT_VARIABLE) or DEFAULT_ROOT)
    return base if name == "dsprites" else base / name


def get_dataset(name: str, root: str | Path | None = None, **options) -> GroundTruthDataset:
    """Build a data set by name; ``root`` is the folder holding its files."""
    if name not in _BUILDERS:
        raise DisentangleError(f"unknown dataset {name!r}, expected one of {', '.join(list_datasets())}")
    try:
        return _BUILDERS[name](root if root is not None else default_root(name), **options)
    except TypeError as error:  # an option the loader does not take
        raise DisentangleError(f"bad option for dataset {name!r}: {error}") from None


__all__ = ["DSprites", "GroundTruthDataset", "IdxClassification", "get_dataset", "list_datasets", "default_root"]
