"""Downstream classification on a representation (Locatello et al. 2019, §5 "sample efficiency").

For each factor, a classifier learns the factor from the codes of the first n training
rows and is scored on every test row; n runs over label budgets (10, 100, 1,000, 10,000).
A representation that needs few labels for a high test accuracy is "sample efficient".

- :func:`downstream_task`: disentanglement_lib's ``downstream_task.py`` on arrays, with its
  two predictors (``utils.logistic_regression_cv``, ``utils.gradient_boosting_classifier``),
  registered as ``downstream_task_logistic_regression`` and ``downstream_task_boosted_trees``.
- :func:`reduced_downstream_task`: the same after removing, per factor of interest, the code
  dimensions the DCI importance ranks most informative for it (``reduced_downstream_task.py``).

Differences from the reference (both in the README): every budget is trained on the first n
rows of one coded training sample and scored on one test sample (the reference codes a new
sample per budget), and the boosted trees are seeded (the reference leaves ``random_state`` unset).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import check_train_test
from disentangle.metrics.registry import register_metric
from disentangle.base.validation import check_count, check_choice

PREDICTORS = ("logistic_regression", "gbt")
LABEL_BUDGETS = (10, 100, 1000, 10000)  # Locatello et al. 2019 §5


def make_predictor(predictor: str, seed: int = 0):
    """The reference's classifiers: ``LogisticRegressionCV(Cs=10, cv=KFold(5))`` or a default
    ``GradientBoostingClassifier`` (seeded here)."""
    check_choice(predictor, "predictor", PREDICTORS)
    if predictor == "logistic_regression":
        return LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5), scoring="accuracy")  # the reference's default, pinned
    return GradientBoostingClassifier(random_state=seed)


@contextlib.contextmanager
def quiet_fits():
    """Silence what the reference's classifiers say on every fit: lbfgs stopping at its 100
    iterations, and scikit-learn's notices of future defaults (the settings used are pinned).
    Entered around a whole pool of fitting threads: the warning filters are process-wide."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _fit_score(predictor: str, seed: int, x_train, y_train, x_test, y_test) -> tuple[float, float]:
    model = make_predictor(predictor, seed).fit(x_train, y_train)
    return float(np.mean(model.predict(x_train) == y_train)), float(np.mean(model.predict(x_test) == y_test))


def factor_accuracies(codes_train, factors_train, codes_test, factors_test, predictor: str = "logistic_regression",
                      seed: int = 0, n_jobs: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(train accuracy [k], test accuracy [k]): one fresh classifier per factor, fitted on the
    training rows (each its own seeded model)."""
    return budget_accuracies(codes_train, factors_train, codes_test, factors_test, (len(codes_train),), predictor, seed, n_jobs)[
        len(codes_train)]


def budget_accuracies(codes_train, factors_train, codes_test, factors_test, budgets, predictor: str = "logistic_regression",
                      seed: int = 0, n_jobs: int = 2) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{n: (train accuracy [k], test accuracy [k])} for classifiers fitted on the first n training rows.

    Every (budget, factor) fit goes to one pool of threads, the costliest first (rows x classes: a
    K-class boosted classifier grows K trees per stage), so the small budgets fill the gaps the
    large ones leave and both cores stay busy; each fit has its own seed, so the order changes nothing.
    """
    k = factors_train.shape[1]
    for n in budgets:
        require_two_classes(factors_train[:n])
    tasks = sorted(((n, j) for n in budgets for j in range(k)), key=lambda t: -t[0] * len(np.unique(factors_train[:t[0], t[1]])))
    with quiet_fits():
        fits = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_fit_score)(predictor, seed, codes_train[:n], factors_train[:n, j], codes_test, factors_test[:, j]) for n, j in tasks)
    done = dict(zip(tasks, fits))
    return {n: (np.array([done[(n, j)][0] for j in range(k)]), np.array([done[(n, j)][1] for j in range(k)])) for n in budgets}


