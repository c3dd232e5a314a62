"""What this machine computes fast, asked of the machine itself.

Speed choices that depend on the hardware are made here, from what the machine says
(its instruction set, oneDNN's bf16 probe, CUDA's), never from what was fastest on the
CPU this project happened to be developed on:

- **precision** ``auto``: bfloat16 autocast only where the device computes bf16
  natively (:func:`native_bf16`), fp32 elsewhere. Measured on 2-core AMD EPYC VMs
  (conv64 beta-VAE training step, batch 64, 2026-11-27 / 2026-11-30): with AVX-512 BF16
  (Zen 4) bf16 trains 1.5x as many images a second as fp32 on one thread; on an AVX2-only
  Zen 3 (no native bf16) bf16 is *emulated* and trains ~10x fewer (60-70 vs 650-730
  images/s on 2 threads).
- Choices that were measured on both CPU kinds and won on both are not switched:
  channels_last (Zen 3 fp32: +33% on 2 threads, +60% on 1) and the decoder's sub-pixel
  image layer on CPUs (Zen 3 fp32: +12% / +23%; Zen 4: +5-14%).

:func:`describe_machine` is the line every benchmark prints first.
"""

from __future__ import annotations

import functools
import os
import platform

import torch

from disentangle.base.runs import check_precision

