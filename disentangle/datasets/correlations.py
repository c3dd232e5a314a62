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
from disentangle.base.errors import DisentangleError
from disentangle.base.factor_classes import normalised_values


SIGMA_BOUNDS = (1e-3, 1e3)  # below, the weights underflow off the diagonal; above, the pair is independent to 1e-7


@dataclasses.dataclass(frozen=True)
class CorrelatedPair:
    """One correlated pair: factor indices, ``kind`` (``gaussian``: c₁ ≈ c₂; ``inverse``: c₁ ≈ 1 − c₂;
    ``line`` / ``inverse_line``: Träuble et al.'s blurred band along a diagonal of the pair's grid) and
    its width: the Gaussian ``sigma`` on values normalised to [0, 1], or the band's width as a share
    of the smaller side (``>= 1``: independent)."""

    first: int
    second: int
    kind: str
    sigma: float

    def weights(self, size_first: int, size_second: int) -> np.ndarray:
        """The unnormalised weights float64 [size_first, size_second] over the pair's classes."""
        if self.kind in ("line", "inverse_line"):
            band = line_band(size_first, size_second, self.sigma)
            return band[:, ::-1] if self.kind == "inverse_line" else band
        c1 = normalised_values(size_first)[:, None]
        c2 = normalised_values(size_second)[None, :]
        other = 1.0 - c2 if self.kind == "inverse" else c2
        return np.exp(-((c1 - other) ** 2) / (2.0 * self.sigma ** 2))

    def text(self, names) -> str:
        """The pair as the option spells it, canonically: ``posX:posY:0.1``, ``~a:b:0.4``, ``a:b:line=0.2``."""
        width = f"line={self.sigma!r}" if self.kind in ("line", "inverse_line") else repr(self.sigma)
        return f"{'~' if self.kind.startswith('inverse') else ''}{names[self.first]}:{names[self.second]}:{width}"


def line_band(size_first: int, size_second: int, width: float) -> np.ndarray:
    """Träuble et al.'s (ICML 2021) line correlation on an n₁ × n₂ pair grid, as their code builds it
    (ChFunke/disentanglement_lib, ``data/ground_truth/util.py`` at 434457b, with OpenCV), computed here
    with numpy and scipy:

    1. the band: a cell (i, j) is 255 when its square (centre x = j, y = i, OpenCV's pixel coordinates)
       meets the segment from the corner (0, 0) to the opposite corner (n₂, n₁) thickened to
       ``ceil(width · min(n₁, n₂))`` cells, i.e. its centre lies within half that thickness plus half the
       cell's extent across the line, else 0. ``cv2.line``'s own rasteriser (a filled polygon with round
       caps, in fixed point) differs at the band's edge by a cell here and there: on a 32 × 32 pair at
       width 0.2 it leaves 36.7% of the cells without mass, this rule 40.6% (opencv-python-headless
       4.x, measured 2026-12-07; see docs/correlated.md);
    2. a Gaussian blur truncated to k × k cells, k = ``min(n₁, n₂) // 4`` made odd, with OpenCV's σ for
       that size, 0.3 · ((k − 1) / 2 − 1) + 0.8, the borders reflected without repeating the edge
       (OpenCV's default), rounded to whole uint8 levels as ``cv2.GaussianBlur`` returns a uint8 image:
       cells far from the band keep no mass at all;
    3. ``width >= 1``: independent (every cell 1).

    Returns the unnormalised weights float64 [n₁, n₂].
    """
    from scipy.ndimage import correlate1d

    if width >= 1:
        return np.ones((size_first, size_second))
    thickness = math.ceil(width * min(size_first, size_second))
    rows, cols = np.mgrid[0:size_first, 0:size_second].astype(np.float64)
    end_x, end_y = float(size_second), float(size_first)
    along = np.clip((cols * end_x + rows * end_y) / (end_x ** 2 + end_y ** 2), 0.0, 1.0)
    distance = np.hypot(cols - along * end_x, rows - along * end_y)
    reach = (end_x + end_y) / (2 * math.hypot(end_x, end_y))  # half a cell's extent across the line
    band = np.where(distance <= thickness / 2 + reach, 255.0, 0.0)
    k = min(size_first, size_second) // 4
    k += 1 - k % 2
    sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8
    offsets = np.arange(k) - (k - 1) / 2
    kernel = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    blurred = correlate1d(correlate1d(band, kernel, axis=0, mode="mirror"), kernel, axis=1, mode="mirror")
    return np.clip(np.rint(blurred), 0, 255)


def canonical_correlations(text: str, factor_names) -> str | None:
    """The option as one canonical string (None for an empty one): the same pairs always spell the same,
    so that ``" posX : posY : 0.20"`` and ``"posX:posY:0.2"`` are one run."""
    pairs = parse_correlations(text, factor_names) if str(text).strip() else ()
    return ",".join(pair.text(tuple(factor_names)) for pair in pairs) or None


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
            raise DisentangleError(f"correlation {item!r} must read FACTOR:FACTOR:SIGMA or FACTOR:FACTOR:line=WIDTH "
                                   "(~ first for the inverse pairing)")
        first, second, sigma_text = (p.strip() for p in parts)
        for name in (first, second):
            if name not in names:
                raise DisentangleError(f"correlation {item!r}: unknown factor {name!r}, expected one of {', '.join(names)}")
        if first == second:
            raise DisentangleError(f"correlation {item!r} pairs factor {first!r} with itself: name two different factors")
        line = sigma_text.replace(" ", "").startswith("line=")
        if line:
            kind = "inverse_line" if kind == "inverse" else "line"
            sigma_text = sigma_text.replace(" ", "").removeprefix("line=")
        try:
            sigma = float(sigma_text)
        except ValueError:
            raise DisentangleError(f"correlation {item!r}: {'the line width' if line else 'sigma'} must be a number, got {sigma_text!r}") from None
        if line and not (math.isfinite(sigma) and sigma > 0):
            raise DisentangleError(f"correlation {item!r}: the line width must be a number > 0 (a share of the smaller side; >= 1: "
                                   f"independent), got {sigma_text}")
        if not line and not SIGMA_BOUNDS[0] <= sigma <= SIGMA_BOUNDS[1]:
            raise DisentangleError(f"correlation {item!r}: sigma must be in [{SIGMA_BOUNDS[0]:g}, {SIGMA_BOUNDS[1]:g}] (values are "
                                   f"normalised to [0, 1]), got {sigma_text}")
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
