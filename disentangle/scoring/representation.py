"""Score any representation: a ``represent`` function from any framework, or arrays of codes.

- :func:`evaluate_representation` codes a data set's observations with the user's
  ``represent(observations [n, C, H, W]) -> codes [n, d]`` and runs the same metrics,
  settings, samples and random streams as ``evaluate`` does for a trained run.
- :func:`evaluate_codes` runs the array metrics on codes the user already has.
- :func:`load_encoder` turns a TorchScript file or ``module:function`` into a ``represent``.

Both evaluations return the mapping metrics.json holds: ``{"<metric>.<key>": value,
"settings": {metric: settings}, "package_version": ...}``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import check_pair, check_train_test, is_continuous
from disentangle.metrics.registry import ARRAY_NEEDS, default_metrics, metric_record, list_metrics
from disentangle.scoring.runner import CodeSamples, GivenCodes, collect, score
from disentangle.base.validation import check_count

DEFAULT_CHUNK = 256  # observations per represent call: bounded memory whatever the sample size


def _as_array(codes) -> np.ndarray:
    if hasattr(codes, "detach"):  # a torch tensor (any device)
        codes = codes.detach().float().cpu().numpy()
    return np.asarray(codes)


def checked_represent(represent: Callable, batch_size: int = DEFAULT_CHUNK, posterior: bool = False) -> Callable:
    """Wrap ``represent`` so it is called on chunks of ``batch_size`` observations and its
    output is checked: one finite numeric row per observation, the same width every call.

    ``posterior=True``: ``represent`` returns a Gaussian posterior, a ``(mean, log_variance)``
    pair of such arrays with the same shape, and so does the wrapped function."""
    check_count(batch_size, "batch_size")
    width: list[int] = []

    def check(codes, chunk, start: int, what: str) -> np.ndarray:
        codes = _as_array(codes)
        if codes.ndim != 2 or codes.shape[0] != len(chunk):
            raise DisentangleError(f"represent returned {what} of shape {list(codes.shape)} for {len(chunk)} observations, "
                                   f"expected [{len(chunk)}, d]")
        if codes.dtype == bool or not np.issubdtype(codes.dtype, np.number):
            raise DisentangleError(f"represent returned {what} of dtype {codes.dtype}, expected floats")
        if not np.isfinite(codes).all():
            raise DisentangleError(f"represent returned NaN or inf {what} (row {start + int(np.argwhere(~np.isfinite(codes))[0, 0])} of the sample)")
        if width and codes.shape[1] != width[0]:
            raise DisentangleError(f"represent returned {codes.shape[1]} code dims after {width[0]} earlier: it must be fixed")
        width[:] = [codes.shape[1]]
        return codes.astype(np.float64)

    def wrapped(observations: np.ndarray):
        out = []
        for start in range(0, len(observations), batch_size):
            chunk = observations[start:start + batch_size]
            returned = represent(chunk)
            if not posterior:
                out.append(check(returned, chunk, start, "codes"))
                continue
            if not isinstance(returned, (tuple, list)) or len(returned) != 2:
                raise DisentangleError(f"the sampled representation needs represent to return (mean, log_variance), got {type(returned).__name__}")
            out.append((check(returned[0], chunk, start, "means"), check(returned[1], chunk, start, "log variances")))
        if not posterior:
            return np.concatenate(out)
        return np.concatenate([m for m, _ in out]), np.concatenate([v for _, v in out])

    return wrapped


def evaluate_representation(represent: Callable, dataset, metrics=None, *, profile: str = "published", seed: int = 0,
                            options: dict | None = None, bootstrap: int = 0, batch_size: int = DEFAULT_CHUNK,
                            representation: str = "mean", progress: bool = False) -> dict:
    """Score a representation that is not from this project.

    The data set's observations are coded with ``represent`` and scored with the same
    metrics, settings, samples and random streams as ``evaluate`` uses for a trained run.

    Parameters
    ----------
    represent : callable
        ``represent(observations: float32 [n, C, H, W] in [0, 1]) -> codes [n, d]`` (numpy or a
        torch tensor), called on chunks of ``batch_size`` observations; its output is checked.
    dataset : GroundTruthDataset or str
        The data set (a name is built with :func:`disentangle.datasets.get_dataset`).
    metrics : sequence of str, optional
        Registered metric names (default: ``evaluate``'s default set). Likelihood metrics
        need a model of this project and are refused.
    profile : {"published", "fast", "tiny"}
    seed : int
        The same seed as ``evaluate`` gives the same samples and streams.
    options : dict, optional
        ``{metric: {setting: value}}`` overrides.
    bootstrap : int
        Replicates of a 95% percentile interval for each array metric's values (0: none).
    batch_size : int
        Observations per ``represent`` call.
    representation : {"mean", "sampled"}
        ``"sampled"``: ``represent`` returns the Gaussian posterior ``(mean, log_variance)``, each
        [n, d], and every observation is coded with one draw from it (seeded by ``seed``), as
        disentanglement_lib's sampled representation. Stored under ``<metric>_sampled``.
    progress : bool

    Returns
    -------
    dict
        ``{"<metric>.<key>": float, "settings": {metric: settings}, "package_version": str}``
        (``"<metric>_sampled.<key>"`` for the sampled representation).

    References
    ----------
    The metrics' own (``disentangle.metrics``); Locatello et al., ICML 2019 for the suite.

    Examples
    --------
    >>> import disentangle
    >>> pixels = lambda images: images.reshape(len(images), -1)[:, ::400]  # 11 pixels as codes
    >>> scores = disentangle.evaluate_representation(pixels, "dsprites", metrics=["mig"], profile="tiny")
    >>> 0 <= scores["mig.discrete_mig"] <= 1, scores["settings"]["mig"]["num_train"]
    (True, 1000)
    """
    from disentangle.datasets import get_dataset

    dataset = get_dataset(dataset) if isinstance(dataset, str) else dataset
    names = _checked_names(metrics, default_metrics())
    for name in names:
        if metric_record(name).needs == "model":
            raise DisentangleError(f"{name} needs a trained model of this project (a likelihood), not a represent function")
    if representation == "sampled":
        posterior = checked_represent(represent, batch_size, posterior=True)
        codes = CodeSamples(dataset, lambda observations: posterior(observations)[0], seed, posterior=posterior, representation="sampled")
    else:
        codes = CodeSamples(dataset, checked_represent(represent, batch_size), seed, representation=representation)
    return collect(score(names, codes, profile=profile, seed=seed, options=options, bootstrap=bootstrap, dataset=dataset, progress=progress),
                   representation=representation)


def evaluate_codes(codes_train, factors_train, codes_test=None, factors_test=None, metrics=None, *, profile: str = "published",
                   seed: int = 0, options: dict | None = None, bootstrap: int = 0) -> dict:
    """Run the array metrics on codes and factors the caller already has.

    ``codes_test`` / ``factors_test`` feed the metrics that fit on one set and score on
    another (DCI, SAP, modularity); without them only the others run by default, and asking
    for one of those is an error. Real-valued factors (not integer classes) run the metrics'
    continuous variants (MIG on binned factors, DCI with regressors, SAP with R^2), recorded
    as ``continuous_factors: true`` in the settings; the others refuse them. The arrays need
    not come from a complete factor grid.

    Parameters
    ----------
    codes_train : array-like of float, shape (n_train, d)
    factors_train : array-like of int (or float: continuous), shape (n_train, k)
    codes_test : array-like of float, shape (n_test, d), optional
    factors_test : array-like, shape (n_test, k), optional
    metrics : sequence of str, optional
        Registered array metrics (default: those of the default set the arrays allow).
    profile : {"published", "fast", "tiny"}
        Every setting but the sample sizes, which are the arrays' lengths.
    seed : int
        Each metric's own random stream (:func:`disentangle.scoring.runner.metric_rng`).
    options : dict, optional
        ``{metric: {setting: value}}`` overrides.
    bootstrap : int
        Replicates of a 95% percentile interval per value (``<key>.ci_low`` / ``.ci_high``; 0: none).

    Returns
    -------
    dict
        ``{"<metric>.<key>": float, "settings": {metric: settings}, "package_version": str}``,
        as metrics.json holds.

    References
    ----------
    The metrics' own (``disentangle.metrics``); Locatello et al., ICML 2019 for the suite.

    Examples
    --------
    >>> import numpy as np
    >>> import disentangle
    >>> factors = np.array([(a, b) for a in range(3) for b in range(4)] * 25)
    >>> scores = disentangle.evaluate_codes(factors.astype(float), factors, metrics=["mig"])
    >>> scores["mig.discrete_mig"], scores["settings"]["mig"]["num_train"]
    (1.0, 300)
    """
    continuous = is_continuous(factors_train) or (factors_test is not None and is_continuous(factors_test))
    codes_train, factors_train = check_pair(codes_train, factors_train, "_train", continuous)
    has_test = codes_test is not None or factors_test is not None
    if has_test:
        if codes_test is None or factors_test is None:
            raise DisentangleError("give both codes_test and factors_test, or neither")
        codes_train, factors_train, codes_test, factors_test = check_train_test(codes_train, factors_train, codes_test, factors_test,
                                                                                continuous)
    usable = [n for n in default_metrics() if metric_record(n).needs in ARRAY_NEEDS and (has_test or metric_record(n).needs != "train_test")
              and (metric_record(n).continuous or not continuous)]
    names = _checked_names(metrics, usable)
    for name in names:
        metric = metric_record(name)
        if metric.needs not in ARRAY_NEEDS:
            raise DisentangleError(f"{name} draws its own observations: use evaluate_representation with a data set and an encoder")
        if metric.needs == "train_test" and not has_test:
            raise DisentangleError(f"{name} fits on one set and scores on another: give codes_test and factors_test")
        if continuous and not metric.continuous:
            raise DisentangleError(f"{name} needs integer factor classes, got real-valued factors "
                                   f"(metrics with a continuous variant: {', '.join(n for n in list_metrics() if metric_record(n).continuous)})")
    codes = GivenCodes(codes_train, factors_train, codes_test, factors_test, continuous)
    return collect(score(names, codes, profile=profile, seed=seed, options=options, bootstrap=bootstrap))


def _checked_names(metrics, default) -> tuple[str, ...]:
    if metrics is None:
        return tuple(default)
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for name in names:
        metric_record(name)
    return names


def load_codes_file(path: Path) -> dict:
    """Arrays ``codes``, ``factors`` (and optionally ``codes_test``, ``factors_test``) of an ``.npz``
    file, as :func:`evaluate_codes` keyword arguments."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty file (click would print only "Aborted!")
        raise DisentangleError(f"{path} is not a readable .npz file ({type(error).__name__}: {error or 'empty file'})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy holds one array, without names
        raise DisentangleError(f"{path} is a single .npy array, expected an .npz of named arrays codes, factors "
                               "(optionally codes_test, factors_test), e.g. np.savez(path, codes=..., factors=...)")
    try:
        with data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise DisentangleError(f"{path} is not a readable .npz file ({type(error).__name__}: {error})") from None
    for key in ("codes", "factors"):
        if key not in arrays:
            raise DisentangleError(f"{path} has no array {key!r}, expected codes, factors (optionally codes_test, factors_test); "
                                   f"found {', '.join(arrays) or 'none'}")
    return {"codes_train": arrays["codes"], "factors_train": arrays["factors"],
            "codes_test": arrays.get("codes_test"), "factors_test": arrays.get("factors_test")}


def load_encoder(spec: str, device: str = "auto") -> Callable:
    """A ``represent`` function from a TorchScript file, a ``torch.export`` file (``.pt2``),
    or ``module:function`` importable here.

    A TorchScript or exported module is called on float32 tensors on ``device``; when it returns a
    tuple (mean, log-variance, ...) the first element is the code. A ``module:function``
    is called on the numpy observations as it is (any framework); a ``torch.nn.Module``
    found there is treated like a TorchScript module.
    """
    import torch

    from disentangle.base.devices import resolve_device

    path = Path(spec)
    if path.is_file():
        target = resolve_device(device)
        if path.suffix == ".pt2":  # torch.export, TorchScript's successor
            try:
                return _torch_represent(torch.export.load(str(path)).module().to(target), target)
            except (RuntimeError, ValueError, KeyError) as error:
                raise DisentangleError(f"{path} is not a torch.export file ({str(error).splitlines()[0]})") from None
        try:
            module = torch.jit.load(str(path), map_location=target)
        except (RuntimeError, ValueError) as error:
            raise DisentangleError(f"{path} is not a TorchScript file ({str(error).splitlines()[0]})") from None
        return _torch_represent(module.eval(), target)
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise DisentangleError(f"an encoder must be a TorchScript file or module:function, got {spec!r} (no such file)")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise DisentangleError(f"cannot import {spec!r} from {Path.cwd()}: {error}") from None
    if isinstance(found, torch.nn.Module):
        target = resolve_device(device)
        return _torch_represent(found.to(target).eval(), target)
    if not callable(found):
        raise DisentangleError(f"{spec!r} is a {type(found).__name__}, expected a function or torch module")
    return found


def _torch_represent(module, device) -> Callable:
    import torch

    @torch.inference_mode()
    def represent(observations: np.ndarray) -> np.ndarray:
        out = module(torch.as_tensor(observations, dtype=torch.float32).to(device))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float().cpu().numpy()

    return represent
