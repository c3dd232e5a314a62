"""The metric registry: each metric declares itself once, beside its function.

``@register_metric("mig", needs="codes", published={...}, headline="discrete_mig", ...)``
on the metric's pure function records what it needs, its settings per evaluation
profile and its headline key. ``evaluate``, ``evaluate_representation``,
``evaluate_codes``, ``disentangle score``, the CLI's metric lists, the quickstart and
the report's headline columns all read it, so adding a metric is one file.

What a metric needs (``needs``) says how the runner calls it:

- ``"codes"``: ``function(codes, factors, **settings)`` on ``num_train`` coded points;
- ``"codes_only"``: ``function(codes, **settings)`` (unsupervised: no factors);
- ``"train_test"``: ``function(codes_train, factors_train, codes_test, factors_test, **settings)``
  on ``num_train`` + ``num_test`` coded points;
- ``"sampling"``: ``function(dataset, represent, rng, **settings)`` (draws its own batches);
- ``"model"``: ``function(model, observations, **settings)`` (likelihoods: a trained model);
- ``"runs"``: ``function(codes list, kl list, **settings)`` on several runs trained alike with
  different seeds (UDR): :func:`disentangle.lifecycle.model_selection.udr_runs` runs it, not a one-run evaluation.

``num_train`` / ``num_test`` / ``num_points`` are sample sizes the runner consumes;
every other setting goes to the function.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import inspect
from typing import Callable, Mapping

from disentangle.base.errors import DisentangleError
from disentangle.base.profiles import PROFILE_NAMES
from disentangle.base.registry import Registry

NEEDS = ("codes", "codes_only", "train_test", "sampling", "model", "runs")
REPRESENTATIONS = ("mean", "sampled")  # disentanglement_lib's postprocessing: the posterior mean, or one draw from it
ARRAY_NEEDS = ("codes", "codes_only", "train_test")  # what evaluate_codes can run


@dataclass(frozen=True)
class Metric:
    """One registered metric: its function and everything the runners need to know."""

    name: str
    function: Callable
    needs: str
    profiles: Mapping[str, Mapping[str, object]]
    headline: str
    title: str
    reference: str
    default: bool = False
    family: str = ""  # the name other keys are shown under ("DCI: completeness"); default: title
    continuous: bool = False  # takes continuous_factors=True (regression / binned-factor variant)
    reports_progress: bool = False  # takes progress=callable(number of observations done): a bar for a minutes-long score
    min_latents: int = 2  # codes with fewer latents are degenerate for it (NaN, a warning): nothing to compare a latent with
    min_factors: int = 1  # fewer factors with more than one value: refused (SingleFactorError, recorded as skipped)
    bounds: Mapping[str, tuple] = dataclasses.field(default_factory=dict)  # its settings' (least, most), over SETTING_BOUNDS
    records: tuple[str, ...] = ()  # signature parameters its settings record at their defaults (register_metric)

    def degenerate(self, codes, factors=None) -> str | None:
        """Why ``codes`` (and ``factors``) are degenerate input for this metric, or None: every code
        constant, or fewer latents than :attr:`min_latents` (the runner then gives NaN and a one-line
        warning, never a perfect or worst score). Fewer varying factors than :attr:`min_factors` raise
        :class:`~disentangle.metrics._utils.SingleFactorError`, so that the metric is recorded as skipped."""
        import numpy as np

        from disentangle.metrics._utils import SingleFactorError

        codes = np.asarray(codes)
        if codes.ndim == 2 and len(codes) and not np.ptp(codes, axis=0).any():
            return "every code is constant (the encoder ignores its input)"
        if codes.ndim == 2 and codes.shape[1] < self.min_latents:
            return f"{codes.shape[1]} latent: {self.title} compares at least {self.min_latents}"
        if factors is not None and self.min_factors > 1:
            factors = np.asarray(factors)
            varying = int(sum(len(np.unique(column)) > 1 for column in factors.T)) if factors.ndim == 2 else 0
            if varying < self.min_factors:
                raise SingleFactorError(f"{self.name} needs at least {self.min_factors} factors with more than one value, got {varying}: "
                                        "it compares factors")
        return None

    @property
    def headline_column(self) -> str:
        """The results-table column of the headline value, e.g. ``"mig.discrete_mig"``."""
        return f"{self.name}.{self.headline}"

    def settings(self, profile: str) -> dict:
        """A fresh copy of the settings this metric runs with under ``profile``."""
        if profile not in self.profiles:
            raise DisentangleError(f"unknown evaluation profile {profile!r}, expected one of {', '.join(PROFILE_NAMES)}")
        return dict(self.profiles[profile])


SETTING_BOUNDS = {  # the most any metric setting of this name may be (inclusive), beside the kinds its signature declares
    "n_bins": (2, 1_000),          # 20 is the published; a histogram of 2e9 bins is 15 GB
    "batch_size": (1, 4_096),
    "k": (1, 100_000),             # IWAE's importance samples: 5,000 is the paper's largest
    "n_neighbors": (1, 1_000),
    "n_estimators": (1, 10_000),
    "num_eval": (1, 1_000_000),
}


def setting_bounds(metric: "Metric", key: str) -> tuple[float, float] | None:
    """The (least, most) value ``metric``'s setting ``key`` accepts: its own declaration, else the shared
    :data:`SETTING_BOUNDS`; None for a setting without one."""
    return metric.bounds.get(key) or SETTING_BOUNDS.get(key)


METRICS = Registry("metric")  # the same registry as models, data sets and executors; entries are Metric records


def register_metric(name: str, *, needs: str, published: dict, headline: str, title: str, reference: str,
                    records: tuple[str, ...] = (), fast: dict | None = None, tiny: dict | None = None, default: bool = False,
                    family: str = "", continuous: bool = False, reports_progress: bool = False, min_latents: int = 2,
                    min_factors: int = 1, bounds: dict | None = None) -> Callable:
    """Function decorator: register a metric under ``name``.

    A profile lists only what differs from the function's signature: ``published`` the settings whose published
    value is not the signature's default (and the runner's sample sizes the function does not take), ``records``
    the signature parameters the settings record at their defaults (the published value is the default: one
    place, held by a test). ``fast`` and ``tiny`` update the published settings (``tiny``: on top of ``fast``);
    ``default`` puts the metric in ``evaluate``'s default set; ``continuous`` says the function
    takes ``continuous_factors=True`` for real-valued factors; ``reports_progress`` that it takes
    ``progress=callable(n)`` and calls it as it scores ``n`` more observations (the runner shows a bar);
    ``min_latents`` / ``min_factors``: the least input it scores (:meth:`Metric.degenerate`), declared here so
    that the runner holds every metric to it the same way.
    """
    if needs not in NEEDS:
        raise ValueError(f"metric {name!r}: needs must be one of {NEEDS}, got {needs!r}")
    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function).parameters
        unknown = [key for key in records if key not in signature or signature[key].default is inspect.Parameter.empty]
        if unknown:
            raise ValueError(f"metric {name!r}: records {unknown[0]!r}, which is not a parameter of {function.__name__} with a default")
        full = {**{key: signature[key].default for key in records}, **published}
        fast_settings = {**full, **(fast or {})}
        profiles = {"published": full, "fast": fast_settings, "tiny": {**fast_settings, **(tiny or {})}}
        METRICS.add(name, Metric(name, function, needs, profiles, headline, title, reference, default, family or title, continuous,
                                 reports_progress, min_latents, min_factors, dict(bounds or {}), tuple(records)))
        return function

    return decorate


def list_metrics(default_only: bool = False, needs: tuple[str, ...] | None = None) -> list[str]:
    """Registered metric names in registration order (optionally: the default set, or by need)."""
    return [m.name for m in METRICS.entries() if (not default_only or m.default) and (needs is None or m.needs in needs)]


def metric_record(name: str) -> Metric:
    """The registered metric ``name`` (its function, needs, profiles, bounds, ...), or a one-line error listing
    the names: what ``model_class`` and ``dataset_class`` are to models and data sets."""
    return METRICS.get(name)


def get_metric(name: str) -> Callable:
    """The metric ``name`` ready to call (its function, e.g. ``get_metric("mig")(codes, factors)``), as
    ``get_model`` and ``get_dataset`` give a model and a data set; a one-line error listing the names."""
    return METRICS.get(name).function


def default_metrics() -> tuple[str, ...]:
    """The metrics an evaluation runs when none are named (the registry's default set)."""
    return tuple(list_metrics(default_only=True))


def parse_metric_names(text: str | None, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Comma-separated metric names -> a checked tuple (empty or None: ``default``, else the default set);
    the one parser of metric names (``--metrics``, ``grid --evaluate``, study files)."""
    if not text:
        return tuple(default) if default is not None else default_metrics()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise DisentangleError(f"no metric named in {text!r}, expected some of {', '.join(METRICS.names())}")
    for name in names:
        metric_record(name)
    return names

def result_key(name: str, split: str = "train", representation: str = "mean", distribution: str | None = None) -> str:
    """The metrics.json name of a metric on a split, representation and distribution: ``mig`` (train, mean,
    the unaltered grid), ``mig_test``, ``mig_sampled``, ``mig_sampled_test``, ``mig_training`` (a run trained
    under correlations or a holdout, scored on its own training joint: never over the unaltered score).
    The likelihoods read no codes: ``iwae`` whatever the representation."""
    sampled = representation != "mean" and metric_record(name).needs not in ("model", "runs")
    return (name + ("_" + representation if sampled else "") + ("_training" if distribution == "training" else "")
            + ("" if split == "train" else f"_{split}"))


def result_names() -> set[str]:
    """Every metrics.json name :func:`result_key` can give (each metric on each split, representation and distribution)."""
    return {result_key(name, split, representation, distribution) for name in list_metrics() for split in ("train", "test")
            for representation in REPRESENTATIONS for distribution in (None, "training")}


def parse_result_key(key: str) -> tuple[str, str, str]:
    """``"mig_sampled_test"`` -> ``("mig", "test", "sampled")``: the inverse of :func:`result_key` (a score on the
    training distribution parses as its metric's)."""
    for name in list_metrics():
        for split in ("train", "test"):
            for representation in REPRESENTATIONS:
                for distribution in (None, "training"):
                    if result_key(name, split, representation, distribution) == key:
                        return name, split, representation
    raise DisentangleError(f"{key!r} is not a metric result name")


def headline_columns() -> tuple[str, ...]:
    """The results-table column of every registered metric's headline value."""
    return tuple(m.headline_column for m in METRICS.entries())


def human_name(column: str) -> str:
    """A readable name for a results column: ``"mig.discrete_mig"`` -> ``"MIG"``,
    ``"mig_sampled_test.discrete_mig"`` -> ``"MIG (sampled, test)"``; other keys kept."""
    stored, _, key = column.partition(".")
    try:
        name, split, representation = parse_result_key(stored)
    except DisentangleError:
        return column
    metric = METRICS.get(name)
    shown = metric.title if key == metric.headline else f"{metric.family}: {key.replace('_', ' ')}"
    qualifiers = [q for q in (representation if representation != "mean" else "", split if split != "train" else "") if q]
    return shown + (f" ({', '.join(qualifiers)})" if qualifiers else "")
