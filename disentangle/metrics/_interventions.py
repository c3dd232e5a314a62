"""Downstream predictors under interventions on the data's factors: fairness (Locatello et al.
2019b) and strong generalisation under covariate shift (disentanglement_lib's
``strong_downstream_task.py``). Both need the data set, not only coded arrays: they draw
observations for factor values they set themselves.

Differences from the reference (in the README): fairness codes each intervened batch of a
sensitive factor once and lets every target's classifier predict it (the reference draws a
new batch for every target), and the strong task draws its interventions from the seeded
``rng`` (the reference from numpy's global random state).
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import require_factors
from disentangle.metrics._downstream import PREDICTORS, check_label_budgets, factor_accuracies, make_predictor, quiet_fits, require_two_classes
from disentangle.metrics.registry import register_metric
from disentangle.metrics.sampling import represent_factors, represent_sample
from disentangle.base.validation import check_choice, check_count


def inter_group_fairness(counts) -> tuple[float, float]:
    """Mean and largest total-variation distance between each sensitive class's distribution of
    predictions and the overall one.

    Parameters
    ----------
    counts : array-like of int, shape (predicted classes, sensitive classes)
        How often each class was predicted under each value of the sensitive factor.

    Returns
    -------
    (mean, max) : tuple of float
        The mean is weighted by each sensitive class's number of predictions.

    Examples
    --------
    >>> mean, largest = inter_group_fairness([[0, 100], [100, 100]])  # TV 1/3 and 1/6, weights 1/3 and 2/3
    >>> round(mean * 9, 12), round(largest * 3, 12)
    (2.0, 1.0)
    """
    counts = np.asarray(counts, dtype=np.float64)
    per_class = counts.sum(0)
    if (per_class <= 0).any():
        raise DisentangleError("every sensitive class needs at least one prediction")
    overall = counts.sum(1) / counts.sum()
    distances = np.abs(counts / per_class - overall[:, None]).sum(0) / 2
    return float(distances @ per_class / per_class.sum()), float(distances.max())


def fairness_summary(matrix, prefix: str) -> dict[str, float]:
    """The reference's keys for a [target, sensitive] matrix (diagonal ignored): every pair,
    each target's mean / max over sensitive factors, each sensitive factor's mean / max over
    targets, and the eight mean / max combinations (``"{prefix}:mean_pred:mean_sens"`` is the score
    of Locatello et al. 2019b §4)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    k = matrix.shape[0]
    off = ~np.eye(k, dtype=bool)
    result = {f"{prefix}:pred{i}:sens{j}": float(matrix[i, j]) for i in range(k) for j in range(k) if i != j}
    rows = [matrix[i, off[i]] for i in range(k)]
    columns = [matrix[off[:, j], j] for j in range(k)]
    for i, row in enumerate(rows):
        result[f"{prefix}:pred{i}:mean_sens"], result[f"{prefix}:pred{i}:max_sens"] = float(row.mean()), float(row.max())
    for j, column in enumerate(columns):
        result[f"{prefix}:sens{j}:mean_pred"], result[f"{prefix}:sens{j}:max_pred"] = float(column.mean()), float(column.max())
    for outer, outer_values in (("sens", columns), ("pred", rows)):
        inner = "pred" if outer == "sens" else "sens"
        means, maxes = [v.mean() for v in outer_values], [v.max() for v in outer_values]
        result[f"{prefix}:mean_{outer}:mean_{inner}"] = float(np.mean(means))
        result[f"{prefix}:mean_{outer}:max_{inner}"] = float(np.mean(maxes))
        result[f"{prefix}:max_{outer}:mean_{inner}"] = float(np.max(means))
        result[f"{prefix}:max_{outer}:max_{inner}"] = float(np.max(maxes))
    return result


@register_metric("fairness", needs="sampling", published={}, records=("num_train", "num_test_points_per_class", "predictor"),
                 fast={"num_train": 1000, "num_test_points_per_class": 50}, tiny={"num_train": 100, "num_test_points_per_class": 10},
                 headline="mean_fairness:mean_pred:mean_sens", title="Unfairness", reference="Locatello et al. 2019b")
def fairness(dataset, represent, rng: np.random.Generator, *, num_train: int = 10000, num_test_points_per_class: int = 100,
             predictor: str = "gbt", n_jobs: int = 2) -> dict[str, float]:
    """Unfairness of downstream classifiers: how much a classifier's predictions of one factor
    change when another ("sensitive") factor is intervened on.

    One classifier per target factor i learns it from ``num_train`` coded observations. For each
    sensitive factor j, ``num_test_points_per_class`` factor rows are drawn once; for each
    value c of j, j is set to c in all of them, the observations are coded and every target's
    classifier predicts. Unfairness of (i, j): the total variation between the prediction
    distribution under each value of j and the overall one, averaged (``mean_fairness``) or
    maximised (``max_fairness``) over the values of j. 0 is perfectly fair.

    .. math:: \\mathrm{unfairness}_{ij} = \\frac{1}{|V_j|}\\sum_{c \\in V_j} \\mathrm{TV}\\big(P(\\hat v_i \\mid \\mathrm{do}(v_j = c)),\\, P(\\hat v_i)\\big)

    Parameters
    ----------
    dataset : GroundTruthDataset
        Two or more factors.
    represent : callable
        ``represent(observations) -> codes [n, d]``.
    rng : numpy.random.Generator
    num_train : int, default 10000
    num_test_points_per_class : int, default 100
    predictor : {"gbt", "logistic_regression"}, default "gbt"
        As :func:`disentangle.metrics.downstream_task` (the published study used GBT).
    n_jobs : int, default 2

    Returns
    -------
    dict
        :func:`fairness_summary` of the mean and of the max matrix, prefixed
        ``mean_fairness`` and ``max_fairness``; the paper's score is ``mean_fairness:mean_pred:mean_sens``.

    References
    ----------
    Locatello et al., "On the Fairness of Disentangled Representations", NeurIPS 2019, §4.
    disentanglement_lib: ``evaluation/metrics/fairness.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.datasets.base import FactorsAsObservations
    >>> grid = FactorsAsObservations((2, 3))  # the observation is the factor row
    >>> reads_factors = lambda observations: observations.reshape(len(observations), -1)
    >>> scores = fairness(grid, reads_factors, np.random.default_rng(0), num_train=200, num_test_points_per_class=20)
    >>> scores["mean_fairness:mean_pred:mean_sens"]  # each prediction ignores the other factor
    0.0
    """
    k = dataset.num_factors
    require_factors(k, "fairness")
    check_choice(predictor, "predictor", PREDICTORS)
    per_class = check_count(num_test_points_per_class, "num_test_points_per_class")
    factors_train, codes_train = represent_sample(dataset, represent, check_count(num_train, "num_train"), rng)
    require_two_classes(factors_train)
    with quiet_fits():
        models = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(make_predictor(predictor, i).fit)(codes_train, factors_train[:, i]) for i in range(k))
    sizes = dataset.factor_sizes
    mean_matrix, max_matrix = np.zeros((k, k)), np.zeros((k, k))
    for j in range(k):
        original = dataset.sample_factors(per_class, rng)
        counts = np.zeros((k, max(sizes), sizes[j]), dtype=np.int64)  # [target, predicted class, sensitive class]
        for c in range(sizes[j]):
            intervened = original.copy()
            intervened[:, j] = c
            codes = represent_factors(dataset, represent, intervened, rng)
            for i in range(k):
                if i != j:
                    counts[i, :, c] = np.bincount(models[i].predict(codes), minlength=max(sizes))[:max(sizes)]
        for i in range(k):
            if i != j:
                mean_matrix[i, j], max_matrix[i, j] = inter_group_fairness(counts[i, :sizes[i]])
    return {**fairness_summary(mean_matrix, "mean_fairness"), **fairness_summary(max_matrix, "max_fairness")}


def intervene(factors_train: np.ndarray, factors_test: np.ndarray, target: int, factor_sizes, rng: np.random.Generator):
    """A covariate shift for the strong downstream task: one factor other than ``target`` is set
    to a single value in every training row and to any *other* value in every test row.

    Returns
    -------
    (factors_train, factors_test, factor, value)
        Copies of the inputs with the intervention applied; the factor and training value used.
    """
    candidates = [j for j in range(len(factor_sizes)) if j != target and factor_sizes[j] > 1]
    if not candidates:
        raise DisentangleError(f"no factor other than {target} has two or more values to intervene on")
    factor = int(rng.choice(candidates))
    value = int(rng.integers(factor_sizes[factor]))
    others = np.delete(np.arange(factor_sizes[factor]), value)
    factors_train, factors_test = factors_train.copy(), factors_test.copy()
    factors_train[:, factor] = value
    factors_test[:, factor] = rng.choice(others, size=len(factors_test))
    return factors_train, factors_test, factor, value


