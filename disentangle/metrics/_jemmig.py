"""JEMMIG: Do & Tran, "Theory and Evaluation Metrics for Learning Disentangled
Representations", ICLR 2020.

Per factor v_k with best code z* (most MI) and runner-up z°:
``JEMMIG_k = H(z*, v_k) - I(z*; v_k) + I(z°; v_k)``, which is 0 only when z* and v_k
determine each other and no other code knows v_k. Normalised by ``H(v_k) + log(n_bins)``
(its largest value) and reported as ``1 - mean_k``, so higher is better, as in
Carbonneau et al.'s review implementation. ``discrete_jemmig``: codes binned as MIG bins them.
"""

from __future__ import annotations

import numpy as np

from disentangle.metrics._utils import (check_bins, check_pair, discretize, entropies, informative_factors, joint_entropy,
                                        mutual_info_matrix, top_two)
from disentangle.metrics.registry import register_metric


@register_metric("jemmig", needs="codes", published={"num_train": 10000}, records=("n_bins",), tiny={"num_train": 1000},
                 headline="discrete_jemmig", title="JEMMIG", reference="Do & Tran 2020")
def jemmig(codes, factors, *, n_bins: int = 20) -> dict[str, float]:
    """1 - normalised JEMMIG: joint-entropy-minus-mutual-information gap of codes against factors.

    Per factor, H(z*, v) - I(z*; v) + I(z°; v) with z* the code sharing most information with
    factor v and z° the runner-up, normalised by H(v) + log(n_bins) and averaged; reported as
    1 minus that, so that higher is better as for the other metrics.

    .. math:: 1 - \\frac{1}{K} \\sum_k \\frac{H(z^*_k, v_k) - I(z^*_k; v_k) + I(z^\\circ_k; v_k)}{H(v_k) + \\log n_{\\mathrm{bins}}}

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
    factors : array-like of int, shape (n, k)
    n_bins : int, default 20

    Returns
    -------
    dict
        ``{"discrete_jemmig": float}`` in [0, 1].

    See Also
    --------
    mig, mig_sup, dcimig : the other MIG variants.

    References
    ----------
    Do & Tran, "Theory and Evaluation Metrics for Learning Disentangled Representations",
    ICLR 2020 (not in disentanglement_lib).

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> jemmig(codes, factors)
    {'discrete_jemmig': 1.0}
    """
    codes, factors = check_pair(codes, factors)
    n_bins = check_bins(n_bins)
    keep = informative_factors(factors, "JEMMIG")
    factors = factors[:, keep]
    binned = discretize(codes, n_bins)
    mi = mutual_info_matrix(binned, factors)  # [d, k]
    first, second = top_two(mi, axis=0)
    best = np.argmax(mi, axis=0)
    joint = np.array([joint_entropy(binned[:, best[k]], factors[:, k]) for k in range(factors.shape[1])])
    normalised = (joint - first + second) / (entropies(factors) + np.log(n_bins))
    return {"discrete_jemmig": float(1.0 - normalised.mean())}
