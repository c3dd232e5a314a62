"""Study spec files: a study is a TOML file of one or more ``[[grid]]`` tables.

```toml
[[grid]]
model = "beta_vae"
dataset = "dsprites"
steps = 30000
seeds = [0, 1, 2]          # or a count: seeds = 3 means 0, 1, 2
precision = "bf16"
evaluate = ["mig", "factor_vae", "dci", "sap"]   # missing: evaluate's default set; [] trains only
profile = "fast"           # published | fast | tiny
representation = ["mean", "sampled"]   # codes scored: "mean" (default), "sampled", or both
[grid.sweep]               # cartesian product, like --beta / --set k=v1,v2
beta = [1, 4, 16]
[grid.fixed]               # like --set k=v
latent_dim = 10
```

Optional keys: ``batch_size``, ``dataset_options`` (a table, e.g. ``binarize``),
``evaluate_options`` (a table of tables, e.g. ``[grid.evaluate_options.iwae] k = 5000``),
``checkpoint_every``, ``device`` (how, not what: ``--device`` overrides it), ``compile`` (true: ``torch.compile``
the loss, as ``--compile``), ``loggers`` (experiment trackers, e.g. ``["tensorboard", "mlflow"]``) and
``tracking_uri``. Every key and value is checked before anything trains; an
error names the file, the table and the key.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.base.errors import DisentangleError
from disentangle.base.validation import check_count

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEYS = ("model", "dataset", "steps", "seeds", "precision", "evaluate", "profile", "representation", "loggers", "tracking_uri", "sweep", "fixed",
        "batch_size", "dataset_options", "evaluate_options", "checkpoint_every", "device", "compile")


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """One ``[[grid]]`` table as read: its run configs (unresolved) and how to evaluate them."""

    configs: tuple[runs.RunConfig, ...]
    metrics: tuple[str, ...]
    profile: str
    metric_options: dict
    representations: tuple[str, ...] = ("mean",)


def load_spec(path: str | Path, max_runs: int | None = None) -> list[GridSpec]:
    """Parse and check a study file; every error is one line naming the file, table and key. Its runs
    are counted first and refused above ``max_runs`` (:func:`disentangle.orchestration.grid.check_run_count`) before any is built."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DisentangleError(f"spec file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DisentangleError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(data) - {"grid"})
    if unknown:
        raise DisentangleError(f"{path}: unknown top-level key {unknown[0]!r}, expected [[grid]] tables")
    tables = data.get("grid")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise DisentangleError(f"{path}: expected one or more [[grid]] tables")
    grid.check_run_count(sum(count_runs(table) for table in tables), max_runs or grid.DEFAULT_MAX_RUNS)
    return [_grid_spec(table, f"{path}: [[grid]] #{number}") for number, table in enumerate(tables, 1)]


def count_runs(table: dict) -> int:
    """The runs a ``[[grid]]`` table asks for (seeds x every swept list), from its numbers alone; a malformed
    key counts as one value (the full check names it)."""
    import math

    seeds = table.get("seeds", [0])
    count = seeds if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0 else len(seeds) if isinstance(seeds, list) else 1
    sweep = table.get("sweep") if isinstance(table.get("sweep"), dict) else {}
    return count * math.prod(len(v) if isinstance(v, list) and v else 1 for v in sweep.values())


