"""disentangle: benchmark disentangled representation learning.

The flow (see DESIGN.md): datasets -> models -> training -> runs/<id>/ ->
evaluation -> report. Each stage reads what the previous one wrote.

``disentangle.evaluate_representation`` and ``disentangle.evaluate_codes`` score a
representation from anywhere (imported on first use: the package stays light).
"""

__version__ = "0.1.0"

from disentangle.errors import DisentangleError  # noqa: E402

_LAZY = {"evaluate_representation": "disentangle.representation", "evaluate_codes": "disentangle.representation"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'disentangle' has no attribute {name!r}")


__all__ = ["DisentangleError", "__version__", "evaluate_codes", "evaluate_representation"]
