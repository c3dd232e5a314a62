"""AnnealedVAE: Burgess et al., "Understanding disentangling in beta-VAE", 2018.

Loss = recon + gamma * |KL - C|, with the capacity C rising linearly from 0 to
``c_max`` over ``iteration_threshold`` steps (defaults as in disentanglement_lib).
"""

from __future__ import annotations

from disentangle.models.base import BaseVAE, check_non_negative
from disentangle.models.registry import register_model


def capacity(step: int, c_max: float, iteration_threshold: int) -> float:
    """The capacity C (nats) at ``step``: linear from 0 to ``c_max`` at ``iteration_threshold``."""
    return min(c_max, c_max * step / iteration_threshold)


@register_model("annealed_vae")
class AnnealedVAE(BaseVAE):
    """recon + gamma * |KL - C(step)| (Burgess et al. 2018); defaults as in disentanglement_lib."""
    def __init__(self, gamma: float = 1000.0, c_max: float = 25.0, iteration_threshold: int = 100000, **kwargs):
        super().__init__(**kwargs)
        self.gamma = check_non_negative("gamma", gamma)
        self.c_max = check_non_negative("c_max", c_max)
        self.iteration_threshold = max(1, int(check_non_negative("iteration_threshold", iteration_threshold)))

    def schedule_warnings(self, steps: int) -> list[str]:
        if steps < self.iteration_threshold:
            reached = capacity(steps, self.c_max, self.iteration_threshold)
            return [f"annealed_vae: capacity reaches {reached:g} of c_max={self.c_max:g} nats by step {steps} "
                    f"(iteration_threshold={self.iteration_threshold}); set iteration_threshold <= steps to reach it"]
        return []

    def regularizer(self, kl, z, mu, logvar, step):
        c = capacity(step, self.c_max, self.iteration_threshold)
        return self.gamma * (kl - c).abs(), {"C": c}
