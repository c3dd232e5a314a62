"""FactorVAE: Kim & Mnih, "Disentangling by Factorising", ICML 2018.

Loss = recon + KL + gamma * TC, the total correlation estimated by a discriminator
telling q(z) from the product of its marginals (samples with each dimension
permuted across the batch): TC ~ E[D_real(z) - D_perm(z)] (density-ratio trick).
The discriminator (the reference's 6 x 1000, LeakyReLU 0.2; ``discriminator_layers`` and
``discriminator_hidden`` change it) has its own Adam (lr 1e-4, betas (0.5, 0.9)) and takes its
step inside :meth:`training_step`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from disentangle.models.architectures import glorot_init
from disentangle.models.base import BaseVAE, check_non_negative
from disentangle.models.registry import register_model
from disentangle.base.validation import check_count


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch."""
    n, d = z.shape
    order = torch.argsort(torch.rand(n, d, device=z.device), dim=0)
    return torch.gather(z, 0, order)


def discriminator(latent_dim: int, hidden: int = 1000, layers: int = 6) -> nn.Sequential:
    """The FactorVAE discriminator: ``layers`` x ``hidden`` LeakyReLU(0.2) layers, 2 logits, Glorot-initialised."""
    modules, width = [], latent_dim
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    modules.append(nn.Linear(width, 2))  # logits: (from q(z), from prod q(z_j))
    return glorot_init(nn.Sequential(*modules))


@register_model("factor_vae")
class FactorVAE(BaseVAE):
    """recon + KL + gamma * TC, TC from a discriminator trained in the same step (density-ratio trick)."""
    def __init__(self, gamma: float = 10.0, discriminator_lr: float = 1e-4, discriminator_hidden: int = 1000,
                 discriminator_layers: int = 6, **kwargs):
        super().__init__(**kwargs)
        self.gamma = check_non_negative("gamma", gamma)
        self.discriminator_lr = check_non_negative("discriminator_lr", discriminator_lr)
        self.discriminator = discriminator(self.latent_dim, check_count(discriminator_hidden, "discriminator_hidden"),
                                           check_count(discriminator_layers, "discriminator_layers"))

    def regularizer(self, kl, z, mu, logvar, step):
        logits = self.discriminator(z)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        return kl + self.gamma * self.weight_scale(step) * tc, {"tc": tc.detach(), **self.scheduled(step, gamma=self.gamma)}

    def configure_optimizers(self):
        optimizers = super().configure_optimizers()
        optimizers["discriminator"] = torch.optim.Adam(self.discriminator.parameters(), lr=self.discriminator_lr, betas=(0.5, 0.9))
        return optimizers

    def training_step(self, x, step, optimizers):
        out = self.loss(x, step)
        optimizers["vae"].zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizers["vae"].step()
        # the discriminator learns to tell samples of q(z) from permuted ones
        z = out["z"].detach()
        logits_real, logits_perm = self.discriminator(z), self.discriminator(permute_dims(z))
        zeros = torch.zeros(len(z), dtype=torch.long, device=z.device)
        d_loss = 0.5 * (F.cross_entropy(logits_real, zeros) + F.cross_entropy(logits_perm, zeros + 1))
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()
        out["discriminator_loss"] = d_loss.detach()
        return out
