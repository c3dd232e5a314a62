"""DIP-VAE-I and -II: Kumar et al., "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", ICLR 2018.

Both add lambda_od * sum_{i != j} Cov[i, j]^2 + lambda_d * sum_i (Cov[i, i] - 1)^2
to the ELBO. DIP-VAE-I matches Cov_x[mu(x)]; DIP-VAE-II matches the covariance of
q(z) itself, E_x[diag exp(logvar)] + Cov_x[mu(x)]. The paper's settings:
lambda_d = 10 lambda_od for I, lambda_d = lambda_od for II.
"""

from __future__ import annotations

import torch

from disentangle.models.base import BaseVAE, check_non_negative
from disentangle.models.registry import register_model


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Covariance [d, d] of the rows of ``x`` [n, d] (ddof 0)."""
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / x.shape[0]


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od * sum of squared off-diagonal entries + lambda_d * sum (diag - 1)^2 of ``cov``."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


class _DIPVAE(BaseVAE):
    lambda_d_factor = 1.0

    def __init__(self, lambda_od: float = 10.0, lambda_d: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lambda_od = check_non_negative("lambda_od", lambda_od)
        self.lambda_d = check_non_negative("lambda_d", self.lambda_d_factor * self.lambda_od if lambda_d is None else lambda_d)

    def regularizer(self, kl, z, mu, logvar, step):
        penalty = dip_penalty(self.covariance(mu, logvar), self.lambda_od, self.lambda_d)
        return kl + self.weight_scale(step) * penalty, {"dip": penalty.detach(), **self.scheduled(step, lambda_od=self.lambda_od)}


@register_model("dip_vae_i")
class DIPVAEI(_DIPVAE):
    """DIP-VAE-I: matches Cov[mu(x)] to I; lambda_d defaults to 10 lambda_od."""
    lambda_d_factor = 10.0

    @staticmethod
    def covariance(mu, logvar):
        return covariance(mu)


@register_model("dip_vae_ii")
class DIPVAEII(_DIPVAE):
    """DIP-VAE-II: matches Cov[z] = Cov[mu(x)] + E[diag exp(logvar)] to I; lambda_d defaults to lambda_od."""
    lambda_d_factor = 1.0

    @staticmethod
    def covariance(mu, logvar):
        return covariance(mu) + torch.diag(logvar.exp().mean(0))
