"""The data set registry: ``@register_dataset``, ``dataset_class``, ``list_datasets``.

A data set declares itself once, with its factor names and sizes, observation shape
and files, and the CLI (``datasets list/prepare/verify``), study files and the trainer
read the declaration (the same :class:`disentangle.base.registry.Registry` as models).
"""

from __future__ import annotations

from disentangle.base.registry import Registry

DATASETS = Registry("dataset", attribute="name")
register_dataset = DATASETS.register
list_datasets = DATASETS.names
dataset_class = DATASETS.get
