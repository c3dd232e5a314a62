"""FactorVAE score: Kim & Mnih, "Disentangling by Factorising", ICML 2018
(disentanglement_lib's settings).

Codes are normalised by their global standard deviation (from
``num_variance_estimate`` random observations); dimensions with std < 0.05 are
pruned as inactive. Each point: fix one factor k across ``batch_size``
observations, take the active dimension of least normalised variance, and vote
(dimension -> k). A majority-vote classifier maps each dimension to a factor;
the score is its accuracy.

``num_active_dims`` counts the dimensions kept. disentanglement_lib reports
``len(active_dims)`` of a boolean mask, i.e. always the total number of
dimensions; this implementation counts the active ones.
"""

from __future__ import annotations

import numpy as np

from disentangle.base.validation import check_count
from disentangle.metrics._utils import require_factors
from disentangle.metrics.sampling import points_per_call as _points_per_call
from disentangle.metrics.sampling import one_factor, represent_factors, represent_sample, share_within_groups
from disentangle.metrics.registry import register_metric

PRUNE_THRESHOLD = 0.05


def _votes(dataset, represent, rng, batch_size, n, global_var, active, chunk, vary_one: bool = False) -> np.ndarray:
    """Votes [d, k]. FactorVAE: factor k fixed, the rest random, vote the least-variance dim.
    ``vary_one`` (Z-max variance): factor k random, the rest fixed, vote the most-variance dim."""
    votes = np.zeros((len(global_var), dataset.num_factors), dtype=np.int64)
    active_index = np.flatnonzero(active)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        k = rng.integers(dataset.num_factors, size=m)
        chosen = one_factor(k, dataset.num_factors)
        factors = dataset.sample_factors(m * batch_size, rng).reshape(m, batch_size, -1)
        factors = share_within_groups(factors, ~chosen if vary_one else chosen)
        codes = represent_factors(dataset, represent, factors.reshape(m * batch_size, -1), rng)
        normalised = np.var(codes.reshape(m, batch_size, -1), axis=1, ddof=1)[:, active] / global_var[active]
        dims = active_index[np.argmax(normalised, axis=1) if vary_one else np.argmin(normalised, axis=1)]
        np.add.at(votes, (dims, k), 1)
    return votes


@register_metric("factor_vae", needs="sampling",
                 published={}, records=("batch_size", "num_train", "num_eval", "num_variance_estimate"),
                 fast={"num_train": 1000, "num_eval": 500, "num_variance_estimate": 5000},
                 tiny={"batch_size": 16, "num_train": 100, "num_eval": 50, "num_variance_estimate": 500},
                 headline="eval_accuracy", title="FactorVAE score", reference="Kim & Mnih 2018", default=True)
def factor_vae_score(dataset, represent, rng: np.random.Generator, *, batch_size: int = 64, num_train: int = 10000,
                     num_eval: int = 5000, num_variance_estimate: int = 10000,
                     points_per_call: int | None = None) -> dict[str, float]:
    """FactorVAE score (Z-min variance): majority vote of the code dimension that varies least.

    Codes are divided by their standard deviation over ``num_variance_estimate`` observations
    (dimensions with std < 0.05 are pruned as inactive). Each point fixes one factor, draws
    ``batch_size`` observations, and votes (dimension of least normalised variance -> the fixed
    factor); the classifier maps each dimension to its majority factor, and the score is its
    accuracy on ``num_train`` and ``num_eval`` points.

    .. math:: j^* = \\arg\\min_j \\operatorname{Var}_{l}\\big[\\bar z_j(x_l) / s_j\\big] \\text{ with } v_k \\text{ fixed}, \\qquad \\mathrm{score} = \\Pr\\big[\\arg\\max_{k'} V_{j^* k'} = k\\big]

    Parameters
    ----------
    dataset : GroundTruthDataset
        Two or more factors.
    represent : callable
        ``represent(observations float32 [n, C, H, W]) -> codes [n, d]``.
    rng : numpy.random.Generator
        Draws every batch.
    batch_size : int, default 64
    num_train, num_eval : int, default 10000, 5000
    num_variance_estimate : int, default 10000
    points_per_call : int, optional

    Returns
    -------
    dict
        ``{"train_accuracy", "eval_accuracy"}`` in [0, 1] and ``"num_active_dims"``
        (both accuracies 0 when no dimension is active).

    References
    ----------
    Kim & Mnih, "Disentangling by Factorising", ICML 2018. disentanglement_lib:
    ``evaluation/metrics/factor_vae.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.datasets import get_dataset
    >>> dsprites = get_dataset("dsprites")  # rendered by the project: no download
    >>> pixels = lambda images: images.reshape(len(images), -1)[:, ::400]  # a poor representation: 11 pixels
    >>> scores = factor_vae_score(dsprites, pixels, np.random.default_rng(0), batch_size=16, num_train=100, num_eval=50,
    ...                           num_variance_estimate=500)
    >>> sorted(scores)
    ['eval_accuracy', 'num_active_dims', 'train_accuracy']
    """
    return variance_vote_score(dataset, represent, rng, "factor_vae_score", batch_size, num_train, num_eval,
                               num_variance_estimate, points_per_call, vary_one=False)


