"""Correlated training factors: the ``correlations`` option every ground-truth data set takes.

Every benchmark that samples factors independently, as disentanglement_lib does, hides what
real data does: factors go together. Träuble et al. (ICML 2021, "On Disentangled
Representations Learned from Correlated Data") and Roth et al. (ICLR 2023, "Disentanglement of
Correlated Factors via Hausdorff Factorized Support") train on a joint in which a pair of
factors (c₁, c₂), their values normalised to [0, 1], is drawn with weight

.. math:: w(c_1, c_2) = \\exp\\left(-\\frac{(c_1 - c_2)^2}{2\\sigma^2}\\right)

(``"posX:posY:0.1"``), or with the inverse pairing c₁ − (1 − c₂) (``"~posX:posY:0.1"``);
several pairs, comma-separated, multiply their weights, and every other factor stays uniform
and independent. This is the reference's ``'traeuble'`` and ``'inv_traeuble'`` weighting
(facebookresearch/disentangling-correlated-factors, ``datasets/utils.py``,
``get_correlated_sampler``), which draws whole grid rows with those weights: here the joint is
computed exactly on the grid of the correlated factors only (the weights do not depend on the
others) and drawn from the caller's ``rng``, never by rejection.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from disentangle.datasets.joint import FactorJoint
from disentangle.errors import DisentangleError
from disentangle.factor_classes import normalised_values


@dataclasses.dataclass(frozen=True)
class CorrelatedPair:
    """One correlated pair: factor indices, ``kind`` (``gaussian``: c₁ ≈ c₂; ``inverse``: c₁ ≈ 1 − c₂)
    and the Gaussian width ``sigma`` on values normalised to [0, 1]."""

    first: int
    second: int
    kind: str
    sigma: float

    def weights(self, size_first: int, size_second: int) -> np.ndarray:
        """The unnormalised weights float64 [size_first, size_second] over the pair's classes."""
        c1 = normalised_values(size_first)[:, None]
        c2 = normalised_values(size_second)[None, :]
        other = 1.0 - c2 if self.kind == "inverse" else c2
        return np.exp(-((c1 - other) ** 2) / (2.0 * self.sigma ** 2))


def parse_correlations(text: str, factor_names) -> tuple[CorrelatedPair, ...]:
    """``"a:b:σ"`` or ``"~a:b:σ"`` pairs, comma-separated, against the data set's factor names.

    Examples
    --------
    >>> parse_correlations("posX:posY:0.1, ~shape:scale:0.4", ("shape", "scale", "posX", "posY"))
    (CorrelatedPair(first=2, second=3, kind='gaussian', sigma=0.1), CorrelatedPair(first=0, second=1, kind='inverse', sigma=0.4))
    """
    names = tuple(factor_names)
    pairs, seen = [], set()
    for item in str(text).split(","):
        item = item.strip()
        kind = "inverse" if item.startswith("~") else "gaussian"
        parts = item.lstrip("~").split(":")
        if len(parts) != 3:
            raise DisentangleError(f"correlation {item!r} must read FACTOR:FACTOR:SIGMA (or ~FACTOR:FACTOR:SIGMA for the inverse pairing)")
        first, second, sigma_text = (p.strip() for p in parts)
        for name in (first, second):
            if name not in names:
                raise DisentangleError(f"correlation {item!r}: unknown factor {name!r}, expected one of {', '.join(names)}")
        if first == second:
            raise DisentangleError(f"correlation {item!r} pairs factor {first!r} with itself: name two different factors")
        try:
            sigma = float(sigma_text)
        except ValueError:
            raise DisentangleError(f"correlation {item!r}: sigma must be a number > 0, got {sigma_text!r}") from None
        if not math.isfinite(sigma) or sigma <= 0:
            raise DisentangleError(f"correlation {item!r}: sigma must be a finite number > 0, got {sigma_text}")
        key = frozenset((first, second))
        if key in seen:
            raise DisentangleError(f"correlation {item!r}: the pair ({first}, {second}) is given twice")
        seen.add(key)
        pairs.append(CorrelatedPair(names.index(first), names.index(second), kind, sigma))
    return tuple(pairs)


def correlation_tables(pairs: Sequence[CorrelatedPair], factor_sizes) -> list[tuple[tuple[int, int], np.ndarray]]:
    """Each pair's weight table with its factor indices, as :class:`~disentangle.datasets.joint.FactorJoint` takes them."""
    return [((p.first, p.second), p.weights(factor_sizes[p.first], factor_sizes[p.second])) for p in pairs]


class CorrelatedFactors(FactorJoint):
    """The training joint of a data set's factors under ``correlations`` (see the module).

    Parameters
    ----------
    correlations : str
        ``"a:b:σ"`` / ``"~a:b:σ"`` pairs, comma-separated.
    factor_names, factor_sizes : sequence
        The data set's factors.

    Examples
    --------
    >>> joint = CorrelatedFactors("a:b:0.1", ("a", "b", "c"), (2, 2, 3))
    >>> joint.probabilities.round(3).tolist()   # over (a, b); c stays uniform
    [[0.5, 0.0], [0.0, 0.5]]
    """

    def __init__(self, correlations: str, factor_names, factor_sizes):
        self.pairs = parse_correlations(correlations, factor_names)
        super().__init__(factor_sizes, correlation_tables(self.pairs, tuple(int(s) for s in factor_sizes)))
