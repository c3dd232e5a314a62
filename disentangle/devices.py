"""Where tensors live: ``--device auto|cpu|cuda|cuda:N|mps``.

Device is how a run executes, not what it is: it stays out of the run id (like
``checkpoint_every``), checkpoints are saved and loaded device-free (``map_location="cpu"``),
so a run trained on a GPU resumes on a CPU and the other way.
"""

from __future__ import annotations

import contextlib

import torch

from disentangle.errors import DisentangleError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU) | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps`` -> a torch
    device, or a one-line error when the machine does not have it."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DisentangleError(f"unknown device {name!r}, expected {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DisentangleError(f"device {name!r} asked for, but this machine has no CUDA")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DisentangleError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA devices")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DisentangleError(f"device {name!r} asked for, but MPS is not available here")
    elif device.type != "cpu":
        raise DisentangleError(f"unknown device {name!r}, expected {DEVICE_CHOICES}")
    return device


def low_precision(device: torch.device, enabled: bool):
    """bfloat16 autocast for the device (CPU and CUDA), or a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    if device.type not in ("cpu", "cuda"):
        raise DisentangleError(f"precision 'bf16' runs on CPU or CUDA, not {device.type}")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def model_device(model) -> torch.device:
    """The device a model's parameters are on."""
    return next(model.parameters()).device