def require_two_classes(factors: np.ndarray) -> None:
    """A one-line error when a factor column of these training rows holds a single class (no classifier fits it)."""
    for j in range(factors.shape[1]):
        if len(np.unique(factors[:, j])) < 2:
            raise DisentangleError(f"factor {j} has a single class in the {len(factors)} training rows: a classifier needs two or more "
                                   "(a budget of n labels trains on the first n rows: shuffle sorted rows, or use more)")


def check_label_budgets(budgets, option: str = "label_budgets", available: int | None = None) -> tuple[int, ...]:
    """``budgets`` (one count or several) as a checked tuple of label budgets, each at most ``available`` rows;
    errors name ``option``."""
    sizes = (budgets,) if np.isscalar(budgets) else tuple(budgets)
    if not sizes:
        raise DisentangleError(f"{option} must name at least one label budget, got none")
    sizes = tuple(check_count(n, option) for n in sizes)
    if available is not None and max(sizes) > available:
        raise DisentangleError(f"{option} {max(sizes)} is larger than the {available} training rows given")
    return sizes


def downstream_task(codes_train, factors_train, codes_test, factors_test, *, label_budgets=LABEL_BUDGETS,
                    predictor: str = "logistic_regression", seed: int = 0, n_jobs: int = 2) -> dict[str, float]:
    """Per-factor accuracy of a classifier trained on n labelled codes, for each budget n.

    .. math:: \\mathrm{acc}_n = \\frac{1}{K} \\sum_k \\Pr_{\\mathrm{test}}\\big[f^{(n)}_k(z) = v_k\\big], \\qquad f^{(n)}_k \\text{ fitted on the first } n \\text{ training codes}

    Parameters
    ----------
    codes_train : array-like of float, shape (n_train, d)
    factors_train : array-like of int, shape (n_train, k)
        The first ``n`` rows train the classifiers of budget ``n``.
    codes_test : array-like of float, shape (n_test, d)
    factors_test : array-like of int, shape (n_test, k)
        Every row scores every budget.
    label_budgets : int or sequence of int, default (10, 100, 1000, 10000)
        Label budgets, each at most ``n_train`` (the reference's ``num_train``; renamed because the
        runner's ``num_train`` is the number of coded training rows).
    predictor : {"logistic_regression", "gbt"}, default "logistic_regression"
        ``LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))`` or
        ``GradientBoostingClassifier()`` (seeded with ``seed``), as disentanglement_lib's
        ``logistic_regression_cv`` and ``gradient_boosting_classifier``.
    seed : int, default 0
    n_jobs : int, default 2
        Factors fitted in parallel threads.

    Returns
    -------
    dict
        For each budget ``n``: ``"{n}:mean_train_accuracy"``, ``"{n}:mean_test_accuracy"``,
        ``"{n}:min_train_accuracy"``, ``"{n}:min_test_accuracy"`` and per factor ``i``
        ``"{n}:train_accuracy_factor_{i}"``, ``"{n}:test_accuracy_factor_{i}"`` (the reference's keys).

    References
    ----------
    Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of
    Disentangled Representations", ICML 2019, §5. disentanglement_lib:
    ``evaluation/metrics/downstream_task.py``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 3, (400, 2))
    >>> codes = factors + 0.1 * rng.standard_normal((400, 2))  # each factor in its own code
    >>> scores = downstream_task(codes[:200], factors[:200], codes[200:], factors[200:], label_budgets=(50, 200), predictor="gbt")
    >>> scores["50:mean_test_accuracy"], scores["200:min_test_accuracy"]
    (1.0, 1.0)
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(codes_train, factors_train, codes_test, factors_test)
    check_choice(predictor, "predictor", PREDICTORS)
    scores: dict[str, float] = {}
    budgets = check_label_budgets(label_budgets, available=len(codes_train))
    accuracies = budget_accuracies(codes_train, factors_train, codes_test, factors_test, budgets, predictor, seed, n_jobs)
    for n in budgets:
        train, test = accuracies[n]
        scores.update({f"{n}:mean_train_accuracy": float(train.mean()), f"{n}:mean_test_accuracy": float(test.mean()),
                       f"{n}:min_train_accuracy": float(train.min()), f"{n}:min_test_accuracy": float(test.min())})
        for i in range(len(train)):
            scores[f"{n}:train_accuracy_factor_{i}"] = float(train[i])
            scores[f"{n}:test_accuracy_factor_{i}"] = float(test[i])
    return scores


@register_metric("reduced_downstream_task", needs="train_test",
                 published={"num_train": 100, "num_test": 100, "label_budgets": [100]}, records=("num_factors_to_remove", "predictor"),
                 headline="100:mean_test_accuracy_factor_of_interest", title="Reduced downstream accuracy",
                 reference="disentanglement_lib", family="Reduced downstream", min_latents=1)
def reduced_downstream_task(codes_train, factors_train, codes_test, factors_test, *, label_budgets=(100,),
                            num_factors_to_remove: int = 1, predictor: str = "gbt", seed: int = 0,
                            n_jobs: int = 2) -> dict[str, float]:
    """Downstream accuracy after removing each factor's most informative code dimensions.

    For each factor of interest f, the dimension with the largest DCI importance for f
    (a gradient-boosted classifier's feature importances, as DCI computes them) is removed,
    ``num_factors_to_remove`` times; every factor is then predicted from what is left.
    A disentangled code keeps f in few dimensions, so f's accuracy falls after the removal
    while the other factors' does not.

    .. math:: \\mathrm{acc}^{\\setminus f}_{n,i} = \\Pr_{\\mathrm{test}}\\big[f^{(n)}_i(z_{\\setminus J_f}) = v_i\\big], \\qquad J_f = \\text{the } r \\text{ codes of largest DCI importance for } v_f

    Parameters
    ----------
    codes_train, factors_train, codes_test, factors_test
        As :func:`downstream_task`; ``d > num_factors_to_remove``.
    label_budgets : int or sequence of int, default (100,)
        Label budgets (the first n training rows; the reference's ``num_train``).
    num_factors_to_remove : int, default 1
    predictor : {"logistic_regression", "gbt"}, default "gbt"
    seed, n_jobs
        As :func:`downstream_task`.

    Returns
    -------
    dict
        The reference's keys, for each budget n, factor i and factor of interest f:
        ``"{n}:train_accuracy_{i}_factor_of_interest_{f}"`` and ``"{n}:test_accuracy_{i}_factor_of_interest_{f}"``;
        and two summaries: ``"{n}:mean_test_accuracy_factor_of_interest"`` (f predicted without its
        top dimensions: low is disentangled) and ``"{n}:mean_test_accuracy_other_factors"``.

    References
    ----------
    disentanglement_lib: ``evaluation/metrics/reduced_downstream_task.py`` (with
    ``factorwise_dci`` importance).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, (300, 2))
    >>> codes = np.hstack([factors, rng.standard_normal((300, 1))])  # factor j in code j, one noise code
    >>> scores = reduced_downstream_task(codes[:200], factors[:200], codes[200:], factors[200:], label_budgets=200)
    >>> scores["200:test_accuracy_1_factor_of_interest_0"], scores["200:mean_test_accuracy_factor_of_interest"] < 0.7
    (1.0, True)
    """
    from disentangle.metrics._dci import importance_matrix

    codes_train, factors_train, codes_test, factors_test = check_train_test(codes_train, factors_train, codes_test, factors_test)
    check_choice(predictor, "predictor", PREDICTORS)
    remove = check_count(num_factors_to_remove, "num_factors_to_remove")
    if remove >= codes_train.shape[1]:
        raise DisentangleError(f"num_factors_to_remove {remove} leaves no code dimension of the {codes_train.shape[1]}")
    k = factors_train.shape[1]
    scores: dict[str, float] = {}
    for n in check_label_budgets(label_budgets, available=len(codes_train)):
        x_train, y_train = codes_train[:n], factors_train[:n]
        of_interest, others = [], []
        for f in range(k):
            keep = np.arange(codes_train.shape[1])
            for _ in range(remove):
                importance = importance_matrix(x_train[:, keep], y_train[:, [f]], codes_test[:, keep], factors_test[:, [f]],
                                               "gbt", seed, n_jobs=1)[0][:, 0]
                keep = np.delete(keep, int(np.argmax(importance)))
            train, test = factor_accuracies(x_train[:, keep], y_train, codes_test[:, keep], factors_test, predictor, seed, n_jobs)
            for i in range(k):
                scores[f"{n}:train_accuracy_{i}_factor_of_interest_{f}"] = float(train[i])
                scores[f"{n}:test_accuracy_{i}_factor_of_interest_{f}"] = float(test[i])
            of_interest.append(test[f])
            others.extend(np.delete(test, f))
        scores[f"{n}:mean_test_accuracy_factor_of_interest"] = float(np.mean(of_interest))
        scores[f"{n}:mean_test_accuracy_other_factors"] = float(np.mean(others)) if others else float("nan")
    return scores


def _registered(predictor: str, name: str):
    def downstream(codes_train, factors_train, codes_test, factors_test, *, label_budgets: list = LABEL_BUDGETS, seed: int = 0,
                   n_jobs: int = 2) -> dict[str, float]:
        return downstream_task(codes_train, factors_train, codes_test, factors_test, label_budgets=label_budgets,
                               predictor=predictor, seed=seed, n_jobs=n_jobs)

    downstream.__doc__ = f""":func:`downstream_task` with ``predictor="{predictor}"``, as the runner calls it.

    .. math:: \\mathrm{{acc}}_n = \\frac{{1}}{{K}} \\sum_k \\Pr_{{\\mathrm{{test}}}}\\big[f^{{(n)}}_k(z) = v_k\\big]

    Parameters
    ----------
    codes_train, factors_train, codes_test, factors_test
        The runner's coded samples: ``num_train`` rows (at least the largest budget) and ``num_test``.
    label_budgets, seed, n_jobs
        As :func:`downstream_task`.

    Returns
    -------
    dict
        :func:`downstream_task`'s keys.

    References
    ----------
    Locatello et al. 2019, §5; disentanglement_lib ``evaluation/metrics/downstream_task.py``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.repeat([[0, 1], [1, 0]], 50, axis=0)
    >>> {name}(factors * 1.0, factors, factors * 1.0, factors, label_budgets=[100])["100:mean_test_accuracy"]
    1.0
    """
    return downstream


_PROFILES = {"published": {"num_train": 10000, "num_test": 5000, "label_budgets": list(LABEL_BUDGETS)},
             "fast": {"num_train": 1000, "num_test": 1000, "label_budgets": [10, 100, 1000]},
             "tiny": {"num_train": 100, "num_test": 100, "label_budgets": [10, 100]}}

downstream_task_logistic_regression = register_metric(
    "downstream_task_logistic_regression", needs="train_test", published=_PROFILES["published"], fast=_PROFILES["fast"],
    tiny=_PROFILES["tiny"], headline="100:mean_test_accuracy", title="Downstream accuracy, 100 labels (LR)",
    reference="Locatello et al. 2019", family="Downstream (logistic regression)", min_latents=1)(_registered("logistic_regression", "downstream_task_logistic_regression"))
downstream_task_boosted_trees = register_metric(
    "downstream_task_boosted_trees", needs="train_test", published=_PROFILES["published"], fast=_PROFILES["fast"],
    tiny=_PROFILES["tiny"], headline="100:mean_test_accuracy", title="Downstream accuracy, 100 labels (GBT)",
    reference="Locatello et al. 2019", family="Downstream (boosted trees)", min_latents=1)(_registered("gbt", "downstream_task_boosted_trees"))