@register_metric("strong_downstream_task", needs="sampling",
                 published={"num_train": [1000]}, records=("num_test", "n_experiment", "predictor"),
                 fast={"num_test": 500, "n_experiment": 1}, tiny={"num_train": [100], "num_test": 100, "n_experiment": 1},
                 headline="1000:strong_generalization_gap", title="Strong generalisation gap", reference="disentanglement_lib",
                 family="Strong downstream", min_latents=1)
def strong_downstream_task(dataset, represent, rng: np.random.Generator, *, num_train: list = (1000,), num_test: int = 1000,
                           n_experiment: int = 2, predictor: str = "gbt", n_jobs: int = 2) -> dict[str, float]:
    """Downstream accuracy under covariate shift: trained where one other factor is fixed,
    tested where it takes every other value.

    For each budget n: classifiers on n random observations, scored on ``num_test`` others
    (``mean_*_accuracy``); then, ``n_experiment`` times per target factor i, :func:`intervene`
    on another factor, train the classifier of i on the shifted training rows and score it on
    the shifted test rows (``mean_strong_*_accuracy``). The gap is
    ``1 - mean_strong_test_accuracy / mean_test_accuracy``: 0 when the shift costs nothing.

    .. math:: \\mathrm{gap}_n = 1 - \\frac{\\overline{\\mathrm{acc}}^{\\,\\mathrm{shift}}_{n,\\mathrm{test}}}{\\overline{\\mathrm{acc}}_{n,\\mathrm{test}}}

    Parameters
    ----------
    dataset : GroundTruthDataset
        Two or more factors.
    represent : callable
    rng : numpy.random.Generator
        Draws the samples and the interventions.
    num_train : sequence of int, default (1000,)
    num_test, n_experiment : int, default 1000, 2
    predictor : {"gbt", "logistic_regression"}, default "gbt"
    n_jobs : int, default 2

    Returns
    -------
    dict
        For each budget n: ``"{n}:mean_train_accuracy"``, ``"{n}:mean_test_accuracy"``,
        ``"{n}:mean_strong_train_accuracy"``, ``"{n}:mean_strong_test_accuracy"``,
        ``"{n}:strong_generalization_gap"`` (the reference's keys).

    References
    ----------
    disentanglement_lib: ``evaluation/metrics/strong_downstream_task.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.datasets.base import FactorsAsObservations
    >>> grid = FactorsAsObservations((2, 3))
    >>> reads_factors = lambda observations: observations.reshape(len(observations), -1)
    >>> scores = strong_downstream_task(grid, reads_factors, np.random.default_rng(0), num_train=[100], num_test=50, n_experiment=1)
    >>> scores["100:mean_strong_test_accuracy"], scores["100:strong_generalization_gap"]  # a shift the code ignores costs nothing
    (1.0, 0.0)
    """
    k = dataset.num_factors
    require_factors(k, "strong_downstream_task")
    check_choice(predictor, "predictor", PREDICTORS)
    num_test, n_experiment = check_count(num_test, "num_test"), check_count(n_experiment, "n_experiment")
    scores: dict[str, float] = {}
    for n in check_label_budgets(num_train, "num_train"):
        f_train, f_test = dataset.sample_factors(n, rng), dataset.sample_factors(num_test, rng)
        c_train, c_test = represent_factors(dataset, represent, f_train, rng), represent_factors(dataset, represent, f_test, rng)
        train, test = factor_accuracies(c_train, f_train, c_test, f_test, predictor, 0, n_jobs)
        strong_train, strong_test = [], []
        for i in range(k):
            for _ in range(n_experiment):
                shifted_train, shifted_test, _, _ = intervene(f_train, f_test, i, dataset.factor_sizes, rng)
                x_train = represent_factors(dataset, represent, shifted_train, rng)
                x_test = represent_factors(dataset, represent, shifted_test, rng)
                a_train, a_test = factor_accuracies(x_train, shifted_train[:, [i]], x_test, shifted_test[:, [i]], predictor, 0, 1)
                strong_train.append(a_train[0])
                strong_test.append(a_test[0])
        scores[f"{n}:mean_train_accuracy"], scores[f"{n}:mean_test_accuracy"] = float(train.mean()), float(test.mean())
        scores[f"{n}:mean_strong_train_accuracy"] = float(np.mean(strong_train))
        scores[f"{n}:mean_strong_test_accuracy"] = float(np.mean(strong_test))
        scores[f"{n}:strong_generalization_gap"] = 1.0 - scores[f"{n}:mean_strong_test_accuracy"] / scores[f"{n}:mean_test_accuracy"]
    return scores
