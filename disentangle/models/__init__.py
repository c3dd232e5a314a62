"""Model registry: ``get_model(name, **config)``, ``list_models()``, ``@register_model``."""

from disentangle.models import annealed_vae, beta_tcvae, dip_vae, factor_vae, hfs, vae, weak  # noqa: F401  (registers)
from disentangle.models.base import BaseVAE, kl_per_dim
from disentangle.models.registry import get_model, list_models, model_class, register_model

__all__ = ["BaseVAE", "get_model", "kl_per_dim", "list_models", "model_class", "register_model"]
