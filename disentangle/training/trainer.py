"""The training loop: one run from a :class:`RunConfig` to ``runs/<run-id>/``.

Batches come straight from the data set's sampler (no DataLoader: procedural
dSprites renders 65k images/s, far ahead of the model). Seeded and deterministic
on CPU; checkpoints hold every RNG state, so a run killed at any moment and
resumed ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import inspect
import io
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from disentangle import runs
from disentangle._io import atomic_write_text
from disentangle.datasets import dataset_class, get_dataset
from disentangle.devices import low_precision, resolve_device
from disentangle.errors import DisentangleError
from disentangle.hardware import PRECISIONS, resolve_precision
from disentangle.models import build_model
from disentangle.training.checkpoint import load_checkpoint, restore, save_checkpoint
from disentangle.validation import check_count

DEFAULT_ARCHITECTURE = {(64, 64): "conv64", (28, 28): "conv28"}


class TrainingFailed(RuntimeError):
    """The loss became NaN or inf; the run's status says so."""


MAX_STEPS = 10_000_000  # 33x disentanglement_lib's 300,000: beyond it a typo is likelier than a plan


def resolve_auto_precision(config: runs.RunConfig) -> runs.RunConfig:
    """Resolve ``precision="auto"`` in place (bf16 where the run's device computes it natively, else
    fp32; :func:`disentangle.hardware.resolve_precision`) before anything reads the run id; return ``config``."""
    if config.precision == "auto":
        config.precision = resolve_precision("auto", resolve_device(config.device))
    return config


def check_config(config: runs.RunConfig) -> None:
    """One-line errors for a config's precision, step/batch/interval counts and seed."""
    resolve_auto_precision(config)
    if config.precision not in PRECISIONS:
        raise DisentangleError(f"precision must be one of auto, {', '.join(PRECISIONS)}, got {config.precision!r}")
    reserved = sorted(set(config.model_options) & {"observation_shape", "dataset_size"})
    if reserved:
        raise DisentangleError(f"model option {reserved[0]!r} is set by the data set, not by --set")
    device = resolve_device(config.device)  # a device this machine lacks fails here, before any folder exists
    if config.precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise DisentangleError(f"precision 'bf16' runs on CPU or CUDA, not {device.type}")
    for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
        check_count(getattr(config, name), name)
    if config.steps > MAX_STEPS:
        raise DisentangleError(f"steps must be at most {MAX_STEPS:,} (disentanglement_lib trains 300,000), got {config.steps:,}")
    check_count(config.seed, "seed", minimum=0)
    from disentangle.models import model_class

    cls = model_class(config.model)  # e.g. a pair model on a data set it cannot draw pairs from, before any data is read
    cls.check_dataset({**cls.default_options(), **config.model_options}, dataset_class(config.dataset).factor_sizes,
                      repr(config.dataset))


def default_architecture(observation_shape) -> str:
    """The architecture a data set's image size picks when none is given: conv64, conv28 or mlp."""
    return DEFAULT_ARCHITECTURE.get(tuple(observation_shape[1:]), "mlp")


def resolved_model_options(config: runs.RunConfig, observation_shape=None) -> dict:
    """Every model option the run trains with: the model's defaults, the architecture its data
    set's image size picks, then the options given (these win)."""
    from disentangle.models import model_class

    if observation_shape is None:
        observation_shape = dataset_class(config.dataset).observation_shape
    defaults = model_class(config.model).default_options()
    defaults["architecture"] = default_architecture(observation_shape)
    return {**defaults, **config.model_options}


def build(config: runs.RunConfig, dataset=None):
    """The data set (unless given) and model a config describes."""
    if dataset is None:
        dataset = get_dataset(config.dataset, **config.dataset_options)
    options = dict(config.model_options)
    options.setdefault("architecture", default_architecture(dataset.observation_shape))
    model = build_model(config.model, observation_shape=dataset.observation_shape, dataset_size=len(dataset), **options)
    return dataset, model


def evaluation_dataset_options(config: runs.RunConfig, split: str = "train", data_root: str | Path | None = None) -> dict:
    """The data set options to score a run on ``split``, its files under ``data_root``.

    A run trained on dynamically binarised images is scored on the held-out split's
    one fixed binarisation (``binarize="fixed"``, the run's ``binarize_seed``).
    """
    options = dict(config.dataset_options)
    if data_root is not None:
        options["root"] = str(data_root)
    if split != "train":
        options["split"] = split
        if options.get("binarize") == "dynamic":
            options["binarize"] = "fixed"
    return options


