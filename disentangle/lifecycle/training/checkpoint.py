"""Checkpoints holding everything a resumed run needs to continue bit for bit:
model, optimizers, step, the torch (and CUDA) and numpy RNG states and the log so far.
They load on the CPU (``map_location="cpu"``) whatever device wrote them; the trainer
moves the model to its device before the optimizer state is loaded into it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from disentangle.base.files import atomic_write_bytes
from disentangle.base.errors import DisentangleError


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


def load_checkpoint(path: Path, data: bytes | None = None) -> dict:
    """Read a checkpoint (full or weights-only) on the CPU, or a one-line error if unreadable.

    Checkpoints are untrusted files (runs are shared, studies commit them): they are read through
    the run folder's gate (:func:`disentangle.base.runs.read_run_file`: a regular file inside its folder,
    never a FIFO or a link out of it, within its size bound) and loaded with
    ``torch.load(..., weights_only=True)``, which loads tensors and plain data and never runs
    code. Everything this project writes loads that way. A file that needs full unpickling is
    refused with one line, unless ``DISENTANGLE_TRUST_CHECKPOINTS=1`` says the user trusts it.
    ``data``: the file's bytes, already read and verified (:func:`load_run_checkpoint`).
    """
    import os
    import pickle

    from disentangle.base import runs

    path = Path(path)
    if data is None:
        try:
            data = runs.read_run_file(path.parent, path.name, runs.MAX_BYTES[runs.CHECKPOINT])
        except FileNotFoundError:
            raise DisentangleError(f"{path} does not exist") from None
    trusted = os.environ.get(TRUST_VARIABLE) == "1"
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as error:
        if trusted or "Weights only load failed" not in str(error):  # a damaged file, not a refused object
            raise DisentangleError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
        raise DisentangleError(f"{path} holds Python objects beyond tensors and plain data, which could run code when "
                               f"loaded: refused (set {TRUST_VARIABLE}=1 only for a file you made yourself)") from None
    except Exception as error:  # torch raises many kinds for a damaged file
        raise DisentangleError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None


def load_run_checkpoint(run_dir: Path) -> dict:
    """A finished run's checkpoint, verified against its manifest before it is loaded
    (:func:`disentangle.base.runs.verified_checkpoint_bytes`): what evaluate, traverse, export, udr and the
    report trust, never another run's file put in its place."""
    from disentangle.base import runs

    run_dir = Path(run_dir)
    return load_checkpoint(run_dir / runs.CHECKPOINT, runs.verified_checkpoint_bytes(run_dir))


def load_weights(model, state, path: Path | str = "the checkpoint") -> None:
    """Load a checkpoint's model weights (``state["model"]``) into ``model``, or a one-line error naming
    what does not fit: a checkpoint made for another model, options or data set (shared files are untrusted)."""
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise DisentangleError(f"{path} holds no model weights (a mapping of names to tensors)")
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    reshaped = [(k, list(weights[k].shape), list(v.shape)) for k, v in expected.items() if k in weights and weights[k].shape != v.shape]
    if missing or unexpected or reshaped:
        problems = []
        if reshaped:
            name, got, want = reshaped[0]
            problems.append(f"{len(reshaped)} tensor(s) of other shapes (e.g. {name}: {got}, the model has {want})")
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} the model does not have (e.g. {unexpected[0]})")
        raise DisentangleError(f"{path} does not fit the model its config describes: {'; '.join(problems)}")
    model.load_state_dict(weights)


def restore(state: dict, model, optimizers: dict, rng: np.random.Generator, path: Path | str = "the checkpoint") -> int:
    """Load ``state`` into model, optimizers and RNGs; return the step to continue from."""
    load_weights(model, state, path)
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"])
