"""beta-VAE score: Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a
Constrained Variational Framework", ICLR 2017 (disentanglement_lib's settings).

Each point: pick a factor k, draw ``batch_size`` pairs of observations that share
factor k, and average |code(x1) - code(x2)|; a linear classifier predicts k from
that average. The score is its accuracy (chance = 1/k).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from disentangle.base.validation import check_count
from disentangle.metrics._utils import require_factors
from disentangle.metrics.sampling import points_per_call as _points_per_call
from disentangle.metrics.sampling import one_factor, represent_factors, share_within_groups
from disentangle.metrics.registry import register_metric


def _points(dataset, represent, rng, batch_size, n, chunk):
    features, labels = [], []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        k = rng.integers(dataset.num_factors, size=m)
        pairs = np.stack([dataset.sample_factors(m * batch_size, rng), dataset.sample_factors(m * batch_size, rng)], axis=1)
        pairs = share_within_groups(pairs, one_factor(np.repeat(k, batch_size), dataset.num_factors))
        codes = represent_factors(dataset, represent, np.concatenate([pairs[:, 0], pairs[:, 1]]), rng)
        diff = np.abs(codes[:m * batch_size] - codes[m * batch_size:])
        features.append(diff.reshape(m, batch_size, -1).mean(1))
        labels.append(k)
    return np.concatenate(features), np.concatenate(labels)


@register_metric("beta_vae", needs="sampling", published={}, records=("batch_size", "num_train", "num_eval"),
                 fast={"num_train": 1000, "num_eval": 500}, tiny={"batch_size": 16, "num_train": 100, "num_eval": 50},
                 headline="eval_accuracy", title="β-VAE score", reference="Higgins et al. 2017", default=True)
def beta_vae_score(dataset, represent, rng: np.random.Generator, *, batch_size: int = 64, num_train: int = 10000,
                   num_eval: int = 5000, points_per_call: int | None = None) -> dict[str, float]:
    """β-VAE score (Z-diff): how well a linear classifier tells which factor a batch of pairs shared.

    Each point fixes one factor (drawn uniformly), draws ``batch_size`` pairs of observations
    that share it, and averages the absolute differences of the pairs' codes; a logistic
    regression learns the fixed factor from those averages on ``num_train`` points and is
    scored on ``num_eval`` others.

    .. math:: z_{\\mathrm{diff}} = \\frac{1}{L} \\sum_{l=1}^{L} \\lvert \\bar z(x^{(1)}_l) - \\bar z(x^{(2)}_l) \\rvert, \\qquad \\mathrm{score} = \\Pr\\big[\\hat k(z_{\\mathrm{diff}}) = k\\big]

    Parameters
    ----------
    dataset : GroundTruthDataset
        Two or more factors.
    represent : callable
        ``represent(observations float32 [n, C, H, W]) -> codes [n, d]``.
    rng : numpy.random.Generator
        Draws every batch.
    batch_size : int, default 64
        Pairs per point (each point costs ``2 * batch_size`` observations).
    num_train, num_eval : int, default 10000, 5000
    points_per_call : int, optional
        Points coded per ``represent`` call (default: 512 observations a call).

    Returns
    -------
    dict
        ``{"train_accuracy", "eval_accuracy"}`` in [0, 1]; chance is 1 / number of factors.

    References
    ----------
    Higgins et al., "β-VAE: Learning Basic Visual Concepts with a Constrained Variational
    Framework", ICLR 2017. disentanglement_lib: ``evaluation/metrics/beta_vae.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.datasets import get_dataset
    >>> dsprites = get_dataset("dsprites")  # rendered by the project: no download
    >>> pixels = lambda images: images.reshape(len(images), -1)[:, ::400]  # a poor representation: 11 pixels
    >>> scores = beta_vae_score(dsprites, pixels, np.random.default_rng(0), batch_size=16, num_train=100, num_eval=50)
    >>> sorted(scores), all(0 <= v <= 1 for v in scores.values())
    (['eval_accuracy', 'train_accuracy'], True)
    """
    require_factors(dataset.num_factors, "beta_vae_score")
    batch_size = check_count(batch_size, "batch_size")
    chunk = _points_per_call(2 * batch_size, points_per_call)
    x_train, y_train = _points(dataset, represent, rng, batch_size, check_count(num_train, "num_train"), chunk)
    x_eval, y_eval = _points(dataset, represent, rng, batch_size, check_count(num_eval, "num_eval"), chunk)
    model = LogisticRegression(max_iter=1000, random_state=0).fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)), "eval_accuracy": float(model.score(x_eval, y_eval))}
