"""The model registry: ``@register_model``, ``get_model``, ``list_models``, ``model_class``
(the shared :class:`disentangle.base.registry.Registry`; a model's options are its ``__init__``'s)."""

from __future__ import annotations

from torch import nn

from disentangle.base.registry import Registry

MODELS = Registry("model", schema_stop=nn.Module)
register_model = MODELS.register
list_models = MODELS.names
model_class = MODELS.get
DATA_SET_OPTIONS = ("observation_shape", "dataset_size")  # set from the data set, not by the user


def get_model(name: str, **config):
    """Build registered model ``name``; an unknown option or a value of the wrong kind is a one-line error."""
    return MODELS.build(name, hidden=DATA_SET_OPTIONS, **config)
