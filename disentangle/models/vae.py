"""VAE (Kingma & Welling 2014) and beta-VAE (Higgins et al. 2017): recon + beta * KL."""

from __future__ import annotations

from disentangle.models.base import BaseVAE, check_non_negative
from disentangle.models.registry import register_model


@register_model("vae")
class VAE(BaseVAE):
    """The plain ELBO."""


@register_model("beta_vae")
class BetaVAE(BaseVAE):
    """beta-VAE: Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework", ICLR 2017. Loss = recon + beta * KL."""

    def __init__(self, beta: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_non_negative("beta", beta)

    def regularizer(self, kl, z, mu, logvar, step):
        beta = self.beta * self.weight_scale(step)
        return beta * kl, {"beta": beta}
