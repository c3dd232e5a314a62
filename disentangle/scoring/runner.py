"""The one metric runner: codes (drawn through a ``represent`` function, or given as arrays),
metric names, a profile, a seed and options in; values and the settings they ran with out.

:func:`score` is what :func:`disentangle.lifecycle.evaluation.evaluate` (a trained run, persisted),
:func:`disentangle.evaluate_representation` (any encoder) and :func:`disentangle.evaluate_codes`
(arrays) all call; it writes nothing. It loads no torch: a ``model`` is only passed through
to the likelihood metrics.
"""

from __future__ import annotations

import time
import zlib
from typing import Iterator

import numpy as np

from disentangle import __version__
from disentangle.base.errors import DisentangleError
from disentangle.metrics._utils import SingleFactorError, shared_mutual_information
from disentangle.metrics.registry import ARRAY_NEEDS, REPRESENTATIONS, metric_record, list_metrics, result_key, setting_bounds
from disentangle.metrics.sampling import represent_sample
from disentangle.base.registry import function_schema
from disentangle.base.validation import check_choice, check_count, parse_setting

MAX_SAMPLE_POINTS = 1_000_000  # codes of a million points fill ~100 MB per 10 latents; the published settings draw 10,000
MAX_BOOTSTRAP = 10_000  # replicates of a percentile interval (2,000 is the textbook's ample)
RUNNER_KEYS = ("seed", "split", "profile", "encode_precision", "representation", "distribution")  # recorded, not passed to a metric


def sampled_represent(posterior, rng: np.random.Generator):
    """A represent function that codes each observation with one draw from its Gaussian posterior,
    ``mean + exp(log_variance / 2) * eps``, the noise ``eps`` from ``rng`` (disentanglement_lib's
    ``sampled`` representation).

    Parameters
    ----------
    posterior : callable
        ``posterior(observations) -> (mean [n, d], log_variance [n, d])``.
    rng : numpy.random.Generator
        The stream of the noise: a seed fixes every code.
    """

    def represent(observations: np.ndarray) -> np.ndarray:
        mean, log_variance = posterior(observations)
        mean, log_variance = np.asarray(mean, dtype=np.float64), np.asarray(log_variance, dtype=np.float64)
        return mean + np.exp(0.5 * log_variance) * rng.standard_normal(mean.shape)

    return represent


