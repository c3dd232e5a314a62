"""The VAE core every family shares: Gaussian encoder, decoder likelihood, KL.

Losses follow disentanglement_lib's published study (Locatello et al. 2019):
reconstruction summed over pixels and averaged over the batch, KL to N(0, I) in
closed form. A family overrides :meth:`regularizer` (and, for adversarial
training, :meth:`configure_optimizers` / :meth:`training_step`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from disentangle.base.errors import DisentangleError
from disentangle.models.architectures import build_architecture
from disentangle.models.schedules import parse_schedule
from disentangle.models.registry import DATA_SET_OPTIONS
from disentangle.base.registry import REQUIRED, schema


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent, averaged over the batch: [d]."""
    return (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)).mean(0)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def check_non_negative(name: str, value) -> float:
    """``value`` as a finite float >= 0, or a one-line error naming ``name``."""
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise DisentangleError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """``value`` as a finite float > 0, or a one-line error naming ``name``."""
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise DisentangleError(f"{name} must be a finite number > 0, got {value!r}")
    return value


DECODERS = ("bernoulli", "gaussian", "l2")


class BaseVAE(nn.Module):
    """A VAE with a diagonal Gaussian posterior and one of three decoders.

    ``decoder="bernoulli"`` (the reference's default): -log p(x|z) = sum of sigmoid
    cross-entropies. ``"gaussian"``: a Gaussian likelihood with mean sigmoid(logits)
    and fixed ``decoder_variance`` (> 0). ``"l2"``: disentanglement_lib's ``l2_loss``,
    sum (x - sigmoid(logits))^2, a reconstruction error with no likelihood (ELBO and
    IWAE refuse it).

    μ, log σ² and every loss term are float32 even under bfloat16 autocast: only the
    networks run in low precision.
    """

    name = "base"

    def __init__(self, observation_shape=(1, 64, 64), latent_dim: int = 10, architecture: str = "conv64",
                 decoder: str = "bernoulli", decoder_variance: float = 1.0, dataset_size: int = 737280, lr: float = 1e-4,
                 beta_schedule: str = "constant"):
        super().__init__()
        if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
            raise DisentangleError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if decoder not in DECODERS:
            raise DisentangleError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        self.latent_dim = int(latent_dim)
        self.observation_shape = tuple(observation_shape)
        self.decoder_type = decoder
        self.decoder_variance = check_positive("decoder_variance", decoder_variance)
        self.dataset_size = int(dataset_size)
        self.lr = check_non_negative("lr", lr)
        self.beta_schedule = parse_schedule(beta_schedule)  # the regularisation weight's multiplier by step
        self.encoder, self.decoder = build_architecture(architecture, self.observation_shape, self.latent_dim)

    @classmethod
    def accepted_options(cls) -> set[str]:
        """The names of every option the model takes (its schema: :func:`disentangle.base.registry.schema`)."""
        return set(schema(cls, nn.Module))

    @classmethod
    def default_options(cls) -> dict:
        """Every hyperparameter with the value it takes when not given (shape and data-set size excluded)."""
        return {name: option.default for name, option in schema(cls, nn.Module).items()
                if name not in DATA_SET_OPTIONS and option.default is not REQUIRED}

    # -- the model -----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def reconstruction_error(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Per example [n], in float32: -log p(x | z) in nats, or the squared error for ``l2``."""
        logits, x = logits.float(), x.float()
        if self.decoder_type == "bernoulli":
            per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        elif self.decoder_type == "l2":
            per_pixel = (x - torch.sigmoid(logits)).pow(2)
        else:
            variance = self.decoder_variance
            per_pixel = (torch.sigmoid(logits) - x).pow(2) / (2 * variance) + 0.5 * math.log(2 * math.pi * variance)
        return per_pixel.flatten(1).sum(1)

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example [n], in nats; the ``l2`` decoder has none."""
        if self.decoder_type == "l2":
            raise DisentangleError("decoder 'l2' is a squared error, not a likelihood: "
                                   "likelihood scores need decoder 'bernoulli' or 'gaussian'")
        return -self.reconstruction_error(x, logits)

    def reconstruction_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The reconstruction term: summed over pixels, averaged over the batch."""
        return self.reconstruction_error(x, logits).mean()

    def schedule_warnings(self, steps: int) -> list[str]:
        """Why a run of ``steps`` steps would not reach this model's schedule (none by default)."""
        return []

    # -- the objective -------------------------------------------------------------
    def weight_scale(self, step: int) -> float:
        """The multiplier of the family's regularisation weight at ``step`` (``beta_schedule``; 1 when constant)."""
        return self.beta_schedule(step)

    def scheduled(self, step: int, **weights: float) -> dict:
        """The scheduled values of the named weights, to log beside the loss terms (none when constant)."""
        if self.beta_schedule.kind == "constant":
            return {}
        scale = self.weight_scale(step)
        return {name: value * scale for name, value in weights.items()}

    def regularizer(self, kl: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        """The family's penalty (replaces the plain KL term) and extra terms to log: here the KL,
        weighted by the schedule (a KL warm-up; 1 when constant)."""
        if self.beta_schedule.kind == "constant":
            return kl, {}
        return self.weight_scale(step) * kl, self.scheduled(step, kl_weight=1.0)

    def loss(self, x: torch.Tensor, step: int = 0) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        recon = self.reconstruction_loss(x, self.decode(z))
        with torch.autocast(x.device.type, enabled=False):  # the terms in float32, whatever the networks ran in
            per_dim = kl_per_dim(mu, logvar)
            kl = per_dim.sum()
            penalty, extra = self.regularizer(kl, z, mu, logvar, step)
        return {"loss": recon + penalty, "recon": recon, "kl": kl, "kl_per_dim": per_dim, "z": z, **extra}

    # -- training hooks (the trainer calls only these) -------------------------------
    @classmethod
    def check_dataset(cls, options: dict, factor_sizes, name: str = "the data set", dataset_options: dict | None = None) -> None:
        """One-line errors when a model of this class with ``options`` (defaults filled in) cannot train
        on a data set with factors of ``factor_sizes`` and ``dataset_options``; checked before any data is
        read (none here)."""

    def draw_batch(self, dataset, batch_size: int, rng) -> tuple:
        """One training batch from ``dataset``: (images float32 [batch_size, C, H, W], extra inputs of
        :meth:`training_step` as arrays: none here)."""
        _, images = dataset.sample(batch_size, rng)
        return images, {}

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
