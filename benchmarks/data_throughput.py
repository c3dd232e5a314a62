"""dSprites data throughput: batches of 64 observations per second, and grid build time.

    python benchmarks/data_throughput.py

Prints images/s of ``sample_observations_from_factors`` for a batch of 64 from
(a) the bit-packed in-memory cache, (b) on-the-fly rendering, and (c) a naive
baseline in this file (evaluate the analytic shape at every pixel centre of the
full 64x64 image, one image at a time), plus the time to render the whole grid.
Target (issue 3): >= 100,000 images/s; whole grid <= 60 s; cache <= 400 MB.
"""

from __future__ import annotations

import time

import numpy as np

from disentangle.datasets import DSprites, dsprites, sprites

BATCH = 64


def images_per_second(sample, seconds: float = 2.0) -> float:
    rng = np.random.default_rng(0)
    factors = [DSprites().sample_factors(BATCH, rng) for _ in range(64)]
    sample(factors[0], rng)  # warm up (textures, allocator)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sample(factors[done % len(factors)], rng)
        done += 1
    return done * BATCH / (time.perf_counter() - start)


def naive_render(factors: np.ndarray, rng=None) -> np.ndarray:
    """The obvious renderer: for each image, rotate all 4096 pixel centres and test the shape."""
    values = dsprites.factor_values()
    centres = np.arange(64) + 0.5
    rows, cols = np.meshgrid(centres, centres, indexing="ij")
    out = np.empty((len(factors), 1, 64, 64), np.float32)
    for i, (shape, scale, orientation, x, y) in enumerate(factors):
        dx = cols - sprites.position_to_pixels(values[3][x])
        dy = rows - sprites.position_to_pixels(values[4][y])
        c, s, k = np.cos(values[2][orientation]), np.sin(values[2][orientation]), values[1][scale]
        out[i, 0] = sprites.SHAPES[shape]((c * dx - s * dy) / k, (s * dx + c * dy) / k)
    return out


def main() -> None:
    from disentangle.lifecycle.hardware import describe_machine

    print(describe_machine())
    print(f"batch {BATCH}")
    start = time.perf_counter()
    cached = DSprites(in_memory=True)
    build = time.perf_counter() - start
    print(f"whole grid (737,280 images) rendered and bit-packed in {build:.1f} s "
          f"({cached._packed.nbytes / 2**20:.0f} MiB in memory)  [target <= 60 s, <= 400 MB]")
    on_the_fly = DSprites()
    rates = {
        "bit-packed cache": images_per_second(cached.sample_observations_from_factors),
        "on-the-fly render": images_per_second(on_the_fly.sample_observations_from_factors),
        "naive baseline": images_per_second(naive_render),
    }
    for name, rate in rates.items():
        print(f"{name:18s} {rate:12,.0f} images/s  ({rate / rates['naive baseline']:.1f}x naive)")
    print("target: >= 100,000 images/s")


if __name__ == "__main__":
    main()
