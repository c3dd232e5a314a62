"""AnnealedVAE: Burgess et al., "Understanding disentangling in beta-VAE", 2018.

Loss = recon + gamma * |KL - C|, with the capacity C rising linearly from 0 to
``c_max`` over ``iteration_threshold`` steps (defaults as in disentanglement_lib), or along
``capacity_schedule`` (the schedules of :mod:`disentangle.models.schedules`, e.g. ``"cosine:50000"``).
"""

from __future__ import annotations

from disentangle.models.base import BaseVAE, check_non_negative
from disentangle.models.schedules import parse_schedule
from disentangle.models.registry import register_model


def capacity(step: int, c_max: float, iteration_threshold: int) -> float:
    """The capacity C (nats) at ``step``: linear from 0 to ``c_max`` at ``iteration_threshold``."""
    return min(c_max, c_max * step / iteration_threshold)


@register_model("annealed_vae")
class AnnealedVAE(BaseVAE):
    """recon + gamma * |KL - C(step)| (Burgess et al. 2018); defaults as in disentanglement_lib."""
    def __init__(self, gamma: float = 1000.0, c_max: float = 25.0, iteration_threshold: int = 100000, capacity_schedule: str = "",
                 **kwargs):
        super().__init__(**kwargs)
        self.gamma = check_non_negative("gamma", gamma)
        self.c_max = check_non_negative("c_max", c_max)
        self.iteration_threshold = max(1, int(check_non_negative("iteration_threshold", iteration_threshold)))
        # the capacity's rise in the schedules' vocabulary: "" is the reference's, linear:<iteration_threshold>
        self.capacity_schedule = parse_schedule(capacity_schedule, "capacity_schedule") if capacity_schedule else None

    def capacity(self, step: int) -> float:
        """C at ``step``: ``c_max`` times the capacity schedule (linear over ``iteration_threshold`` by default)."""
        if self.capacity_schedule is None:
            return capacity(step, self.c_max, self.iteration_threshold)
        return self.c_max * self.capacity_schedule(step)

    def schedule_warnings(self, steps: int) -> list[str]:
        if self.capacity_schedule is None and steps < self.iteration_threshold:
            reached = capacity(steps, self.c_max, self.iteration_threshold)
            return [f"annealed_vae: capacity reaches {reached:g} of c_max={self.c_max:g} nats by step {steps} "
                    f"(iteration_threshold={self.iteration_threshold}); set iteration_threshold <= steps to reach it"]
        return []

    def regularizer(self, kl, z, mu, logvar, step):
        c = self.capacity(step)
        return self.gamma * self.weight_scale(step) * (kl - c).abs(), {"C": c, **self.scheduled(step, gamma=self.gamma)}
