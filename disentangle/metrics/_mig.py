"""Mutual Information Gap: Chen et al., "Isolating Sources of Disentanglement in
Variational Autoencoders", NeurIPS 2018.

For each factor, the gap between the two codes sharing most mutual information
with it, divided by the factor's entropy; averaged over factors. ``discrete_mig``
is disentanglement_lib's published variant: codes discretised into ``n_bins``
equal-width bins, MI from ``sklearn.metrics.mutual_info_score``.
Factors with a single value (entropy 0) carry nothing to capture and are left
out of the average.
"""

from __future__ import annotations


from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import (check_bins, check_pair, discretize, entropies, informative_factors, mutual_info_matrix,
                                        top_two_gap)
from disentangle.metrics.registry import register_metric


@register_metric("mig", needs="codes", published={"num_train": 10000}, records=("n_bins",), tiny={"num_train": 1000},
                 headline="discrete_mig", title="MIG", reference="Chen et al. 2018", default=True, continuous=True)
def mig(codes, factors, *, n_bins: int = 20, continuous_factors: bool = False) -> dict[str, float]:
    """Mutual information gap of codes against factors.

    Per factor, the gap between the two codes that share most mutual information with it,
    divided by the factor's entropy, averaged over factors with more than one value. Codes
    are discretised into ``n_bins`` equal-width bins per dimension; MI from
    ``sklearn.metrics.mutual_info_score`` (nats).

    .. math:: \\mathrm{MIG} = \\frac{1}{K} \\sum_k \\frac{I(z_{j^{(1)}_k}; v_k) - I(z_{j^{(2)}_k}; v_k)}{H(v_k)}

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
        One row per observation; ``d >= 2``.
    factors : array-like of int, shape (n, k)
        Factor classes (real values with ``continuous_factors``).
    n_bins : int, default 20
        Equal-width bins per code dimension (>= 2).
    continuous_factors : bool, default False
        Bin real-valued factors like the codes first (the settings record that this variant ran).

    Returns
    -------
    dict
        ``{"discrete_mig": float}`` in [0, 1]: 1 when each factor is in one code alone.

    See Also
    --------
    mig_sup : the gap per code instead of per factor.
    dcimig : MIG's gap credited once per code.
    jemmig : MIG with the joint entropy of the top code.

    References
    ----------
    Chen, Li, Grosse & Duvenaud, "Isolating Sources of Disentanglement in Variational
    Autoencoders", NeurIPS 2018. disentanglement_lib: ``evaluation/metrics/mig.py``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> mig(codes, factors)
    {'discrete_mig': 1.0}
    >>> mig(np.c_[codes[:, 0], codes[:, 0]], factors)  # factor 0 in both codes: no gap; factor 1 nowhere
    {'discrete_mig': 0.0}
    """
    codes, factors = check_pair(codes, factors, continuous=continuous_factors)
    n_bins = check_bins(n_bins)
    if continuous_factors:
        factors = discretize(factors, n_bins)
    if codes.shape[1] < 2:
        raise DisentangleError(f"MIG needs at least 2 code dimensions to take a gap, got {codes.shape[1]}")
    keep = informative_factors(factors, "MIG")
    mi = mutual_info_matrix(discretize(codes, n_bins), factors[:, keep])
    gaps = top_two_gap(mi, axis=0) / entropies(factors[:, keep])
    return {"discrete_mig": float(gaps.mean())}
