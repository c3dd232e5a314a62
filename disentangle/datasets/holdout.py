"""Held-out regions of the factor grid: the ``holdout`` option every ground-truth data set takes.

Schott et al. (ICLR 2022, "Visual Representation Learning Does Not Generalize Strongly Within
the Same Domain") train on part of the factor grid and test whether a representation lets a
readout infer the factors in the part it never saw. ``holdout="KIND[:FACTORS][:FRACTION]"``
names that part; the run trains on the rest, exactly (a 0/1 table on the grid, drawn like
``correlations`` and multiplied with it), and the ``ood_r2`` metric scores the held-out cells.
Factor values are normalised to v = class / (size − 1); FACTORS is a comma-separated list of
the set's factor names (default: every factor with two or more classes); FRACTION q defaults
to 0.3:

- ``random[:q]``: a fraction q of all grid cells, drawn once with a fixed seed (0), so every
  run of a study holds out the same cells;
- ``composition[:FACTORS][:q]``: the cells where every listed factor is low at once (v < q):
  each value is seen in training, some combinations are not;
- ``interpolation[:FACTORS][:q]``: the cells where any listed factor takes a value in the
  central band |v − ½| < q/2: unseen values inside the trained range;
- ``extrapolation[:FACTORS][:q]``: the cells where any listed factor is high (v > 1 − q):
  values beyond the trained range.

These follow the paper's four kinds; its exact split files (Zenodo records 4835774, 4898937,
4899346) are not read, and the README lists the difference.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from disentangle.base.errors import DisentangleError
from disentangle.base.factor_classes import normalised_values

HOLDOUT_KINDS = ("random", "composition", "interpolation", "extrapolation")
DEFAULT_FRACTION = 0.3
RANDOM_HOLDOUT_SEED = 0
HOLDOUT_PARTS = ("train", "held_out", "all")  # what a set built with ``holdout`` draws: the rest, the region, the whole grid


@dataclasses.dataclass(frozen=True)
class Holdout:
    """A held-out region: ``kind``, the factor indices it is defined on, and the fraction ``q``."""

    kind: str
    factors: tuple[int, ...]
    fraction: float

    def held_out(self, factor_sizes) -> np.ndarray:
        """bool [sizes of ``factors``]: which cells of the listed factors' grid are held out."""
        sizes = [int(factor_sizes[j]) for j in self.factors]
        if self.kind == "random":
            cells = int(np.prod(sizes))
            mask = np.zeros(cells, dtype=bool)
            mask[np.random.default_rng(RANDOM_HOLDOUT_SEED).permutation(cells)[:round(self.fraction * cells)]] = True
            return mask.reshape(sizes)
        q = self.fraction
        per_factor = {"composition": lambda v: v < q, "interpolation": lambda v: np.abs(v - 0.5) < q / 2,
                      "extrapolation": lambda v: v > 1 - q}[self.kind]
        combine = np.logical_and if self.kind == "composition" else np.logical_or
        mask = None
        for axis, size in enumerate(sizes):
            shape = [1] * len(sizes)
            shape[axis] = size
            column = per_factor(normalised_values(size)).reshape(shape)
            mask = column if mask is None else combine(mask, column)
        return np.broadcast_to(mask, sizes).copy()

    def table(self, part: str, factor_sizes) -> tuple[tuple[int, ...], np.ndarray] | None:
        """The 0/1 weight table (axes, weights) that draws ``part`` of the grid, or None for ``"all"``."""
        if part == "all":
            return None
        held_out = self.held_out(factor_sizes)
        return self.factors, (held_out if part == "held_out" else ~held_out).astype(np.float64)


def parse_holdout(text: str, factor_names, factor_sizes) -> Holdout:
    """``"KIND[:FACTORS][:FRACTION]"`` against the data set's factors (see the module).

    Examples
    --------
    >>> parse_holdout("extrapolation:scale:0.25", ("shape", "scale", "posX"), (3, 6, 32))
    Holdout(kind='extrapolation', factors=(1,), fraction=0.25)
    >>> parse_holdout("composition", ("shape", "scale", "posX"), (3, 6, 32))
    Holdout(kind='composition', factors=(0, 1, 2), fraction=0.3)
    """
    names, sizes = tuple(factor_names), tuple(int(s) for s in factor_sizes)
    parts = [p.strip() for p in str(text).split(":")]
    kind = parts[0]
    if kind not in HOLDOUT_KINDS:
        raise DisentangleError(f"holdout {text!r}: the kind must be one of {', '.join(HOLDOUT_KINDS)}, got {kind!r}")
    rest = parts[1:]
    fraction = DEFAULT_FRACTION
    if rest and _is_number(rest[-1]):
        fraction = float(rest.pop())
        if not 0 < fraction < 1:
            raise DisentangleError(f"holdout {text!r}: the fraction must be between 0 and 1, got {fraction:g}")
    if len(rest) > 1 or (kind == "random" and rest):
        form = "random[:FRACTION]" if kind == "random" else f"{kind}[:FACTOR,FACTOR,...][:FRACTION]"
        raise DisentangleError(f"holdout {text!r} must read {form}")
    if kind == "random":
        factors = tuple(range(len(names)))
    elif rest:
        listed = [n.strip() for n in rest[0].split(",")]
        for name in listed:
            if name not in names:
                raise DisentangleError(f"holdout {text!r}: unknown factor {name!r}, expected one of {', '.join(names)}")
        if len(set(listed)) != len(listed):
            raise DisentangleError(f"holdout {text!r} names a factor twice")
        factors = tuple(names.index(n) for n in listed)
    else:
        factors = tuple(j for j, s in enumerate(sizes) if s > 1)
    for j in factors:
        if kind != "random" and sizes[j] < (3 if kind == "interpolation" else 2):
            raise DisentangleError(f"holdout {text!r}: factor {names[j]!r} has {sizes[j]} class(es), too few to hold values out of")
    if kind == "composition" and len(factors) < 2:
        raise DisentangleError(f"holdout {text!r}: a composition holds out combinations, so it needs two or more factors")
    holdout = Holdout(kind, factors, fraction)
    mask = holdout.held_out(sizes)
    if not mask.any():
        raise DisentangleError(f"holdout {text!r} holds out no cell of the grid: use a larger fraction")
    if mask.all():
        raise DisentangleError(f"holdout {text!r} holds out every cell of the grid, leaving nothing to train on: use a smaller fraction")
    return holdout


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
