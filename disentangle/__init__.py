"""disentangle: benchmark disentangled representation learning.

The flow (see DESIGN.md): datasets -> models -> training -> runs/<id>/ ->
evaluation -> report. Each stage reads what the previous one wrote.
"""

__version__ = "0.1.0"

from disentangle.errors import DisentangleError  # noqa: E402

__all__ = ["DisentangleError", "__version__"]
