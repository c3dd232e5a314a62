"""Likelihood scores of a trained model, for data like MNIST.

``elbo``: the evidence lower bound, nats per example. ``iwae_nll``: the
importance-weighted bound of Burda et al., "Importance Weighted Autoencoders",
ICLR 2016, with k samples (-log p(x) <= iwae_nll). ``active_units``: latents with
Cov_x(E_q[z_j | x]) > 0.01 (Burda et al. 2016).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from disentangle.datasets.base import check_positive_count


def _log_weights(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """log p(x, z) - log q(z | x) for k posterior samples per example: [k, n]."""
    from disentangle.models.base import gaussian_log_density

    mu, logvar = model.encode(x)
    out = []
    for _ in range(k):
        z = model.reparameterize(mu, logvar)
        log_px = model.log_likelihood(x, model.decode(z))
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
        log_qz = gaussian_log_density(z, mu, logvar).sum(1)
        out.append(log_px + log_pz - log_qz)
    return torch.stack(out)


def _batches(observations: np.ndarray, batch_size: int = 256):
    for start in range(0, len(observations), batch_size):
        yield torch.as_tensor(observations[start:start + batch_size])


@torch.no_grad()
def elbo(model, observations: np.ndarray) -> dict[str, float]:
    total = sum(float(_log_weights(model, x, 1)[0].sum()) for x in _batches(observations))
    return {"elbo": total / len(observations)}


@torch.no_grad()
def iwae_nll(model, observations: np.ndarray, k: int = 100) -> dict[str, float]:
    k = check_positive_count(k, "k")
    total = 0.0
    for x in _batches(observations):
        log_w = _log_weights(model, x, k)
        total += float(-(torch.logsumexp(log_w, 0) - math.log(k)).sum())
    return {"iwae_nll": total / len(observations), "iwae_k": k}


@torch.no_grad()
def active_units(model, observations: np.ndarray, threshold: float = 0.01) -> dict[str, float]:
    means = torch.cat([model.encode(x)[0] for x in _batches(observations)]).numpy()
    return {"active_units": int((np.var(means, axis=0) > threshold).sum())}
