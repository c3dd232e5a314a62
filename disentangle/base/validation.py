"""The argument checks every part shares, each failing with one line that names the value.

Pure Python (no numpy): the command line checks its arguments at start-up without loading anything heavy.
"""

from __future__ import annotations

import json
import numbers

from disentangle.base.errors import DisentangleError


def check_count(value, name: str = "n", minimum: int = 1) -> int:
    """``value`` as an int, or a one-line error if it is not an integer (numpy's included, bool not)
    of at least ``minimum``.

    Examples
    --------
    >>> check_count(3, "steps")
    3
    >>> check_count(0, "seed", minimum=0)
    0
    >>> check_count(2.0, "steps")
    Traceback (most recent call last):
    ...
    disentangle.base.errors.DisentangleError: steps must be a positive integer, got 2.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, f"an integer >= {minimum}")
        raise DisentangleError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_choice(value, name: str, choices) -> object:
    """``value`` if it is one of ``choices``, else a one-line error listing them.

    Examples
    --------
    >>> check_choice("fp32", "precision", ("fp32", "bf16"))
    'fp32'
    >>> check_choice("fp16", "precision", ("fp32", "bf16"))
    Traceback (most recent call last):
    ...
    disentangle.base.errors.DisentangleError: precision must be one of fp32, bf16, got 'fp16'
    """
    if value not in choices:
        raise DisentangleError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def parse_value(raw: str):
    """A setting's text as JSON when it parses (numbers, true/false, lists), else the string itself."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_setting(text: str, flag: str = "--set") -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(key, value)``, the value read by :func:`parse_value`; a one-line error naming
    ``flag`` otherwise. The one KEY=VALUE parser (``--set``, ``--dataset-option``, ``--executor-option``).

    Examples
    --------
    >>> parse_setting("beta=4"), parse_setting("correlations=posX:posY:0.2")
    (('beta', 4), ('correlations', 'posX:posY:0.2'))
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise DisentangleError(f"{flag} expects KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(raw)


def without_numeric_warnings(function):
    """Run ``function`` with numpy's floating-point warnings (and the RuntimeWarnings pandas and numpy raise on
    NaN or infinite values: an all-NaN median, a std of one value) silenced: in a report a NaN metric is a
    value of the table, and hundreds of warning lines about it would bury what the command printed."""
    import functools
    import warnings

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        import numpy as np

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return function(*args, **kwargs)

    return quiet
