"""Weakly-supervised VAEs on pairs of observations: Locatello et al. 2020, "Weakly-Supervised
Disentanglement Without Compromises", ICML (reference: disentanglement_lib's
``methods/weak/weak_vae.py``).

Both observations of a pair are encoded; in the latent dimensions the pair is taken to
share, each posterior is replaced by an aggregate of the two, then both are decoded from
samples of the (partly) aggregated posteriors:

    loss = (recon(x1) + recon(x2)) / 2 + beta * (KL(q~1 || p) + KL(q~2 || p)) / 2

Which dimensions are shared:

- adaptive (``ada_gvae``, ``ada_ml_vae``): per pair, the dimensions whose KL(q1 || q2) lies
  below the midpoint of its minimum and maximum over the dimensions (the reference's two
  equal-width bins; a pair with equal KL in every dimension shares all of them);
- known changes (``group_vae``, ``ml_vae``, the reference's ``*_labels`` variants): latent
  j is tied to factor j; the dimensions of the factors the sampler changed are not shared,
  every other dimension is (``latent_dim`` >= number of factors).

Aggregates, as the reference computes them:

- ``mean`` (GVAE, Hosoya 2019): mean (mu1 + mu2) / 2, variance (s1 + s2) / 2;
- ``product`` (ML-VAE, Bouchacourt et al. 2018): the product of experts' mean
  (mu1/s1 + mu2/s2) / (1/s1 + 1/s2) with variance 2 s1 s2 / (s1 + s2) (the reference's
  choice: twice the product's variance, the harmonic mean of the two).

Pairs come from :mod:`disentangle.datasets.pairs` (``k``, ``pair_sampler``). A step draws
``batch_size`` pairs, i.e. 2 x ``batch_size`` images, encoded and decoded in one pass.
Evaluation codes single images with the encoder, as for every model.
"""

from __future__ import annotations

import numpy as np
import torch

from disentangle.datasets.pairs import PAIR_SAMPLERS, check_pair_options, sample_pair_batch
from disentangle.base.errors import DisentangleError
from disentangle.models.base import BaseVAE, check_non_negative, kl_per_dim
from disentangle.models.registry import register_model
from disentangle.base.validation import check_choice, check_count

def pairwise_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mu1, exp(logvar1)) || N(mu2, exp(logvar2))) per pair and dimension: [n, d], in nats."""
    return 0.5 * (torch.exp(logvar1 - logvar2) + (mu2 - mu1).pow(2) * torch.exp(-logvar2) - 1.0 + logvar2 - logvar1)


def adaptive_shared(kl: torch.Tensor) -> torch.Tensor:
    """bool [n, d]: the dimensions each pair shares, those whose KL lies below the midpoint of the
    row's minimum and maximum (all of them where the row is constant)."""
    low, high = kl.min(1, keepdim=True).values, kl.max(1, keepdim=True).values
    return (kl < (low + high) / 2) | (high == low)


