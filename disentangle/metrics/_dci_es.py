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

from disentangle.base.errors import DisentangleError
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
                 published={"num_train": 10000, "num_test": 5000, "depths": list(PAPER_DEPTHS)}, records=("n_estimators",),
                 fast={"depths": [1, 2, 4, 8, 16, 32], "n_estimators": 20}, tiny={"num_train": 500, "num_test": 250},
                 headline="explicitness", title="DCI-ES explicitness", reference="Eastwood et al. 2023", continuous=True, min_latents=1)
def dci_es_explicitness(codes_train, factors_train, codes_test, factors_test, *, depths=PAPER_DEPTHS, n_estimators: int = 100,
                        seed: int = 0, n_jobs: int = 2, continuous_factors: bool = False) -> dict:
    """DCI-ES explicitness: how simple a probe recovers each factor from the codes.

    Random forests of growing ``depths`` predict each factor from all codes; their test losses
    form the factor's loss-capacity curve (made non-increasing). E_j = 1 - AULCC_j / (0.5 *
    capacity range * baseline loss_j): 1 when the smallest probe already reaches the best loss,
    not clipped below. ``explicitness`` is the mean over factors with more than one value. It is relative
    to the best loss the probes reach, as the paper defines it: codes that tell nothing about a factor reach
    their (chance) loss with the smallest probe and score 1; read it beside ``informativeness_test``.
    (The size, S, of DCI-ES is not implemented.)

    .. math:: E = 1 - \\frac{\\mathrm{AULCC}}{\\mathrm{AULCC}_{\\mathrm{baseline}}}

    Parameters
    ----------
    codes_train : array-like of float, shape (n_train, d)
    factors_train : array-like of int, shape (n_train, k)
    codes_test : array-like of float, shape (n_test, d)
    factors_test : array-like of int, shape (n_test, k)
    depths : sequence of int, default PAPER_DEPTHS (the authors' 12 depths, 1 to 32)
        Two or more increasing depths.
    n_estimators : int, default 100
    seed : int, default 0
    n_jobs : int, default 2
    continuous_factors : bool, default False
        Regressor probes, keys with ``_r2``.

    Returns
    -------
    dict
        ``{"explicitness", "explicitness_factor<j>" for each factor j, "informativeness_test"}``,
        each in [0, 1].

    See Also
    --------
    dci : disentanglement, completeness and informativeness (DCI).

    References
    ----------
    Eastwood, Nicolicioiu, von Kügelgen, Kekić, Träuble, Dittadi & Schölkopf, "DCI-ES: An
    Extended Disentanglement Framework with Connections to Identifiability", ICLR 2023
    (not in disentanglement_lib).

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)  # a full 3 x 4 grid, 300 rows
    >>> codes = factors.astype(float)  # one code per factor
    >>> scores = dci_es_explicitness(codes, factors, codes, factors, depths=[1, 2, 4], n_estimators=5)
    >>> round(scores["explicitness"], 3), scores["informativeness_test"]
    (0.681, 1.0)
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
