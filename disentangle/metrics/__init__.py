"""The metric suite: pure functions on arrays (codes [n, d], factors [n, k]) and
sampling scores on a data set with a ``represent(observations) -> codes`` function.

Each metric registers itself (:mod:`disentangle.metrics.registry`); the import order
below is the order of ``list_metrics()`` and of an evaluation.
"""

from disentangle.metrics.registry import Metric, get_metric, metric_record, headline_columns, human_name, list_metrics, register_metric
from disentangle.metrics._mig import mig  # noqa: I001 -- registration order
from disentangle.metrics._beta_vae_score import beta_vae_score
from disentangle.metrics._factor_vae_score import factor_vae_score
from disentangle.metrics._dci import dci
from disentangle.metrics._sap import sap
from disentangle.metrics._modularity import modularity_explicitness
from disentangle.metrics._unsupervised import unsupervised
from disentangle.metrics._likelihood import active_units, elbo, iwae_nll
from disentangle.metrics._irs import irs
from disentangle.metrics._mig_sup import mig_sup
from disentangle.metrics._dcimig import dcimig
from disentangle.metrics._jemmig import jemmig
from disentangle.metrics._infomec import infomec
from disentangle.metrics._dci_es import dci_es_explicitness
from disentangle.metrics._factor_vae_score import z_max_variance
from disentangle.metrics._downstream import downstream_task, reduced_downstream_task
from disentangle.metrics._interventions import fairness, inter_group_fairness, strong_downstream_task
from disentangle.metrics._udr import relative_strength, udr
from disentangle.metrics._correlated import factorized_support, latent_correlation
from disentangle.metrics._held_out import ood_r2

__all__ = ["Metric", "active_units", "beta_vae_score", "dci", "dci_es_explicitness", "dcimig", "downstream_task", "elbo", "factorized_support", "fairness", "inter_group_fairness", "factor_vae_score", "get_metric", "metric_record", "headline_columns",
           "human_name", "infomec", "irs", "iwae_nll", "jemmig", "latent_correlation", "list_metrics", "mig", "mig_sup", "modularity_explicitness", "ood_r2", "reduced_downstream_task", "relative_strength",
           "register_metric", "sap", "strong_downstream_task", "udr", "unsupervised", "z_max_variance"]
