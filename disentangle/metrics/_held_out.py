"""Out-of-distribution generalisation (Schott et al., ICLR 2022, "Visual Representation Learning
Does Not Generalize Strongly Within the Same Domain").

A run trained under ``holdout`` never saw a region of its factor grid
(:mod:`disentangle.datasets.holdout`). A readout learns the factors, normalised to [0, 1], from
the codes of training-region observations; its R² is then measured on fresh training-region
observations (in distribution) and on held-out ones. A representation that captured how each
factor acts keeps its R² on the held-out region; the paper finds that none of 17 models does.
R² is the paper's (``evaluate_model.py``, ``RSquared``): 1 − MSE / the factor's variance over the
whole grid, so it is comparable across regions; on a region that varies less than the grid, a
readout that only predicts the training mean already scores above 0 there.
"""

from __future__ import annotations

import numpy as np

from disentangle.base.errors import DisentangleError
from disentangle.base.factor_classes import normalised_factors, normalised_values
from disentangle.metrics._utils import check_codes
from disentangle.metrics.registry import register_metric
from disentangle.metrics.sampling import represent_in_batches
from disentangle.base.validation import check_choice, check_count

REGRESSORS = ("mlp", "linear")


def make_regressor(regressor: str, seed: int = 0):
    """The readout: an MLP (two hidden layers of 256, early stopping) or least squares, on standardised codes."""
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_choice(regressor, "regressor", REGRESSORS)
    model = (MLPRegressor(hidden_layer_sizes=(256, 256), early_stopping=True, max_iter=200, random_state=seed)
             if regressor == "mlp" else LinearRegression())
    return make_pipeline(StandardScaler(), model)


def grid_variances(factor_sizes) -> np.ndarray:
    """Each factor's variance over the whole grid, its classes normalised to [0, 1]: [k]
    (size s: (s + 1) / (12 (s − 1)); 0 for a one-class factor)."""
    return np.array([np.var(normalised_values(s)) for s in factor_sizes])


