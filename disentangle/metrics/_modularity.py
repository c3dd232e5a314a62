"""Modularity and explicitness: Ridgeway & Mozer, "Learning Deep Disentangled
Embeddings with the F-Statistic Loss", NeurIPS 2018 (settings of disentanglement_lib).

Modularity: each code should share information with one factor only. With
m_if the MI between code i and factor f and theta_i = max_f m_if, the code's
deviation from its ideal template is sum_{f != argmax} m_if^2 / (theta_i^2 (k - 1));
modularity is the mean of 1 - deviation. Explicitness: mean one-vs-rest ROC AUC
of a logistic regression per factor from all codes, standardised first with the
training codes' mean and std (ddof 0), as disentanglement_lib does (a code with
std 0 is only centred, where the reference would divide by zero).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import label_binarize

from disentangle.metrics._utils import (check_bins, check_train_test, discretize, informative_factors, mutual_info_matrix, require_factors,
                                        standardize)
from disentangle.metrics.registry import register_metric


def modularity_of(mi: np.ndarray) -> float:
    """Modularity of a mutual information matrix [d codes, k factors]."""
    d, k = mi.shape
    require_factors(k, "modularity")
    theta = mi.max(1)
    template = np.zeros_like(mi)
    template[np.arange(d), mi.argmax(1)] = theta
    deviation = ((mi - template) ** 2).sum(1) / (np.where(theta > 0, theta, 1.0) ** 2 * (k - 1))
    deviation[theta == 0] = 1.0  # a code sharing nothing with any factor is not modular
    return float((1.0 - deviation).mean())


def _explicitness(x_train, y_train, x_test, y_test) -> tuple[float, float]:
    classes = np.unique(y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression().fit(x_train, y_train)  # defaults, as published

    def mean_auc(x, y):
        seen = np.isin(y, classes)
        truth = label_binarize(y[seen], classes=classes)
        prob = model.predict_proba(x[seen])
        if len(classes) == 2:
            truth, prob = np.hstack([1 - truth, truth]), prob
        aucs = [roc_auc_score(truth[:, c], prob[:, c]) for c in range(len(classes)) if 0 < truth[:, c].sum() < len(truth)]
        return float(np.mean(aucs)) if aucs else 1.0

    return mean_auc(x_train, y_train), mean_auc(x_test, y_test)


@register_metric("modularity", needs="train_test", published={"num_train": 10000, "num_test": 5000}, records=("n_bins",),
                 tiny={"num_train": 500, "num_test": 250}, headline="modularity_score", title="modularity",
                 reference="Ridgeway & Mozer 2018", default=True, min_factors=2)
def modularity_explicitness(codes_train, factors_train, codes_test, factors_test, *, n_bins: int = 20) -> dict[str, float]:
    """Modularity and explicitness of codes against factors.

    Modularity: with m_if the mutual information of code i (in ``n_bins`` bins) and factor f
    and θ_i its largest, the mean over codes of 1 - sum_{f != best} m_if² / (θ_i² (k - 1)).
    Explicitness: the mean one-vs-rest ROC AUC of a logistic regression per factor from all
    codes, standardised with the training codes' mean and std.

    .. math:: \\mathrm{modularity} = 1 - \\frac{1}{d}\\sum_i \\frac{\\sum_j (m_{ij} - t_{ij})^2}{\\theta_i^2 (K - 1)}, \\quad \\theta_i = \\max_j m_{ij}, \\; t_{ij} = \\theta_i [j = \\arg\\max_{j'} m_{ij'}]

    Parameters
    ----------
    codes_train : array-like of float, shape (n_train, d)
    factors_train : array-like of int, shape (n_train, k)
    codes_test : array-like of float, shape (n_test, d)
    factors_test : array-like of int, shape (n_test, k)
    n_bins : int, default 20

    Returns
    -------
    dict
        ``{"modularity_score", "explicitness_score_train", "explicitness_score_test"}``, each in [0, 1].

    References
    ----------
    Ridgeway & Mozer, "Learning Deep Disentangled Embeddings with the F-Statistic Loss",
    NeurIPS 2018. disentanglement_lib: ``evaluation/metrics/modularity_explicitness.py``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> modularity_explicitness(codes, factors, codes, factors)
    {'modularity_score': 1.0, 'explicitness_score_train': 1.0, 'explicitness_score_test': 1.0}
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(codes_train, factors_train, codes_test, factors_test)
    n_bins = check_bins(n_bins)
    keep = informative_factors(factors_train, "modularity")
    require_factors(len(keep), "modularity")
    mi = mutual_info_matrix(discretize(codes_train, n_bins), factors_train[:, keep])
    standard_train, standard_test = standardize(codes_train, codes_test)
    scores = np.array([_explicitness(standard_train, factors_train[:, j], standard_test, factors_test[:, j]) for j in keep])
    return {"modularity_score": modularity_of(mi),
            "explicitness_score_train": float(scores[:, 0].mean()), "explicitness_score_test": float(scores[:, 1].mean())}
