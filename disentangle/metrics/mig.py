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

import numpy as np

from disentangle.errors import DisentangleError
from disentangle.metrics._utils import check_bins, check_pair, discretize, entropies, informative_factors, mutual_info_matrix
from disentangle.metrics.registry import register_metric


@register_metric("mig", needs="codes", published={"num_train": 10000, "n_bins": 20}, tiny={"num_train": 1000},
                 headline="discrete_mig", title="MIG", reference="Chen et al. 2018", default=True, continuous=True)
def mig(codes, factors, *, n_bins: int = 20, continuous_factors: bool = False) -> dict[str, float]:
    """Mutual information gap (Chen et al. 2018) of codes [n, d] against factors [n, k].

    Codes are discretised into ``n_bins`` equal-width bins; per factor, the gap between
    the two codes sharing most information with it, divided by its entropy, averaged
    over factors with more than one value. Returns ``{"discrete_mig"}``.
    ``continuous_factors``: real-valued factors are binned like the codes first (``n_bins``
    equal-width bins); the settings record that this variant ran.
    """
    codes, factors = check_pair(codes, factors, continuous=continuous_factors)
    n_bins = check_bins(n_bins)
    if continuous_factors:
        factors = discretize(factors, n_bins)
    if codes.shape[1] < 2:
        raise DisentangleError(f"MIG needs at least 2 code dimensions to take a gap, got {codes.shape[1]}")
    keep = informative_factors(factors, "MIG")
    mi = mutual_info_matrix(discretize(codes, n_bins), factors[:, keep])
    top_two = -np.sort(-mi, axis=0)[:2]
    gaps = (top_two[0] - top_two[1]) / entropies(factors[:, keep])
    return {"discrete_mig": float(gaps.mean())}
