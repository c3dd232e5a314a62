"""The one way a grid is asked for and made ready: what the ``grid`` command was given (a study file, or
the options of one grid) -> frozen, prepared grids (:class:`~.grid.PreparedGrid`), which :func:`~.grid.run_prepared`
runs. The command only parses and prints; everything a grid's options mean is decided here.

- :class:`GridRequest` holds the options as parsed (text lists such as ``"1,4,16"`` or ``"0-4"`` included),
  and how every run executes (device, compile, trackers, data location), which the command line adds to a study.
- :func:`plan_grids` reads it into grids whose configs are resolved and checked (run ids final), touching nothing:
  what ``--dry-run`` shows. :func:`prepare_grids` does the same and readies the runs folder (runs stored under an
  older id renamed, tracker stores created): what a grid trains from.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import MappingProxyType

from disentangle.base import runs
from disentangle.base.errors import DisentangleError
from disentangle.base.validation import parse_setting
from disentangle.orchestration.grid import PreparedGrid, check_runs_folder


@dataclasses.dataclass(frozen=True)
class GridRequest:
    """What a grid was asked for, as parsed (None: not given). Either ``spec_file`` (a study file, which
    defines the runs) or ``model`` with the one grid's options; the rest says how every run executes."""

    spec_file: Path | None = None
    model: str | None = None
    betas: str | None = None  # "1,4,16"
    seeds: str | None = None  # "0,1,2" or "0-4"
    dataset: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    settings: tuple[str, ...] = ()  # "KEY=V1,V2": swept (or fixed) model options
    metric_names: str | None = None  # "mig,dci"; "" for none; None: evaluate's default set
    profile: str | None = None
    precision: str | None = None
    representations: tuple[str, ...] = ()
    device: str | None = None  # how, not what: overrides a study file's
    compile_loss: bool = False
    loggers: tuple[str, ...] = ()  # added to a study file's
    tracking_uri: str | None = None
    dataset_options: dict = dataclasses.field(default_factory=dict)  # --data-root, --dataset-option
    max_runs: int | None = None


def plan_grids(request: GridRequest) -> tuple[PreparedGrid, ...]:
    """The grids ``request`` describes, every config of every table resolved and checked before any is
    returned (a bad value anywhere is one error line); nothing is read from or written to a runs folder."""
    return _resolved_and_checked(_read(request))


def prepare_grids(request: GridRequest, runs_dir: str | Path) -> tuple[PreparedGrid, ...]:
    """:func:`plan_grids`, then the runs folder checked (:func:`~.grid.check_runs_folder`) and readied for each grid
    (:func:`disentangle.lifecycle.setup.ready_runs_folder`: runs stored under an older id, which the configs as
    given still hash, renamed; tracker stores made). Each config is resolved and checked once."""
    from disentangle.lifecycle.setup import ready_runs_folder

    grids = _read(request)
    prepared = _resolved_and_checked(grids)  # every table checked before the first folder is touched
    check_runs_folder(Path(runs_dir))
    for given, ready in zip(grids, prepared):
        ready_runs_folder(given.configs, ready.configs, runs_dir)
    return prepared


def _resolved_and_checked(grids) -> tuple[PreparedGrid, ...]:
    from disentangle.lifecycle.setup import check_configs, resolve_config

    resolved = tuple(dataclasses.replace(grid, configs=tuple(resolve_config(c) for c in grid.configs)) for grid in grids)
    check_configs([config for grid in resolved for config in grid.configs])
    return resolved


def _read(request: GridRequest) -> list[PreparedGrid]:
    """The study file's tables or the one grid of the options, with how every run executes applied."""
    if request.spec_file is not None:
        grids = _from_spec(request)
    else:
        grids = [grid_from_options(request)]
    how = {"compile": request.compile_loss} if request.compile_loss else {}
    if request.device:
        how["device"] = request.device
    return [dataclasses.replace(grid, configs=tuple(dataclasses.replace(
        config, **how, loggers=list(dict.fromkeys([*config.loggers, *request.loggers])),  # the study's and the command's
        tracking_uri=request.tracking_uri or config.tracking_uri) for config in grid.configs)) for grid in grids]


_DEFINED_BY_A_SPEC = ("model", "betas", "seeds", "dataset", "steps", "batch_size", "settings", "metric_names", "precision", "profile",
                      "representations")
_FLAGS = {"betas": "beta", "settings": "set", "metric_names": "evaluate", "representations": "representation"}


def _from_spec(request: GridRequest) -> list[PreparedGrid]:
    from disentangle.orchestration.spec import load_spec

    given = [name for name in _DEFINED_BY_A_SPEC if getattr(request, name) not in (None, (), "")]
    if given:
        flag = _FLAGS.get(given[0], given[0]).replace("_", "-")
        raise DisentangleError(f"--{flag} conflicts with --spec {request.spec_file}: the spec file defines the runs")
    defining = sorted(set(request.dataset_options) - set(runs.RunConfig._NOT_IDENTITY_DATASET_OPTIONS))
    if defining:
        raise DisentangleError(f"--dataset-option {defining[0]} conflicts with --spec {request.spec_file}: set it in the spec's dataset_options")
    grids = []
    for table in load_spec(request.spec_file, request.max_runs):
        configs = tuple(dataclasses.replace(c, dataset_options={**c.dataset_options, **request.dataset_options}) for c in table.configs)
        grids.append(PreparedGrid(configs, tuple(table.metrics), table.profile, MappingProxyType(dict(table.metric_options)),
                                  tuple(table.representations)))
    return grids


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


def grid_from_options(request: GridRequest) -> PreparedGrid:
    """The one grid the command-line options describe (unresolved), its size checked before it is expanded."""
    from disentangle.metrics.registry import parse_metric_names
    from disentangle.models import model_class
    from disentangle.orchestration import grid as grid_lib

    if request.model is None:
        raise DisentangleError("give --model (or --spec FILE)")
    model_class(request.model)
    beta_values = parse_list(request.betas, float, "--beta") if request.betas is not None else [None]
    if request.betas is not None and not beta_values:
        raise DisentangleError("the beta list is empty: give at least one value, e.g. --beta 1,2,4")
    sweeps = {}
    for text in request.settings:
        key, _ = parse_setting(text)
        sweeps[key] = [parse_setting(f"{key}={v}")[1] for v in text.partition("=")[2].split(",")]
    names = parse_metric_names(request.metric_names) if request.metric_names != "" else ()  # None: evaluate's default set
    total = len(beta_values) * count_list(request.seeds or "0") * math.prod(len(values) for values in sweeps.values())
    grid_lib.check_run_count(total, request.max_runs or grid_lib.DEFAULT_MAX_RUNS)  # counted, before a seed list is built
    configs = grid_lib.expand(request.model, request.dataset, beta_values, parse_list(request.seeds or "0", int, "--seeds"),
                              request.steps, sweeps, batch_size=request.batch_size, dataset_options=request.dataset_options or None,
                              precision=request.precision)
    return PreparedGrid(tuple(configs), tuple(names), request.profile or "published",
                        representations=tuple(dict.fromkeys(request.representations)) or ("mean",))
