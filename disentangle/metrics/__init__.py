"""The metric suite: pure functions on arrays (codes [n, d], factors [n, k]) and
sampling scores on a data set with a ``represent(observations) -> codes`` function."""

from disentangle.metrics.beta_vae_score import beta_vae_score
from disentangle.metrics.dci import dci
from disentangle.metrics.factor_vae_score import factor_vae_score
from disentangle.metrics.likelihood import active_units, elbo, iwae_nll
from disentangle.metrics.mig import mig
from disentangle.metrics.modularity import modularity_explicitness
from disentangle.metrics.sap import sap
from disentangle.metrics.unsupervised import unsupervised

__all__ = ["active_units", "beta_vae_score", "dci", "elbo", "factor_vae_score", "iwae_nll", "mig",
           "modularity_explicitness", "sap", "unsupervised"]
