"""No score from nothing (issue 43): every registered array metric, given input it cannot score (constant
codes, a single latent, a single factor, a single class per factor), gives NaN with a one-line warning or is
refused (skipped), never a perfect or a worst score."""

import math
import warnings

import numpy as np
import pytest

import disentangle
from disentangle.base.errors import DegenerateInputWarning, DisentangleError
from disentangle.metrics import factorized_support, metric_record, latent_correlation, list_metrics
from disentangle.metrics.registry import ARRAY_NEEDS

RNG = np.random.default_rng(0)
N = 600
FACTORS = np.stack([RNG.integers(0, 4, N), RNG.integers(0, 5, N)], 1)
NOISE = RNG.standard_normal((N, 4))
CASES = {  # (codes, factors, whether every metric that reads them must refuse or give NaN)
    "constant codes": (np.zeros((N, 5)), FACTORS, True),
    "one latent": (FACTORS[:, :1] + 0.1 * RNG.standard_normal((N, 1)), FACTORS, None),  # None: the metric's min_latents decides
    "one factor, noise codes": (NOISE, FACTORS[:, :1], False),
    "one class per factor": (NOISE, np.zeros((N, 2), dtype=int), True),
}
ARRAY_METRICS = [m for m in list_metrics() if metric_record(m).needs in ARRAY_NEEDS]


def _score(name, codes, factors):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = disentangle.evaluate_codes(codes[:400], factors[:400], codes[400:], factors[400:], [name], profile="tiny")
        except DisentangleError as error:
            return "refused", str(error), caught
    metric = metric_record(name)
    if result.get("settings", {}).get(name, {}).get("skipped"):
        return "skipped", result["settings"][name]["skipped"], caught
    return "scored", result[metric.headline_column], caught


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_degenerate_input_is_nan_or_refused_never_a_score(name, case):
    codes, factors, must_refuse = CASES[case]
    metric = metric_record(name)
    if must_refuse is None:
        must_refuse = codes.shape[1] < metric.min_latents
    if metric.needs == "codes_only" and "factor" in case:
        must_refuse = False  # it reads no factors: a factor's shape is nothing to it
    outcome, value, caught = _score(name, codes, factors)
    if must_refuse:
        if outcome == "scored":
            assert math.isnan(value), f"{name} scored {value} on {case}"
            degenerate = [w for w in caught if issubclass(w.category, DegenerateInputWarning)]
            assert len(degenerate) == 1 and "\n" not in str(degenerate[0].message) and name in str(degenerate[0].message)
        else:
            assert "\n" not in value
    elif outcome == "scored" and metric.needs != "codes_only" and case.startswith("one factor") and name != "dci_es":
        # (DCI-ES explicitness is relative to the best loss a probe reaches, by its definition: codes that tell
        # nothing reach it at once and are "explicit"; its informativeness says they tell nothing)
        # a metric that scores one factor must not call noise codes perfectly disentangled
        assert not value == pytest.approx(1.0, abs=1e-3), f"{name} calls noise codes perfect with one factor: {value}"


def test_latent_correlation_of_a_factor_no_latent_captures_is_nan_not_one():
    factors = np.array([(a, b, c) for a in range(4) for b in range(4) for c in range(4)] * 10)  # exactly independent
    codes = np.c_[factors[:, 0].astype(float), np.zeros(len(factors))]  # about factors 1 and 2 no latent tells anything
    with pytest.warns(DegenerateInputWarning, match="no pair of capturing latents for factor pair"):
        values = latent_correlation(codes, factors)
    assert math.isnan(values["pair_0_1"]) and math.isnan(values["pair_1_2"]) and math.isnan(values["mean_abs_correlation"])


def test_factorized_support_of_one_latent_is_nan_not_its_best_score():
    with pytest.warns(DegenerateInputWarning, match="1 latent"):
        assert math.isnan(factorized_support(NOISE[:, :1])["fos"])


def test_every_array_metric_declares_what_it_needs():
    assert all(metric_record(m).min_latents >= 1 and metric_record(m).min_factors >= 1 for m in ARRAY_METRICS)
    assert {m for m in ARRAY_METRICS if metric_record(m).min_factors > 1} >= {"dci", "modularity", "infomec", "mig_sup", "dcimig", "irs",
                                                                             "latent_correlation"}


@pytest.mark.parametrize("name", [m for m in list_metrics() if metric_record(m).needs == "sampling"])
def test_a_sampling_score_of_an_encoder_that_ignores_its_input_is_nan(name):
    from disentangle.datasets import get_dataset
    from disentangle.scoring.runner import compute_metric, metric_rng, metric_settings

    constant = lambda observations: np.zeros((len(observations), 5))  # noqa: E731
    with pytest.warns(DegenerateInputWarning, match=f"{name}: every code is constant"):
        values = compute_metric(name, get_dataset("dsprites"), None, metric_settings(name, "tiny"), metric_rng(0, name), constant)
    assert values == {metric_record(name).headline: pytest.approx(float("nan"), nan_ok=True)}
