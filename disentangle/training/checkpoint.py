"""Checkpoints holding everything a resumed run needs to continue bit for bit:
model, optimizers, step, the torch and numpy RNG states and the log so far."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from disentangle._io import atomic_path
from disentangle.errors import DisentangleError


def save_checkpoint(path: Path, model, optimizers: dict, step: int, rng: np.random.Generator, log_rows: list) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "log_rows": log_rows,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise DisentangleError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None


def restore(state: dict, model, optimizers: dict, rng: np.random.Generator) -> int:
    """Load ``state`` into model, optimizers and RNGs; return the step to continue from."""
    model.load_state_dict(state["model"])
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"])
