"""Pairs of observations that differ in a few factors: the weak supervision of Locatello et
al. 2020 ("Weakly-Supervised Disentanglement Without Compromises", ICML), on any
ground-truth data set.

Two samplers, both drawing every number from the caller's seeded ``numpy.random.Generator``
(so a training run that checkpoints the generator resumes the same pair stream):

``"locatello2020"`` (the default: the paper's rule, Section 5)
    k ~ U{1, ..., K-1} per pair (or a fixed ``k``); the k changed factors are drawn without
    replacement and each gets a *different* value, uniform over the factor's other values.
    Every pair differs in exactly k factors.
``"disentanglement_lib"`` (``train_weak_lib.simple_dynamics``, the reference's code)
    k as above, but then 1 *or* k factors (one of the two, with probability 1/2) are
    redrawn uniformly over *all* their values, so a "changed" factor may keep its value
    (disentanglement_lib issues #31 and #36). The reference draws the new values from
    numpy's global generator; here they come from the same seeded stream.

``changed`` marks the factors the sampler chose to change (for the reference's sampler a
chosen factor may still be equal in both).
"""

from __future__ import annotations

import numpy as np

from disentangle.base.errors import DisentangleError

PAIR_SAMPLERS = ("locatello2020", "disentanglement_lib")


def check_pair_options(factor_sizes, k, sampler: str, dataset_name: str = "the data set") -> None:
    """One-line errors for a pair sampler that cannot run on factors of ``factor_sizes``."""
    if sampler not in PAIR_SAMPLERS:
        raise DisentangleError(f"pair_sampler must be one of {', '.join(PAIR_SAMPLERS)}, got {sampler!r}")
    changeable = sum(int(size) > 1 for size in factor_sizes)
    if changeable < 2:
        raise DisentangleError(f"pair models need a data set with at least two factors of variation; {dataset_name} has "
                               f"{changeable}")
    if k == "random":
        return
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= changeable - 1:
        raise DisentangleError(f"k must be 'random' or an integer from 1 to {changeable - 1} (the number of factors of "
                               f"{dataset_name} minus one), got {k!r}")


def _draw_k(n: int, k, num_factors: int, rng: np.random.Generator) -> np.ndarray:
    if k == "random":
        return rng.integers(1, num_factors, size=n)  # U{1, ..., K-1}
    return np.full(n, int(k))


def _choose_factors(counts: np.ndarray, factor_sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """bool [n, K]: ``counts[i]`` factors of row i, without replacement, uniformly among the factors
    with more than one value."""
    keys = rng.random((len(counts), len(factor_sizes)))
    keys[:, factor_sizes < 2] = np.inf  # a factor with one value cannot change
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    return ranks < counts[:, None]


def sample_pairs(factor_sizes, factors: np.ndarray, rng: np.random.Generator, k="random",
                 sampler: str = "locatello2020") -> tuple[np.ndarray, np.ndarray]:
    """The second factors of each pair whose first factors are ``factors``.

    Parameters
    ----------
    factor_sizes : sequence of int, length K
        Number of values of each factor.
    factors : int array [n, K]
        The first observation's factor classes.
    rng : numpy.random.Generator
    k : int or "random"
        Factors changed per pair (``"random"``: k ~ U{1, ..., K-1} per pair).
    sampler : "locatello2020" or "disentanglement_lib"
        See the module docstring.

    Returns
    -------
    factors2 : int64 array [n, K]
    changed : bool array [n, K]
        The factors the sampler chose to change.
    """
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    check_pair_options(sizes, k, sampler)
    factors = np.asarray(factors, dtype=np.int64)
    n, num_factors = factors.shape
    counts = _draw_k(n, k, num_factors, rng)
    if sampler == "disentanglement_lib":
        counts = np.where(rng.random(n) < 0.5, 1, counts)  # random_state.choice([1, k_observed])
    changed = _choose_factors(counts, sizes, rng)
    if sampler == "locatello2020":
        offsets = rng.integers(1, np.maximum(sizes, 2), size=(n, num_factors))  # 1 .. size-1: never the same value
        new = (factors + offsets) % sizes
    else:
        new = rng.integers(0, sizes, size=(n, num_factors))  # any value, the old one included
    return np.where(changed, new, factors), changed


def sample_pair_batch(dataset, n: int, rng: np.random.Generator, k="random", sampler: str = "locatello2020"):
    """n pairs of observations from ``dataset``: (images float32 [2n, C, H, W] with the first
    observations in rows 0..n-1 and their partners in rows n..2n-1, changed bool [n, K])."""
    if getattr(dataset, "holdout", None):
        raise DisentangleError(f"pair models cannot train under holdout={dataset.holdout!r}: a pair's partner could fall in the held-out region")
    factors = dataset.sample_factors(n, rng)
    factors2, changed = sample_pairs(dataset.factor_sizes, factors, rng, k, sampler)
    first = dataset.sample_observations_from_factors(factors, rng)
    second = dataset.sample_observations_from_factors(factors2, rng)
    return np.concatenate([first, second]), changed