def known_shared(changed: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """bool [n, d]: every dimension but those of the changed factors (latent j <-> factor j)."""
    shared = torch.ones(changed.shape[0], latent_dim, dtype=torch.bool, device=changed.device)
    shared[:, : changed.shape[1]] = ~changed.bool()
    return shared


def aggregate(mu1, logvar1, mu2, logvar2, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, log variance) of the two posteriors' aggregate, ``how`` = "mean" or "product" (see the module)."""
    var1, var2 = logvar1.exp(), logvar2.exp()
    if how == "mean":
        return 0.5 * (mu1 + mu2), torch.log(0.5 * (var1 + var2))
    var = 2 * var1 * var2 / (var1 + var2)
    return 0.5 * var * (mu1 / var1 + mu2 / var2), torch.log(var)


class WeakVAE(BaseVAE):
    """A beta-VAE trained on pairs; subclasses set ``aggregation`` and ``adaptive``."""

    aggregation = "mean"
    adaptive = True

    def __init__(self, beta: float = 4.0, k="random", pair_sampler: str = "locatello2020", **kwargs):
        super().__init__(**kwargs)
        self.beta = check_non_negative("beta", beta)
        # the kinds of the values; whether the data set's factors allow them is check_dataset's
        self.pair_sampler = check_choice(pair_sampler, "pair_sampler", PAIR_SAMPLERS)
        self.k = k if k == "random" else check_count(k, "k ('random' or a count)")

    @classmethod
    def check_dataset(cls, options: dict, factor_sizes, name: str = "the data set", dataset_options: dict | None = None) -> None:
        """One-line errors when pairs cannot be drawn from factors of ``factor_sizes`` or under ``dataset_options``
        (before training)."""
        if (dataset_options or {}).get("holdout"):
            raise DisentangleError(f"pair models cannot train under holdout={dataset_options['holdout']!r}: a pair's partner "
                                   "could fall in the held-out region")
        check_pair_options(factor_sizes, options["k"], options["pair_sampler"], name)
        latent_dim = options["latent_dim"]  # a value of the wrong kind is get_model's to report
        if not cls.adaptive and isinstance(latent_dim, int) and latent_dim < len(factor_sizes):
            raise DisentangleError(f"model {cls.name!r} ties latent j to factor j: latent_dim must be at least "
                                   f"{len(factor_sizes)} (the factors of {name}), got {latent_dim}")

    def draw_batch(self, dataset, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """``batch_size`` pairs: images [2 batch_size, C, H, W] (first observations, then their partners)
        and ``{"changed": bool [batch_size, K]}``."""
        images, changed = sample_pair_batch(dataset, batch_size, rng, self.k, self.pair_sampler)
        return images, {"changed": changed}

    def loss(self, x: torch.Tensor, step: int = 0, changed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``x`` [2n, C, H, W]: rows i and n + i are a pair; ``changed`` [n, K] for the known-change models."""
        n = x.shape[0] // 2
        mu, logvar = self.encode(x)
        with torch.autocast(x.device.type, enabled=False):  # the posteriors' algebra in float32
            mu1, mu2, logvar1, logvar2 = mu[:n], mu[n:], logvar[:n], logvar[n:]
            between = pairwise_kl(mu1, logvar1, mu2, logvar2)
            if self.adaptive:
                shared = adaptive_shared(between.detach())
            else:
                if changed is None:
                    raise DisentangleError(f"model {self.name!r} needs the changed factors of each pair")
                shared = known_shared(changed, self.latent_dim)
            mu_a, logvar_a = aggregate(mu1, logvar1, mu2, logvar2, self.aggregation)
            mu = torch.cat([torch.where(shared, mu_a, mu1), torch.where(shared, mu_a, mu2)])
            logvar = torch.cat([torch.where(shared, logvar_a, logvar1), torch.where(shared, logvar_a, logvar2)])
        z = self.reparameterize(mu, logvar)
        recon = self.reconstruction_loss(x, self.decode(z))  # the mean over 2n images: (recon1 + recon2) / 2
        with torch.autocast(x.device.type, enabled=False):
            per_dim = kl_per_dim(mu, logvar)  # of the aggregated posteriors, over 2n: (KL1 + KL2) / 2
            kl = per_dim.sum()
        beta = self.beta * self.weight_scale(step)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "kl_per_dim": per_dim, "z": z,
                "beta": beta, "shared_dims": shared.float().sum(1).mean().detach(),
                "pair_kl": between.sum(1).mean().detach()}

    def training_step(self, x: torch.Tensor, step: int, optimizers: dict, changed: torch.Tensor | None = None):
        out = self.loss(x, step, changed)
        optimizers["vae"].zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizers["vae"].step()
        return out


@register_model("ada_gvae")
class AdaGVAE(WeakVAE):
    """Ada-GVAE (Locatello et al. 2020): adaptive sharing, arithmetic-mean aggregate."""


@register_model("ada_ml_vae")
class AdaMLVAE(WeakVAE):
    """Ada-ML-VAE (Locatello et al. 2020): adaptive sharing, product-of-experts aggregate."""

    aggregation = "product"


@register_model("group_vae")
class GroupVAE(WeakVAE):
    """Group-VAE with the changed factors known (the reference's ``group_vae_labels``)."""

    adaptive = False


@register_model("ml_vae")
class MLVAE(WeakVAE):
    """ML-VAE with the changed factors known (the reference's ``mlvae_labels``)."""

    aggregation = "product"
    adaptive = False
