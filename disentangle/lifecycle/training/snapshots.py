"""Images of a model while it trains, for experiment trackers: reconstructions and latent
traversals as arrays (no files, no figures), drawn without touching the training's random state."""

from __future__ import annotations

import numpy as np
import torch

from disentangle.base.devices import model_device
from disentangle.base.images import mosaic

TRAVERSAL_VALUES = np.linspace(-2.0, 2.0, 9)


@torch.no_grad()
def decode_images(model, codes: np.ndarray) -> np.ndarray:
    """Images float32 [n, C, H, W] in [0, 1] decoded from latent codes [n, d] (the sigmoid of the decoder's logits)."""
    return torch.sigmoid(model.decode(torch.as_tensor(codes, dtype=torch.float32).to(model_device(model)))).float().cpu().numpy()


def traversal_grid(model, seed_code: np.ndarray, order, values=TRAVERSAL_VALUES) -> np.ndarray:
    """Decoded traversals [len(order) * len(values), C, H, W]: row r is ``seed_code`` with latent
    ``order[r]`` set to each of ``values`` in turn."""
    codes = np.repeat(np.asarray(seed_code, dtype=np.float32)[None], len(order) * len(values), axis=0)
    for r, j in enumerate(order):
        codes[r * len(values):(r + 1) * len(values), j] = values
    return decode_images(model, codes)


@torch.no_grad()
def snapshot_images(model, dataset, seed: int = 0, n: int = 8) -> dict[str, np.ndarray]:
    """``{"reconstructions": inputs over reconstructions, "traversals": one row per latent}``, each an
    image float [H, W] (grey) or [H, W, 3] in [0, 1]. The same ``seed`` draws the same inputs at every
    checkpoint (a numpy stream of its own; torch's generator is not used), so the images compare."""
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    try:
        _, inputs = dataset.sample(n, rng)
        mean = model.encode(torch.as_tensor(inputs).to(model_device(model)))[0].float().cpu().numpy()
        reconstructions = decode_images(model, mean)
        traversals = traversal_grid(model, mean[0], range(mean.shape[1]))
    finally:
        model.train(was_training)
    return {"reconstructions": mosaic(np.concatenate([inputs, reconstructions]), 2, n),
            "traversals": mosaic(traversals, mean.shape[1], len(TRAVERSAL_VALUES))}
