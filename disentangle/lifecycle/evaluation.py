"""Score a trained run: load its checkpoint, code observations with the posterior
mean, run the requested metrics, write ``metrics.json`` atomically.

``metrics.json`` maps ``"<metric>.<key>"`` to a number (``"mig.discrete_mig"``,
``"dci.disentanglement"``, ...) and keeps, under ``"settings"``, every setting each
metric ran with, plus the package version. Re-evaluating adds missing metrics and
keeps present ones unless ``force``. The file is rewritten after every metric, so
an interrupted evaluation keeps what it finished.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from disentangle.base import runs
from disentangle.base.files import atomic_write_json
from disentangle.base.devices import low_precision, model_device
from disentangle.base.errors import DisentangleError
from disentangle.lifecycle.hardware import encode_batch_size
from disentangle.metrics.registry import default_metrics, metric_record, result_key
from disentangle.models.base import kl_per_dim
from disentangle.scoring.runner import CodeSamples, metric_settings, record, same_settings, score
from disentangle.lifecycle.training.loading import load_trained





def make_posterior(model, batch_size: int | None = None, precision: str = "fp32"):
    """observations [n, C, H, W] -> (posterior means [n, d], log variances [n, d]) as float32
    numpy arrays, in batches, without gradients.

    The encoder runs channels_last (1.7x faster than NCHW in fp32 here); ``precision="bf16"``
    runs it under bfloat16 autocast, as a run trained in bf16 did; the outputs still leave
    the encoder in float32.
    """
    bf16 = precision == "bf16"
    device = model_device(model)
    if batch_size is None:  # the CPU's best batch, measured once per machine; GPUs take large batches
        batch_size = encode_batch_size(precision) if device.type == "cpu" else 1024
    memory_format = torch.channels_last
    model.to(memory_format=memory_format)

    @torch.inference_mode()
    def posterior(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, log_variances = [], []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size]).to(device).contiguous(memory_format=memory_format)
            with low_precision(device, bf16):
                mean, log_variance = model.encode(x)
            means.append(mean.float().cpu().numpy())
            log_variances.append(log_variance.float().cpu().numpy())
        return np.concatenate(means), np.concatenate(log_variances)

    return posterior


def make_represent(model, batch_size: int | None = None, precision: str = "fp32"):
    """observations [n, C, H, W] -> posterior means [n, d] (float32): :func:`make_posterior`'s means."""
    posterior = make_posterior(model, batch_size, precision)
    return lambda observations: posterior(observations)[0]


def mean_kl_per_latent(posterior, observations: np.ndarray) -> np.ndarray:
    """The mean over ``observations`` of each latent's KL(q(z_j|x) || N(0, 1)), in nats: [d]
    (the per-latent KL UDR masks inactive latents with)."""
    return kl_per_latent(*posterior(observations))


def kl_per_latent(mean, log_variance) -> np.ndarray:
    """Each latent's KL(N(mean, exp(log_variance)) || N(0, 1)) averaged over the rows, in nats: [d]."""
    mean, log_variance = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (mean, log_variance))
    return kl_per_dim(mean, log_variance).numpy()


def encode_precision(run_precision: str, device="auto") -> str:
    """The precision a run's encoder runs in when scored on ``device``: the run's own, except that a
    bf16 run is encoded in fp32 where ``device`` only emulates bf16 (~10x slower there; the
    difference this makes to the scores is in the README)."""
    from disentangle.base.devices import resolve_device
    from disentangle.lifecycle.hardware import native_bf16

    if run_precision == "bf16" and not native_bf16(resolve_device(device)):
        return "fp32"
    return run_precision


def encode_note(run_precision: str, device="auto") -> str | None:
    """The ``encode_precision`` a metric's settings record for a run of ``run_precision`` scored on
    ``device``: None when the encoder runs as the run trained (as scores stored before it assume)."""
    encoded_in = encode_precision(run_precision, device)
    return encoded_in if encoded_in != run_precision else None