def readout_r2(codes_train, targets_train, codes_tests, targets_tests, variances, *, regressor: str = "mlp",
               seed: int = 0) -> list[np.ndarray]:
    """R² per factor of one readout fitted on (codes_train, targets_train), on each test set.

    .. math:: R^2_j = 1 - \\frac{\\frac{1}{n}\\sum_i (\\hat v_{ij} - v_{ij})^2}{\\operatorname{Var}_{\\mathrm{grid}}(v_j)}

    Parameters
    ----------
    codes_train : array-like of float, shape (n_train, d)
    targets_train : array-like of float, shape (n_train, k)
        Factor values normalised to [0, 1].
    codes_tests, targets_tests : sequences of arrays, shapes (n_t, d) and (n_t, k)
        The sets to score the readout on.
    variances : array-like of float, shape (k,)
        Each factor's variance over the whole grid (:func:`grid_variances`); a factor of variance 0
        gets NaN.
    regressor : {"mlp", "linear"}, default "mlp"
    seed : int, default 0

    Returns
    -------
    list of numpy.ndarray, shape (k,)
        One R² vector per test set; 1 is perfect, 0 is predicting the grid's mean, below 0 worse.

    Examples
    --------
    >>> values = np.linspace(0, 1, 10)[:, None]
    >>> [r.round(6).tolist() for r in readout_r2(values[:7], values[:7], [values[7:]], [values[7:]], [0.1], regressor="linear")]
    [[1.0]]
    """
    codes_train = check_codes(codes_train, "codes_train")
    readout = make_regressor(regressor, seed).fit(codes_train, np.asarray(targets_train, dtype=np.float64))
    variances = np.asarray(variances, dtype=np.float64)
    scores = []
    for codes, targets in zip(codes_tests, targets_tests):
        predicted = readout.predict(check_codes(codes, "codes_test")).reshape(len(codes), -1)
        mse = np.mean((predicted - np.asarray(targets, dtype=np.float64)) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores.append(np.where(variances > 0, 1.0 - mse / variances, np.nan))
    return scores


@register_metric("ood_r2", needs="sampling", published={}, records=("num_train", "num_test", "regressor"),
                 fast={"num_train": 2000, "num_test": 1000}, tiny={"num_train": 500, "num_test": 200},
                 headline="r2_held_out", title="R² on held-out factors", reference="Schott et al. 2022", family="Out-of-distribution R²",
                 bounds={"num_train": (20, 1_000_000)}, min_latents=1)  # the MLP's early stopping holds out 10%, and needs 2 points there
def ood_r2(dataset, represent, rng: np.random.Generator, *, num_train: int = 10000, num_test: int = 5000,
           regressor: str = "mlp") -> dict[str, float]:
    """R² of a factor readout in the training region and in the held-out region of a holdout run.

    The readout (:func:`make_regressor`) learns every factor, normalised to [0, 1], from the codes
    of ``num_train`` training-region observations; it is scored on ``num_test`` fresh ones from
    each region.

    .. math:: R^2_{\\text{held out}} = \\frac{1}{K}\\sum_j \\Big(1 - \\frac{\\mathbb{E}_{\\text{held out}}(\\hat v_j - v_j)^2}{\\operatorname{Var}_{\\mathrm{grid}}(v_j)}\\Big)

    Parameters
    ----------
    dataset : GroundTruthDataset
        Built with ``holdout`` (e.g. ``get_dataset("dsprites", holdout="extrapolation:scale")``).
    represent : callable
        ``represent(observations) -> codes [n, d]``.
    rng : numpy.random.Generator
        Draws the factors and seeds the readout.
    num_train, num_test : int, default 10000, 5000
    regressor : {"mlp", "linear"}, default "mlp"
        The paper trains readouts of its own per model; an MLP on the frozen codes is this
        package's choice (the README lists it).

    Returns
    -------
    dict
        ``r2_held_out`` and ``r2_in_distribution`` (means over factors with two or more classes),
        and per factor ``r2_held_out_{name}``, ``r2_in_distribution_{name}``.

    References
    ----------
    Schott, von Kügelgen, Träuble et al., "Visual Representation Learning Does Not Generalize
    Strongly Within the Same Domain", ICLR 2022; bethgelab/InDomainGeneralizationBenchmark
    (``evaluate_model.py``).

    Examples
    --------
    >>> from disentangle.datasets.base import FactorsAsObservations
    >>> grid = FactorsAsObservations((10, 4), holdout="extrapolation:factor_0:0.3")
    >>> reads = lambda x: x.reshape(len(x), -1)   # the factors themselves: a linear readout extrapolates
    >>> scores = ood_r2(grid, reads, np.random.default_rng(0), num_train=200, num_test=100, regressor="linear")
    >>> round(scores["r2_held_out"], 6), round(scores["r2_in_distribution"], 6)
    (1.0, 1.0)
    """
    num_train, num_test = check_count(num_train, "num_train", minimum=2), check_count(num_test, "num_test", minimum=2)
    if getattr(dataset, "holdout_region", None) is None:
        raise DisentangleError("ood_r2 scores a run trained with a holdout (e.g. holdout=extrapolation:scale); this one has none")
    train, in_distribution, held_out = (dataset.sample_holdout_factors(part, n, rng)
                                        for part, n in (("train", num_train), ("train", num_test), ("held_out", num_test)))
    codes = [represent_in_batches(dataset, represent, f, rng) for f in (train, in_distribution, held_out)]
    seed = int(rng.integers(2 ** 31))
    targets = [normalised_factors(f, dataset.factor_sizes) for f in (train, in_distribution, held_out)]
    inside, outside = readout_r2(codes[0], targets[0], codes[1:], targets[1:], grid_variances(dataset.factor_sizes),
                                 regressor=regressor, seed=seed)
    scores = {"r2_held_out": float(np.nanmean(outside)), "r2_in_distribution": float(np.nanmean(inside))}
    for j, name in enumerate(dataset.factor_names):
        scores[f"r2_held_out_{name}"] = float(outside[j])
        scores[f"r2_in_distribution_{name}"] = float(inside[j])
    return scores
