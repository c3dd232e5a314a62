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

from disentangle import __version__, runs
from disentangle._io import atomic_write_json
from disentangle.devices import low_precision, model_device
from disentangle.errors import DisentangleError
from disentangle.hardware import encode_batch_size
from disentangle.metrics._utils import SingleFactorError
from disentangle.metrics.registry import ARRAY_NEEDS, PROFILE_NAMES, get_metric, list_metrics, parse_metric_names
from disentangle.metrics.sampling import represent_sample
from disentangle.training import load_trained
from disentangle.validation import check_count

PROFILES = PROFILE_NAMES  # published: disentanglement_lib's settings; fast: quick looks; tiny: the test suite


def default_metrics() -> tuple[str, ...]:
    """The metrics ``evaluate`` runs when none are named (the registry's default set)."""
    return tuple(list_metrics(default_only=True))


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """Comma-separated metric names -> a tuple (empty text: the default set); unknown names are an error."""
    return parse_metric_names(text)


def make_represent(model, batch_size: int | None = None, precision: str = "fp32"):
    """observations [n, C, H, W] -> posterior means [n, d] (float32), in batches, without gradients.

    The encoder runs channels_last (1.7x faster than NCHW in fp32 here); ``precision="bf16"``
    runs it under bfloat16 autocast, as a run trained in bf16 did; the means still leave
    the encoder in float32.
    """
    bf16 = precision == "bf16"
    device = model_device(model)
    if batch_size is None:  # the CPU's best batch, measured once per machine; GPUs take large batches
        batch_size = encode_batch_size(precision) if device.type == "cpu" else 1024
    memory_format = torch.channels_last
    model.to(memory_format=memory_format)

    @torch.inference_mode()
    def represent(observations: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size]).to(device).contiguous(memory_format=memory_format)
            with low_precision(device, bf16):
                out.append(model.encode(x)[0].float().cpu().numpy())
        return np.concatenate(out)

    return represent


