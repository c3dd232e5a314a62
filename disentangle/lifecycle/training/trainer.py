"""The training loop: one run from a :class:`RunConfig` to ``runs/<run-id>/`` (its checks:
:mod:`disentangle.base.runs`; building and loading: :mod:`.loading`; log.csv: :mod:`.log`).

Batches come straight from the data set's sampler (no DataLoader: procedural
dSprites renders 65k images/s, far ahead of the model). Seeded and deterministic
on CPU; checkpoints hold every RNG state, so a run killed at any moment and
resumed ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import errno
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from disentangle.base import runs
from disentangle.base.signals import handled_between_steps
from disentangle.lifecycle.trackers import Trackers, run_params
from disentangle.base.devices import low_precision
from disentangle.base.errors import DisentangleError
from disentangle.lifecycle.setup import prepare_run, resolve_config, resolve_here, resolved_model_options
from disentangle.lifecycle.training import log as training_log
from disentangle.lifecycle.training.checkpoint import load_checkpoint, restore, save_checkpoint
from disentangle.lifecycle.training.loading import build, check_checkpoint_loads


class TrainingFailed(RuntimeError):
    """The loss became NaN or inf; the run's status says so."""


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
    return train_prepared(prepare_run(config, runs_dir), runs_dir, progress, threads)


def train_prepared(config: runs.RunConfig, runs_dir: str | Path = "runs", progress: bool = True,
                   threads: int | None = None) -> tuple[Path, bool]:
    """:func:`train_if_needed` for a config that already went through
    :func:`disentangle.lifecycle.setup.prepare_runs` (a grid's task: every run checked before any trains);
    one that was not (its options not normalised, so its run id not final) is refused.

    Ctrl-C, SIGTERM and a cluster's requeue signal are acted on between steps (and once the model
    is built), never inside torch's C++ or one of the imports building a model sets off: see
    :func:`disentangle.base.signals.handled_between_steps`."""
    if resolve_config(config).run_id() != config.run_id():  # (4 == 4.0 in a dict: the ids tell them apart)
        raise ValueError(f"{config.run_id()}: train_prepared takes a config from prepare_runs; use train_if_needed")
    with handled_between_steps() as stop_if_asked:
        return _train_if_needed(config, runs_dir, progress, threads, stop_if_asked)


def _train_if_needed(config: runs.RunConfig, runs_dir, progress: bool, threads: int | None, stop_if_asked) -> tuple[Path, bool]:
    run_dir = Path(runs_dir) / config.run_id()
    here = resolve_here(config, _recorded(run_dir), threads)  # this node's facts; one lacking the device fails here, nothing made
    torch.manual_seed(config.seed)
    dataset, model = build(config)  # bad configs fail here, before any folder exists
    stop_if_asked()
    for message in model.schedule_warnings(config.steps):
        warnings.warn(message, stacklevel=2)
    if Path(runs_dir).exists() and not Path(runs_dir).is_dir():
        raise DisentangleError(f"runs folder {runs_dir} is a file, expected a folder")
    with runs.run_lock(run_dir):
        if runs.read_status(run_dir) == "done" and (run_dir / runs.CHECKPOINT).exists():
            check_checkpoint_loads(run_dir)
            return run_dir, False
        runs.write_config(run_dir, config, resolved_model_options(config, dataset.observation_shape), trained_with=here)
        try:
            _train_locked(config, here, dataset, model, run_dir, progress, stop_if_asked)
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
        runs.write_manifest(run_dir, config.run_id())  # before "done": a finished run always has one
        runs.write_status(run_dir, "done")
    return run_dir, True


def _recorded(run_dir: Path) -> dict | None:
    """The run's :data:`~disentangle.base.runs.TRAINED_WITH` record from an earlier start, None for a new run (or an unreadable record)."""
    try:
        return runs.trained_with(runs.read_config_data(run_dir))
    except DisentangleError:
        return None


def _record_status(run_dir: Path, status: str) -> None:
    """Write the status of a run that stopped, if the disk lets us: on a full disk it keeps saying
    ``running``, which readers show as interrupted once no process holds the run."""
    with contextlib.suppress(OSError):
        runs.write_status(run_dir, status)


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


def _train_locked(config: runs.RunConfig, here: dict, dataset, model, run_dir: Path, progress: bool, stop_if_asked) -> None:
    rng = np.random.default_rng(config.seed)
    device = torch.device(here["device"])
    model.to(device=device, memory_format=torch.channels_last)  # before the optimizers see the parameters
    optimizers = model.configure_optimizers()
    if config.compile:
        compile_loss(model)
    step, log_rows, window = 0, [], []
    checkpoint_path = run_dir / runs.CHECKPOINT
    (run_dir / runs.MANIFEST).unlink(missing_ok=True)  # a finished checkpoint's record: this one is not finished
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        step = restore(state, model, optimizers, rng, checkpoint_path)
        log_rows, window = state["log_rows"], state.get("log_window", [])
    training_log.write_log(run_dir / runs.LOG, log_rows)
    runs.write_status(run_dir, runs.RUNNING)
    params = run_params(config, resolved_model_options(config, dataset.observation_shape))
    with Trackers(run_dir, config.loggers, params, config.tracking_uri) as trackers:
        for row in log_rows:  # a resumed run: what its trackers do not hold yet (nothing, usually)
            trackers.row(row)
        _loop(config, here["precision"] == "bf16", dataset, model, optimizers, device, checkpoint_path, step, rng, log_rows, window,
              trackers, progress, stop_if_asked)


def _loop(config, bf16: bool, dataset, model, optimizers, device, checkpoint_path: Path, step: int, rng, log_rows: list, window: list,
          trackers: Trackers, progress: bool, stop_if_asked) -> None:
    run_dir = checkpoint_path.parent
    model.train()
    memory_format = torch.channels_last  # oneDNN's fast layout for these convolutions, in fp32 and bf16
    images, tick = 0, time.perf_counter()
    bar = tqdm(total=config.steps, initial=step, desc=config.run_id(), unit="step", disable=not progress, leave=False)
    while step < config.steps:
        stop_if_asked()
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
            log_rows.append(training_log.log_row(step, window, rate))
            training_log.append_log(run_dir / runs.LOG, log_rows)
            bar.set_postfix(loss=f"{log_rows[-1]['loss']:.1f}", img_s=f"{rate:.0f}")
            trackers.row(log_rows[-1])
            window, images, tick = [], 0, time.perf_counter()
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint_path, model, optimizers, step, rng, log_rows, window)
            if trackers.open:
                from disentangle.lifecycle.training.snapshots import snapshot_images

                trackers.images(snapshot_images(model, dataset, config.seed), step)
        bar.update(1)
    bar.close()
