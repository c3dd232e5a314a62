"""Likelihood scores of a trained model, for data like MNIST.

``elbo``: the evidence lower bound, nats per example. ``iwae_nll``: the
importance-weighted bound of Burda et al., "Importance Weighted Autoencoders",
ICLR 2016, with k samples (-log p(x) <= iwae_nll, tight as k grows; k = 5,000 is
the paper's NLL estimate). ``active_units``: latents with Cov_x(E_q[z_j | x]) > 0.01
(Burda et al. 2016). All run in float32 under ``torch.no_grad``.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from disentangle.metrics.registry import register_metric
from disentangle.base.validation import check_count

if TYPE_CHECKING:
    import torch

# latent samples decoded at once: bounds memory (SAMPLES_PER_CALL x pixels floats)
SAMPLES_PER_CALL = 8192


def _no_grad(function):
    """``torch.no_grad`` applied at call time: importing the metrics does not load torch."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        import torch

        with torch.no_grad():
            return function(*args, **kwargs)

    return wrapped


def log_importance_weights(model, x: torch.Tensor, k: int):
    """log p(x, z) - log q(z | x) for k posterior samples per example, yielded in chunks [s, n] that
    sum to k rows.

    Samples are drawn and decoded in chunks of about :data:`SAMPLES_PER_CALL`
    (z of shape [chunk, n, d] at a time), so k = 5,000 costs no Python loop per sample, and
    memory stays bounded whatever k is: callers reduce each chunk as it comes.
    """
    import torch

    from disentangle.models.base import gaussian_log_density

    mu, logvar = model.encode(x)
    n, d = mu.shape
    per_call = max(1, SAMPLES_PER_CALL // n)
    for start in range(0, k, per_call):
        s = min(per_call, k - start)
        z = mu + torch.randn(s, n, d, dtype=mu.dtype, device=mu.device) * torch.exp(0.5 * logvar)
        flat_z = z.reshape(s * n, d)
        logits = model.decode(flat_z)
        log_px = model.log_likelihood(x.repeat(s, *([1] * (x.dim() - 1))), logits).reshape(s, n)
        log_pz = gaussian_log_density(z, z.new_zeros(()), z.new_zeros(())).sum(2)  # N(0, I), broadcast
        log_qz = gaussian_log_density(z, mu, logvar).sum(2)
        yield log_px + log_pz - log_qz


def log_mean_importance_weight(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """log (1/k) Σ_k p(x, z_k) / q(z_k | x) per example: [n], a running log-sum-exp over the chunks."""
    import torch

    total = None
    for chunk in log_importance_weights(model, x, k):
        part = torch.logsumexp(chunk, 0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)


def _batches(observations: np.ndarray, model, batch_size: int = 256):
    import torch

    from disentangle.base.devices import model_device

    device = model_device(model)
    for start in range(0, len(observations), batch_size):
        yield torch.as_tensor(observations[start:start + batch_size]).to(device)


@register_metric("elbo", needs="model", published={"num_points": 5000}, fast={"num_points": 1000},
                 headline="elbo", title="ELBO", reference="Kingma & Welling 2014")
@_no_grad
def elbo(model, observations: np.ndarray) -> dict[str, float]:
    """Mean single-sample evidence lower bound, nats per example.

    log p(x, z) - log q(z | x) with one z ~ q(z | x) per example, averaged (float32, no gradients).

    .. math:: \\mathrm{ELBO}(x) = \\mathbb{E}_{q(z \\mid x)}\\big[\\log p(x \\mid z)\\big] - \\mathrm{KL}\\big(q(z \\mid x) \\,\\|\\, p(z)\\big)

    Parameters
    ----------
    model : BaseVAE
        A model of this project (``encode``, ``decode``, ``log_likelihood``).
    observations : numpy.ndarray of float32, shape (n, C, H, W)

    Returns
    -------
    dict
        ``{"elbo": float}`` (<= log p(x); higher is better).

    References
    ----------
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.models import get_model
    >>> model = get_model("vae", observation_shape=(1, 28, 28), latent_dim=2, architecture="mlp").eval()
    >>> images = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32).round()
    >>> list(elbo(model, images))
    ['elbo']
    """
    total = sum(float(log_mean_importance_weight(model, x, 1).sum()) for x in _batches(observations, model))
    return {"elbo": total / len(observations)}


@register_metric("iwae", needs="model", published={"num_points": 1000}, records=("k",), fast={"num_points": 200, "k": 50},
                 headline="iwae_nll", title="IWAE NLL", reference="Burda et al. 2016", reports_progress=True)
@_no_grad
def iwae_nll(model, observations: np.ndarray, *, k: int = 100, progress=None) -> dict[str, float]:
    """Importance-weighted bound on the negative log-likelihood, nats per example.

    ``-log p(x) <= -log (1/k sum_i p(x, z_i) / q(z_i | x))``, z_i ~ q(z | x) (Burda et al. 2016,
    eq. 8); tight as ``k`` grows (k = 5,000 is the paper's NLL estimate).

    .. math:: \\mathrm{NLL}_K(x) = -\\log \\frac{1}{K} \\sum_{k=1}^{K} \\frac{p(x, z_k)}{q(z_k \\mid x)}, \\qquad z_k \\sim q(z \\mid x)

    Parameters
    ----------
    model : BaseVAE
        A model of this project (``encode``, ``decode``, ``log_likelihood``).
    observations : numpy.ndarray of float32, shape (n, C, H, W)
    k : int, default 100
        Importance samples per example.
    progress : callable, optional
        Called with the number of examples done after each batch.

    Returns
    -------
    dict
        ``{"iwae_nll": float, "iwae_k": int, "num_points": int}``; ``iwae_nll`` >= -log p(x) and
        <= -ELBO in expectation.

    References
    ----------
    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.models import get_model
    >>> model = get_model("vae", observation_shape=(1, 28, 28), latent_dim=2, architecture="mlp").eval()
    >>> images = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32).round()
    >>> scores = iwae_nll(model, images, k=10)
    >>> scores["iwae_k"], scores["num_points"]
    (10, 8)
    """
    k = check_count(k, "k")
    total = 0.0
    for x in _batches(observations, model):
        total += float(-log_mean_importance_weight(model, x, k).sum())
        if progress is not None:
            progress(len(x))
    return {"iwae_nll": total / len(observations), "iwae_k": k, "num_points": len(observations)}


@register_metric("active_units", needs="model", published={"num_points": 5000}, fast={"num_points": 1000},
                 headline="active_units", title="active units", reference="Burda et al. 2016")
@_no_grad
def active_units(model, observations: np.ndarray, *, threshold: float = 0.01) -> dict[str, float]:
    """Number of latents the model uses: those whose posterior mean varies with x.

    A latent j is active when Cov_x(E_q[z_j | x]) > ``threshold`` over ``observations``.

    .. math:: \\mathrm{AU} = \\#\\big\\{ j : \\operatorname{Var}_{x}\\big(\\mathbb{E}_{q(z \\mid x)}[z_j]\\big) > \\delta \\big\\}

    Parameters
    ----------
    model : BaseVAE
        A model of this project (``encode``, ``decode``, ``log_likelihood``).
    observations : numpy.ndarray of float32, shape (n, C, H, W)
    threshold : float, default 0.01

    Returns
    -------
    dict
        ``{"active_units": int}`` in [0, latent_dim].

    References
    ----------
    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, section 5.2.

    Examples
    --------
    >>> import numpy as np
    >>> from disentangle.models import get_model
    >>> model = get_model("vae", observation_shape=(1, 28, 28), latent_dim=2, architecture="mlp").eval()
    >>> images = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32).round()
    >>> 0 <= active_units(model, images)["active_units"] <= 2
    True
    """
    import torch

    means = torch.cat([model.encode(x)[0].cpu() for x in _batches(observations, model)]).numpy()
    return {"active_units": int((np.var(means, axis=0) > threshold).sum())}
