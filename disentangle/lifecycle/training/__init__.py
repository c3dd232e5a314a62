"""Training: one run from a config to a run folder (:mod:`.trainer`), and loading it back (:mod:`.loading`).

Light on purpose: ``import disentangle.lifecycle.training.checkpoint`` (what the report and export read)
loads neither the trainer nor the trackers; the names below are imported on first use.
"""

_LAZY = {"TrainingFailed": "trainer", "train": "trainer", "train_if_needed": "trainer", "train_prepared": "trainer", "build": "loading", "load_trained": "loading"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
