"""How closely the procedural dSprites renderer matches the real data set.

For each real frame in ``../shared/data/dsprites_reference_frames.npy`` (or the
path given), search the procedural grid near the frame's centroid (every shape,
scale and orientation, positions within +-2 classes) for the image of highest
IoU, and print the median and minimum IoU, per shape and overall.

    python benchmarks/dsprites_fidelity.py [FRAMES.npy]

Target (issue 3): median >= 0.95, no frame below 0.80.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from disentangle.datasets import dsprites

_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.int32)
SHAPES = ("square", "ellipse", "heart")


def nearby_indices(frame: np.ndarray, radius: int = 2) -> np.ndarray:
    """Flat indices of every (shape, scale, orientation) at positions near the frame's centre."""
    rows, cols = np.nonzero(frame)
    to_class = lambda centre: (centre - dsprites.sprites.POSITION_OFFSET) / dsprites.sprites.POSITION_SPAN * 31  # noqa: E731
    jx = int(round(to_class((cols.min() + cols.max() + 1) / 2)))
    jy = int(round(to_class((rows.min() + rows.max() + 1) / 2)))
    xs = np.clip(np.arange(jx - radius, jx + radius + 1), 0, 31)
    ys = np.clip(np.arange(jy - radius, jy + radius + 1), 0, 31)
    sprite = np.arange(3 * 6 * 40) * 1024
    return np.unique(sprite[:, None, None] + xs[None, :, None] * 32 + ys[None, None, :])


def best_match(frame: np.ndarray, packed: np.ndarray) -> tuple[float, np.ndarray]:
    candidates = nearby_indices(frame)
    target = np.packbits(frame, axis=-1)
    inter = _POPCOUNT[packed[candidates] & target].sum((1, 2))
    union = _POPCOUNT[packed[candidates] | target].sum((1, 2))
    iou = inter / union
    best = int(iou.argmax())
    return float(iou[best]), dsprites.index_to_factors(candidates[best:best + 1])[0]


def main(path: str) -> None:
    frames = np.load(path) > 0
    start = time.perf_counter()
    packed = dsprites.render_grid_packed(progress=False)
    print(f"rendered the procedural grid in {time.perf_counter() - start:.1f} s")
    results = [best_match(frame, packed) for frame in frames]
    ious = np.array([r[0] for r in results])
    shapes = np.array([r[1][0] for r in results])
    print(f"{'frame':>5} {'IoU':>6}  shape  scale orient posX posY")
    for number, (iou, factors) in enumerate(results):
        print(f"{number:5d} {iou:6.3f}  {factors[0]:5d} {factors[1]:6d} {factors[2]:6d} {factors[3]:4d} {factors[4]:4d}")
    for code, name in enumerate(SHAPES):
        chosen = ious[shapes == code]
        if len(chosen):
            print(f"{name:8s} frames={len(chosen):3d} median IoU={np.median(chosen):.3f} min IoU={chosen.min():.3f}")
    print(f"ALL      frames={len(ious):3d} median IoU={np.median(ious):.3f} min IoU={ious.min():.3f}  "
          f"(target: median >= 0.95, min >= 0.80)")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dsprites_reference_frames.npy"
    main(sys.argv[1] if len(sys.argv) > 1 else str(default))
