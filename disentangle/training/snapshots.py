"""Images of a model while it trains, for experiment trackers: reconstructions and latent
traversals as arrays (no files, no figures), drawn without touching the training's random state."""

from __future__ import annotations

import numpy as np
import torch

from disentangle.devices import model_device
from disentangle.mosaic import mosaic

TRAVERSAL_VALUES = np.linspace(-2.0, 2.0, 9)


@torch.no_grad()
def snapshot_images(model, dataset, seed: int = 0, n: int = 8) -> dict[str, np.ndarray]:
    """``{"reconstructions": inputs over reconstructions, "traversals": one row per latent}``, each an
    image float [H, W] (grey) or [H, W, 3] in [0, 1]. The same ``seed`` draws the same inputs at every
    checkpoint (a numpy stream of its own; torch's generator is not used), so the images compare."""
    rng = np.random.default_rng(seed)
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        _, inputs = dataset.sample(n, rng)
        mean = model.encode(torch.as_tensor(inputs).to(device))[0].float()
        reconstructions = torch.sigmoid(model.decode(mean)).float().cpu().numpy()
        d = mean.shape[1]
        codes = mean[:1].repeat(d * len(TRAVERSAL_VALUES), 1)
        for j in range(d):
            codes[j * len(TRAVERSAL_VALUES):(j + 1) * len(TRAVERSAL_VALUES), j] = torch.as_tensor(TRAVERSAL_VALUES, dtype=codes.dtype)
        traversals = torch.sigmoid(model.decode(codes)).float().cpu().numpy()
    finally:
        model.train(was_training)
    return {"reconstructions": mosaic(np.concatenate([inputs, reconstructions]), 2, n),
            "traversals": mosaic(traversals, d, len(TRAVERSAL_VALUES))}
