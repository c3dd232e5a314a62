"""The VAE core every family shares: Gaussian encoder, decoder likelihood, KL.

Losses follow disentanglement_lib's published study (Locatello et al. 2019):
reconstruction summed over pixels and averaged over the batch, KL to N(0, I) in
closed form. A family overrides :meth:`regularizer` (and, for adversarial
training, :meth:`configure_optimizers` / :meth:`training_step`).
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from disentangle.errors import DisentangleError
from disentangle.models.architectures import build_architecture


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent, averaged over the batch: [d]."""
    return (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)).mean(0)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def check_non_negative(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise DisentangleError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


class BaseVAE(nn.Module):
    """A VAE with a diagonal Gaussian posterior and a Bernoulli or fixed-variance Gaussian decoder."""

    model_name = "base"

    def __init__(self, observation_shape=(1, 64, 64), latent_dim: int = 10, architecture: str = "conv64",
                 decoder: str = "bernoulli", decoder_variance: float = 1.0, dataset_size: int = 737280, lr: float = 1e-4):
        super().__init__()
        if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
            raise DisentangleError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if decoder not in ("bernoulli", "gaussian"):
            raise DisentangleError(f"decoder must be 'bernoulli' or 'gaussian', got {decoder!r}")
        self.latent_dim = int(latent_dim)
        self.observation_shape = tuple(observation_shape)
        self.decoder_type = decoder
        self.decoder_variance = check_non_negative("decoder_variance", decoder_variance) or 1.0
        self.dataset_size = int(dataset_size)
        self.lr = check_non_negative("lr", lr)
        self.encoder, self.decoder = build_architecture(architecture, self.observation_shape, self.latent_dim)

    @classmethod
    def accepted_options(cls) -> set[str]:
        options = set()
        for klass in cls.__mro__:
            if klass is nn.Module:
                break
            options |= {p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "kwargs")}
        return options

    # -- the model -----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example, in nats (Gaussian: mean sigmoid(logits), fixed variance)."""
        if self.decoder_type == "bernoulli":
            per_pixel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            variance = self.decoder_variance
            per_pixel = -(torch.sigmoid(logits) - x).pow(2) / (2 * variance) - 0.5 * math.log(2 * math.pi * variance)
        return per_pixel.flatten(1).sum(1)

    def reconstruction_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-log p(x | z), summed over pixels, averaged over the batch."""
        return -self.log_likelihood(x, logits).mean()

    # -- the objective -------------------------------------------------------------
    def regularizer(self, kl: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        """The family's penalty (replaces the plain KL term) and extra terms to log."""
        return kl, {}

    def loss(self, x: torch.Tensor, step: int = 0) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        recon = self.reconstruction_loss(x, self.decode(z))
        per_dim = kl_per_dim(mu, logvar)
        kl = per_dim.sum()
        penalty, extra = self.regularizer(kl, z, mu, logvar, step)
        return {"loss": recon + penalty, "recon": recon, "kl": kl, "kl_per_dim": per_dim, "z": z, **extra}

    # -- training hooks (the trainer calls only these) -------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam(lr=1e-4), the published default."""
        return {"vae": torch.optim.Adam(self.vae_parameters(), lr=self.lr)}

    def vae_parameters(self):
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def training_step(self, x: torch.Tensor, step: int, optimizers: dict) -> dict[str, torch.Tensor]:
        out = self.loss(x, step)
        optimizers["vae"].zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizers["vae"].step()
        return out