def load_trained(run_dir: str | Path, split: str = "train", data_root: str | Path | None = None, device: str = "cpu",
                 in_memory: bool = False):
    """(config, dataset, model in eval mode on ``device``) of a run with a checkpoint; ``in_memory``:
    ask the data set for its in-memory cache, if it has one (how it is read, not which data).

    ``checkpoint.pt`` may be a full training checkpoint or hold the model weights
    only (``{"model": state_dict}``, as committed study checkpoints do).
    """
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if not (run_dir / runs.CHECKPOINT).exists():
        raise DisentangleError(f"{run_dir} has no {runs.CHECKPOINT}: train it first")
    options = evaluation_dataset_options(config, split, data_root)
    if in_memory and "in_memory" in inspect.signature(dataset_class(config.dataset).__init__).parameters:
        options.setdefault("in_memory", True)
    try:
        dataset = get_dataset(config.dataset, **options)
    except DisentangleError as error:
        if split != "train" and "split" in str(error):
            raise DisentangleError(f"dataset {config.dataset!r} has no {split!r} split") from None
        raise
    _, model = build(config, dataset)
    model.load_state_dict(load_checkpoint(run_dir / runs.CHECKPOINT)["model"])
    return config, dataset, model.to(resolve_device(device)).eval()


def _log_row(step: int, window: list[dict], images_per_s: float) -> dict:
    """Means over the steps since the last row; the per-step values stay tensors until here."""
    row = {"step": step}
    for key in window[0]:
        mean = torch.stack([torch.as_tensor(w[key]).to("cpu", torch.float64) for w in window]).mean(0)
        if key == "kl_per_dim":
            row.update({f"kl_{j}": float(value) for j, value in enumerate(mean)})
        else:
            row[key] = float(mean)
    row["images_per_s"] = images_per_s
    return row


def _write_log(path: Path, rows: list[dict]) -> None:
    """Rewrite log.csv from ``rows`` (at the start of a run or resume: drops any partial tail)."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _append_log(path: Path, rows: list[dict]) -> None:
    """Append the newest row to log.csv (one short write instead of rewriting the whole file).

    A crash mid-write can leave a partial last line; resuming rewrites the log from the
    checkpoint's rows, so the log a finished run keeps is always whole.
    """
    if len(rows) == 1 or not path.exists():
        _write_log(path, rows)
        return
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=list(rows[0])).writerow(rows[-1])
    with open(path, "a", encoding="utf-8") as log:
        log.write(buffer.getvalue())


def _detached(out: dict) -> dict:
    """The step's loggable outputs, detached (no conversion to Python numbers in the hot loop)."""
    return {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in out.items() if k != "z"}


def train(config: runs.RunConfig, runs_dir: str | Path = "runs", progress: bool = True, threads: int | None = None) -> Path:
    """Train (or resume, or skip when done) the run ``config`` describes; return its folder.

    Raises :class:`TrainingFailed` when the loss turns NaN/inf (status ``failed: ...``,
    the last good checkpoint kept) and :class:`runs.RunLocked` when another process
    holds the run.
    """
    return train_if_needed(config, runs_dir, progress, threads)[0]


def train_if_needed(config: runs.RunConfig, runs_dir: str | Path = "runs", progress: bool = True,
                    threads: int | None = None) -> tuple[Path, bool]:
    """Like :func:`train`; also says whether this call trained (False: it was already done)."""
    check_config(config)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    dataset, model = build(config)  # bad configs fail here, before any folder exists
    for message in model.schedule_warnings(config.steps):
        warnings.warn(message, stacklevel=2)
    run_dir = Path(runs_dir) / config.run_id()
    if Path(runs_dir).exists() and not Path(runs_dir).is_dir():
        raise DisentangleError(f"runs folder {runs_dir} is a file, expected a folder")
    with runs.run_lock(run_dir):
        if runs.read_status(run_dir) == "done" and (run_dir / runs.CHECKPOINT).exists():
            check_checkpoint_loads(run_dir)
            return run_dir, False
        runs.write_config(run_dir, config, resolved_model_options(config, dataset.observation_shape))
        try:
            _train_locked(config, dataset, model, run_dir, progress)
        except TrainingFailed as error:
            _record_status(run_dir, f"failed: {error}")
            raise
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM, or a cluster job exiting to be requeued
            _record_status(run_dir, runs.INTERRUPTED)  # resumable: the next train or grid continues it
            raise
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                _record_status(run_dir, f"failed: {type(error).__name__}: {error}")
                raise
            _record_status(run_dir, runs.INTERRUPTED)  # not the run's fault: resumable once there is room
            raise DisentangleError(f"no space left on the device of {run_dir}: the last good checkpoint is kept; "
                                   "free space and run again to resume") from None
        except BaseException as error:
            _record_status(run_dir, f"failed: {type(error).__name__}: {error}")
            raise
        runs.write_status(run_dir, "done")
    return run_dir, True