def _grid_spec(table: dict, where: str) -> GridSpec:
    from disentangle.metrics.registry import REPRESENTATIONS, default_metrics, parse_metric_names
    from disentangle.base.profiles import PROFILE_NAMES
    from disentangle.scoring.runner import metric_settings
    from disentangle.models import model_class
    from disentangle.lifecycle.setup import check_model_options

    def fail(key: str, message: str):
        raise DisentangleError(f"{where}: {key} {message}")

    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        fail(repr(unknown[0]), f"is not a key, expected one of {', '.join(KEYS)}")
    if "model" not in table:
        fail("'model'", "is missing")
    model = _typed(table, "model", str, fail)
    try:
        accepted = model_class(model).accepted_options()
    except DisentangleError as error:
        fail("'model'", f"is bad: {error}")
    dataset = _typed(table, "dataset", str, fail, runs.RUN_DEFAULTS["dataset"])
    from disentangle.datasets import DATASETS, list_datasets

    if dataset not in list_datasets():
        fail("'dataset'", f"is {dataset!r}, expected one of {', '.join(list_datasets())}")
    steps = _positive_int(table, "steps", fail, runs.RUN_DEFAULTS["steps"])
    batch_size = _positive_int(table, "batch_size", fail, runs.RUN_DEFAULTS["batch_size"])
    checkpoint_every = _positive_int(table, "checkpoint_every", fail) if "checkpoint_every" in table else None  # None: RunConfig's rule
    seeds = table.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        seeds = range(seeds)  # counted (load_spec) before this: never a list of 10^11 seeds
    elif not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        fail("'seeds'", f"must be a non-empty list of non-negative integers or a positive count, got {seeds!r}")
    precision = _typed(table, "precision", str, fail, runs.RUN_DEFAULTS["precision"])
    if precision not in runs.PRECISION_CHOICES:
        fail("'precision'", f"is {precision!r}, expected one of {', '.join(runs.PRECISION_CHOICES)}")
    profile = _typed(table, "profile", str, fail, "published")
    if profile not in PROFILE_NAMES:
        fail("'profile'", f"is {profile!r}, expected one of {', '.join(PROFILE_NAMES)}")
    representations = table.get("representation", ["mean"])
    representations = [representations] if isinstance(representations, str) else representations
    if not isinstance(representations, list) or not representations or not all(r in REPRESENTATIONS for r in representations):
        fail("'representation'", f"must be one of {', '.join(REPRESENTATIONS)} or a list of them, got {table.get('representation')!r}")
    names = table.get("evaluate")  # missing: evaluate's default set; []: no evaluation
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        fail("'evaluate'", f"must be a list of metric names, got {names!r}")
    try:
        metrics = parse_metric_names(",".join(names)) if names else (default_metrics() if names is None else ())
    except DisentangleError as error:
        fail("'evaluate'", f"is bad: {error}")
    metric_options = _typed(table, "evaluate_options", dict, fail, {})
    for name, options in metric_options.items():
        if not isinstance(options, dict):
            fail(f"'evaluate_options.{name}'", "must be a table of settings")
        try:
            metric_settings(name, profile, options=options)
        except (DisentangleError, KeyError) as error:
            fail(f"'evaluate_options.{name}'", f"is bad: {error}")
    sweep = _typed(table, "sweep", dict, fail, {})
    fixed = _typed(table, "fixed", dict, fail, {})
    for section, options in (("sweep", sweep), ("fixed", fixed)):
        for key, value in options.items():
            if key not in accepted:
                fail(f"'{section}.{key}'", f"is not an option of model {model!r}, expected one of {', '.join(sorted(accepted))}")
            if section == "sweep" and (not isinstance(value, list) or not value):
                fail(f"'sweep.{key}'", f"must be a non-empty list of values, got {value!r}")
    both = sorted(set(sweep) & set(fixed))
    if both:
        fail(f"'{both[0]}'", "is both swept and fixed")
    dataset_options = _typed(table, "dataset_options", dict, fail, {})
    try:  # names and kinds, from the data set's own schema, and the values it refuses without reading a file
        DATASETS.check_options(dataset, dataset_options)
        DATASETS.get(dataset).check_option_values(dataset_options)
    except DisentangleError as error:
        fail("'dataset_options'", f"is bad: {error}")
    device = _typed(table, "device", str, fail, runs.RUN_DEFAULTS["device"])
    compile_loss = _typed(table, "compile", bool, fail, False)
    loggers = _typed(table, "loggers", list, fail, [])
    tracking_uri = table.get("tracking_uri")
    if tracking_uri is not None and not isinstance(tracking_uri, str):
        fail("'tracking_uri'", f"must be a string, got {tracking_uri!r}")
    configs = grid.expand(model, dataset, seeds=seeds, steps=steps, sweeps=sweep, fixed=fixed, batch_size=batch_size,
                          dataset_options=dataset_options, checkpoint_every=checkpoint_every, precision=precision, device=device,
                          compile_loss=compile_loss)
    configs = [dataclasses.replace(config, loggers=list(loggers), tracking_uri=tracking_uri) for config in configs]
    try:  # the rest of each config is checked once, by the grid (lifecycle.setup.prepare_runs)
        check_model_options(configs)
    except DisentangleError as error:
        fail(f"model options of {model!r}", f"are bad: {error}")
    return GridSpec(tuple(configs), tuple(metrics), profile, metric_options, tuple(dict.fromkeys(representations)))


def _typed(table: dict, key: str, kind: type, fail, default=None):
    value = table.get(key, default)
    if not isinstance(value, kind):
        fail(repr(key), f"must be a {'table' if kind is dict else kind.__name__}, got {value!r}")
    return value


def _positive_int(table: dict, key: str, fail, default: int | None = None) -> int:
    value = table.get(key, default)
    try:
        return check_count(value, repr(key))
    except DisentangleError as error:
        fail(repr(key), str(error).removeprefix(f"{key!r} "))
