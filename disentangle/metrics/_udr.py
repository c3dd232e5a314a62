"""UDR: Unsupervised Disentanglement Ranking (Duan et al., "Unsupervised Model Selection for
Variational Disentangled Representation Learning", ICLR 2020).

Models trained with the same hyperparameters and different seeds are compared pairwise on
the same observations: a disentangled model's latents should each match one latent of
every other disentangled model (up to permutation and sign). Needs no factor labels.
:func:`disentangle.lifecycle.model_selection.udr_runs` applies it to a runs folder.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from sklearn.linear_model import Lasso

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import check_codes, standardize
from disentangle.metrics.registry import register_metric
from disentangle.base.validation import check_choice

CORRELATIONS = ("lasso", "spearman")
ZEROED_KL = 0.01  # the reference zeroes latents at or below this KL before correlating, whatever kl_threshold is


def relative_strength(matrix) -> float:
    """Duan et al.'s relative strength of a [d1, d2] matrix of |correlations|: for each column and
    each row, max^2 / sum; the mean over columns and the mean over rows, averaged.

    1 when each latent matches exactly one latent of the other model; undefined entries (a
    row or column of zeros) count as 0.

    Examples
    --------
    >>> relative_strength(np.eye(3))
    1.0
    >>> round(relative_strength(np.ones((3, 3))), 4)  # every latent matches every other: 1/3
    0.3333
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = np.nan_to_num(matrix.max(0) ** 2 / matrix.sum(0), nan=0.0)
        rows = np.nan_to_num(matrix.max(1) ** 2 / matrix.sum(1), nan=0.0)
    return float((np.nanmean(columns) + np.nanmean(rows)) / 2)


def spearman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman rank correlation| between every column of ``a`` [n, d1] and of ``b`` [n, d2]:
    [d1, d2]; NaN where a column is constant."""
    d1 = a.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ranks = scipy.stats.rankdata(np.hstack([a, b]), axis=0)
        correlation = np.corrcoef(ranks, rowvar=False)
    return np.abs(np.atleast_2d(correlation)[:d1, d1:])


def lasso_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|coefficients| of a Lasso (alpha 0.1) regressing every column of ``b`` on ``a``: [d1, d2]."""
    return np.abs(Lasso(alpha=0.1).fit(a, b).coef_.reshape(b.shape[1], a.shape[1]).T)


def _check_models(codes, kl) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if len(codes) < 2:
        raise DisentangleError(f"UDR compares models: it needs at least 2, got {len(codes)}")
    if len(kl) != len(codes):
        raise DisentangleError(f"UDR needs one KL vector per model: got {len(kl)} for {len(codes)} models")
    codes = [check_codes(c, f"codes of model {i}") for i, c in enumerate(codes)]
    shapes = {c.shape for c in codes}
    if len(shapes) > 1:
        raise DisentangleError(f"UDR needs every model's codes on the same observations with the same d, got shapes "
                               f"{sorted(list(s) for s in shapes)}")
    checked = []
    for i, values in enumerate(kl):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (codes[0].shape[1],) or not np.isfinite(values).all() or (values < 0).any():
            raise DisentangleError(f"kl of model {i} must be {codes[0].shape[1]} finite non-negative numbers, got {values.tolist()}")
        checked.append(values)
    return codes, checked


@register_metric("udr", needs="runs", published={"num_data_points": 1000}, records=("correlation", "kl_threshold"),
                 tiny={"num_data_points": 200}, headline="model_score", title="UDR", reference="Duan et al. 2020")
def udr(codes, kl, *, correlation: str = "lasso", kl_threshold: float = 0.01, filter_low_kl: bool = True) -> dict:
    """UDR scores of m models trained alike with different seeds.

    Each model's codes are standardised (mean 0, std 1 per latent; a constant latent is only
    centred) and latents with mean KL <= 0.01 are zeroed. For every ordered pair (i, j), a
    [d, d] matrix of |correlations| between i's latents and j's (a multi-output Lasso
    regression of j on i, or Spearman's rank correlation) is restricted to the latents of
    both with KL > ``kl_threshold`` and scored by :func:`relative_strength`. A model's score is
    the median of its pairwise scores against the others.

    .. math:: \\mathrm{UDR}_m = \\operatorname{median}_{m' \\neq m} \\frac{1}{2}\\Big(\\frac{1}{d_a}\\sum_{b} \\frac{\\max_a R_{ab}^2}{\\sum_a R_{ab}} + \\frac{1}{d_b}\\sum_{a} \\frac{\\max_b R_{ab}^2}{\\sum_b R_{ab}}\\Big), \\qquad R = \\lvert \\mathrm{corr}(z^{(m)}, z^{(m')}) \\rvert

    Parameters
    ----------
    codes : sequence of array-like, each shape (n, d)
        One per model (m >= 2), the same n observations in the same order.
    kl : sequence of array-like, each shape (d,)
        Each model's mean KL divergence per latent (posterior against the prior).
    correlation : {"lasso", "spearman"}, default "lasso"
    kl_threshold : float, default 0.01
    filter_low_kl : bool, default True
        Leave latents at or below ``kl_threshold`` out of the pairwise scores.

    Returns
    -------
    dict
        ``{"model_scores": list [m], "pairwise": list [m, m]}``; ``pairwise[i][j]`` scores i
        against j (0 on the diagonal, as in the reference); ``model_scores[i]`` is the median
        of ``pairwise[j][i]`` over j != i.

    References
    ----------
    Duan et al., "Unsupervised Model Selection for Variational Disentangled Representation
    Learning", ICLR 2020. disentanglement_lib: ``evaluation/udr/metrics/udr.py``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((500, 3))
    >>> same_up_to_sign_and_order = -z[:, [2, 0, 1]]
    >>> scores = udr([z, same_up_to_sign_and_order], [np.ones(3), np.ones(3)])
    >>> [round(s, 3) for s in scores["model_scores"]]  # Lasso shrinks each matching weight by alpha: 0.9^2 / 0.9
    [0.9, 0.9]
    >>> spearman = udr([z, same_up_to_sign_and_order], [np.ones(3), np.ones(3)], correlation="spearman")
    >>> [round(s, 1) for s in spearman["model_scores"]]  # chance correlations of ~0.03 with the other latents
    [1.0, 1.0]
    """
    check_choice(correlation, "correlation", CORRELATIONS)
    codes, kl = _check_models(codes, kl)
    m = len(codes)
    prepared = [standardize(c)[0] * (k > ZEROED_KL) for c, k in zip(codes, kl)]
    active = [k > kl_threshold for k in kl]
    pairwise = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            matrix = (lasso_matrix if correlation == "lasso" else spearman_matrix)(prepared[i], prepared[j])
            if filter_low_kl:
                matrix = matrix[active[i]][:, active[j]]
            pairwise[i, j] = relative_strength(matrix)
    model_scores = [float(np.median(np.delete(pairwise[:, i], i))) for i in range(m)]
    return {"model_scores": model_scores, "pairwise": pairwise.tolist()}
