"""Check training on a GPU, and that runs move between GPU and CPU.

    python benchmarks/gpu_check.py [--steps 300] [--device cuda]

Where CUDA is present it (1) trains a β-VAE (conv64, batch 64) for ``--steps`` steps on the
GPU and prints images/s in fp32 and bf16 beside the same run on the CPU; (2) stops a GPU
run half way, resumes it on the CPU (and a CPU run on the GPU) and prints the largest
parameter difference against the run trained straight through on one device. Expected:
resumption on the same device is bit-identical (difference 0); across devices the kernels
differ, so parameters agree to about 1e-3 after a few hundred steps (stated, not asserted).
Without CUDA it says so and exits 0: the tests cover the CPU path.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from disentangle.base import runs
from disentangle.lifecycle.training import train
from disentangle.lifecycle.training.checkpoint import load_checkpoint


def _config(steps: int, device: str, precision: str = "fp32", seed: int = 0) -> runs.RunConfig:
    return runs.RunConfig(model="beta_vae", dataset="dsprites", steps=steps, seed=seed, batch_size=64,
                          model_options={"beta": 4.0}, precision=precision, checkpoint_every=max(1, steps // 2), device=device)


def _weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / runs.CHECKPOINT)["model"]


def _max_difference(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def throughput(steps: int, device: str, precision: str, folder: Path) -> float:
    start = time.perf_counter()
    train(_config(steps, device, precision), folder / f"{device}-{precision}", progress=False)
    return steps * 64 / (time.perf_counter() - start)


def cross_device(steps: int, first: str, second: str, folder: Path) -> float:
    """Train half on ``first``, resume on ``second``; max |difference| to a straight run on ``first``."""
    straight = train(_config(steps, first), folder / "straight", progress=False)
    half = _config(steps // 2, first)
    moved_dir = folder / f"{first}-to-{second}"
    run_dir = train(half, moved_dir, progress=False)
    target = moved_dir / _config(steps, second).run_id()
    shutil.copytree(run_dir, target)
    runs.write_status(target, "running")  # as a run stopped half way looks
    resumed = train(_config(steps, second), moved_dir, progress=False)
    return _max_difference(_weights(straight), _weights(resumed))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    from disentangle.lifecycle.hardware import describe_machine

    print(describe_machine())
    if not torch.cuda.is_available():
        print("no CUDA on this machine: nothing to check here (the test suite covers the CPU path)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for precision in ("fp32", "bf16"):
            gpu = throughput(args.steps, args.device, precision, folder)
            cpu = throughput(min(args.steps, 100), "cpu", precision, folder)
            print(f"{precision}: {args.device} {gpu:,.0f} images/s, cpu {cpu:,.0f} images/s ({gpu / cpu:.1f}x)")
        print(f"resume {args.device} -> cpu: max |parameter difference| = {cross_device(args.steps, args.device, 'cpu', folder / 'a'):.2e}")
        print(f"resume cpu -> {args.device}: max |parameter difference| = {cross_device(args.steps, 'cpu', args.device, folder / 'b'):.2e}")
        print(f"resume {args.device} -> {args.device}: max |parameter difference| = "
              f"{cross_device(args.steps, args.device, args.device, folder / 'c'):.2e} (expected 0)")


if __name__ == "__main__":
    main()
