"""DCIMIG: Sepliarskaia, Kiseleva & de Rijke, "How to Not Measure Disentanglement",
2019 (arXiv:1910.05587).

Per code: the factor it shares most information with and the gap to the next one.
Per factor: the largest gap among the codes assigned to it (0 if none). DCIMIG is the
sum of those gaps over the sum of factor entropies, in [0, 1]: it rewards a code per
factor (completeness) and a factor per code (disentanglement) at once.
``discrete_dcimig``: codes binned as MIG bins them.
"""

from __future__ import annotations

import numpy as np

from disentangle.metrics._utils import (check_bins, check_pair, discretize, entropies, informative_factors, mutual_info_matrix,
                                        top_two)
from disentangle.metrics.registry import register_metric


@register_metric("dcimig", needs="codes", published={"num_train": 10000}, records=("n_bins",), tiny={"num_train": 1000},
                 headline="discrete_dcimig", title="DCIMIG", reference="Sepliarskaia et al. 2019", min_factors=2)
def dcimig(codes, factors, *, n_bins: int = 20) -> dict[str, float]:
    """DCIMIG: MIG's gap credited once per code, normalised by the factors' entropies.

    For each code, the gap between its largest and second-largest MI with a factor is
    credited to that factor; each factor keeps its largest credit; the score is their sum
    divided by the sum of the factors' entropies (codes in ``n_bins`` equal-width bins).

    .. math:: \\mathrm{DCIMIG} = \\frac{\\sum_k \\max_{j:\\, k = k^{(1)}_j} \\left(I(z_j; v_{k^{(1)}_j}) - I(z_j; v_{k^{(2)}_j})\\right)}{\\sum_k H(v_k)}

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
    factors : array-like of int, shape (n, k)
    n_bins : int, default 20

    Returns
    -------
    dict
        ``{"discrete_dcimig": float}`` in [0, 1].

    See Also
    --------
    mig, mig_sup, jemmig : the other MIG variants.
    dci : disentanglement and completeness from a predictor's importances.

    References
    ----------
    Sepliarskaia, Kiseleva & de Rijke, "How to Not Measure Disentanglement",
    arXiv:1910.05587, 2019 (not in disentanglement_lib).

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> dcimig(codes, factors)
    {'discrete_dcimig': 1.0}
    """
    codes, factors = check_pair(codes, factors)
    keep = informative_factors(factors, "DCIMIG")
    mi = mutual_info_matrix(discretize(codes, check_bins(n_bins)), factors[:, keep])  # [d, k]
    first, second = top_two(mi, axis=1)
    best_factor = np.argmax(mi, axis=1)
    gaps = np.zeros(mi.shape[1])
    np.maximum.at(gaps, best_factor, first - second)
    return {"discrete_dcimig": float(gaps.sum() / entropies(factors[:, keep]).sum())}
