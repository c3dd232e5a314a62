"""What ``grid``'s command-line options mean: number lists with ranges, and the one grid they
describe, its size checked before it is expanded (the command itself is in :mod:`disentangle.cli`)."""

from __future__ import annotations

import math

from disentangle.base.errors import DisentangleError
from disentangle.base.runs import RUN_DEFAULTS
from disentangle.base.validation import parse_setting


def parse_list(text: str, cast, what: str) -> list:
    """``"1,4,16"`` -> [1, 4, 16]; integer lists also take ranges, ``"0-4"`` -> [0, 1, 2, 3, 4]."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    values = []
    for item in items:
        first, dash, last = item.partition("-")
        try:
            bounds = (int(first), int(last)) if cast is int and dash and first else None
            values += list(range(bounds[0], bounds[1] + 1)) if bounds else [cast(item)]
        except ValueError:
            raise DisentangleError(f"{what} must be a comma-separated list of numbers (integer ranges like 0-4 allowed), got {text!r}") from None
        if bounds and bounds[1] < bounds[0]:
            raise DisentangleError(f"{what} range {item!r} runs backwards")
    return values


def count_list(text: str) -> int:
    """How many values :func:`parse_list` would give for ``text`` (ranges counted, not built)."""
    total = 0
    for item in (t.strip() for t in text.split(",") if t.strip()):
        first, dash, last = item.partition("-")
        try:
            total += int(last) - int(first) + 1 if dash and first else 1
        except ValueError:
            total += 1  # not a range: parse_list says what is wrong with it
    return total


def grid_from_options(model, betas, seeds, dataset, steps, batch_size, settings, metric_names, profile, precision, dataset_options,
                      max_runs: int | None = None):
    """The one grid the command-line options describe (its size checked before it is expanded)."""
    from disentangle.orchestration import grid as grid_lib
    from disentangle.metrics.registry import parse_metric_names
    from disentangle.models import model_class
    from disentangle.orchestration.spec import GridSpec

    if model is None:
        raise DisentangleError("give --model (or --spec FILE)")
    model_class(model)
    beta_values = parse_list(betas, float, "--beta") if betas is not None else [None]
    if betas is not None and not beta_values:
        raise DisentangleError("the beta list is empty: give at least one value, e.g. --beta 1,4,16")
    sweeps = {}
    for text in settings:
        key, _ = parse_setting(text)
        sweeps[key] = [parse_setting(f"{key}={v}")[1] for v in text.partition("=")[2].split(",")]
    names = parse_metric_names(metric_names) if metric_names != "" else ()  # None: the default set
    total = len(beta_values) * count_list(seeds or "0") * math.prod(len(values) for values in sweeps.values())
    grid_lib.check_run_count(total, max_runs or grid_lib.DEFAULT_MAX_RUNS)  # counted, before a seed list is built
    seed_values = parse_list(seeds or "0", int, "--seeds")
    configs = grid_lib.expand(model, dataset or "dsprites", beta_values, seed_values,
                              steps or RUN_DEFAULTS["steps"], sweeps, batch_size=batch_size or RUN_DEFAULTS["batch_size"],
                              dataset_options=dataset_options or None, precision=precision or "fp32")
    return GridSpec(configs, names, profile, {})
