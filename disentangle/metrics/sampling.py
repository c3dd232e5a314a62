"""Shared pieces of the sampling-based scores: drawing observations and coding them."""

from __future__ import annotations

import numpy as np

from disentangle.base.validation import check_count
from disentangle.base.errors import DisentangleError

IMAGES_PER_CALL = 512  # observations per represent call in the sampling scores: full encoder batches


def points_per_call(images_per_point: int, points_per_call: int | None = None) -> int:
    """Score points gathered into one represent call: as many as fill :data:`IMAGES_PER_CALL`
    (read at call time), or ``points_per_call`` when given (1 = the naive one call per point)."""
    if points_per_call is not None:
        return check_count(points_per_call, "points_per_call")
    return max(1, IMAGES_PER_CALL // images_per_point)


def share_within_groups(factors: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """Groups of factor rows in which the ``shared`` factors take the group's first row's values:
    the one move of the β-VAE score (a pair shares one factor), the FactorVAE score (a batch
    fixes one factor) and Z-max variance (a batch varies only one).

    Parameters
    ----------
    factors : int array, shape (g, m, k)
        g groups of m factor rows.
    shared : bool array, shape (g, k)
        The factors each group holds at its first row's values.

    Returns
    -------
    int array, shape (g, m, k)
        A new array; rows keep their own value of every factor not shared.

    Examples
    --------
    >>> groups = np.array([[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    >>> share_within_groups(groups, np.array([[True, False], [False, True]])).tolist()
    [[[0, 1], [0, 3]], [[4, 5], [6, 5]]]
    """
    return np.where(shared[:, None, :], factors[:, :1, :], factors)


def one_factor(k: np.ndarray, num_factors: int) -> np.ndarray:
    """bool [len(k), num_factors]: row i marks factor ``k[i]`` alone."""
    return np.arange(num_factors) == np.asarray(k)[:, None]


def represent_factors(dataset, represent, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Codes float64 [n, d] of observations drawn for ``factors`` [n, k]; a one-line error if ``represent`` returns a wrong shape or non-finite codes."""
    codes = np.asarray(represent(dataset.sample_observations_from_factors(factors, rng)), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != len(factors):
        raise DisentangleError(f"represent must return codes [n, d] for n = {len(factors)} observations, got shape {list(codes.shape)}")
    if not np.isfinite(codes).all():
        raise DisentangleError("represent returned NaN or inf codes")
    return codes


def represent_in_batches(dataset, represent, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`represent_factors` of many rows, :data:`IMAGES_PER_CALL` observations at a time (bounded memory)."""
    return np.concatenate([represent_factors(dataset, represent, factors[start:start + IMAGES_PER_CALL], rng)
                           for start in range(0, len(factors), IMAGES_PER_CALL)])


def represent_sample(dataset, represent, n: int, rng: np.random.Generator, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(factors [n, k], codes [n, d]) for ``n`` random observations, coded in batches."""
    n = check_count(n, "num_points")
    factors, codes = [], []
    for start in range(0, n, batch_size):
        f = dataset.sample_factors(min(batch_size, n - start), rng)
        factors.append(f)
        codes.append(represent_factors(dataset, represent, f, rng))
    return np.concatenate(factors), np.concatenate(codes)
