"""Checkpoints holding everything a resumed run needs to continue bit for bit:
model, optimizers, step, the torch (and CUDA) and numpy RNG states and the log so far.
They load on the CPU (``map_location="cpu"``) whatever device wrote them; the trainer
moves the model to its device before the optimizer state is loaded into it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from disentangle._io import atomic_write_bytes, current_umask
from disentangle.errors import DisentangleError


def save_checkpoint(path: Path, model, optimizers: dict, step: int, rng: np.random.Generator, log_rows: list,
                    log_window: list | None = None) -> None:
    """Write model, optimizers, step, RNG states, log rows and the steps since the last row
    (``log_window``: a resumed run's next row averages the same steps as an uninterrupted one's)
    to ``path`` atomically."""
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "log_rows": log_rows,
        "log_window": [{k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in row.items()} for row in log_window or []],
    }
    if torch.cuda.is_available():  # the GPU's own generator draws the reparameterisation noise there
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    buffer = io.BytesIO()  # serialised in memory: a full disk is then an OSError (ENOSPC) of one plain write,
    torch.save(state, buffer)  # not a RuntimeError from deep inside torch's zip writer
    atomic_write_bytes(path, buffer.getbuffer())


TRUST_VARIABLE = "DISENTANGLE_TRUST_CHECKPOINTS"  # =1: unpickle checkpoints in full (files you made yourself only)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint (full or weights-only) on the CPU, or a one-line error if unreadable.

    Checkpoints are untrusted files (runs are shared, studies commit them): they are read with
    ``torch.load(..., weights_only=True)``, which loads tensors and plain data and never runs
    code. Everything this project writes loads that way. A file that needs full unpickling is
    refused with one line, unless ``DISENTANGLE_TRUST_CHECKPOINTS=1`` says the user trusts it.
    """
    import os
    import pickle

    trusted = os.environ.get(TRUST_VARIABLE) == "1"
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as error:
        if trusted or "Weights only load failed" not in str(error):  # a damaged file, not a refused object
            raise DisentangleError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
        raise DisentangleError(f"{path} holds Python objects beyond tensors and plain data, which could run code when "
                               f"loaded: refused (set {TRUST_VARIABLE}=1 only for a file you made yourself)") from None
    except Exception as error:  # torch raises many kinds for a damaged file
        raise DisentangleError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None


def restore(state: dict, model, optimizers: dict, rng: np.random.Generator) -> int:
    """Load ``state`` into model, optimizers and RNGs; return the step to continue from."""
    model.load_state_dict(state["model"])
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"])


def export_run(run_dir: Path, out_dir: Path) -> Path:
    """Copy a finished run to ``out_dir`` for sharing: config.json (without the data
    location), status, metrics.json, log.csv, and a ``checkpoint.pt`` with the model weights only (``{"model": ..., "step": ...}``,
    no optimizer state or RNG), which ``evaluate`` and ``traverse`` accept."""
    import shutil
    import tempfile

    from disentangle import runs

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.resolve() == run_dir.resolve():
        raise DisentangleError(f"export {run_dir} onto itself would replace its full checkpoint with the weights only: "
                               "give another folder")
    if out_dir.resolve().is_relative_to(run_dir.resolve()):
        raise DisentangleError(f"export {run_dir} into {out_dir} would nest the export inside the run it copies: give a folder outside it")
    if out_dir.exists() and any(out_dir.iterdir()) and not _same_run(run_dir, out_dir):
        raise DisentangleError(f"{out_dir} is not empty and is not an export of {run_dir}: give a new or empty folder")
    if runs.read_status(run_dir) != "done":
        raise DisentangleError(f"{run_dir} is not finished (status: {runs.read_status(run_dir)}): only finished runs are exported")
    state = load_checkpoint(run_dir / runs.CHECKPOINT)
    config = runs.read_config(run_dir)
    config.dataset_options.pop("root", None)  # where the data lived on this machine: --data-root says it elsewhere
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.export-*"):  # what a killed export left
        shutil.rmtree(stale, ignore_errors=True)
    # the export is built in a hidden sibling and renamed into place whole: a kill leaves no half export
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700; an export is meant to be shared
    try:
        torch.save({"model": state["model"], "step": state["step"]}, staging / runs.CHECKPOINT)
        runs.write_config(staging, config)
        for name in (runs.METRICS, runs.LOG, runs.STATUS):
            if (run_dir / name).exists():
                shutil.copyfile(run_dir / name, staging / name)
        if out_dir.exists():  # empty, or an earlier export of this run: replaced whole
            previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-previous-", dir=out_dir.parent))
            os.replace(out_dir, previous / "run")
            os.replace(staging, out_dir)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _same_run(run_dir: Path, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an earlier export of the same run (same config identity), which a
    new export may refresh."""
    from disentangle import runs

    try:
        return runs.read_config(out_dir).identity() == runs.read_config(run_dir).identity()
    except DisentangleError:
        return False
