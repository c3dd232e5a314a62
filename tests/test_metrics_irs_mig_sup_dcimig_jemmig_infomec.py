"""The array metrics reviews since 2019 expect: IRS, MIG-sup, DCIMIG, JEMMIG, InfoMEC
(Z-max variance, a sampling score, is tested with the others in test_metrics.py).

Each: a perfect code scores high, noise low, permuting code columns changes nothing
where the paper says so, and one case computed by hand.
"""

import math

import numpy as np
import pytest

from disentangle.base.errors import DisentangleError
from disentangle.metrics import dcimig, infomec, irs, jemmig, mig, mig_sup

ARRAY_METRICS = {  # function, key
    "irs": (irs, "irs"),
    "mig_sup": (mig_sup, "discrete_mig_sup"),
    "dcimig": (dcimig, "discrete_dcimig"),
    "jemmig": (jemmig, "discrete_jemmig"),
    "infoe": (infomec, "infoe"),
}


def full_grid(sizes, repeats=20):
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    return np.tile(grid, (repeats, 1))


@pytest.fixture(scope="module")
def factors():
    return full_grid((4, 5, 6))


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_perfect_code_scores_high_noise_low(name, factors):
    function, key = ARRAY_METRICS[name]
    rng = np.random.default_rng(0)
    perfect = function(factors + 0.01 * rng.standard_normal(factors.shape), factors)[key]
    noise = function(rng.standard_normal((len(factors), 4)), factors)[key]
    assert perfect > 0.9, perfect
    assert noise < 0.35 and perfect - noise > 0.6, noise


@pytest.mark.parametrize("name", [*ARRAY_METRICS, "infom", "infoc"])
def test_permuting_code_columns_changes_nothing(name, factors):
    function, key = {**ARRAY_METRICS, "infom": (infomec, "infom_knn"), "infoc": (infomec, "infoc_knn")}[name]
    rng = np.random.default_rng(1)
    codes = np.concatenate([factors[:, :2] + 0.5 * rng.standard_normal((len(factors), 2)), rng.standard_normal((len(factors), 2))], 1)
    order = [2, 0, 3, 1]
    assert function(codes[:, order], factors)[key] == pytest.approx(function(codes, factors)[key], abs=1e-9)


def test_infomec_perfect_code_is_modular_and_compact(factors):
    # InfoM and InfoC say how information is spread, not how much there is: on pure noise they
    # are arbitrary (Hsu et al. read them with InfoE); a perfect code scores near 1 on both.
    rng = np.random.default_rng(0)
    result = infomec(factors + 0.01 * rng.standard_normal(factors.shape), factors)
    assert result["infom_knn"] > 0.9 and result["infoc_knn"] > 0.9 and result["num_active_dims"] == 3
    assert infomec(rng.standard_normal((len(factors), 4)), factors)["infoe"] < 0.05


XOR_FACTORS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5)


def test_mig_sup_hand_case_sees_what_mig_misses():
    # z0 = 2 f0 + f1 holds both factors, z1 = f0 XOR f1 neither alone. MIG: each factor's best code
    # is z0 with normalised MI 1, the runner-up z1 with 0 -> MIG 1. MIG-sup: z0's two factors tie
    # (gap 0), z1 has none (gap 0) -> 0: one latent entangling two factors is what it catches.
    f0, f1 = XOR_FACTORS[:, 0], XOR_FACTORS[:, 1]
    codes = np.stack([2 * f0 + f1, f0 ^ f1], 1).astype(float)
    assert mig(codes, XOR_FACTORS)["discrete_mig"] == pytest.approx(1.0)
    assert mig_sup(codes, XOR_FACTORS)["discrete_mig_sup"] == pytest.approx(0.0)
    codes = np.stack([f0, f0 ^ f1], 1).astype(float)  # z0 = f0 alone: gap 1 for z0, 0 for z1
    assert mig_sup(codes, XOR_FACTORS)["discrete_mig_sup"] == pytest.approx(0.5)


def test_dcimig_and_jemmig_hand_case():
    # both codes copy f0; per code: best f0 (ln 2), runner-up f1 (0) -> gap ln 2 each;
    # factor f0's best gap ln 2, f1's none: DCIMIG = ln 2 / (ln 2 + ln 2) = 0.5.
    codes = np.stack([XOR_FACTORS[:, 0], XOR_FACTORS[:, 0]], 1).astype(float)
    assert dcimig(codes, XOR_FACTORS)["discrete_dcimig"] == pytest.approx(0.5)
    # JEMMIG per factor: f0: H(z*, f0) - I(z*; f0) + I(z°; f0) = ln2 - ln2 + ln2; f1: H(z0, f1) - 0 + 0 = ln 4,
    # each over H(f) + ln(20 bins) = ln 2 + ln 20.
    expected = 1 - (math.log(2) + math.log(4)) / 2 / (math.log(2) + math.log(20))
    assert jemmig(codes, XOR_FACTORS)["discrete_jemmig"] == pytest.approx(expected)


def test_irs_hand_case_as_disentanglement_lib_defines_it():
    # one factor (0, 0, 1, 1), one code (0, 1, 10, 11): largest deviation from the mean 5.5;
    # within each factor value |z - E[z | g]| = 0.5 (quantile 0.5), averaged 0.5 -> IRS = 1 - 0.5 / 5.5.
    result = irs(np.array([[0.0], [1.0], [10.0], [11.0]]), np.array([[0], [0], [1], [1]]))
    assert result["irs"] == pytest.approx(1 - 0.5 / 5.5) and result["num_active_dims"] == 1
    # a constant code is dropped (num_active_dims), the weighting uses the rest
    with_constant = irs(np.array([[0.0, 3.0], [1.0, 3.0], [10.0, 3.0], [11.0, 3.0]]), np.array([[0], [0], [1], [1]]))
    assert with_constant == {"irs": pytest.approx(1 - 0.5 / 5.5), "num_active_dims": 1}
    with pytest.raises(DisentangleError, match=r"diff_quantile must be in \(0, 1\], got 1.5"):
        irs(np.zeros((4, 1)) + np.arange(4)[:, None], np.array([[0], [0], [1], [1]]), diff_quantile=1.5)


def test_infomec_hand_case_binned():
    # z0 = f0, z1 = f1, z2 = f0 again: every latent informs one factor (InfoM = 1); f0 is split
    # over two latents (share 1/2), f1 over one (share 1): InfoC = (0.75 - 1/3) / (1 - 1/3) = 0.625.
    codes = np.stack([XOR_FACTORS[:, 0], XOR_FACTORS[:, 1], XOR_FACTORS[:, 0]], 1).astype(float)
    result = infomec(codes, XOR_FACTORS, estimator="binned")
    assert result["infom_binned"] == pytest.approx(1.0)
    assert result["infoc_binned"] == pytest.approx(0.625)
    assert result["num_active_dims"] == 3 and result["infoe"] > 0.9
    with pytest.raises(DisentangleError, match="infomec estimator must be one of knn, binned, got 'ksg'"):
        infomec(codes, XOR_FACTORS, estimator="ksg")
