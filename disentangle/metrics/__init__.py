"""The metric suite: pure functions on arrays (codes [n, d], factors [n, k]) and
sampling scores on a data set with a ``represent(observations) -> codes`` function.

Each metric registers itself (:mod:`disentangle.metrics.registry`); the import order
below is the order of ``list_metrics()`` and of an evaluation.
"""

from disentangle.metrics.registry import Metric, get_metric, headline_columns, human_name, list_metrics, register_metric
from disentangle.metrics.mig import mig  # noqa: I001 -- registration order
from disentangle.metrics.beta_vae_score import beta_vae_score
from disentangle.metrics.factor_vae_score import factor_vae_score
from disentangle.metrics.dci import dci
from disentangle.metrics.sap import sap
from disentangle.metrics.modularity import modularity_explicitness
from disentangle.metrics.unsupervised import unsupervised
from disentangle.metrics.likelihood import active_units, elbo, iwae_nll

__all__ = ["Metric", "active_units", "beta_vae_score", "dci", "elbo", "factor_vae_score", "get_metric", "headline_columns",
           "human_name", "iwae_nll", "list_metrics", "mig", "modularity_explicitness", "register_metric", "sap", "unsupervised"]
