"""Interventional Robustness Score: Suter, Miladinović, Schölkopf & Bauer, "Robustly
Disentangled Causal Mechanisms: Validating Deep Representations for Interventional
Robustness", ICML 2019 (disentanglement_lib's ``irs.py``).

For each code dimension and factor: how far the code still moves when the factor is
held fixed (the ``diff_quantile`` quantile of |z - E[z | factor value]|, averaged over
the factor's values), relative to the code's largest deviation from its mean. A
code's score is 1 minus that for its best factor; IRS is the average over active
codes weighted by their largest deviation. As in the reference, factors are binned
into ``n_bins`` equal-width bins first and constant codes are dropped.
"""

from __future__ import annotations

import numpy as np

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import check_bins, check_pair, discretize
from disentangle.metrics.registry import register_metric


def irs_matrix(factors: np.ndarray, codes: np.ndarray, diff_quantile: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """(IRS matrix [d, k] = 1 - normalised deviation, each code's largest deviation [d])."""
    max_deviation = np.max(np.abs(codes - codes.mean(axis=0)), axis=0)
    deviation = np.zeros((codes.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values = np.unique(factors[:, k])
        for value in values:
            group = codes[factors[:, k] == value]
            deviation[:, k] += np.quantile(np.abs(group - group.mean(axis=0)), diff_quantile, axis=0)
        deviation[:, k] /= len(values)
    return 1.0 - deviation / max_deviation[:, None], max_deviation


@register_metric("irs", needs="codes", published={"num_train": 10000}, records=("diff_quantile", "n_bins"),
                 tiny={"num_train": 1000}, headline="irs", title="IRS", reference="Suter et al. 2019", min_factors=2)
def irs(codes, factors, *, diff_quantile: float = 0.99, n_bins: int = 20) -> dict[str, float]:
    """Interventional robustness score of codes against factors.

    Per (code, factor): how far the code still moves with the factor held fixed (the
    ``diff_quantile`` quantile of |z - E[z | factor value]|, averaged over the factor's values),
    relative to the code's largest deviation from its mean. A code scores 1 minus that for its
    best factor; IRS averages active codes weighted by their largest deviation. Factors are
    binned into ``n_bins`` equal-width bins first, as in disentanglement_lib.

    .. math:: \\mathrm{IRS}_{ij} = 1 - \\frac{\\frac{1}{|V_j|}\\sum_{c \\in V_j} Q_{q}\\big(\\lvert z_i - \\mathbb{E}[z_i \\mid v_j = c] \\rvert\\big)}{\\max \\lvert z_i - \\mathbb{E} z_i \\rvert}, \\qquad \\mathrm{IRS} = \\frac{\\sum_i m_i \\max_j \\mathrm{IRS}_{ij}}{\\sum_i m_i}

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
    factors : array-like of int, shape (n, k)
    diff_quantile : float, default 0.99
    n_bins : int, default 20

    Returns
    -------
    dict
        ``{"irs": float in [0, 1], "num_active_dims": int}``.

    References
    ----------
    Suter, Miladinović, Schölkopf & Bauer, "Robustly Disentangled Causal Mechanisms:
    Validating Deep Representations for Interventional Robustness", ICML 2019.
    disentanglement_lib: ``evaluation/metrics/irs.py``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> irs(codes, factors)
    {'irs': 1.0, 'num_active_dims': 2}
    """
    codes, factors = check_pair(codes, factors)
    if not 0.0 < diff_quantile <= 1.0:
        raise DisentangleError(f"diff_quantile must be in (0, 1], got {diff_quantile!r}")
    active = codes.var(axis=0) > 0.0
    if not active.any():
        return {"irs": 0.0, "num_active_dims": 0}
    matrix, max_deviation = irs_matrix(discretize(factors.astype(np.float64), check_bins(n_bins)), codes[:, active], diff_quantile)
    return {"irs": float(np.average(matrix.max(axis=1), weights=max_deviation)), "num_active_dims": int(active.sum())}
