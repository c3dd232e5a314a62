"""The names of the evaluation profiles (and of the distributions a run is scored on), apart from the metrics so that the command line can offer
them without importing the metric suite (and scikit-learn, scipy with it: a second and more per command).

- ``published``: disentanglement_lib's settings;
- ``fast``: quick looks (smaller samples, a subsampled gradient-boosting estimator);
- ``tiny``: smoke tests.

Each metric's settings per profile are in its registration (:mod:`disentangle.metrics.registry`).
"""

PROFILE_NAMES = ("published", "fast", "tiny")
DISTRIBUTIONS = ("unaltered", "training")  # what a run trained under correlations or a holdout is scored on: the whole independent grid, or its own joint
