"""Score a trained run: load its checkpoint, code observations with the posterior
mean, run the requested metrics, write ``metrics.json`` atomically.

``metrics.json`` maps ``"<metric>.<key>"`` to a number (``"mig.discrete_mig"``,
``"dci.disentanglement"``, ...) and keeps, under ``"settings"``, every setting each
metric ran with, plus the package version. Re-evaluating adds missing metrics and
keeps present ones unless ``force``. The file is rewritten after every metric, so
an interrupted evaluation keeps what it finished.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from disentangle import __version__, metrics, runs
from disentangle._io import atomic_write_json
from disentangle.errors import DisentangleError
from disentangle.metrics.sampling import represent_sample
from disentangle.training import load_trained

DEFAULT_METRICS = ("mig", "beta_vae", "factor_vae", "dci", "sap", "modularity", "unsupervised")
LIKELIHOOD_METRICS = ("elbo", "iwae", "active_units")
ALL_METRICS = DEFAULT_METRICS + LIKELIHOOD_METRICS

# disentanglement_lib's published settings, and a --fast profile for quick looks
PUBLISHED = {
    "mig": {"num_train": 10000, "n_bins": 20},
    "beta_vae": {"batch_size": 64, "num_train": 10000, "num_eval": 5000},
    "factor_vae": {"batch_size": 64, "num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000},
    "dci": {"num_train": 10000, "num_test": 5000, "estimator": "gbt"},
    "sap": {"num_train": 10000, "num_test": 5000},
    "modularity": {"num_train": 10000, "num_test": 5000, "n_bins": 20},
    "unsupervised": {"num_train": 10000, "n_bins": 20},
    "elbo": {"num_points": 5000},
    "iwae": {"num_points": 1000, "k": 100},
    "active_units": {"num_points": 5000},
}
FAST = {
    **PUBLISHED,
    "beta_vae": {"batch_size": 64, "num_train": 1000, "num_eval": 500},
    "factor_vae": {"batch_size": 64, "num_train": 1000, "num_eval": 500, "num_variance_estimate": 5000},
    "dci": {"num_train": 10000, "num_test": 5000, "estimator": "gbt_fast"},
    "elbo": {"num_points": 1000},
    "iwae": {"num_points": 200, "k": 50},
    "active_units": {"num_points": 1000},
}
# the same path with sample sizes small enough for the test suite (quickstart --fast)
TINY = {
    **FAST,
    "mig": {"num_train": 1000, "n_bins": 20},
    "beta_vae": {"batch_size": 16, "num_train": 100, "num_eval": 50},
    "factor_vae": {"batch_size": 16, "num_train": 100, "num_eval": 50, "num_variance_estimate": 500},
    "dci": {"num_train": 500, "num_test": 250, "estimator": "gbt_fast"},
    "sap": {"num_train": 500, "num_test": 250},
    "modularity": {"num_train": 500, "num_test": 250, "n_bins": 20},
    "unsupervised": {"num_train": 500, "n_bins": 20},
}
PROFILES = {"published": PUBLISHED, "fast": FAST, "tiny": TINY}


def parse_metrics(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_METRICS
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown or not names:
        raise DisentangleError(f"unknown metric {unknown[0] if unknown else text!r}, expected some of {', '.join(ALL_METRICS)}")
    return names


def make_represent(model, batch_size: int = 512):
    """observations -> posterior means, in batches, without gradients."""

    @torch.no_grad()
    def represent(observations: np.ndarray) -> np.ndarray:
        return np.concatenate([model.encode(torch.as_tensor(observations[i:i + batch_size]))[0].numpy()
                               for i in range(0, len(observations), batch_size)])

    return represent


def compute_metric(name: str, dataset, model, settings: dict, rng: np.random.Generator) -> dict[str, float]:
    """One metric on a trained model, with explicit settings."""
    represent = make_represent(model)
    s = dict(settings)
    if name in ("beta_vae", "factor_vae"):
        score = metrics.beta_vae_score if name == "beta_vae" else metrics.factor_vae_score
        return score(dataset, represent, rng, **s)
    if name in LIKELIHOOD_METRICS:
        observations = dataset.sample(s.pop("num_points"), rng)[1]
        if name == "iwae":
            return metrics.iwae_nll(model, observations, **s)
        return (metrics.elbo if name == "elbo" else metrics.active_units)(model, observations)
    f_train, c_train = represent_sample(dataset, represent, s.pop("num_train"), rng)
    if name == "mig":
        return metrics.mig(c_train, f_train, **s)
    if name == "unsupervised":
        return metrics.unsupervised(c_train, **s)
    f_test, c_test = represent_sample(dataset, represent, s.pop("num_test"), rng)
    function = {"dci": metrics.dci, "sap": metrics.sap, "modularity": metrics.modularity_explicitness}[name]
    return function(c_train, f_train, c_test, f_test, **s)


def metric_rng(seed: int, name: str) -> np.random.Generator:
    """Each metric its own stream, so results do not depend on which others ran."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def evaluate(run_dir: str | Path, metric_names=DEFAULT_METRICS, seed: int = 0, profile: str = "published",
             force: bool = False, progress: bool = True) -> dict:
    """Compute missing metrics of one run; return the full metrics.json content."""
    run_dir = Path(run_dir)
    if runs.read_status(run_dir) != "done":
        raise DisentangleError(f"{run_dir} is not finished (status: {runs.read_status(run_dir)}); train it first")
    _, dataset, model = load_trained(run_dir)
    try:
        result = {} if force else runs.read_metrics(run_dir)
    except DisentangleError:
        result = {}  # a corrupt file is rebuilt from scratch
    result.setdefault("settings", {})
    if profile not in PROFILES:
        raise DisentangleError(f"unknown evaluation profile {profile!r}, expected one of {', '.join(PROFILES)}")
    todo = [m for m in metric_names if force or m not in result["settings"]]
    for name in tqdm(todo, desc=f"evaluating {run_dir.name}", unit="metric", disable=not progress, leave=False):
        settings = dict(PROFILES[profile][name])
        start = time.perf_counter()
        values = compute_metric(name, dataset, model, settings, metric_rng(seed, name))
        for key, value in values.items():
            result[f"{name}.{key}"] = float(value)
        result["settings"][name] = {**settings, "seed": seed, "seconds": round(time.perf_counter() - start, 2)}
        result["package_version"] = __version__
        atomic_write_json(run_dir / runs.METRICS, result)
    return result