def _record_status(run_dir: Path, status: str) -> None:
    """Write the status of a run that stopped, if the disk lets us: on a full disk it keeps saying
    ``running``, which readers show as interrupted once no process holds the run."""
    with contextlib.suppress(OSError):
        runs.write_status(run_dir, status)


def check_checkpoint_loads(run_dir: Path) -> None:
    """A one-line error when a finished run's checkpoint.pt does not load (a run is only as done as
    its weights): the run is broken, not skipped."""
    try:
        load_checkpoint(run_dir / runs.CHECKPOINT)
    except DisentangleError as error:
        raise DisentangleError(f"{run_dir} is marked done but is broken: {error}; delete it to train the run again") from None


def compile_loss(model) -> None:
    """Replace ``model.loss`` by its ``torch.compile`` d version (undone by :func:`_training_step` if
    compiling fails). Random draws inside stay eager's (``fallback_random``), so a seed draws the
    same noise compiled or not."""
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    model.loss = torch.compile(model.loss)


def _training_step(model, x, step: int, optimizers: dict, device, bf16: bool, progress: bool, extra: dict) -> dict:
    """One optimisation step; a compiled loss that fails to compile is dropped (a warning) and the
    step runs eagerly from the same state: compiling happens before anything is computed."""
    compiled = "loss" in vars(model)
    rng_state = torch.get_rng_state() if compiled else None
    start = time.perf_counter()
    try:
        with low_precision(device, bf16):
            out = model.training_step(x, step, optimizers, **extra)
    except torch._dynamo.exc.TorchDynamoException as error:
        if not compiled:
            raise
        warnings.warn(f"torch.compile failed ({str(error).strip().splitlines()[0]}): training eagerly", stacklevel=2)
        del model.loss  # the class's eager method again
        torch.set_rng_state(rng_state)
        with low_precision(device, bf16):
            return model.training_step(x, step, optimizers, **extra)
    if compiled and not getattr(model, "_compile_reported", False):
        model._compile_reported = True
        if progress:
            tqdm.write(f"torch.compile: the first step (compiling) took {time.perf_counter() - start:.1f} s")
    return out


def _train_locked(config: runs.RunConfig, dataset, model, run_dir: Path, progress: bool) -> None:
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    model.to(device=device, memory_format=torch.channels_last)  # before the optimizers see the parameters
    optimizers = model.configure_optimizers()
    if config.compile:
        compile_loss(model)
    step, log_rows, window = 0, [], []
    checkpoint_path = run_dir / runs.CHECKPOINT
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        step = restore(state, model, optimizers, rng)
        log_rows, window = state["log_rows"], state.get("log_window", [])
    _write_log(run_dir / runs.LOG, log_rows)
    runs.write_status(run_dir, runs.RUNNING)
    model.train()
    bf16 = config.precision == "bf16"
    memory_format = torch.channels_last  # oneDNN's fast layout for these convolutions, in fp32 and bf16
    images, tick = 0, time.perf_counter()
    bar = tqdm(total=config.steps, initial=step, desc=config.run_id(), unit="step", disable=not progress, leave=False)
    while step < config.steps:
        batch, extra = model.draw_batch(dataset, config.batch_size, rng)  # images (pair models: 2 per pair), extra inputs
        x = torch.from_numpy(batch)
        if device.type == "cuda":
            x = x.pin_memory().to(device, non_blocking=True)
        x = x.to(device).contiguous(memory_format=memory_format)
        extra = {name: torch.from_numpy(value).to(device) for name, value in extra.items()}
        out = _training_step(model, x, step, optimizers, device, bf16, progress, extra)
        loss = float(out["loss"].detach())
        if not math.isfinite(loss):
            raise TrainingFailed(f"loss is {loss} at step {step}")
        step += 1
        window.append(_detached(out))
        images += len(x)
        if step % config.log_every == 0 or step == config.steps:
            rate = images / max(time.perf_counter() - tick, 1e-9)
            log_rows.append(_log_row(step, window, rate))
            _append_log(run_dir / runs.LOG, log_rows)
            bar.set_postfix(loss=f"{log_rows[-1]['loss']:.1f}", img_s=f"{rate:.0f}")
            window, images, tick = [], 0, time.perf_counter()
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint_path, model, optimizers, step, rng, log_rows, window)
        bar.update(1)
    bar.close()
