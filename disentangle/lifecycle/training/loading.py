"""Loading what a config or a finished run describes: its data set and model (:func:`build`), or
the trained model back from its folder (:func:`load_trained`) for evaluation and figures."""

from __future__ import annotations

import os
from pathlib import Path

from disentangle.base import runs
from disentangle.datasets import get_dataset
from disentangle.datasets.registry import DATASETS
from disentangle.base.devices import resolve_device
from disentangle.base.errors import DisentangleError
from disentangle.lifecycle.training.checkpoint import load_checkpoint, load_run_checkpoint, load_weights
from disentangle.base.profiles import DISTRIBUTIONS
from disentangle.lifecycle.setup import config_model as _config_model, model_for_config  # noqa: F401 (re-exported)
from disentangle.base.validation import check_choice


def build(config: runs.RunConfig, dataset=None):
    """The data set (unless given) and model a config describes."""
    if dataset is None:
        dataset = get_dataset(config.dataset, **config.dataset_options)
    return dataset, _config_model(config, dataset.observation_shape, len(dataset))


def evaluation_dataset_options(config: runs.RunConfig, split: str = "train", data_root: str | Path | None = None,
                               distribution: str = "unaltered") -> dict:
    """The data set options to score a run on ``split``, its files under ``data_root``.

    A run trained on correlated factors (``correlations``) or on part of the grid (``holdout``) is
    scored on the set's full, independent factor grid (``distribution="unaltered"``, as Roth et
    al. 2023 do), or on the joint it trained on (``"training"``). A holdout run keeps its
    ``holdout`` either way, so the out-of-distribution scores find the held-out region.

    A run trained on dynamically binarised images is scored on the held-out split's
    one fixed binarisation (``binarize="fixed"``, the run's ``binarize_seed``).
    """
    check_choice(distribution, "distribution", DISTRIBUTIONS)
    options = dict(config.dataset_options)
    if distribution == "unaltered":
        options.pop("correlations", None)
        if options.get("holdout"):
            options["holdout_part"] = "all"
    if data_root is not None:
        options["root"] = str(data_root)
    if split != "train":
        options["split"] = split
        if options.get("binarize") == "dynamic":
            options["binarize"] = "fixed"
    return options


def load_trained(run_dir: str | Path, split: str = "train", data_root: str | Path | None = None, device: str = "auto",
                 in_memory: bool = False, distribution: str = "unaltered"):
    """(config, dataset, model in eval mode on ``device``) of a run with a checkpoint; ``in_memory``:
    ask the data set for its in-memory cache, if it has one (how it is read, not which data);
    ``distribution``: see :func:`evaluation_dataset_options`.

    ``checkpoint.pt`` may be a full training checkpoint or hold the model weights
    only (``{"model": state_dict}``, as committed study checkpoints do).
    """
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if not os.path.lexists(run_dir / runs.CHECKPOINT):
        raise DisentangleError(f"{run_dir} has no {runs.CHECKPOINT}: train it first")
    state = load_run_checkpoint(run_dir)  # verified before anything is built on it
    options = evaluation_dataset_options(config, split, data_root, distribution)
    if in_memory and "in_memory" in DATASETS.options(config.dataset):
        options.setdefault("in_memory", True)
    try:
        dataset = get_dataset(config.dataset, **options)
    except DisentangleError as error:
        if split != "train" and "split" in str(error):
            raise DisentangleError(f"dataset {config.dataset!r} has no {split!r} split") from None
        raise
    _, model = build(config, dataset)
    load_weights(model, state, run_dir / runs.CHECKPOINT)
    return config, dataset, model.to(resolve_device(device)).eval()


def check_checkpoint_loads(run_dir: Path) -> None:
    """A one-line error when a finished run's checkpoint.pt is not one to trust (a run is only as done as
    its weights): the run is broken, not skipped. A run with a manifest is judged by it, never loaded: the
    file read once through the gate, its size and md5 the manifest's, the manifest this run's (11 ms for an
    8 MB training checkpoint), or a stat when this machine already verified the file as it now is
    (:func:`disentangle.base.runs.checkpoint_verified`); an older run is loaded."""
    try:
        if runs.read_manifest(run_dir) is not None:
            runs.checkpoint_verified(run_dir)  # a stat when this machine verified the file as it is now
            return
        data = runs.verified_checkpoint_bytes(run_dir)
    except DisentangleError as error:
        raise DisentangleError(f"{run_dir} is marked done but is broken: {str(error).partition(' is broken: ')[2]}; "
                               "delete it to train the run again") from None
    try:
        load_checkpoint(run_dir / runs.CHECKPOINT, data)
    except DisentangleError as error:
        raise DisentangleError(f"{run_dir} is marked done but is broken: {error}; delete it to train the run again") from None