"""The training joint of a data set's factors: a product of weight tables, each on a few
factors, every other factor uniform and independent. ``correlations`` (pairs weighted by
closeness) and ``holdout`` (a 0/1 table: the cells a run never trains on) are two such tables;
both are computed exactly on the grid of the factors they involve and drawn from the caller's
``rng`` by a cached CDF, never by rejection."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from disentangle.base.errors import DisentangleError


def independent_factors(n: int, factor_sizes, rng: np.random.Generator) -> np.ndarray:
    """``n`` factor rows int64 [n, k], each factor uniform over its classes and independent of the others:
    the draw every data set makes without ``correlations`` or ``holdout``, and the one a joint starts from."""
    return np.stack([rng.integers(0, size, n) for size in factor_sizes], axis=1).astype(np.int64)


class FactorJoint:
    """A joint over the factor grid: the product of ``tables``, every other factor uniform.

    Parameters
    ----------
    factor_sizes : sequence of int
        The data set's factor sizes.
    tables : sequence of (axes, weights)
        ``axes`` a tuple of factor indices, ``weights`` non-negative float [sizes of those factors],
        in the order ``axes`` names them.

    Examples
    --------
    >>> joint = FactorJoint((2, 2, 3), [((1, 0), np.array([[1.0, 0.0], [0.0, 3.0]]))])
    >>> joint.involved, joint.probabilities.tolist()   # over (factor 0, factor 1); factor 2 stays uniform
    ((0, 1), [[0.25, 0.0], [0.0, 0.75]])
    """

    def __init__(self, factor_sizes: Sequence[int], tables: Sequence[tuple[tuple[int, ...], np.ndarray]]):
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.involved = tuple(sorted({axis for axes, _ in tables for axis in axes}))
        sizes = [self.factor_sizes[j] for j in self.involved]
        weights = np.ones(sizes, dtype=np.float64)
        for axes, table in tables:  # each table broadcast over the involved factors' grid, its axes in grid order
            positions = [self.involved.index(axis) for axis in axes]
            shape = [1] * len(sizes)
            for position in positions:
                shape[position] = sizes[position]
            weights = weights * np.transpose(np.asarray(table, dtype=np.float64), np.argsort(positions)).reshape(shape)
        total = weights.sum()
        if not total > 0:
            raise DisentangleError("the factor weights leave no factor combination to draw")
        self.probabilities = weights / total  # [sizes of the involved factors]
        self._cdf = np.cumsum(self.probabilities.ravel())

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor rows int64 [n, k]: the involved factors from the exact joint, the rest uniform."""
        factors = independent_factors(n, self.factor_sizes, rng)
        cells = np.searchsorted(self._cdf, rng.random(n) * self._cdf[-1], side="right")
        cells = np.minimum(cells, len(self._cdf) - 1)
        factors[:, list(self.involved)] = np.stack(np.unravel_index(cells, self.probabilities.shape), axis=1)
        return factors
