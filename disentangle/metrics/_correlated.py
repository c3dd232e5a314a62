"""What training on correlated factors did to the latents (:mod:`disentangle.datasets.correlations`).

``latent_correlation`` is Träuble et al.'s diagnosis (ICML 2021, "On Disentangled Representations
Learned from Correlated Data", Sec. 4): for a pair of factors, take the latent that captures each
(the code sharing most mutual information with it, as MIG ranks them) and measure how correlated
those two latents are on *unaltered* data, where the factors are independent: a representation
that learned the training correlation into its latents keeps it there.

``factorized_support`` is the FoS score of Roth et al. (ICLR 2023, "Disentanglement of Correlated
Factors via Hausdorff Factorized Support"): over latent pairs, the Hausdorff distance from the
product of the pair's marginal supports to the pair's joint support, estimated on batches; 0 when
the support factorizes.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from disentangle.base.errors import DegenerateInputWarning, DisentangleError
from disentangle.metrics._utils import check_bins, check_codes, check_pair, discretize, mutual_info_matrix
from disentangle.metrics.registry import register_metric
from disentangle.base.validation import check_count


def _factor_pairs(text: str, num_factors: int) -> list[tuple[int, int]]:
    """``"all"`` or ``"i:j,..."`` factor indices -> index pairs."""
    if text == "all":
        return list(itertools.combinations(range(num_factors), 2))
    pairs = []
    for item in str(text).split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise DisentangleError(f"latent_correlation pairs must be 'all' or FACTOR:FACTOR indices, comma-separated, got {item.strip()!r}")
        i, j = (int(p) for p in parts)
        if max(i, j) >= num_factors or i == j:
            raise DisentangleError(f"latent_correlation pair {i}:{j} must name two different factors in [0, {num_factors - 1}]")
        pairs.append((i, j))
    return pairs


@register_metric("latent_correlation", needs="codes", published={"num_train": 10000}, records=("n_bins", "pairs"),
                 tiny={"num_train": 1000}, headline="mean_abs_correlation", title="Latent correlation",
                 reference="Träuble et al. 2021", min_factors=2)
def latent_correlation(codes, factors, *, n_bins: int = 20, pairs: str = "all") -> dict[str, float]:
    """How correlated the latents capturing two factors are, on data where the factors are independent.

    For each factor, the capturing latent is the one with the most mutual information with it
    (codes in ``n_bins`` equal-width bins, as :func:`~disentangle.metrics.mig` ranks them); for
    each factor pair (i, j), the score is the absolute Pearson correlation of the two capturing
    latents,

    .. math:: \\rho_{ij} = \\left|\\operatorname{corr}\\left(z_{a(i)}, z_{a(j)}\\right)\\right|,
              \\quad a(i) = \\arg\\max_l I(z_l; c_i),

    1 when both factors are captured by the same latent.

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
        Codes of observations whose factors are drawn independently (the unaltered grid).
    factors : array-like of int, shape (n, k)
    n_bins : int, default 20
    pairs : str, default "all"
        ``"all"`` factor pairs, or ``"i:j,..."`` factor indices (e.g. the pairs a run was trained
        with correlated: ``"3:4"`` for dSprites' posX, posY).

    Returns
    -------
    dict
        ``{"pair_<i>_<j>": float, ..., "mean_abs_correlation": float}``, each in [0, 1]; 0 when
        the latents that capture the factors are uncorrelated.

    See Also
    --------
    factorized_support : whether the latents' joint support factorizes, whatever their correlation.

    References
    ----------
    Träuble, Creager, Kilbertus, Locatello, Dittadi, Goyal, Schölkopf & Bauer, "On Disentangled
    Representations Learned from Correlated Data", ICML 2021.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(4) for b in range(4)] * 10)
    >>> latent_correlation(factors.astype(float), factors)
    {'pair_0_1': 0.0, 'mean_abs_correlation': 0.0}
    >>> mixed = np.c_[factors[:, 0], factors[:, 0] + factors[:, 1]]  # b's latent also carries a: corr = 1/sqrt(2)
    >>> round(latent_correlation(mixed, factors)["pair_0_1"], 4), round(float(1 / np.sqrt(2)), 4)
    (0.7071, 0.7071)
    """
    codes, factors = check_pair(codes, factors)
    n_bins = check_bins(n_bins)
    chosen = _factor_pairs(pairs, factors.shape[1])
    information = mutual_info_matrix(discretize(codes, n_bins), factors)  # [d, k]
    capturing = information.argmax(axis=0)  # [k]: the latent of each factor
    captured = information.max(axis=0) > 0  # a factor no latent tells anything about has no capturing latent
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.abs(np.corrcoef(codes, rowvar=False)).reshape(codes.shape[1], codes.shape[1])  # NaN for a constant latent
    values, undefined = {}, []
    for i, j in chosen:
        a, b = capturing[i], capturing[j]
        if codes.shape[1] < 2 or not (captured[i] and captured[j]):
            values[f"pair_{i}_{j}"] = float("nan")  # one latent, or a factor no latent captures: no pair of latents to measure
            undefined.append(f"{i}:{j}")
        else:
            values[f"pair_{i}_{j}"] = 1.0 if a == b else float(correlation[a, b])
    if undefined:
        warnings.warn(f"latent_correlation: no pair of capturing latents for factor pair(s) {', '.join(undefined)} "
                      "(a single latent, or a factor no latent tells anything about): NaN", DegenerateInputWarning, stacklevel=2)
    finite = [v for v in values.values() if np.isfinite(v)]
    values["mean_abs_correlation"] = float(np.mean(finite)) if finite else float("nan")
    return values


def _hausdorff_to_product(pair_codes: np.ndarray) -> float:
    """max over product points (z_a1, z_b2) of the squared distance to the nearest batch pair (z_k1, z_k2)."""
    first, second = pair_codes[:, 0].astype(np.float32), pair_codes[:, 1].astype(np.float32)  # float32: twice as fast
    to_first = (first[:, None] - first[None, :]) ** 2  # [a, k]
    to_second = (second[:, None] - second[None, :]) ** 2  # [b, k]
    nearest = (to_first[:, None, :] + to_second[None, :, :]).min(axis=2)  # [a, b]
    return float(nearest.max())


@register_metric("factorized_support", needs="codes_only", published={"num_train": 10000}, records=("batch_size",),
                 bounds={"batch_size": (2, 512)},  # a batch's product support is batch_size^3 distances: 0.5 GB at 512
                 fast={"num_train": 2560}, tiny={"num_train": 512}, headline="fos", title="Factorized support (FoS)",
                 reference="Roth et al. 2023")
def factorized_support(codes, *, batch_size: int = 128) -> dict[str, float]:
    """FoS: how far the latents' joint support is from the product of their marginal supports.

    The codes are cut into consecutive batches of ``batch_size`` rows (the last may be shorter);
    on each, over every latent pair (i, j), the one-sided Hausdorff distance (squared Euclidean)
    from the batch's product support to the batch's pairs is summed; FoS is its mean over batches:

    .. math:: \\mathrm{FoS} = \\operatorname{mean}_{\\text{batches}} \\sum_{i < j}
              \\max_{a, b} \\min_k (z_{ai} - z_{ki})^2 + (z_{bj} - z_{kj})^2

    as the reference computes it (facebookresearch/disentangling-correlated-factors,
    ``dent/metrics/fos.py``, ``FoS.__call__`` with ``num_pairs=-1``: every pair, and
    ``batch_size=128``), on posterior means. Its training-time twin is
    :func:`disentangle.models.hfs.hausdorff_support_distance`.

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
    batch_size : int, default 128

    Returns
    -------
    dict
        ``{"fos": float}`` >= 0, in squared code units; 0 when every batch's pairs cover their product.

    See Also
    --------
    latent_correlation : the correlation itself, which a factorized support allows.

    References
    ----------
    Roth, Ibrahim, Akata, Vincent & Bouchacourt, "Disentanglement of Correlated Factors via
    Hausdorff Factorized Support", ICLR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.array([(a, b) for a in range(2) for b in range(2)], dtype=float)  # covers its product
    >>> factorized_support(grid)
    {'fos': 0.0}
    >>> factorized_support(np.array([[0.0, 0.0], [1.0, 1.0]]))  # the diagonal: corners at squared distance 1
    {'fos': 1.0}
    """
    codes = check_codes(codes)
    batch_size = check_count(batch_size, "batch_size")
    if codes.shape[1] < 2:  # no pair: a distance of 0 would read as a perfectly factorized support
        warnings.warn("factorized_support: 1 latent, no latent pair to measure: NaN", DegenerateInputWarning, stacklevel=2)
        return {"fos": float("nan")}
    pairs = list(itertools.combinations(range(codes.shape[1]), 2))
    totals = [sum(_hausdorff_to_product(codes[start:start + batch_size][:, list(pair)]) for pair in pairs)
              for start in range(0, len(codes), batch_size)]
    return {"fos": float(np.mean(totals))}
