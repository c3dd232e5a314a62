"""Arrays of factor classes [n, k]: the one check the metrics and the data sets share, and the one
normalisation of a factor's classes to values in [0, 1] (correlations, held-out regions, R²)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from disentangle.base.errors import DisentangleError


def normalised_values(size: int) -> np.ndarray:
    """A factor's classes as values in [0, 1] (class / (size − 1); a one-class factor is 0).

    Examples
    --------
    >>> normalised_values(5).tolist(), normalised_values(1).tolist()
    ([0.0, 0.25, 0.5, 0.75, 1.0], [0.0])
    """
    return np.arange(size, dtype=np.float64) / max(size - 1, 1)


def normalised_factors(factors, sizes: Sequence[int]) -> np.ndarray:
    """Factor rows [n, k] as values in [0, 1], each column by :func:`normalised_values` of its size."""
    return np.asarray(factors, dtype=np.float64) / np.maximum(np.asarray(sizes, dtype=np.float64) - 1, 1)


def check_factor_classes(factors, name: str = "factors", *, rows: int | None = None, sizes: Sequence[int] | None = None,
                         factor_names: Sequence[str] | None = None, owner: str = "") -> np.ndarray:
    """``factors`` as int64 [n, k] of integer classes, or a one-line error naming ``name``.

    Parameters
    ----------
    factors : array-like, shape (n, k)
        Integer classes; floats are accepted when they are whole numbers.
    name : str, default "factors"
        What the errors call the array.
    rows : int, optional
        The number of rows it must have (e.g. the codes' row count).
    sizes : sequence of int, optional
        Each factor's number of classes: ``k == len(sizes)``, at least one row, and column j in
        ``[0, sizes[j] - 1]`` (a data set's grid, ``owner`` its name, ``factor_names`` its factors).

    Returns
    -------
    numpy.ndarray of int64, shape (n, k)

    Examples
    --------
    >>> check_factor_classes([[0, 2.0], [1, 1]], sizes=[2, 3]).tolist()
    [[0, 2], [1, 1]]
    >>> check_factor_classes([[0, 3]], sizes=[2, 3], factor_names=["shape", "scale"])
    Traceback (most recent call last):
    disentangle.base.errors.DisentangleError: factor 'scale' must be in [0, 2], got 3
    """
    factors = np.asarray(factors)
    if sizes is not None and (factors.ndim != 2 or factors.shape[1] != len(sizes)):
        raise DisentangleError(f"{name} must have shape [n, {len(sizes)}]{' for ' + owner if owner else ''}, got {list(factors.shape)}")
    if factors.ndim != 2:
        raise DisentangleError(f"{name} must be a 2-D array [n samples, k factors], got shape {list(factors.shape)}")
    if rows is not None and factors.shape[0] != rows:
        raise DisentangleError(f"{name} has {factors.shape[0]} rows but codes have {rows}: lengths must match")
    if sizes is not None and factors.shape[0] == 0:
        raise DisentangleError(f"{name} must hold at least one row, got 0")
    if not (np.issubdtype(factors.dtype, np.number) or factors.dtype == bool):
        raise DisentangleError(f"{name} must hold integer classes, got dtype {factors.dtype}: "
                               "encode labels as integers, e.g. np.unique(labels, return_inverse=True)[1]")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.isfinite(factors).all():
            raise DisentangleError(f"{name} contains NaN or inf (first at row {int(np.argwhere(~np.isfinite(factors))[0, 0])}): "
                                   "every sample needs its factor classes")
        if not np.all(np.mod(factors, 1) == 0):
            raise DisentangleError(f"{name} must hold integer classes, got dtype {factors.dtype}")
    factors = factors.astype(np.int64)
    if sizes is not None:
        bad = (factors < 0) | (factors >= np.asarray(sizes, dtype=np.int64))
        if bad.any():
            row, j = np.argwhere(bad)[0]
            label = factor_names[j] if factor_names is not None else j
            raise DisentangleError(f"factor '{label}' must be in [0, {sizes[j] - 1}], got {int(factors[row, j])}")
    return factors