class CodeSamples:
    """Coded samples shared by the array metrics (MIG, DCI, SAP, modularity, unsupervised).

    ``get("train", n)`` draws n observations once and codes them; every metric asking
    for the same split and size gets the same arrays. Each (part, n) has its own random
    stream from ``seed``, so a metric's result does not depend on which others ran.
    """

    def __init__(self, dataset, represent, seed: int):
        self.dataset, self.represent, self.seed = dataset, represent, seed
        self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def get(self, part: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(factors int64 [n, k], codes float64 [n, d])."""
        if (part, n) not in self._cache:
            rng = np.random.default_rng([self.seed, zlib.crc32(part.encode()), int(n)])
            self._cache[(part, n)] = represent_sample(self.dataset, self.represent, n, rng)
        return self._cache[(part, n)]


def compute_metric(name: str, dataset, model, settings: dict, rng: np.random.Generator,
                   represent=None, samples: CodeSamples | None = None, progress: bool = False) -> dict[str, float]:
    """One registered metric with explicit settings (``seed`` and ``split`` are ignored here).

    ``model`` is needed only by likelihood metrics (``needs="model"``) and as the default
    ``represent`` (fp32 posterior means); ``samples`` shares coded draws between metrics.
    """
    metric = get_metric(name)
    if represent is None:
        if model is None:
            raise DisentangleError(f"{name} needs a represent function or a model")
        represent = make_represent(model)
    samples = samples or CodeSamples(dataset, represent, int(settings.get("seed", 0)))
    s = {k: v for k, v in settings.items() if k not in ("seed", "split", "profile", "encode_precision")}
    if metric.needs == "sampling":
        return metric.function(dataset, represent, rng, **s)
    if metric.needs == "model":
        if model is None:
            raise DisentangleError(f"{name} needs a trained model of this project (a likelihood), not just a representation")
        num_points = s.pop("num_points")
        observations = dataset.evaluation_observations(None if num_points == "all" else num_points, rng)
        if name == "iwae":  # k = 5,000 on 10,000 images takes minutes: show it
            with tqdm(total=len(observations), desc=f"iwae k={s.get('k')}", unit="image", disable=not progress, leave=False) as bar:
                return metric.function(model, observations, progress=bar.update, **s)
        return metric.function(model, observations, **s)
    f_train, c_train = samples.get("train", s.pop("num_train"))
    f_test, c_test = samples.get("test", s.pop("num_test")) if metric.needs == "train_test" else (None, None)
    return score_arrays(metric, s, c_train, f_train, c_test, f_test, rng)


def score_arrays(metric, settings: dict, codes_train, factors_train, codes_test=None, factors_test=None,
                 rng: np.random.Generator | None = None) -> dict[str, float]:
    """An array metric on given arrays; ``settings["bootstrap"] = N`` adds a 95% percentile
    interval per key (``<key>.ci_low`` / ``<key>.ci_high``) over N resamples of the rows."""
    s = dict(settings)
    replicates = s.pop("bootstrap", 0)
    train = (codes_train,) if metric.needs == "codes_only" else (codes_train, factors_train)
    test = (codes_test, factors_test) if metric.needs == "train_test" else None

    def call(train_arrays, test_arrays):
        return metric.function(*train_arrays, *(test_arrays or ()), **s)

    values = call(train, test)
    if replicates:
        values.update(bootstrap_interval(call, train, test, replicates, rng or np.random.default_rng(0)))
    return values


def bootstrap_interval(call, train: tuple, test: tuple | None, replicates: int, rng: np.random.Generator,
                       level: float = 0.95) -> dict[str, float]:
    """Percentile bootstrap (Efron 1979): resample the rows of the train (and test) arrays with
    replacement ``replicates`` times, recompute, and return ``<key>.ci_low`` / ``<key>.ci_high``."""
    check_count(replicates, "bootstrap replicates", minimum=2)
    draws: dict[str, list[float]] = {}
    for _ in range(replicates):
        rows = rng.integers(0, len(train[0]), len(train[0]))
        test_rows = rng.integers(0, len(test[0]), len(test[0])) if test is not None else None
        resampled = call(tuple(a[rows] for a in train), tuple(a[test_rows] for a in test) if test is not None else None)
        for key, value in resampled.items():
            draws.setdefault(key, []).append(float(value))
    tail = 100 * (1 - level) / 2
    interval = {}
    for key, values in draws.items():
        low, high = np.percentile(values, [tail, 100 - tail])
        interval[f"{key}.ci_low"], interval[f"{key}.ci_high"] = float(low), float(high)
    return interval


def metric_rng(seed: int, name: str) -> np.random.Generator:
    """Each metric its own stream, so results do not depend on which others ran."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def encode_precision(run_precision: str, device="cpu") -> str:
    """The precision a run's encoder runs in when scored on ``device``: the run's own, except that a
    bf16 run is encoded in fp32 where ``device`` only emulates bf16 (~10x slower there; the
    difference this makes to the scores is in the README)."""
    from disentangle.devices import resolve_device
    from disentangle.hardware import native_bf16

    if run_precision == "bf16" and not native_bf16(resolve_device(device)):
        return "fp32"
    return run_precision


def encode_note(run_precision: str, device="cpu") -> str | None:
    """The ``encode_precision`` a metric's settings record for a run of ``run_precision`` scored on
    ``device``: None when the encoder runs as the run trained (as scores stored before it assume)."""
    encoded_in = encode_precision(run_precision, device)
    return encoded_in if encoded_in != run_precision else None


def metric_settings(name: str, profile: str = "published", seed: int = 0, split: str = "train",
                    options: dict | None = None, bootstrap: int = 0, encoded_in: str | None = None) -> dict:
    """The full settings one metric runs with: the profile's, then ``options``, then seed and split,
    and ``bootstrap`` (replicates of the percentile interval) for array metrics when asked;
    ``encoded_in`` (``encode_precision``) when the encoder ran in another precision than the run trained in."""
    settings = get_metric(name).settings(profile)
    for key, value in (options or {}).items():
        if key not in settings:
            raise DisentangleError(f"unknown setting {name}.{key}, expected one of {', '.join(name + '.' + k for k in settings)}")
        settings[key] = value
    settings["seed"] = seed
    settings["profile"] = profile  # for readers (figures, report); caches compare the values, not the name
    if split != "train":
        settings["split"] = split
    if bootstrap and get_metric(name).needs in ARRAY_NEEDS:  # the sampling and likelihood scores draw their own points
        settings["bootstrap"] = bootstrap
    if encoded_in is not None:
        settings["encode_precision"] = encoded_in
    return settings


def result_key(name: str, split: str = "train") -> str:
    """The metrics.json name of a metric on a split: ``iwae`` on train, ``iwae_test`` on test."""
    return name if split == "train" else f"{name}_{split}"


def same_settings(stored: dict | None, settings: dict) -> bool:
    """Whether a metric stored with ``stored`` settings ran with ``settings`` (timing aside)."""
    if not isinstance(stored, dict):
        return False
    informative = ("seconds", "skipped", "device", "profile")  # recorded for readers; the values decide equality
    return ({k: v for k, v in stored.items() if k not in informative}
            == {k: v for k, v in settings.items() if k not in informative})


def parse_metric_options(items) -> dict[str, dict]:
    """``["iwae.k=5000", "iwae.num_points=all"]`` -> ``{"iwae": {"k": 5000, "num_points": "all"}}``."""
    import json

    options: dict[str, dict] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        name, dot, setting = key.strip().partition(".")
        if not sep or not dot or name not in list_metrics() or not setting:
            raise DisentangleError(f"metric option must be METRIC.KEY=VALUE with METRIC one of {', '.join(list_metrics())}, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(name, {})[setting] = value
    return options


def evaluate(run_dir: str | Path, metric_names=None, seed: int = 0, profile: str = "published",
             force: bool = False, progress: bool = True, split: str = "train", options: dict | None = None,
             data_root: str | Path | None = None, bootstrap: int = 0, device: str = "cpu") -> dict:
    """Compute the requested metrics of one run; return the full metrics.json content.

    A metric already in metrics.json is reused only when it ran with the same
    settings (profile values, ``options``, seed, split); otherwise it is recomputed.
    The encoder runs in the precision the run trained in (fp32 for a bf16 run where ``device`` has
    no native bf16, recorded as ``encode_precision`` in each metric's settings); the array metrics share one
    coded sample per size (:class:`CodeSamples`).
    ``split="test"`` scores the data set's held-out split and stores the metric as
    ``<name>_test``. A metric that needs two or more factors is skipped on a data set
    with one, and metrics.json says so under ``settings`` (no number is written).
    """
    run_dir = Path(run_dir)
    metric_names = tuple(metric_names) if metric_names is not None else default_metrics()
    if runs.read_status(run_dir) != "done":
        raise DisentangleError(f"{run_dir} is not finished (status: {runs.read_status(run_dir)}); train it first")
    options = options or {}
    trained_in = runs.read_config(run_dir).precision
    note = encode_note(trained_in, device)
    wanted = {name: metric_settings(name, profile, seed, split, options.get(name), bootstrap, note) for name in metric_names}
    try:
        result = runs.read_metrics(run_dir)
    except DisentangleError:
        result = {}  # a corrupt file is rebuilt from scratch
    result.setdefault("settings", {})
    todo = [m for m in metric_names if force or not same_settings(result["settings"].get(result_key(m, split)), wanted[m])]
    # the published sampling scores draw millions of images: a data set's in-memory cache (dSprites: the
    # bit-packed grid, built in seconds) then beats drawing each batch (the same pixels either way)
    in_memory = profile == "published" and any(get_metric(m).needs == "sampling" for m in todo)
    config, dataset, model = load_trained(run_dir, split, data_root, device, in_memory=in_memory)
    represent = make_represent(model, precision=note or trained_in)
    scores = score_metrics(todo, wanted, dataset, represent, seed, model=model, progress=progress, label=run_dir.name)
    for name, values, settings in scores:
        key = result_key(name, split)
        for old in [k for k in result if k.startswith(key + ".")]:
            del result[old]
        result.update({f"{key}.{value_key}": float(value) for value_key, value in (values or {}).items()})
        result["settings"][key] = settings
        result["package_version"] = __version__
        atomic_write_json(run_dir / runs.METRICS, result)
    return result


def _device_note(model) -> dict:
    return {"device": str(model_device(model))} if model is not None else {}


def score_metrics(names, wanted: dict, dataset, represent, seed: int, model=None, progress: bool = False, label: str = ""):
    """Run metrics one by one, yielding ``(name, values or None, settings)`` as each finishes.

    The array metrics share one coded sample per size (:class:`CodeSamples`); each metric
    draws from its own stream (:func:`metric_rng`). ``settings`` is ``wanted[name]`` plus
    ``seconds``, or plus ``skipped`` (the reason) when a metric needs more factors than the
    data set has; then ``values`` is None.
    """
    samples = CodeSamples(dataset, represent, seed)
    bar = tqdm(names, desc=f"evaluating {label}".strip(), unit="metric", disable=not progress, leave=False)
    for name in bar:
        bar.set_postfix_str(name)  # the metric now running: the slow ones take minutes
        settings = wanted[name]
        start = time.perf_counter()
        try:
            values = compute_metric(name, dataset, model, settings, metric_rng(seed, name), represent, samples, progress)
        except SingleFactorError as error:
            if progress:
                tqdm.write(f"{label}: {name} skipped: {error}")
            yield name, None, {**settings, "skipped": str(error)}
        else:
            yield name, values, {**settings, "seconds": round(time.perf_counter() - start, 2), **_device_note(model)}
