"""One home for preparing a run: what a :class:`~disentangle.runs.RunConfig` means on this machine.

Every entry point (``train``, ``grid``, study files, the quickstart, Ray and SLURM tasks) hands its
configs to :func:`prepare_runs` (or :func:`prepare_run`), which resolves them (``precision="auto"``
on the run's device, option values normalised: ``beta = 4`` and ``4.0`` are one run), checks each
once, before anything is created, and renames a run stored under its pre-normalisation id. The run
folder contract itself (ids, files, status, locks) is :mod:`disentangle.runs`, which imports
nothing above it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from disentangle import runs
from disentangle._io import atomic_write_json
from disentangle.errors import DisentangleError

MAX_STEPS = 10_000_000  # 33x disentanglement_lib's 300,000: beyond it a typo is likelier than a plan


def prepare_run(config: runs.RunConfig, runs_dir: str | Path) -> runs.RunConfig:
    """``config`` resolved (:func:`resolve_config`), checked (:func:`check_config`) and, when a run
    was stored under its legacy id in ``runs_dir``, that folder renamed to the resolved id."""
    return prepare_runs([config], runs_dir)[0]


def prepare_runs(configs, runs_dir: str | Path) -> list[runs.RunConfig]:
    """:func:`prepare_run` for each config (in order, one result each), all checked before any folder is touched."""
    resolved = [resolve_config(config) for config in configs]
    check_configs(resolved)
    for given, config in zip(configs, resolved):
        migrate_legacy_run(Path(runs_dir), given, config)
    from disentangle.trackers import prepare_trackers

    prepare_trackers(resolved, Path(runs_dir))  # each store created once, before any worker starts
    return resolved


def resolve_config(config: runs.RunConfig) -> runs.RunConfig:
    """A copy of ``config`` as its run id is made: ``precision="auto"`` resolved (bf16 where the run's
    device computes it natively, else fp32; :func:`disentangle.hardware.resolve_precision`) and option
    values normalised (:func:`normalized_options`: ``beta = 4`` and ``beta = 4.0`` are one run)."""
    from disentangle.datasets import DATASETS
    from disentangle.models.registry import MODELS

    dataset_options = normalized_options(DATASETS, config.dataset, config.dataset_options)
    try:  # correlations spelled canonically: " posX : posY : 0.20" and "posX:posY:0.2" are one run
        from disentangle.datasets.base import canonical_joint_options

        dataset_options = canonical_joint_options(dataset_options, DATASETS.get(config.dataset).factor_names)
    except DisentangleError:
        pass  # an unknown data set or a bad value: check_config names it
    resolved = dataclasses.replace(config, model_options=normalized_options(MODELS, config.model, config.model_options),
                                   dataset_options=dataset_options)
    if config.precision != "auto":
        return resolved
    from disentangle.devices import resolve_device
    from disentangle.hardware import resolve_precision

    return dataclasses.replace(resolved, precision=resolve_precision("auto", resolve_device(config.device)))


def normalized_options(registry, name: str, options: dict) -> dict:
    """``options`` with each integer given for a float option written as a float (the registry's
    schema of ``name`` says which are floats); an entry the registry does not know is left as is."""
    try:
        kinds = {key: option.kind for key, option in registry.options(name).items()}
    except DisentangleError:
        return dict(options)
    return {key: float(value) if kinds.get(key) is float and isinstance(value, int) and not isinstance(value, bool) else value
            for key, value in options.items()}


def migrate_legacy_run(runs_dir: Path, given: runs.RunConfig, resolved: runs.RunConfig) -> None:
    """Rename a run made before option values were normalised (its id hashed ``beta = 4``, now
    ``4.0``) to the id ``resolved`` has now, and normalise its config.json; nothing if there is
    none, or if a folder already has the new id."""
    legacy = dataclasses.replace(resolved, model_options=dict(given.model_options), dataset_options=dict(given.dataset_options))
    old_dir, new_dir = Path(runs_dir) / legacy.run_id(), Path(runs_dir) / resolved.run_id()
    if old_dir == new_dir or not old_dir.is_dir() or new_dir.exists():
        return
    with runs.run_lock(old_dir):
        data = runs.read_config_data(old_dir)
        data.update(model_options=resolved.model_options, dataset_options={**data.get("dataset_options", {}), **resolved.dataset_options})
        atomic_write_json(old_dir / runs.CONFIG, data)
        os.rename(old_dir, new_dir)


def check_config(config: runs.RunConfig) -> None:
    """One-line errors for a config's precision, device, step/batch/interval counts, seed, trackers, data
    set option values and a model that cannot use its data set (e.g. a pair model on one factor); the one
    place these are checked, before anything is created; changes nothing."""
    from disentangle.datasets import dataset_class
    from disentangle.devices import resolve_device
    from disentangle.models import model_class
    from disentangle.models.registry import DATA_SET_OPTIONS
    from disentangle.trackers import check_loggers
    from disentangle.validation import check_count

    runs.check_precision(config.precision)
    reserved = sorted(set(config.model_options) & set(DATA_SET_OPTIONS))
    if reserved:
        raise DisentangleError(f"model option {reserved[0]!r} is set by the data set, not by the user")
    device = resolve_device(config.device)  # a device this machine lacks fails here, before any folder exists
    if config.precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise DisentangleError(f"precision 'bf16' runs on CPU or CUDA, not {device.type}")
    for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
        check_count(getattr(config, name), name)
    if config.steps > MAX_STEPS:
        raise DisentangleError(f"steps must be at most {MAX_STEPS:,} (disentanglement_lib trains 300,000), got {config.steps:,}")
    check_count(config.seed, "seed", minimum=0)
    check_loggers(config.loggers, config.tracking_uri)  # a missing package or unreachable store: before training
    dataset_class(config.dataset).check_option_values(config.dataset_options)  # e.g. binarize="bogus", before any file is read
    cls = model_class(config.model)  # e.g. a pair model on a data set it cannot draw pairs from, before any data is read
    cls.check_dataset({**cls.default_options(), **config.model_options}, dataset_class(config.dataset).factor_sizes,
                      repr(config.dataset), dataset_options=config.dataset_options)


def model_for_config(config: runs.RunConfig):
    """The model a config describes, built without reading its data set's files (its class's image
    shape): what option values and a checkpoint's weights are checked against."""
    import math

    from disentangle.datasets import DATASETS

    cls = DATASETS.get(config.dataset)
    return config_model(config, cls.observation_shape, max(1, math.prod(cls.factor_sizes)))


