"""Ground-truth data sets: ``get_dataset(name, root=None, **options)``, ``list_datasets()``.

Every data set registers itself with ``@register_dataset`` (see :mod:`.registry`);
importing this package imports each module once so the registry is complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from disentangle.datasets.base import GroundTruthDataset
from disentangle.datasets.registry import DATASETS, dataset_class, list_datasets, register_dataset
from disentangle.datasets.dsprites import DSprites
from disentangle.datasets.dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites
from disentangle.datasets.mnist import MNIST, FashionMNIST, IdxClassification
from disentangle.datasets.grid_arrays import MPI3D, ArrayGridDataset, Shapes3D
from disentangle.datasets.smallnorb import SmallNORB
from disentangle.datasets.cars3d import Cars3D

DEFAULT_ROOT = Path("datasets")
DATA_ENVIRONMENT_VARIABLE = "DISENTANGLE_DATA"  # overrides DEFAULT_ROOT


def default_root(name: str) -> Path:
    """Where a data set's files live when no root is given: ``$DISENTANGLE_DATA`` or ``datasets/``,
    then the set's folder under it (its name; dSprites and its variants: the folder itself)."""
    base = Path(os.environ.get(DATA_ENVIRONMENT_VARIABLE) or DEFAULT_ROOT)
    folder = dataset_class(name).folder
    return base / (name if folder is None else folder)


def get_dataset(name: str, root: str | Path | None = None, **options) -> GroundTruthDataset:
    """Build a registered data set by name; ``root`` is the folder holding its files.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    root : str or Path, optional
        Folder of the set's files (default :func:`default_root`).
    **options
        The loader's own options (``split``, ``in_memory``, ``verify``, ...).
    """
    return DATASETS.build(name, root=root if root is not None else default_root(name), **options)


__all__ = ["ArrayGridDataset", "Cars3D", "ColorDSprites", "DSprites", "FashionMNIST", "GroundTruthDataset",
           "IdxClassification", "MNIST", "MPI3D", "NoisyDSprites", "ScreamDSprites", "Shapes3D", "SmallNORB",
           "dataset_class", "default_root", "get_dataset", "list_datasets", "register_dataset"]