class CodeSamples:
    """Coded samples drawn from a data set, shared by the array metrics (MIG, DCI, SAP, ...).

    ``get("train", n)`` draws n observations once and codes them; every metric asking
    for the same split and size gets the same arrays. Each (part, n) has its own random
    stream from ``seed``, so a metric's result does not depend on which others ran.

    ``representation="sampled"`` codes with one draw from the posterior (``posterior``:
    observations -> (mean, log_variance)) instead of ``represent``'s mean; the noise of each
    (part, n) sample and of each sampling metric has its own stream from ``seed`` too.
    """

    def __init__(self, dataset, represent, seed: int, *, posterior=None, representation: str = "mean"):
        check_choice(representation, "representation", REPRESENTATIONS)
        if representation == "sampled" and posterior is None:
            raise DisentangleError("the sampled representation needs the encoder's posterior (mean, log variance), not only codes")
        self.dataset, self.represent, self.seed = dataset, represent, seed
        self.posterior, self.representation = posterior, representation
        self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def represent_for(self, stream: str):
        """The represent function a metric named ``stream`` codes with: ``represent`` for the mean
        representation, a sampled one with the metric's own noise stream otherwise."""
        if self.representation == "mean":
            return self.represent
        return sampled_represent(self.posterior, np.random.default_rng([self.seed, zlib.crc32(f"sampled:{stream}".encode())]))

    def get(self, part: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(factors int64 [n, k], codes float64 [n, d])."""
        if (part, n) not in self._cache:
            rng = np.random.default_rng([self.seed, zlib.crc32(part.encode()), int(n)])
            self._cache[(part, n)] = represent_sample(self.dataset, self.represent_for(f"{part}:{n}"), n, rng)
        return self._cache[(part, n)]

    def recorded_settings(self, needs: str) -> dict:
        """What the settings record beyond the profile's: nothing (the sizes drawn are the profile's)."""
        return {}


class GivenCodes:
    """Codes the caller already has: ``get("train", n)`` returns the training arrays whatever ``n``
    (the settings record their lengths instead of the profile's sample sizes)."""

    def __init__(self, codes_train, factors_train, codes_test=None, factors_test=None, continuous: bool = False):
        self.parts = {"train": (factors_train, codes_train), "test": (factors_test, codes_test)}
        self.continuous = continuous
        self.represent = None  # nothing to draw with: the sampling scores need a CodeSamples
        self.representation = "mean"  # whatever the caller's codes are: recorded as given

    def represent_for(self, stream: str):
        return None

    def get(self, part: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.parts[part]

    def recorded_settings(self, needs: str) -> dict:
        """The sample sizes a metric of kind ``needs`` ran on (the arrays' lengths, not the profile's),
        and ``continuous_factors`` for real-valued factors (the metrics' continuous variants)."""
        recorded = {"num_train": len(self.parts["train"][1])}
        if needs == "train_test":
            recorded["num_test"] = len(self.parts["test"][1])
        if self.continuous:
            recorded["continuous_factors"] = True
        return recorded


def metric_rng(seed: int, name: str) -> np.random.Generator:
    """Each metric its own stream, so results do not depend on which others ran."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def metric_settings(name: str, profile: str = "published", seed: int = 0, split: str = "train",
                    options: dict | None = None, bootstrap: int = 0, encoded_in: str | None = None,
                    representation: str = "mean", distribution: str | None = None) -> dict:
    """The full settings one metric runs with: the profile's, then ``options``, then seed and split,
    and ``bootstrap`` (replicates of the percentile interval) for array metrics when asked;
    ``encoded_in`` (``encode_precision``) when the encoder ran in another precision than the run trained in;
    ``representation`` when it is ``"sampled"`` and the metric reads codes (the likelihoods do not);
    ``distribution`` (``unaltered`` or ``training``) for a run trained on correlated factors."""
    check_choice(representation, "representation", REPRESENTATIONS)
    settings = metric_record(name).settings(profile)
    kinds = function_schema(metric_record(name).function)
    for key, value in (options or {}).items():
        if key not in settings:
            raise DisentangleError(f"unknown setting {name}.{key}, expected one of {', '.join(name + '.' + k for k in settings)}")
        if key in kinds:
            kinds[key].check(value, f"metric {name!r}")
        elif not (key == "num_points" and value == "all"):  # a sample size the runner draws
            check_count(value, f"{name}.{key}")
        bounds = setting_bounds(metric_record(name), key)
        if bounds and isinstance(value, (int, float)) and not isinstance(value, bool) and not bounds[0] <= value <= bounds[1]:
            raise DisentangleError(f"{name}.{key} must be in [{bounds[0]:,}, {bounds[1]:,}], got {value:,}")
        if key.startswith("num_") and isinstance(value, int) and value > MAX_SAMPLE_POINTS:
            raise DisentangleError(f"{name}.{key} must be at most {MAX_SAMPLE_POINTS:,} (points drawn and coded in memory; "
                                   f"the published setting is {metric_record(name).settings('published').get(key, 'smaller')}), got {value:,}")
        settings[key] = value
    settings["seed"] = seed
    settings["profile"] = profile  # for readers (figures, report); caches compare the values, not the name
    if split != "train":
        settings["split"] = split
    if bootstrap and bootstrap > MAX_BOOTSTRAP:
        raise DisentangleError(f"bootstrap must be at most {MAX_BOOTSTRAP:,} replicates (each recomputes the metric), got {bootstrap:,}")
    if bootstrap and metric_record(name).needs in ARRAY_NEEDS:  # the sampling and likelihood scores draw their own points
        settings["bootstrap"] = bootstrap
    if encoded_in is not None:
        settings["encode_precision"] = encoded_in
    if representation != "mean" and metric_record(name).needs not in ("model", "runs"):
        settings["representation"] = representation
    if distribution is not None:
        settings["distribution"] = distribution
    return settings


def same_settings(stored: dict | None, settings: dict) -> bool:
    """Whether a metric stored with ``stored`` settings ran with ``settings`` (timing aside)."""
    if not isinstance(stored, dict):
        return False
    informative = ("seconds", "skipped", "device", "profile")  # recorded for readers; the values decide equality
    return ({k: v for k, v in stored.items() if k not in informative}
            == {k: v for k, v in settings.items() if k not in informative})


def parse_metric_options(items) -> dict[str, dict]:
    """``["iwae.k=5000", "iwae.num_points=all"]`` -> ``{"iwae": {"k": 5000, "num_points": "all"}}``."""
    options: dict[str, dict] = {}
    expected = f"METRIC.KEY=VALUE with METRIC one of {', '.join(list_metrics())}"
    for item in items or ():
        try:
            key, value = parse_setting(item)
        except DisentangleError:
            raise DisentangleError(f"metric option must be {expected}, got {item!r}") from None
        name, dot, setting = key.partition(".")
        if not dot or name not in list_metrics() or not setting:
            raise DisentangleError(f"metric option must be {expected}, got {item!r}")
        options.setdefault(name, {})[setting] = value
    return options


def compute_metric(name: str, dataset, model, settings: dict, rng: np.random.Generator,
                   represent=None, samples: CodeSamples | GivenCodes | None = None, progress: bool = False) -> dict[str, float]:
    """One registered metric with explicit settings (the runner's own keys, ``seed`` ..., are ignored).

    ``model`` is needed only by likelihood metrics (``needs="model"``); ``samples`` gives the
    array metrics their codes, ``represent`` the sampling scores theirs.
    """
    metric = metric_record(name)
    if metric.needs == "runs":
        raise DisentangleError(f"{name} compares runs trained alike with different seeds, not one: run 'disentangle udr --runs-dir DIR'")
    if represent is None and samples is None and metric.needs != "model":
        raise DisentangleError(f"{name} needs a represent function (e.g. disentangle.lifecycle.evaluation.make_represent(model)) or codes")
    samples = samples or CodeSamples(dataset, represent, int(settings.get("seed", 0)))
    s = {k: v for k, v in settings.items() if k not in RUNNER_KEYS}
    if metric.needs == "sampling":
        probe = np.random.default_rng([int(settings.get("seed", 0)), zlib.crc32(b"degenerate-probe")])  # not the metric's stream
        _, observations = dataset.sample(DEGENERATE_PROBE_POINTS, probe)
        reason = metric.degenerate(np.asarray(represent(observations), dtype=np.float64))
        if reason is not None:  # the sampling scores too: never a perfect or worst score from constant codes
            return _degenerate(metric, reason)
        return metric.function(dataset, represent, rng, **s)
    if metric.needs == "model":
        if model is None:
            raise DisentangleError(f"{name} needs a trained model of this project (a likelihood), not just a representation")
        num_points = s.pop("num_points")
        observations = dataset.evaluation_observations(None if num_points == "all" else num_points, rng)
        if metric.reports_progress:  # e.g. IWAE with k = 5,000 on 10,000 images takes minutes: show it
            from tqdm.auto import tqdm

            label = " ".join([name, *(f"{k}={v}" for k, v in s.items())])
            with tqdm(total=len(observations), desc=label, unit="image", disable=not progress, leave=False) as bar:
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
    reason = metric.degenerate(codes_train, None if metric.needs == "codes_only" else factors_train)
    if reason is not None:  # never a perfect or worst score from nothing
        return _degenerate(metric, reason)
    train = (codes_train,) if metric.needs == "codes_only" else (codes_train, factors_train)
    test = (codes_test, factors_test) if metric.needs == "train_test" else None

    def call(train_arrays, test_arrays):
        return metric.function(*train_arrays, *(test_arrays or ()), **s)

    values = call(train, test)
    if replicates:
        values.update(bootstrap_interval(call, train, test, replicates, rng or np.random.default_rng(0)))
    return values


DEGENERATE_PROBE_POINTS = 256  # observations a sampling score's representation is probed on for constant codes


def _degenerate(metric, reason: str) -> dict[str, float]:
    """NaN for the metric's headline, said in one warning line: what degenerate input gets."""
    import warnings

    from disentangle.base.errors import DegenerateInputWarning

    warnings.warn(f"{metric.name}: {reason}: NaN", DegenerateInputWarning, stacklevel=3)
    return {metric.headline: float("nan")}


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


def score(metrics, codes: CodeSamples | GivenCodes, *, profile: str = "published", seed: int = 0, options: dict | None = None,
          bootstrap: int = 0, split: str = "train", encoded_in: str | None = None, distribution: str | None = None,
          dataset=None, model=None, progress: bool = False, label: str = "") -> Iterator[tuple[str, dict | None, dict]]:
    """Run metrics one by one, yielding ``(name, values or None, settings)`` as each finishes.

    Parameters
    ----------
    metrics : sequence of str
        Registered metric names, run in this order.
    codes : CodeSamples or GivenCodes
        Where the array metrics' codes come from: drawn from ``dataset`` through a represent
        function (one coded sample per size, shared), or the caller's arrays.
    profile, seed, options, bootstrap, split, encoded_in, distribution
        As :func:`metric_settings`; every metric draws from its own stream (:func:`metric_rng`).
    dataset, model
        The data set the sampling scores draw from; the trained model the likelihoods need.

    Yields
    ------
    (name, values, settings)
        ``values`` maps the metric's keys to numbers; ``settings`` is what it ran with plus
        ``seconds``, or plus ``skipped`` (the reason, ``values`` None) when it needs more
        factors than the data has.
    """
    from tqdm.auto import tqdm

    options = options or {}
    mutual_information: dict = {}  # each discretised MI matrix computed once for all the metrics of this evaluation
    bar = tqdm(metrics, desc=f"evaluating {label}".strip(), unit="metric", disable=not progress, leave=False)
    for name in bar:
        bar.set_postfix_str(name)  # the metric now running: the slow ones take minutes
        settings = {**metric_settings(name, profile, seed, split, options.get(name), bootstrap, encoded_in, codes.representation,
                                     distribution),
                    **codes.recorded_settings(metric_record(name).needs)}
        start = time.perf_counter()
        try:
            with shared_mutual_information(mutual_information):
                values = compute_metric(name, dataset, model, settings, metric_rng(seed, name), codes.represent_for(name), codes, progress)
        except SingleFactorError as error:
            if progress:
                tqdm.write(f"{label}: {name} skipped: {error}")
            yield name, None, {**settings, "skipped": str(error)}
        else:
            yield name, values, {**settings, "seconds": round(time.perf_counter() - start, 2), **_device_note(model)}


def collect(scores, split: str = "train", representation: str = "mean") -> dict:
    """The mapping metrics.json holds, from :func:`score`'s results: ``{"<metric>.<key>": float,
    "settings": {metric: settings}, "package_version": str}``."""
    result: dict = {"settings": {}, "package_version": __version__}
    for name, values, settings in scores:
        record(result, name, values, settings, split, representation)
    return result


def record(result: dict, name: str, values: dict | None, settings: dict, split: str = "train", representation: str = "mean") -> None:
    """Put one metric's values and settings into a metrics.json mapping (under :func:`result_key`), in
    place, replacing what an earlier run of the metric left (its keys, and its values when it is now skipped)."""
    key = result_key(name, split, representation, settings.get("distribution"))
    for old in [k for k in result if k.startswith(key + ".")]:
        del result[old]
    result.update({f"{key}.{value_key}": float(value) for value_key, value in (values or {}).items()})
    result.setdefault("settings", {})[key] = settings
    result["package_version"] = __version__


def _device_note(model) -> dict:
    if model is None:
        return {}
    from disentangle.base.devices import model_device

    return {"device": str(model_device(model))}
