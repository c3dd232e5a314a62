"""Shared pieces of the sampling-based scores: drawing observations and coding them."""

from __future__ import annotations

import numpy as np

from disentangle.datasets.base import check_positive_count
from disentangle.errors import DisentangleError

POINTS_PER_CALL = 4  # score points per represent call: 256-512 images, batched yet cache-sized


def represent_factors(dataset, represent, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    codes = np.asarray(represent(dataset.sample_observations_from_factors(factors, rng)), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != len(factors):
        raise DisentangleError(f"represent must return codes [n, d] for n = {len(factors)} observations, got shape {list(codes.shape)}")
    if not np.isfinite(codes).all():
        raise DisentangleError("represent returned NaN or inf codes")
    return codes


def represent_sample(dataset, represent, n: int, rng: np.random.Generator, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(factors [n, k], codes [n, d]) for ``n`` random observations, coded in batches."""
    n = check_positive_count(n, "num_points")
    factors, codes = [], []
    for start in range(0, n, batch_size):
        f = dataset.sample_factors(min(batch_size, n - start), rng)
        factors.append(f)
        codes.append(represent_factors(dataset, represent, f, rng))
    return np.concatenate(factors), np.concatenate(codes)