def config_model(config: runs.RunConfig, observation_shape, dataset_size: int):
    """The config's model for images of ``observation_shape``: its options over the architecture that shape picks."""
    from disentangle.models import build_model
    from disentangle.models.architectures import default_architecture

    options = {"architecture": default_architecture(observation_shape), **config.model_options}
    return build_model(config.model, observation_shape=observation_shape, dataset_size=dataset_size, **options)


def check_configs(configs) -> None:
    """:func:`check_config` for each config and :func:`check_model_options` for them all: what every grid,
    study file and ``grid --dry-run`` runs, before any folder exists."""
    for config in configs:
        check_config(config)
    check_model_options(configs)


def check_model_options(configs) -> None:
    """Each distinct model of ``configs`` (name, data set, options) built once (no data: milliseconds), so that
    a bad option value (``gamma = -1``) is a one-line error before anything is created."""
    built = set()
    for config in configs:
        key = (config.model, config.dataset, repr(sorted(config.model_options.items())))
        if key not in built:
            built.add(key)
            try:
                model_for_config(config)
            except (ValueError, TypeError) as error:  # DisentangleError is a ValueError
                raise DisentangleError(f"model {config.model!r} with {config.model_options}: {error}") from None


def resolved_model_options(config: runs.RunConfig, observation_shape=None) -> dict:
    """Every model option the run trains with: the model's defaults, the architecture its data
    set's image size picks, then the options given (these win)."""
    from disentangle.datasets import dataset_class
    from disentangle.models import model_class
    from disentangle.models.architectures import default_architecture

    if observation_shape is None:
        observation_shape = dataset_class(config.dataset).observation_shape
    defaults = model_class(config.model).default_options()
    defaults["architecture"] = default_architecture(observation_shape)
    return {**defaults, **config.model_options}
