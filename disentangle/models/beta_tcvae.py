"""beta-TCVAE: Chen et al., "Isolating Sources of Disentanglement in VAEs", NeurIPS 2018.

Loss = recon + KL + (beta - 1) * TC, the total correlation TC = KL(q(z) || prod_j q(z_j))
estimated on the minibatch by minibatch-weighted sampling (MWS) or, with
``stratified=True``, minibatch-stratified sampling (MSS), both from the paper.
"""

from __future__ import annotations

import math

import torch

from disentangle.models.base import BaseVAE, check_non_negative, gaussian_log_density
from disentangle.models.registry import register_model


def _log_weights(batch_size: int, dataset_size: int, stratified: bool) -> torch.Tensor:
    """log of the importance weight of sample j when estimating q(z_i) [M, M]."""
    m, n = batch_size, dataset_size
    if not stratified or m < 2:
        return torch.full((m, m), -math.log(n * m))
    # MSS (Chen et al. 2018, appendix C): z_i's own x_i counts 1/N, one other 
    # neighbour carries the stratum (N - M + 1) / (N (M - 1)), the rest 1/(M - 1).
    weights = torch.full((m, m), 1.0 / (m - 1))
    index = torch.arange(m)
    weights[index, index] = 1.0 / n
    weights[index, (index + 1) % m] = (n - m + 1) / (n * (m - 1))
    return weights.log()


def total_correlation(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                      stratified: bool = False) -> torch.Tensor:
    """Minibatch estimate of TC = E_q(z)[log q(z) - sum_j log q(z_j)], in nats."""
    # log q(z_i | x_j) per dimension: [M (samples i), M (data j), d]
    log_q = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_w = _log_weights(z.shape[0], dataset_size, stratified).to(z)
    log_qz = torch.logsumexp(log_q.sum(2) + log_w, dim=1)
    log_prod_marginals = torch.logsumexp(log_q + log_w[:, :, None], dim=1).sum(1)
    return (log_qz - log_prod_marginals).mean()


@register_model("beta_tcvae")
class BetaTCVAE(BaseVAE):
    """recon + KL + (beta - 1) * TC, TC by minibatch-weighted (or, ``stratified``, minibatch-stratified) sampling."""
    def __init__(self, beta: float = 6.0, stratified: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_non_negative("beta", beta)
        self.stratified = bool(stratified)

    def regularizer(self, kl, z, mu, logvar, step):
        tc = total_correlation(z, mu, logvar, self.dataset_size, self.stratified)
        weight = (self.beta - 1.0) * self.weight_scale(step)
        return kl + weight * tc, {"tc": tc.detach(), "beta": 1.0 + weight}
