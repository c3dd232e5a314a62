"""A small registry of model families: ``@register_model``, ``build_model``, ``list_models``."""

from __future__ import annotations

from disentangle.errors import DisentangleError
from disentangle.registry import Registry

MODELS = Registry("model", attribute="model_name")
register_model = MODELS.register
list_models = MODELS.names
model_class = MODELS.get


def build_model(name: str, **config):
    """Build a registered model; unknown options are reported by name."""
    cls = model_class(name)
    accepted = cls.accepted_options()
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise DisentangleError(f"unknown option {unknown[0]!r} for model {name!r}, expected one of {', '.join(sorted(accepted))}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as error:  # a value of the wrong kind, e.g. latent_dim="ten"
        given = ", ".join(f"{k}={v!r}" for k, v in config.items() if k not in ("observation_shape", "dataset_size"))
        raise DisentangleError(f"bad option value for model {name!r} ({given}): {error}") from None