def variance_vote_score(dataset, represent, rng, metric: str, batch_size: int, num_train: int, num_eval: int,
                        num_variance_estimate: int, points_per_call: int | None, vary_one: bool) -> dict[str, float]:
    """The majority-vote classifier both the FactorVAE score and Z-max variance train and score."""
    require_factors(dataset.num_factors, metric)
    batch_size = check_count(batch_size, "batch_size")
    chunk = _points_per_call(batch_size, points_per_call)
    num_train, num_eval = check_count(num_train, "num_train"), check_count(num_eval, "num_eval")
    _, codes = represent_sample(dataset, represent, check_count(num_variance_estimate, "num_variance_estimate"), rng)
    global_var = np.var(codes, axis=0, ddof=1)
    active = np.sqrt(global_var) >= PRUNE_THRESHOLD
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train_votes = _votes(dataset, represent, rng, batch_size, num_train, global_var, active, chunk, vary_one)
    eval_votes = _votes(dataset, represent, rng, batch_size, num_eval, global_var, active, chunk, vary_one)
    classifier = np.argmax(train_votes, axis=1)
    rows = np.arange(len(classifier))
    return {"train_accuracy": float(train_votes[rows, classifier].sum() / num_train),
            "eval_accuracy": float(eval_votes[rows, classifier].sum() / num_eval),
            "num_active_dims": int(active.sum())}


@register_metric("z_max_variance", needs="sampling",
                 published={}, records=("batch_size", "num_train", "num_eval", "num_variance_estimate"),
                 fast={"num_train": 1000, "num_eval": 500, "num_variance_estimate": 5000},
                 tiny={"batch_size": 16, "num_train": 100, "num_eval": 50, "num_variance_estimate": 500},
                 headline="eval_accuracy", title="Z-max variance", reference="Kim, Wang, Sahu & Pavlovic 2019")
def z_max_variance(dataset, represent, rng: np.random.Generator, *, batch_size: int = 64, num_train: int = 10000,
                   num_eval: int = 5000, num_variance_estimate: int = 10000, points_per_call: int | None = None) -> dict[str, float]:
    """Z-max variance (Relevance FactorVAE): the FactorVAE score turned around.

    Each point varies one factor across ``batch_size`` observations with every other factor
    fixed, and votes (active dimension of largest normalised variance -> the varied factor);
    the score is the majority-vote classifier's accuracy. (Z-min variance in Carbonneau et
    al.'s review is the FactorVAE score, ``factor_vae``; Z-diff is the β-VAE score.)

    .. math:: j^* = \\arg\\max_j \\operatorname{Var}_{l}\\big[\\bar z_j(x_l) / s_j\\big] \\text{ with only } v_k \\text{ varied}, \\qquad \\mathrm{score} = \\Pr\\big[\\arg\\max_{k'} V_{j^* k'} = k\\big]

    Parameters
    ----------
    dataset : GroundTruthDataset
        Two or more factors.
    represent : callable
        ``represent(observations float32 [n, C, H, W]) -> codes [n, d]``.
    rng : numpy.random.Generator
        Draws every batch.
    batch_size : int, default 64
    num_train, num_eval : int, default 10000, 5000
    num_variance_estimate : int, default 10000
    points_per_call : int, optional

    Returns
    -------
    dict
        ``{"train_accuracy", "eval_accuracy"}`` in [0, 1] and ``"num_active_dims"``.

    References
    ----------
    Kim, Wang, Sahu & Pavlovic, "Relevance Factor VAE: Learning and Identifying Disentangled
    Factors", arXiv:1902.01568, 2019 (not in disentanglement_lib).

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.datasets import get_dataset
    >>> dsprites = get_dataset("dsprites")  # rendered by the project: no download
    >>> pixels = lambda images: images.reshape(len(images), -1)[:, ::400]  # a poor representation: 11 pixels
    >>> scores = z_max_variance(dsprites, pixels, np.random.default_rng(0), batch_size=16, num_train=100, num_eval=50,
    ...                         num_variance_estimate=500)
    >>> sorted(scores)
    ['eval_accuracy', 'num_active_dims', 'train_accuracy']
    """
    return variance_vote_score(dataset, represent, rng, "z_max_variance", batch_size, num_train, num_eval,
                               num_variance_estimate, points_per_call, vary_one=True)
