"""SAP score: Kumar et al., "Variational Inference of Disentangled Latent Concepts
from Unlabeled Observations", ICLR 2018.

A score matrix S [d codes, k factors] says how well each single code predicts each
factor; the SAP score is the mean, over factors, of the gap between the two best
codes. Discrete factors (``sap_score``, disentanglement_lib's setting): S is the
test accuracy of LinearSVC(C=0.01, class_weight="balanced") fitted on one code.
Continuous factors (``sap_score_r2``, the ``_r2`` every continuous-factor key ends in): S is the squared correlation
(the R^2 of a linear regression on one code), computed on the test split.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import check_train_test, informative_factors, top_two_gap
from disentangle.metrics.registry import register_metric


def _accuracy_matrix(codes_train, factors_train, codes_test, factors_test, keep) -> np.ndarray:
    scores = np.zeros((codes_train.shape[1], len(keep)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(codes_train.shape[1]):
            for col, j in enumerate(keep):
                svc = LinearSVC(C=0.01, class_weight="balanced").fit(codes_train[:, [i]], factors_train[:, j])
                scores[i, col] = svc.score(codes_test[:, [i]], factors_test[:, j])
    return scores


def _r2_matrix(codes, factors, keep) -> np.ndarray:
    scores = np.zeros((codes.shape[1], len(keep)))
    for i in range(codes.shape[1]):
        for col, j in enumerate(keep):
            c = np.cov(codes[:, i], factors[:, j], ddof=1)
            if c[0, 0] > 1e-12:
                scores[i, col] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1])
    return scores


@register_metric("sap", needs="train_test", published={"num_train": 10000, "num_test": 5000}, tiny={"num_train": 500, "num_test": 250},
                 headline="sap_score", title="SAP", reference="Kumar et al. 2018", default=True, continuous=True)
def sap(codes_train, factors_train, codes_test, factors_test, *, continuous_factors: bool = False) -> dict[str, float]:
    """Separated attribute predictability: per factor, the gap between the two codes that
    predict it best on their own.

    The score matrix S [d, k] holds the test accuracy of ``LinearSVC(C=0.01,
    class_weight="balanced")`` fitted on one code (discrete factors), or the squared
    correlation of one code with the factor (``continuous_factors``); the score is the mean
    over factors of the gap between the two largest entries of its column.

    .. math:: \\mathrm{SAP} = \\frac{1}{K} \\sum_k \\big(S_{j^{(1)}_k k} - S_{j^{(2)}_k k}\\big), \\qquad S_{jk} = \\text{accuracy (or } R^2\\text{) of code } j \\text{ for factor } k

    Parameters
    ----------
    codes_train : array-like of float, shape (n_train, d)
    factors_train : array-like of int, shape (n_train, k)
    codes_test : array-like of float, shape (n_test, d)
    factors_test : array-like of int, shape (n_test, k)
    continuous_factors : bool, default False

    Returns
    -------
    dict
        ``{"sap_score": float}`` in [0, 1] (``{"sap_score_r2"}`` with ``continuous_factors``).

    References
    ----------
    Kumar, Sattigeri & Balakrishnan, "Variational Inference of Disentangled Latent Concepts
    from Unlabeled Observations", ICLR 2018. disentanglement_lib: ``evaluation/metrics/sap_score.py``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> round(sap(codes, factors, codes, factors)["sap_score"], 3)  # a linear SVM with C=0.01 on one code
    0.417
    >>> sap(np.c_[codes[:, 0], codes[:, 0]], factors, np.c_[codes[:, 0], codes[:, 0]], factors)
    {'sap_score': 0.0}
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(codes_train, factors_train, codes_test, factors_test,
                                                                            continuous_factors)
    if codes_train.shape[1] < 2:
        raise DisentangleError(f"SAP needs at least 2 code dimensions to take a gap, got {codes_train.shape[1]}")
    keep = informative_factors(factors_train, "SAP")
    if continuous_factors:
        return {"sap_score_r2": float(top_two_gap(_r2_matrix(codes_test, factors_test, keep)).mean())}
    return {"sap_score": float(top_two_gap(_accuracy_matrix(codes_train, factors_train, codes_test, factors_test, keep)).mean())}
