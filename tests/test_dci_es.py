"""DCI-ES explicitness (Eastwood et al. 2023): hand-computed curves and the properties the paper claims."""

import numpy as np
import pytest

from disentangle.base.errors import DisentangleError
from disentangle.metrics import dci_es_explicitness
from disentangle.metrics._dci_es import area_explicitness

FAST = {"depths": [1, 2, 4, 8, 16, 32], "n_estimators": 20}


def test_hand_computed_curve():
    # area above the best loss (0): 0.5*(0.5+0.25)*1 + 0.5*(0.25+0)*2 = 0.625; triangle 0.5*(4-1)*0.5 = 0.75
    assert area_explicitness([1, 2, 4], [0.5, 0.25, 0.0], baseline_loss=0.5) == pytest.approx(1 - 0.625 / 0.75)


def test_the_curve_is_the_lowest_loss_so_far_and_measured_from_its_best():
    assert area_explicitness([1, 2, 4], [0.5, 0.6, 0.0], 0.5) == pytest.approx(area_explicitness([1, 2, 4], [0.5, 0.5, 0.0], 0.5))
    assert area_explicitness([1, 2, 4], [0.3, 0.3, 0.3], 0.5) == 1.0  # the smallest probe is as good as any
    steep, slow = area_explicitness([1, 2, 4], [0.5, 0.0, 0.0], 0.5), area_explicitness([1, 2, 4], [0.5, 0.5, 0.0], 0.5)
    assert 1.0 > steep > slow  # more capacity needed, lower E


@pytest.mark.parametrize("capacities, losses, baseline", [([1], [0.5], 0.5), ([2, 1], [0.5, 0.1], 0.5), ([1, 2], [0.5, 0.1], 0.0)])
def test_bad_curves_are_one_line_errors(capacities, losses, baseline):
    with pytest.raises(DisentangleError):
        area_explicitness(capacities, losses, baseline)


def _factors(n, seed):
    return np.random.default_rng(seed).integers(0, 8, size=(n, 3))


def test_axis_aligned_codes_are_more_explicit_than_mixed_ones():
    train, test = _factors(3000, 0), _factors(1500, 1)
    mixing = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 1.0], [0.0, 1.0, -1.0]])
    perfect = dci_es_explicitness(train + 0.0, train, test + 0.0, test, **FAST)
    mixed = dci_es_explicitness(train @ mixing, train, test @ mixing, test, **FAST)
    assert perfect["informativeness_test"] == pytest.approx(1.0) and mixed["informativeness_test"] > 0.9  # both hold everything
    assert perfect["explicitness"] > 0.85 and perfect["explicitness"] > mixed["explicitness"] + 0.15


def test_invariant_to_permuting_and_rescaling_the_codes():
    train, test = _factors(2000, 2), _factors(1000, 3)
    codes_train, codes_test = train + np.random.default_rng(4).normal(0, 0.3, train.shape), test + 0.0
    base = dci_es_explicitness(codes_train, train, codes_test, test, **FAST)
    order, scale = [2, 0, 1], np.array([3.0, 0.5, 10.0])
    moved = dci_es_explicitness(codes_train[:, order] * scale, train, codes_test[:, order] * scale, test, **FAST)
    assert moved["explicitness"] == pytest.approx(base["explicitness"], abs=0.03)  # trees split on order, not units


def test_noise_codes_read_as_uninformative_not_as_hard_to_read():
    train, test = _factors(2000, 5), _factors(1000, 6)
    rng = np.random.default_rng(7)
    noise = dci_es_explicitness(rng.normal(size=(2000, 3)), train, rng.normal(size=(1000, 3)), test, **FAST)
    assert noise["informativeness_test"] < 0.2  # chance is 1/8
    assert noise["explicitness"] > 0.9  # a flat curve: E is relative to the best loss, as the paper defines it


def test_continuous_factors_use_regressor_probes_and_say_so():
    rng = np.random.default_rng(8)
    train, test = rng.uniform(size=(1500, 2)), rng.uniform(size=(800, 2))
    result = dci_es_explicitness(train * 2.0, train, test * 2.0, test, continuous_factors=True, **FAST)
    assert set(result) == {"explicitness_r2", "explicitness_r2_factor0", "explicitness_r2_factor1", "informativeness_test_r2"}
    assert result["informativeness_test_r2"] > 0.95


def test_constant_factors_are_left_out_and_named_by_column():
    train, test = _factors(1000, 9), _factors(500, 10)
    train[:, 1], test[:, 1] = 3, 3
    result = dci_es_explicitness(train + 0.0, train, test + 0.0, test, **FAST)
    assert "explicitness_factor1" not in result and {"explicitness_factor0", "explicitness_factor2"} <= set(result)
