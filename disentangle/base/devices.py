"""Where tensors live: ``--device auto|cpu|cuda|cuda:N|mps``.

Device is how a run executes, not what it is: it stays out of the run id (like
``checkpoint_every``), checkpoints are saved and loaded device-free (``map_location="cpu"``),
so a run trained on a GPU resumes on a CPU and the other way.
"""

from __future__ import annotations

import contextlib

import torch

from disentangle.base.errors import DisentangleError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def parse_device(name: str = "auto") -> torch.device | None:
    """The device ``name`` spells (None for ``auto``), or a one-line error for a spelling that is none of
    auto, cpu, cuda, cuda:N, mps. Asks nothing of this machine: what a submitter checks for a run that
    trains elsewhere (see :func:`resolve_device` for where it trains)."""
    if name in (None, "auto"):
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DisentangleError(f"unknown device {name!r}, expected {DEVICE_CHOICES}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise DisentangleError(f"unknown device {name!r}, expected {DEVICE_CHOICES}")
    return device


def node_name() -> str:
    """This machine's host name, as errors about its hardware name it (a grid's tasks run on many)."""
    import socket

    return socket.gethostname()


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU) | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps`` -> a torch
    device on this machine, or a one-line error naming the node when it does not have it."""
    device = parse_device(name)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DisentangleError(f"device {name!r} asked for, but node {node_name()} has no CUDA")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DisentangleError(f"device {name!r} asked for, but node {node_name()} has {torch.cuda.device_count()} CUDA devices")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DisentangleError(f"device {name!r} asked for, but MPS is not available on node {node_name()}")
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
