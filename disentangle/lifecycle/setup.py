"""One home for preparing a run: what a :class:`~disentangle.base.runs.RunConfig` means on this machine.

Every entry point (``train``, ``grid``, study files, the quickstart, Ray and SLURM tasks) hands its
configs to :func:`prepare_runs` (or :func:`prepare_run`), which resolves them (option values
normalised: ``beta = 4`` and ``4.0`` are one run), checks each once, before anything is created, and
renames a run stored under an older id. None of this asks the machine it runs on anything: a grid is
planned on a login node and trains elsewhere, so a run's id and its checks are the same wherever it is
planned. What depends on the machine (the device, ``precision="auto"``, threads) is resolved by
:func:`resolve_here`, in the process that trains, and recorded in the run folder. The run folder
contract itself (ids, files, status, locks) is :mod:`disentangle.base.runs`, which imports nothing above it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from disentangle.base import runs
from disentangle.base.files import atomic_write_json
from disentangle.base.errors import DisentangleError

MAX_STEPS = 10_000_000  # 33x disentanglement_lib's 300,000: beyond it a typo is likelier than a plan


def prepare_run(config: runs.RunConfig, runs_dir: str | Path) -> runs.RunConfig:
    """``config`` resolved (:func:`resolve_config`), checked (:func:`check_config`) and, when a run
    was stored under its legacy id in ``runs_dir``, that folder renamed to the resolved id."""
    return prepare_runs([config], runs_dir)[0]


def prepare_runs(configs, runs_dir: str | Path) -> list[runs.RunConfig]:
    """:func:`prepare_run` for each config (in order, one result each), all checked before any folder is touched."""
    resolved = [resolve_config(config) for config in configs]
    check_configs(resolved)
    ready_runs_folder(configs, resolved, runs_dir)
    return resolved


def ready_runs_folder(given, resolved, runs_dir: str | Path) -> None:
    """What preparing does to the runs folder once ``resolved`` (:func:`resolve_config` of each of ``given``, in
    order) are checked: each run stored under an older id renamed (:func:`migrate_legacy_run`: the older ids hash
    the configs as given) and each tracker store created once, before any worker starts."""
    from disentangle.lifecycle.trackers import prepare_trackers

    for config_as_given, config in zip(given, resolved):
        migrate_legacy_run(Path(runs_dir), config_as_given, config)
    prepare_trackers(resolved, Path(runs_dir))


def resolve_config(config: runs.RunConfig) -> runs.RunConfig:
    """A copy of ``config`` as its run id is made, the same on every machine: option values normalised
    (:func:`normalized_options`: ``beta = 4`` and ``beta = 4.0`` are one run) and correlations spelled
    canonically; ``precision="auto"`` stays ``auto`` (its node resolves it: :func:`resolve_here`)."""
    from disentangle.datasets import DATASETS
    from disentangle.models.registry import MODELS

    dataset_options = normalized_options(DATASETS, config.dataset, config.dataset_options)
    try:  # correlations spelled canonically: " posX : posY : 0.20" and "posX:posY:0.2" are one run
        from disentangle.datasets.base import canonical_joint_options

        dataset_options = canonical_joint_options(dataset_options, DATASETS.get(config.dataset).factor_names)
    except DisentangleError:
        pass  # an unknown data set or a bad value: check_config names it
    return dataclasses.replace(config, model_options=normalized_options(MODELS, config.model, config.model_options),
                               dataset_options=dataset_options)


def resolve_here(config: runs.RunConfig, recorded: dict | None = None, threads: int | None = None) -> dict:
    """What this machine, the one that trains ``config``, makes of it: the :data:`~disentangle.base.runs.TRAINED_WITH`
    record (precision, device, node, threads). ``precision="auto"`` is bf16 where the device computes it
    natively, else fp32, unless ``recorded`` (the run's record from an earlier start) fixed it already; a device
    this node lacks is a one-line error naming the node. ``threads`` (None: what this process was given, see
    :func:`disentangle.lifecycle.hardware.threads_here`) are set for torch."""
    import torch

    from disentangle.base.devices import node_name, resolve_device
    from disentangle.lifecycle.hardware import resolve_precision, threads_here

    device = resolve_device(config.device)  # (bf16 on a device without it: refused by check_config, as spelled)
    if config.precision == "auto" and recorded:
        precision = recorded["precision"]  # a resumed run keeps the arithmetic it started with
    else:
        precision = resolve_precision(config.precision, device)
    torch.set_num_threads(threads or threads_here())
    return {"precision": precision, "device": str(device), "node": node_name(), "threads": torch.get_num_threads()}


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
    """Rename a run stored under an older id of ``resolved`` to the id it has now, and rewrite its config.json
    to match; nothing if there is none, or if a folder already has the new id. Older ids: made before option
    values were normalised (their id hashed ``beta = 4``, now ``4.0``), and, for ``precision="auto"``, made
    when the planner resolved auto into the id (fp32 or bf16: the precision it then trained in is recorded)."""
    precisions = runs.PRECISIONS if resolved.precision == "auto" else (resolved.precision,)
    new_dir = Path(runs_dir) / resolved.run_id()
    if new_dir.exists():
        return
    for options in ({"model_options": dict(given.model_options), "dataset_options": dict(given.dataset_options)}, {}):
        for precision in precisions:
            legacy = dataclasses.replace(resolved, precision=precision, **options)
            old_dir = Path(runs_dir) / legacy.run_id()
            if old_dir != new_dir and old_dir.is_dir():
                _rename_run(old_dir, new_dir, resolved, precision)
                return


def _rename_run(old_dir: Path, new_dir: Path, resolved: runs.RunConfig, trained_in: str) -> None:
    with runs.run_lock(old_dir):
        runs.readdress_manifest(old_dir, old_dir.name, new_dir.name)
        data = runs.read_config_data(old_dir)
        data.update(model_options=resolved.model_options, dataset_options={**data.get("dataset_options", {}), **resolved.dataset_options})
        if data.get("precision") != resolved.precision:  # a planner resolved "auto" into the old id
            data.update(precision=resolved.precision, **{runs.TRAINED_WITH: {**(runs.trained_with(data) or {}), "precision": trained_in}})
        atomic_write_json(old_dir / runs.CONFIG, data)
        os.rename(old_dir, new_dir)


def check_config(config: runs.RunConfig) -> None:
    """One-line errors for a config's precision, device, step/batch/interval counts, seed, trackers, data
    set option values and a model that cannot use its data set (e.g. a pair model on one factor); the one
    place these are checked, before anything is created; changes nothing. Nothing here depends on the
    machine that checks (a device is checked as spelled; whether a node has it, where it trains)."""
    from disentangle.datasets import dataset_class
    from disentangle.base.devices import parse_device
    from disentangle.models import model_class
    from disentangle.models.registry import DATA_SET_OPTIONS
    from disentangle.lifecycle.trackers import check_loggers
    from disentangle.base.validation import check_count

    runs.check_precision(config.precision)
    reserved = sorted(set(config.model_options) & set(DATA_SET_OPTIONS))
    if reserved:
        raise DisentangleError(f"model option {reserved[0]!r} is set by the data set, not by the user")
    device = parse_device(config.device)  # a misspelt device fails here; a node without it, where it trains (resolve_here)
    if config.precision == "bf16" and device is not None and device.type not in ("cpu", "cuda"):
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
    from disentangle.models import get_model
    from disentangle.models.architectures import default_architecture

    options = {"architecture": default_architecture(observation_shape), **config.model_options}
    return get_model(config.model, observation_shape=observation_shape, dataset_size=dataset_size, **options)


def check_configs(configs) -> None:
    """:func:`check_config` for each config and :func:`check_model_options` for them all: what every grid,
    study file and ``grid --dry-run`` runs, before any folder exists."""
    for config in configs:
        check_config(config)
    check_model_options(configs)


def check_here(configs) -> None:
    """For runs that train on this machine (``train``, a local grid): a one-line error for a device it lacks,
    before any worker starts (a remote grid's tasks find that out on their nodes: :func:`resolve_here`)."""
    from disentangle.base.devices import resolve_device

    for device in dict.fromkeys(config.device for config in configs):
        resolve_device(device)


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
