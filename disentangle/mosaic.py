"""Image mosaics as plain numpy arrays (no figure, no file): what the trackers' snapshots and the
figures both tile, kept below both so training never imports the figure code."""

from __future__ import annotations

import numpy as np


def mosaic(images: np.ndarray, rows: int, cols: int, pad: int = 2, fill: float = 1.0) -> np.ndarray:
    """[rows * cols, C, H, W] in [0, 1] -> one [H', W'] (grey) or [H', W', 3] image."""
    n, c, h, w = images.shape
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.float32)
    for i in range(min(n, rows * cols)):
        r, k = divmod(i, cols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i].transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas
