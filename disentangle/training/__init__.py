"""Training: one run from a config to a run folder (``train``), and loading it back."""

from disentangle.training.loading import build, load_trained
from disentangle.training.trainer import TrainingFailed, train, train_if_needed

__all__ = ["TrainingFailed", "build", "load_trained", "train", "train_if_needed"]
