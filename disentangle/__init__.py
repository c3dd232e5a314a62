"""disentangle: benchmark disentangled representation learning.

The flow (see DESIGN.md): datasets -> models -> training -> runs/<id>/ ->
evaluation -> report. Each stage reads what the previous one wrote.

``disentangle.evaluate_representation`` and ``disentangle.evaluate_codes`` score a
representation from anywhere (imported on first use: the package stays light).
"""

__version__ = "0.1.0"

from disentangle.base.errors import DisentangleError  # noqa: E402

_LAZY = {"evaluate_representation": "disentangle.scoring.representation", "evaluate_codes": "disentangle.scoring.representation"}


_SUBPACKAGES = ("datasets", "metrics", "models")  # ``disentangle.datasets.get_dataset`` after only ``import disentangle``


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"disentangle.{name}")
    raise AttributeError(f"module 'disentangle' has no attribute {name!r}")


__all__ = ["DisentangleError", "__version__", "evaluate_codes", "evaluate_representation"]