# how much slower bf16 autocast trains than fp32 where the CPU has no native bf16: measured on a 2-core
# AMD EPYC Zen 3 (AVX2), conv64 beta-VAE, batch 64, 2026-11-30 (benchmarks/train_throughput.py)
EMULATED_BF16_SLOWDOWN = "~10x"


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels use (``AVX512``, ``AVX2``, ``DEFAULT``, ...);
    honours ``ATEN_CPU_CAPABILITY``."""
    return torch.backends.cpu.get_cpu_capability()


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively rather than emulating it.

    CPU: oneDNN's probe (``torch.ops.mkldnn._is_mkldnn_bf16_supported``, which honours
    ``ONEDNN_MAX_CPU_ISA``); CUDA: ``torch.cuda.is_bf16_supported()``; anything else: no.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    return False


def threads_here() -> int:
    """The torch threads a run takes when it is not told: torch's default for this process (which follows
    ``OMP_NUM_THREADS``, as Ray sets it to a task's CPUs), at most the CPUs the process may run on (a SLURM
    allocation binds it to its own). Resolved where the run trains, never where a grid was planned."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(torch.get_num_threads(), allowed))


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"auto"`` -> ``"bf16"`` where ``device`` computes bf16 natively, else ``"fp32"``; ``"fp32"`` and
    ``"bf16"`` unchanged; anything else a one-line error listing the choices."""
    if check_precision(precision) != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def _where(device: torch.device) -> str:
    return f"this CPU ({cpu_capability()})" if device.type == "cpu" else str(device)


def precision_reason(device: str | torch.device = "cpu") -> str:
    """Why ``auto`` resolves as it does on ``device``, in a few words (printed by the quickstart)."""
    device = torch.device(device)
    where = _where(device)
    if native_bf16(device):
        return f"{where} computes bf16 natively: bf16 autocast"
    return f"{where} has no native bf16 (it would be emulated, {EMULATED_BF16_SLOWDOWN} slower): fp32"


def bf16_emulation_warning(precision: str, device: str | torch.device = "cpu") -> str | None:
    """The one line to print when bf16 was asked for explicitly where it is emulated, else None."""
    if precision != "bf16" or native_bf16(device):
        return None
    return (f"warning: bf16 is emulated on {_where(torch.device(device))}, not native: it trains {EMULATED_BF16_SLOWDOWN} slower than fp32 "
            "(use --precision auto or fp32)")


def describe_machine() -> str:
    """One line naming the hardware a figure was measured on: CPU model, PyTorch's CPU capability,
    native bf16 yes/no, torch threads, cores, and the CUDA device if any."""
    line = (f"CPU: {cpu_model()}, {os.cpu_count()} cores, capability {cpu_capability()}, native bf16 "
            f"{'yes' if native_bf16('cpu') else 'no'}, torch {torch.__version__} with {torch.get_num_threads()} threads")
    if torch.cuda.is_available():
        line += f"; CUDA: {torch.cuda.get_device_name(0)} (native bf16 {'yes' if native_bf16('cuda') else 'no'})"
    return line


# -- probes measured once per machine and cached (training rate, encoder batch) --------------------

def _cache_file() -> "os.PathLike":
    from pathlib import Path

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "disentangle" / "probes.json"


def machine_key(precision: str, threads: int) -> str:
    """What a measured rate depends on: CPU, its capability and bf16 support, torch, precision, threads."""
    return f"{cpu_model()}|{cpu_capability()}|bf16={native_bf16('cpu')}|torch={torch.__version__}|{precision}|{threads}"


def cached_training_rate(precision: str = "fp32", threads: int = 1) -> float | None:
    """:func:`training_rate` if it was measured on this machine before, else None (nothing is measured)."""
    value = _read_cache().get(f"training_rate|{machine_key(precision, threads)}")
    return float(value) if _measured(value) else None


def _read_cache() -> dict:
    """The per-machine probe cache ({} when missing, unreadable or not a mapping)."""
    import json

    try:
        cache = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _measured(value) -> bool:
    """Whether a cached value is a measurement (a positive number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _cached(name: str, measure, use_cache: bool = True):
    """``measure()``, remembered under ``name`` in the per-machine cache file (a read-only or corrupt
    cache is measured again, never an error)."""
    from disentangle.base.files import atomic_write_json

    cache = _read_cache() if use_cache else {}
    if _measured(cache.get(name)):
        return cache[name]
    value = measure()
    if use_cache:
        try:
            atomic_write_json(_cache_file(), {**cache, name: value})
        except OSError:  # a read-only home: measure again next time
            pass
    return value


ENCODE_BATCHES = (64, 128, 256, 512)


def encode_batch_size(precision: str = "fp32", use_cache: bool = True) -> int:
    """The encoder batch (of :data:`ENCODE_BATCHES`) that codes the most images a second here, measured
    once per machine with the conv64 encoder at ``precision`` on this process's threads and cached.

    The best batch is a property of the CPU's caches: on a 2-core Zen 3 (AVX2) in fp32, 64 or 128 images
    (8,400 images/s) against 5,400 at 256; on a 2-core Zen 4, 512 in fp32 and 256 in bf16 (2026-11-27).
    The batches are timed in turn over several rounds and each is judged by its best round, so a
    moment of other load while the probe runs is not cached as this machine's answer (a single pass
    had cached 512 on the Zen 3: 6,859 images/s in evaluation against 11,387 at 64, 2026-12-01).
    """
    key = f"encode_batch_best_of_rounds|{machine_key(precision, torch.get_num_threads())}"  # (a new key: older single-pass answers re-measured)
    return int(_cached(key, lambda: _measure_encode_batch(precision), use_cache))


def _measure_encode_batch(precision: str, images: int = 1024, rounds: int = 3) -> int:
    import time

    from disentangle.base.devices import low_precision
    from disentangle.models import get_model

    torch.manual_seed(0)
    encoder = get_model("beta_vae").encoder.eval().to(memory_format=torch.channels_last)
    x = torch.rand(images, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    best = dict.fromkeys(ENCODE_BATCHES, 0.0)
    with torch.inference_mode(), low_precision(torch.device("cpu"), precision == "bf16"):
        for batch in ENCODE_BATCHES:
            encoder(x[:batch])  # warm-up: oneDNN builds its kernels for this shape
        for _ in range(rounds):  # interleaved: a burst of other load slows one round of every batch, not one batch
            for batch in ENCODE_BATCHES:
                start = time.perf_counter()
                for first in range(0, images, batch):
                    encoder(x[first:first + batch])
                best[batch] = max(best[batch], images / (time.perf_counter() - start))
    return max(best, key=best.get)


def training_rate(precision: str = "fp32", threads: int = 1, seconds: float = 3.0, use_cache: bool = True) -> float:
    """Images a second one conv64 beta-VAE run trains on this CPU (batch 64, channels_last, the
    trainer's layers) at ``precision`` on ``threads`` threads, measured for about ``seconds`` after
    two warm-up steps, and remembered per machine (``~/.cache/disentangle/probes.json``, keyed by
    :func:`machine_key`) so that repeated calls, and the budgets chosen from them, agree.
    """
    return float(_cached(f"training_rate|{machine_key(precision, threads)}", lambda: round(_measure_training_rate(precision, threads, seconds), 1),
                         use_cache))


def _measure_training_rate(precision: str, threads: int, seconds: float) -> float:
    import time

    import numpy as np

    from disentangle.datasets import get_dataset
    from disentangle.base.devices import low_precision
    from disentangle.models import get_model

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = get_model("beta_vae", beta=4.0).to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        _, images = get_dataset("dsprites").sample(64, np.random.default_rng(0))
        x = torch.from_numpy(images).contiguous(memory_format=torch.channels_last)
        steps, start = 0, None
        while True:
            if steps == 2:
                start = time.perf_counter()
            with low_precision(torch.device("cpu"), precision == "bf16"):
                loss = model.loss(x, steps)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if start is not None and steps >= 5 and time.perf_counter() - start >= seconds:
                return (steps - 2) * 64 / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
