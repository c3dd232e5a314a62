"""InfoMEC: Hsu, Dorrell, Whittington, Wu & Finn, "Disentanglement via Latent
Quantization", NeurIPS 2023 (the authors' ``infomec.py``).

From the normalised mutual information NMI[j, i] = I(z_i; s_j) / H(s_j) over the active
latents (range above 1/20 of the largest range):

- InfoM (modularity): per latent, its largest NMI share across sources, rescaled so
  that 1 is one source per latent and 0 is information spread evenly;
- InfoC (compactness): per source, its largest NMI share across latents, rescaled alike;
- InfoE (explicitness): per source, the fraction of its entropy a multinomial logistic
  regression on all (standardised) latents removes, measured by log-loss.

``estimator="knn"`` (the reference's, for continuous latents) estimates each MI with
scikit-learn's k-nearest-neighbour estimator on standardised latents (``n_neighbors``);
``"binned"`` bins latents as MIG does. The keys name the variant: ``infom_knn``, ``infoc_knn``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import (check_bins, check_pair, discretize, entropies, informative_factors, mutual_info_matrix,
                                        require_factors, standardize)
from disentangle.metrics.registry import register_metric

ESTIMATORS = ("knn", "binned")


def normalised_mi(codes: np.ndarray, factors: np.ndarray, estimator: str = "knn", n_neighbors: int = 10, n_bins: int = 20) -> np.ndarray:
    """NMI [d, k]: I(code i; factor j) / H(factor j), by the k-NN or the binned estimator."""
    if estimator == "binned":
        mi = mutual_info_matrix(discretize(codes, check_bins(n_bins)), factors)
    else:
        (standardised,) = standardize(codes)
        mi = np.array([[mutual_info_classif(standardised[:, [i]], factors[:, j], discrete_features=False,
                                            n_neighbors=n_neighbors, random_state=0)[0]
                        for j in range(factors.shape[1])] for i in range(codes.shape[1])])
    return mi / entropies(factors)


def _share_score(nmi: np.ndarray, axis: int) -> float:
    """Mean over the other axis of (largest share along ``axis`` - 1/m) / (1 - 1/m)."""
    m = nmi.shape[axis]
    if m < 2:
        return 1.0
    totals = nmi.sum(axis=axis)
    shares = np.divide(nmi.max(axis=axis), totals, out=np.full(totals.shape, 1.0 / m), where=totals > 0)
    return float((shares.mean() - 1.0 / m) / (1.0 - 1.0 / m))


def infoe(codes: np.ndarray, factors: np.ndarray) -> float:
    """Mean over factors of (H_null - CE) / H_null, CE the in-sample log-loss of a multinomial
    logistic regression (no penalty, balanced classes) on standardised codes."""
    (standardised,) = standardize(codes)
    scores = []
    for j in range(factors.shape[1]):
        target = np.unique(factors[:, j], return_inverse=True)[1]
        losses = []
        for inputs in (standardised, np.zeros_like(standardised)):
            model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100)  # C = inf: no penalty
            with warnings.catch_warnings():  # the reference's 100 iterations; convergence is not required
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(inputs, target)
            losses.append(log_loss(target, model.predict_proba(inputs), labels=model.classes_))
        predictive, null = losses
        scores.append((null - predictive) / null if null > 0 else 0.0)
    return float(np.mean(scores))


@register_metric("infomec", needs="codes", published={"num_train": 10000}, records=("estimator", "n_neighbors", "n_bins"),
                 tiny={"num_train": 1000}, headline="infom_knn", title="InfoM", family="InfoMEC", reference="Hsu et al. 2023", min_factors=2)
def infomec(codes, factors, *, estimator: str = "knn", n_neighbors: int = 10, n_bins: int = 20) -> dict[str, float]:
    """InfoM, InfoC and InfoE of codes against factors (InfoMEC).

    The normalised mutual information I(z_i; v_j) / H(v_j) of each active code (range above
    1/20 of the largest) and factor, by a k-NN estimator on standardised codes or on binned
    codes, gives InfoM (modularity: each code informs about one factor) and InfoC
    (compactness: each factor lives in one code), rescaled so 1 is ideal and 0 is information
    spread evenly; InfoE (explicitness) is the fraction of each factor's entropy a multinomial
    logistic regression on all codes removes (log-loss).

    .. math:: \\mathrm{InfoM} = \\frac{\\frac{1}{d}\\sum_i \\frac{\\max_j N_{ij}}{\\sum_j N_{ij}} - \\frac{1}{K}}{1 - \\frac{1}{K}}, \\quad \\mathrm{InfoC} = \\frac{\\frac{1}{K}\\sum_j \\frac{\\max_i N_{ij}}{\\sum_i N_{ij}} - \\frac{1}{d}}{1 - \\frac{1}{d}}, \\quad \\mathrm{InfoE} = \\frac{1}{K}\\sum_j \\frac{H_0(v_j) - \\mathrm{CE}_j}{H_0(v_j)}, \\quad N_{ij} = \\frac{I(z_i; v_j)}{H(v_j)}

    Parameters
    ----------
    codes : array-like of float, shape (n, d)
    factors : array-like of int, shape (n, k)
    estimator : {"knn", "binned"}, default "knn"
    n_neighbors : int, default 10
        Neighbours of the k-NN MI estimator.
    n_bins : int, default 20
        Bins of the ``"binned"`` estimator.

    Returns
    -------
    dict
        ``{"infom_<estimator>", "infoc_<estimator>", "infoe"}`` each in [0, 1], and ``"num_active_dims"``.

    References
    ----------
    Hsu, Dorrell, Whittington, Wu & Finn, "Disentanglement via Latent Quantization",
    NeurIPS 2023 (reference code: github.com/kylehkhsu/latent_quantization; not in disentanglement_lib).

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> scores = infomec(codes, factors)
    >>> round(scores["infom_knn"], 2), round(scores["infoe"], 2), scores["num_active_dims"]
    (0.98, 1.0, 2)
    """
    codes, factors = check_pair(codes, factors)
    if estimator not in ESTIMATORS:
        raise DisentangleError(f"infomec estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    factors = factors[:, informative_factors(factors, "InfoMEC")]
    require_factors(factors.shape[1], "InfoMEC")
    ranges = codes.max(axis=0) - codes.min(axis=0)
    active = ranges > ranges.max() / 20 if ranges.max() > 0 else np.zeros(len(ranges), bool)
    if not active.any():
        return {f"infom_{estimator}": 0.0, f"infoc_{estimator}": 0.0, "infoe": 0.0, "num_active_dims": 0}
    nmi = normalised_mi(codes[:, active], factors, estimator, n_neighbors, n_bins)  # [d_active, k]
    return {f"infom_{estimator}": _share_score(nmi, axis=1),  # per latent, across factors
            f"infoc_{estimator}": _share_score(nmi, axis=0),  # per factor, across latents
            "infoe": infoe(codes[:, active], factors),
            "num_active_dims": int(active.sum())}
