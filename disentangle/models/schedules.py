"""Schedules of a model's regularisation weight: a multiplier in [0, 1] of the training step.

Written as text, a model option (``beta_schedule``, part of the run id):

- ``"constant"``: 1 at every step (the default: the weight as given);
- ``"linear:W"``: warm-up, rising linearly from 0 at step 0 to 1 at step W, then 1;
- ``"cyclical:P"`` or ``"cyclical:P:R"``: Fu et al. 2019's cyclical annealing, cycles of P steps,
  each rising linearly from 0 over its first R of the cycle (default R = 0.5), then 1;
- ``"cosine:W"``: warm-up along half a cosine, ``(1 - cos(pi t / W)) / 2`` up to step W, then 1.

References: Bowman et al., "Generating Sentences from a Continuous Space", CoNLL 2016 (KL
warm-up); Fu et al., "Cyclical Annealing Schedule: A Simple Approach to Mitigating KL
Vanishing", NAACL 2019.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from disentangle.base.errors import DisentangleError

@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``kind``, its ``period`` in steps and (cyclical) the rising ``ratio``."""

    kind: str = "constant"
    period: int = 1
    ratio: float = 0.5

    def __call__(self, step: int) -> float:
        """The multiplier at ``step`` (0-based), in [0, 1].

        Examples
        --------
        >>> [parse_schedule("linear:100")(s) for s in (0, 50, 100, 400)]
        [0.0, 0.5, 1.0, 1.0]
        >>> [parse_schedule("cyclical:100:0.5")(s) for s in (0, 25, 50, 99, 100, 125)]
        [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
        >>> [round(parse_schedule("cosine:100")(s), 3) for s in (0, 50, 100)]
        [0.0, 0.5, 1.0]
        """
        if self.kind == "constant":
            return 1.0
        if self.kind == "linear":
            return min(1.0, step / self.period)
        if self.kind == "cosine":
            return 0.5 * (1.0 - math.cos(math.pi * min(1.0, step / self.period)))
        position = (step % self.period) / self.period  # cyclical
        return min(1.0, position / self.ratio)

    def __str__(self) -> str:
        if self.kind == "constant":
            return "constant"
        return f"{self.kind}:{self.period}" + (f":{self.ratio:g}" if self.kind == "cyclical" else "")


def parse_schedule(text, option: str = "beta_schedule") -> Schedule:
    """``"linear:10000"`` -> :class:`Schedule`; a one-line error naming ``option``, the text and the forms.

    Examples
    --------
    >>> parse_schedule("cyclical:5000")
    Schedule(kind='cyclical', period=5000, ratio=0.5)
    """
    forms = "constant, linear:W, cyclical:P[:R] or cosine:W (W, P steps > 0; 0 < R <= 1)"
    if isinstance(text, Schedule):
        return text
    if not isinstance(text, str):
        raise DisentangleError(f"{option} {text!r} is not text: expected {forms}")
    kind, *numbers = text.strip().split(":")
    try:
        if kind == "constant" and not numbers:
            return Schedule()
        if kind in ("linear", "cosine") and len(numbers) == 1 and int(numbers[0]) > 0:
            return Schedule(kind, int(numbers[0]))
        if kind == "cyclical" and len(numbers) in (1, 2) and int(numbers[0]) > 0:
            ratio = float(numbers[1]) if len(numbers) == 2 else 0.5
            if 0 < ratio <= 1:
                return Schedule(kind, int(numbers[0]), ratio)
    except ValueError:
        pass
    raise DisentangleError(f"{option} {text!r} does not parse: expected {forms}")