def evaluate(run_dir: str | Path, metrics=None, *, profile: str = "published", seed: int = 0, options: dict | None = None,
             bootstrap: int = 0, split: str = "train", representation: str = "mean", force: bool = False, progress: bool = True,
             data_root: str | Path | None = None, device: str = "auto", distribution: str = "unaltered") -> dict:
    """Compute the requested metrics of one trained run and persist them in its metrics.json.

    Parameters
    ----------
    run_dir : path
        A finished run folder.
    metrics : sequence of str, optional
        Registered metric names (default: the registry's default set, :func:`default_metrics`).
    profile : {"published", "fast", "tiny"}
        The settings: disentanglement_lib's, quick looks, the test suite's.
    seed : int
        Seeds every metric's own stream and the shared coded samples.
    options : dict, optional
        ``{metric: {setting: value}}`` overrides of the profile.
    bootstrap : int
        Replicates of a 95% percentile interval for each array metric's values (0: none).
    split : {"train", "test"}
        ``"test"`` scores the data set's held-out split, stored as ``<name>_test``.
    representation : {"mean", "sampled"}
        Code with the posterior mean, or with one draw from the posterior (disentanglement_lib's
        two representations; seeded by ``seed``). Sampled scores are stored as ``<name>_sampled``.
    force : bool
        Recompute metrics already stored with the same settings.
    data_root, device
        Where the data lives; where the encoder runs.
    distribution : {"unaltered", "training"}
        For a run trained on correlated factors or part of the grid (``holdout``): score it on the data
        set's independent factor grid (the default, Roth et al. 2023) or on the joint it trained on; the settings say
        which (``distribution``), so a stored score is reused only for the same one.

    Returns
    -------
    dict
        The full metrics.json content: ``{"<metric>.<key>": float, "settings": {metric: settings},
        "package_version": str}``.

    Notes
    -----
    A metric already in metrics.json is reused only when it ran with the same settings. The
    encoder runs in the precision the run trained in (fp32 for a bf16 run where ``device`` has no
    native bf16, recorded as ``encode_precision``). A metric that needs two or more factors is
    skipped on a data set with one, and the settings say so (no number is written). The run is
    locked while it is scored and metrics.json is rewritten atomically after every metric, so an
    interrupted evaluation keeps what it finished.
    """
    run_dir = Path(run_dir)
    metrics = tuple(metrics) if metrics is not None else default_metrics()
    if runs.read_status(run_dir) != "done":  # before the lock, which would create a missing folder
        raise DisentangleError(f"{run_dir} is not finished (status: {runs.read_status(run_dir)}); train it first")
    with runs.run_lock(run_dir):  # two evaluations of one run would overwrite each other's metrics.json
        options = options or {}
        data = runs.read_config_data(run_dir)
        trained_config = runs.config_from_data(data, run_dir)
        trained_in = runs.trained_precision(data, trained_config)
        if trained_in == "auto":
            raise DisentangleError(f"{run_dir / runs.CONFIG} does not record the precision its precision='auto' run trained in")
        note = encode_note(trained_in, device)
        scored_on = distribution if any(trained_config.dataset_options.get(o) for o in ("correlations", "holdout")) else None
        try:
            result = runs.read_metrics(run_dir)
        except DisentangleError:
            result = {}  # a corrupt file is rebuilt from scratch
        result.setdefault("settings", {})
        todo = [m for m in metrics if force or not same_settings(result["settings"].get(result_key(m, split, representation, scored_on)),
                                                                   metric_settings(m, profile, seed, split, options.get(m), bootstrap, note,
                                                                                   representation, scored_on))]
        # the published sampling scores draw millions of images: a data set's in-memory cache (dSprites: the
        # bit-packed grid, built in seconds) then beats drawing each batch (the same pixels either way)
        in_memory = profile == "published" and any(metric_record(m).needs == "sampling" for m in todo)
        config, dataset, model = load_trained(run_dir, split, data_root, device, in_memory=in_memory, distribution=distribution)
        posterior = make_posterior(model, precision=note or trained_in)
        codes = CodeSamples(dataset, lambda observations: posterior(observations)[0], seed, posterior=posterior,
                            representation=representation)
        fresh = {}
        for name, values, settings in score(todo, codes, profile=profile, seed=seed, options=options, bootstrap=bootstrap, split=split,
                                            encoded_in=note, distribution=scored_on, dataset=dataset, model=model, progress=progress, label=run_dir.name):
            record(result, name, values, settings, split, representation)
            atomic_write_json(run_dir / runs.METRICS, result)
            key = result_key(name, split, representation, scored_on)
            fresh.update({f"{key}.{k}": v for k, v in (values or {}).items()})
        if config.loggers and fresh:  # the run's trackers show what this evaluation computed, at its last step
            from disentangle.lifecycle.trackers import Trackers

            with Trackers(run_dir, config.loggers, {}, config.tracking_uri) as trackers:
                trackers.metrics(fresh, config.steps)
    return result
