"""Explicitness (E) of the DCI-ES framework (Eastwood, Nicolicioiu, von Kügelgen, Kekić,
Träuble, Dittadi & Schölkopf, ICLR 2023): how little probe capacity it takes to read each
factor off the codes.

For each factor, probes of increasing capacity (random forests of growing ``max_depth``, the
paper's tree probe) are fit on the training codes; their test losses form the factor's
loss-capacity curve, made non-increasing (at each capacity: the lowest loss so far). The area
between the curve and its lowest loss (AULCC, trapezoid rule) is compared with the triangle
under a straight fall from the baseline loss to zero over the same capacity range:

    E_j = 1 - AULCC_j / (0.5 * (capacity_max - capacity_min) * baseline_loss_j)

so E_j = 1 when the smallest probe already reaches the best loss, and falls as more capacity
is needed. As in the authors' code (andreinicolicioiu/DCI-ES, ``metrics/explitcitness.py``), E is
not clipped (a curve that stays above the triangle gives E < 0). Loss is 1 - accuracy and the
baseline 1 - 1/K (chance for a factor with K values) for class factors; 1 - R^2 and baseline 1 with
``continuous_factors`` (regressor probes), as the authors do for ordinal factors.

E is measured against each curve's own best loss: it says how easily the information that is
there can be read, not how much is there. Read it beside informativeness (returned too: the best
probe's test score): codes that hold nothing give a flat curve and E near 1. The paper's second
new measure, size (S), is not implemented here.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from disentangle.errors import DisentangleError
from disentangle.metrics._utils import check_train_test, informative_factors, require_factors
from disentangle.metrics.registry import register_metric

PAPER_DEPTHS = (1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32)  # the authors' random-forest capacities


def area_explicitness(capacities, losses, baseline_loss: float) -> float:
    """Explicitness of one loss-capacity curve.

    Parameters
    ----------
    capacities : array [m]
        Increasing probe capacities (m >= 2).
    losses : array [m]
        Test loss of the probe at each capacity; made non-increasing here (lowest so far).
    baseline_loss : float
        Loss of a probe that ignores the codes (> 0).

    Returns
    -------
    float
        ``1 - 2 * AULCC / ((capacities[-1] - capacities[0]) * baseline_loss)``.
    """
    capacities, losses = np.asarray(capacities, dtype=np.float64), np.minimum.accumulate(np.asarray(losses, dtype=np.float64))
    if capacities.ndim != 1 or len(capacities) < 2 or len(losses) != len(capacities) or np.any(np.diff(capacities) <= 0):
        raise DisentangleError(f"capacities must be >= 2 increasing values matching the losses, got {capacities.tolist()}")
    if not baseline_loss > 0:
        raise DisentangleError(f"baseline_loss must be positive, got {baseline_loss!r}")
    above_best = losses - losses.min()
    area = float(np.sum(0.5 * (above_best[:-1] + above_best[1:]) * np.diff(capacities)))
    return 1.0 - 2.0 * area / ((capacities[-1] - capacities[0]) * baseline_loss)


@register_metric("dci_es", needs="train_test",
                 published={"num_train": 10000, "num_test": 5000, "depths": list(PAPER_DEPTHS), "n_estimators": 100},
                 fast={"depths": [1, 2, 4, 8, 16, 32], "n_estimators": 20}, tiny={"num_train": 500, "num_test": 250},
                 headline="explicitness", title="DCI-ES explicitness", reference="Eastwood et al. 2023", continuous=True)
def dci_es_explicitness(codes_train, factors_train, codes_test, factors_test, *, depths=PAPER_DEPTHS, n_estimators: int = 100,
                        seed: int = 0, n_jobs: int = 2, continuous_factors: bool = False) -> dict:
    """DCI-ES explicitness of codes [n, d] for factors [n, k], from random-forest probes of growing depth.

    Returns ``explicitness`` (mean over factors with more than one value),
    ``explicitness_factor<j>`` for each such factor j (column of ``factors``) and
    ``informativeness_test`` (mean over factors of the best probe's test accuracy);
    ``continuous_factors``: regressor probes, keys ``explicitness_r2``, ``explicitness_r2_factor<j>``,
    ``informativeness_test_r2``.
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(codes_train, factors_train, codes_test, factors_test,
                                                                            continuous_factors)
    depths = list(depths)
    if len(depths) < 2 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in depths) or sorted(set(depths)) != depths:
        raise DisentangleError(f"depths must be two or more increasing positive integers, got {depths!r}")
    keep = informative_factors(factors_train, "dci_es")
    require_factors(len(keep), "dci_es", minimum=1)
    forest = RandomForestRegressor if continuous_factors else RandomForestClassifier
    per_factor, best_scores = {}, []
    for j in keep:
        losses = []
        for depth in depths:
            probe = forest(n_estimators=n_estimators, max_depth=depth, random_state=seed, n_jobs=n_jobs)
            probe.fit(codes_train, factors_train[:, j])
            losses.append(1.0 - probe.score(codes_test, factors_test[:, j]))  # 1 - accuracy, or 1 - R^2
        baseline = 1.0 if continuous_factors else 1.0 - 1.0 / len(np.unique(factors_train[:, j]))
        per_factor[int(j)] = area_explicitness(depths, losses, baseline)
        best_scores.append(1.0 - min(losses))
    suffix = "_r2" if continuous_factors else ""
    return {f"explicitness{suffix}": float(np.mean(list(per_factor.values()))),
            **{f"explicitness{suffix}_factor{j}": float(e) for j, e in per_factor.items()},
            f"informativeness_test{suffix}": float(np.mean(best_scores))}
