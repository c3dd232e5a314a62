"""Hausdorff factorized support (HFS): Roth et al., "Disentanglement of Correlated Factors via
Hausdorff Factorized Support", ICLR 2023.

Where β-VAE asks the aggregate posterior to *factorize*, HFS asks only its *support* to: the set
of latent pairs the encoder uses should be the product of the sets each latent uses alone, so
correlated training factors may stay correlated in the codes without being entangled. The
penalty, per sampled latent pair (i, j), is the one-sided Hausdorff distance from the batch's
product support {(z_ai, z_bj)} (all B² combinations) to the batch's own pairs {(z_ki, z_kj)},
with squared Euclidean distances:

.. math:: \\hat d_H = \\sum_{(i, j)} \\max_{a, b} \\min_k \\left[(z_{ai} - z_{ki})^2 + (z_{bj} - z_{kj})^2\\right]

on the posterior means. Defaults follow the reference (facebookresearch/
disentangling-correlated-factors, ``dent/losses/factorizedsupportvae.py``, ``Loss.__call__``
with ``matching='hausdorff_hard'``, ``factorized_support_estimation='full'``,
``num_latent_pairs=25``, ``latent_select='pair'``, and its scale regulariser off, ``delta=0``):
loss = recon + β · KL + γ · d̂_H. ``hfs_tcvae`` is the reference's ``factorizedsupporttcvae``
form: the β-TCVAE objective (here this package's, :mod:`.beta_tcvae`) plus the same γ · d̂_H.
"""

from __future__ import annotations

import itertools

import torch

from disentangle.models.base import BaseVAE, check_non_negative
from disentangle.models.beta_tcvae import BetaTCVAE
from disentangle.models.registry import register_model
from disentangle.base.validation import check_count


def hausdorff_support_distance(z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Σ over latent ``pairs`` of the hard Hausdorff distance from the batch's product support to the batch.

    Parameters
    ----------
    z : Tensor [B, d]
        Codes (posterior means).
    pairs : LongTensor [P, 2]
        Latent index pairs (i, j).

    Returns
    -------
    Tensor []
        Σ_p max_{a, b} min_k (z_ai − z_ki)² + (z_bj − z_kj)², zero iff every product point is in the batch.

    Examples
    --------
    The diagonal z₂ = z₁ over {0, 1} misses the corners (0, 1) and (1, 0), each at squared distance 1:

    >>> hausdorff_support_distance(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[0, 1]])).item()
    1.0
    """
    first, second = z[:, pairs[:, 0]], z[:, pairs[:, 1]]  # [B, P]
    # product point (a, b) against batch point k: (z_ai - z_ki)^2 + (z_bj - z_kj)^2, summed without the B^2 x 2 product tensor
    to_first = (first[:, None, :] - first[None, :, :]).pow(2)  # [a, k, P]
    to_second = (second[:, None, :] - second[None, :, :]).pow(2)  # [b, k, P]
    batch, num_pairs = first.shape
    rows = max(1, _SUPPORT_CHUNK_ELEMENTS // max(1, batch * batch * num_pairs))  # product rows a per chunk: bounded memory
    nearest = [(to_first[start:start + rows, None, :, :] + to_second[None, :, :, :]).min(dim=2).values  # [a chunk, b, P]
               for start in range(0, batch, rows)]
    return torch.cat(nearest).flatten(0, 1).max(dim=0).values.sum()  # min and max are exact: any chunking gives the same value


_SUPPORT_CHUNK_ELEMENTS = 1 << 25  # [a, b, k, P] distances held at once: 128 MB of float32 (batch 64 with 25 pairs: one chunk)


def _all_pairs(latent_dim: int) -> torch.Tensor:
    return torch.tensor(list(itertools.combinations(range(latent_dim), 2)), dtype=torch.long).reshape(-1, 2)


class _FactorizedSupport:
    """The γ · d̂_H term over ``num_latent_pairs`` latent pairs drawn afresh each step (all pairs when
    fewer exist), drawn from torch's generator so a seeded run repeats."""

    def _init_support(self, gamma: float, num_latent_pairs: int):
        self.gamma = check_non_negative("gamma", gamma)
        self.num_latent_pairs = check_count(num_latent_pairs, "num_latent_pairs")
        self._latent_pairs = _all_pairs(self.latent_dim)

    def support_penalty(self, mu: torch.Tensor) -> torch.Tensor:
        available = self._latent_pairs.to(mu.device)
        if len(available) == 0:
            return mu.new_zeros(())
        if self.num_latent_pairs < len(available):
            available = available[torch.randperm(len(available), device=mu.device)[:self.num_latent_pairs]]
        return hausdorff_support_distance(mu, available)


@register_model("hfs_vae")
class HFSVAE(_FactorizedSupport, BaseVAE):
    """β-VAE + γ · Hausdorff factorized support (Roth et al. 2023): recon + β · KL + γ · d̂_H on the
    posterior means. β = 0 (support only) is allowed, as in the reference's ``hfs_only`` grid."""

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, num_latent_pairs: int = 25, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_non_negative("beta", beta)
        self._init_support(gamma, num_latent_pairs)

    def regularizer(self, kl, z, mu, logvar, step):
        scale = self.weight_scale(step)
        support = self.support_penalty(mu)
        return scale * (self.beta * kl + self.gamma * support), {"hfs": support.detach(), "beta": self.beta * scale}


@register_model("hfs_tcvae")
class HFSTCVAE(_FactorizedSupport, BetaTCVAE):
    """β-TCVAE + γ · Hausdorff factorized support (the reference's ``factorizedsupporttcvae``)."""

    def __init__(self, beta: float = 6.0, gamma: float = 1.0, num_latent_pairs: int = 25, **kwargs):
        super().__init__(beta=beta, **kwargs)
        self._init_support(gamma, num_latent_pairs)

    def regularizer(self, kl, z, mu, logvar, step):
        penalty, extra = super().regularizer(kl, z, mu, logvar, step)
        support = self.support_penalty(mu)
        return penalty + self.gamma * self.weight_scale(step) * support, {**extra, "hfs": support.detach()}
