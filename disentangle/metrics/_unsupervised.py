"""Unsupervised scores of a representation (no factors), as in Locatello et al.,
"Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", ICML 2019: Gaussian total correlation and Wasserstein
dependency of the codes' covariance, and the mean pairwise mutual information
of the discretised codes.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from disentangle.metrics._utils import check_bins, check_codes, discretize, mutual_info_matrix
from disentangle.metrics.registry import register_metric


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """KL(N(0, cov) || N(0, diag(cov))) = (sum log diag - log det) / 2, over the dimensions
    with non-zero variance (a constant code is independent of everything: it adds 0, where
    the formula would give inf - inf)."""
    varying = np.diag(cov) > 0
    cov = cov[np.ix_(varying, varying)]
    if cov.size == 0:
        return 0.0
    _, logdet = np.linalg.slogdet(cov)
    return float(0.5 * (np.log(np.diag(cov)).sum() - logdet))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, cov) and N(0, diag(cov))."""
    sqrt_diag = np.diag(np.sqrt(np.diag(cov)))
    cross = scipy.linalg.sqrtm(sqrt_diag @ cov @ sqrt_diag)
    return float(2 * np.trace(cov) - 2 * np.real(np.trace(cross)))


@register_metric("unsupervised", needs="codes_only", published={"num_train": 10000}, records=("n_bins",), tiny={"num_train": 500},
                 headline="gaussian_total_correlation", title="Gaussian total correlation", reference="Locatello et al. 2019", default=True)
def unsupervised(codes, *, n_bins: int = 20) -> dict[str, float]:
    """Unsupervised scores of codes alone: how dependent the code dimensions are.

    Gaussian total correlation (KL between the Gaussian fitted to the codes and the product
    of its marginals), the Wasserstein dependency between the same two Gaussians (raw, and
    normalised by the sum of variances), and the mean pairwise discrete mutual information
    of codes in ``n_bins`` bins. All are 0 for independent codes.

    .. math:: \\mathrm{TC}_{\\mathcal N} = \\mathrm{KL}\\big(\\mathcal N(0, \\Sigma) \\,\\|\\, \\mathcal N(0, \\operatorname{diag}\\Sigma)\\big) = \\tfrac{1}{2}\\Big(\\sum_j \\log \\Sigma_{jj} - \\log\\det\\Sigma\\Big)

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
    n_bins : int, default 20

    Returns
    -------
    dict
        ``{"gaussian_total_correlation", "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm", "mutual_info_score"}``, each >= 0 (nats for
        the two MI-like ones).

    References
    ----------
    Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of
    Disentangled Representations", ICML 2019. disentanglement_lib:
    ``evaluation/metrics/unsupervised_metrics.py``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> unsupervised(codes)  # the grid's two factors are independent
    {'gaussian_total_correlation': 0.0, 'gaussian_wasserstein_correlation': 0.0,
     'gaussian_wasserstein_correlation_norm': 0.0, 'mutual_info_score': 0.0}
    """
    codes = check_codes(codes)
    n_bins = check_bins(n_bins)
    cov = np.atleast_2d(np.cov(codes, rowvar=False))
    discrete = discretize(codes, n_bins)
    mi = mutual_info_matrix(discrete, discrete)
    d = codes.shape[1]
    off_diagonal = (mi.sum() - np.trace(mi)) / (d * d - d) if d > 1 else 0.0
    wasserstein = gaussian_wasserstein_correlation(cov)
    return {
        "gaussian_total_correlation": gaussian_total_correlation(cov),
        "gaussian_wasserstein_correlation": wasserstein,
        "gaussian_wasserstein_correlation_norm": wasserstein / float(np.trace(cov)) if np.trace(cov) > 0 else 0.0,
        "mutual_info_score": float(off_diagonal),
    }
