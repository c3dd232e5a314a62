import math

import numpy as np
import pytest

from disentangle import DisentangleError
from disentangle.datasets import DSprites
from disentangle.metrics import beta_vae_score, dci, factor_vae_score, mig, modularity_explicitness, sap, unsupervised, z_max_variance
from disentangle.metrics._utils import discretize, entropies, mutual_info_matrix
from disentangle.metrics._dci import disentanglement_scores
from disentangle.metrics._modularity import modularity_of
from disentangle.metrics._utils import top_two_gap
from disentangle.metrics._unsupervised import gaussian_total_correlation

SIZES = (3, 6, 8, 10)


def _factors(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


@pytest.fixture(scope="module")
def case():
    """Train/test factors and representations with known disentanglement."""
    rng = np.random.default_rng(1)
    f_train, f_test = _factors(3000, 0), _factors(1500, 1)
    perfect = lambda f: f + 0.05 * rng.standard_normal(f.shape)  # noqa: E731
    noise = lambda f: rng.standard_normal((len(f), 4))  # noqa: E731
    rotation = np.linalg.qr(np.random.default_rng(7).standard_normal((4, 4)))[0]
    mixed = lambda f: (f / np.array(SIZES)) @ rotation  # noqa: E731
    return {"f": (f_train, f_test), "perfect": perfect, "noise": noise, "mixed": mixed}


def _codes(case, kind):
    f_train, f_test = case["f"]
    return case[kind](f_train), case[kind](f_test)


def _score(metric, case, codes_train, codes_test):
    f_train, f_test = case["f"]
    if metric == "mig":
        return mig(codes_train, f_train)["discrete_mig"]
    if metric == "dci_d":
        return dci(codes_train, f_train, codes_test, f_test, estimator="gbt_fast")["disentanglement"]
    if metric == "dci_c":
        return dci(codes_train, f_train, codes_test, f_test, estimator="gbt_fast")["completeness"]
    if metric == "sap":
        return sap(codes_train, f_train, codes_test, f_test)["sap_score"]
    if metric == "modularity":
        return modularity_explicitness(codes_train, f_train, codes_test, f_test)["modularity_score"]


@pytest.mark.parametrize(("metric", "high", "low"), [("mig", 0.9, 0.05), ("dci_d", 0.9, 0.2), ("dci_c", 0.9, 0.2),
                                                     ("sap", 0.2, 0.05), ("modularity", 0.9, None)])
def test_perfect_code_high_noise_low(case, metric, high, low):
    assert _score(metric, case, *_codes(case, "perfect")) > high
    if low is not None:
        assert _score(metric, case, *_codes(case, "noise")) < low


@pytest.mark.parametrize("metric", ["mig", "dci_d", "sap", "modularity"])
def test_permutation_invariance_and_monotone_transforms_stay_high(case, metric):
    train, test = _codes(case, "perfect")
    base = _score(metric, case, train, test)
    order = [2, 0, 3, 1]
    assert _score(metric, case, train[:, order], test[:, order]) == pytest.approx(base, abs=0.02)
    if metric != "sap":  # SAP's linear classifiers see scale, not rank
        # binning sees the transform, so "near the maximum" rather than equal
        squash = lambda c: np.tanh(c / 5) ** 3  # noqa: E731
        assert _score(metric, case, squash(train), squash(test)) > 0.9


def test_duplicated_codes_lower_mig_and_completeness_not_disentanglement(case):
    train, test = _codes(case, "perfect")
    dup_train, dup_test = np.hstack([train, train + 1e-3]), np.hstack([test, test + 1e-3])
    assert _score("mig", case, dup_train, dup_test) < 0.2 < _score("mig", case, train, test)
    assert _score("dci_c", case, dup_train, dup_test) < _score("dci_c", case, train, test) - 0.1
    assert _score("dci_d", case, dup_train, dup_test) > 0.9


def test_rotated_mixture_scores_low(case):
    train, test = _codes(case, "mixed")
    assert _score("mig", case, train, test) < 0.3
    assert _score("dci_d", case, train, test) < 0.6
    assert _score("mig", case, *_codes(case, "perfect")) > 0.9


def test_mutual_information_by_hand():
    # three equally likely values, code bins match exactly: MI = H = log 3
    factors = np.array([[0], [1], [2]] * 4)
    codes = factors.astype(float)
    mi = mutual_info_matrix(discretize(codes, 3), factors)
    assert mi[0, 0] == pytest.approx(math.log(3))
    assert entropies(factors)[0] == pytest.approx(math.log(3))
    # two codes, one exact, one knowing only "0 vs rest": MI = H(1/3, 2/3); MIG = (log 3 - that) / log 3
    partial = (factors[:, 0] > 0).astype(float)
    h_partial = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    result = mig(np.stack([codes[:, 0], partial], axis=1), factors, n_bins=3)["discrete_mig"]
    assert result == pytest.approx((math.log(3) - h_partial) / math.log(3))


def test_dci_importance_matrix_by_hand():
    # code 0 explains factor 0 only; code 1 splits evenly between both factors
    importance = np.array([[1.0, 0.0], [0.5, 0.5]])
    d, c = disentanglement_scores(importance)
    # per code: 1 - H_2(1, 0) = 1 and 1 - H_2(.5, .5) = 0, weighted 1/2, 1/2
    assert d == pytest.approx(0.5, abs=1e-6)
    # per factor: column (1, .5) -> p = (2/3, 1/3), 1 - H_2 = 1 - 0.9183; column (0, .5) -> 1; weights 3/4, 1/4
    h = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert c == pytest.approx(0.75 * (1 - h) + 0.25, abs=1e-6)


def test_sap_gap_by_hand():
    # accuracies: factor 0 best 0.9 vs 0.5; factor 1 best 0.7 vs 0.6
    assert top_two_gap(np.array([[0.9, 0.6], [0.5, 0.7], [0.1, 0.2]])) == pytest.approx([0.9 - 0.5, 0.7 - 0.6])


def test_sap_obvious_accuracies():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 2, (400, 1))
    codes = np.hstack([f + 0.01 * rng.standard_normal((400, 1)), rng.standard_normal((400, 1))])
    # code 0 classifies perfectly, code 1 is at chance (~0.5): gap ~0.5
    assert sap(codes[:200], f[:200], codes[200:], f[200:])["sap_score"] == pytest.approx(0.5, abs=0.1)
    assert sap(codes[:200], f[:200], codes[200:], f[200:], continuous_factors=True)["sap_score_r2"] > 0.95


def test_modularity_by_hand():
    assert modularity_of(np.array([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(1.0)
    # code with equal MI to both factors deviates fully: 1 - 1 = 0; mean with a perfect code = 0.5
    assert modularity_of(np.array([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(0.5)


def test_unsupervised_known_answers():
    assert gaussian_total_correlation(np.eye(3)) == pytest.approx(0.0)
    rho = 0.6
    assert gaussian_total_correlation(np.array([[1, rho], [rho, 1]])) == pytest.approx(-0.5 * math.log(1 - rho**2))
    rng = np.random.default_rng(0)
    independent = unsupervised(rng.standard_normal((5000, 3)))
    z = rng.standard_normal((5000, 1))
    dependent = unsupervised(np.hstack([z, z + 0.1 * rng.standard_normal((5000, 1))]))
    assert independent["gaussian_total_correlation"] < 0.01 < dependent["gaussian_total_correlation"]
    assert independent["mutual_info_score"] < dependent["mutual_info_score"]


class OracleDSprites(DSprites):
    """Remembers the factors of the last observations, so an oracle can code them."""

    def sample_observations_from_factors(self, factors, rng=None):
        self.last = np.asarray(factors)
        return super().sample_observations_from_factors(factors, rng)


@pytest.fixture(scope="module")
def oracle_data():
    data = OracleDSprites()
    noise = np.random.default_rng(3)
    oracle = lambda obs: data.last / np.array(data.factor_sizes) + 0.01 * noise.standard_normal(data.last.shape)  # noqa: E731
    random = lambda obs: noise.standard_normal((len(obs), 10))  # noqa: E731
    return data, oracle, random


@pytest.mark.parametrize("score", [beta_vae_score, factor_vae_score, z_max_variance])
def test_sampling_scores_oracle_and_noise(oracle_data, score):
    data, oracle, random = oracle_data
    sizes = {"num_train": 400, "num_eval": 200}
    if score is not beta_vae_score:
        sizes["num_variance_estimate"] = 2000
    good = score(data, oracle, np.random.default_rng(0), **sizes)
    bad = score(data, random, np.random.default_rng(0), **sizes)
    assert good["eval_accuracy"] > 0.95
    assert bad["eval_accuracy"] < 0.35  # chance is 1/5
    if score is not beta_vae_score:
        assert good["num_active_dims"] == 5  # counts active dims, not all dims


def test_factor_vae_score_prunes_collapsed_dims(oracle_data):
    data, oracle, _ = oracle_data
    padded = lambda obs: np.hstack([oracle(obs), np.zeros((len(obs), 3))])  # noqa: E731
    result = factor_vae_score(data, padded, np.random.default_rng(0), num_train=100, num_eval=50, num_variance_estimate=1000)
    assert result["num_active_dims"] == 5 and result["eval_accuracy"] > 0.95


@pytest.mark.parametrize(("codes", "factors", "message"), [
    (np.array([[np.nan, 1.0], [0.0, 1.0]]), np.array([[0], [1]]), "NaN or inf"),
    (np.array([[np.inf, 1.0], [0.0, 1.0]]), np.array([[0], [1]]), "NaN or inf"),
    (np.zeros((3, 2)), np.zeros((4, 1), int), "lengths must match"),
    (np.zeros(5), np.zeros((5, 1), int), "2-D array"),
    (np.random.default_rng(0).standard_normal((10, 2)), np.zeros((10, 1), int), "single value"),
    (np.array([[1 + 2j, 1.0], [0.0, 1.0]]), np.array([[0], [1]]), "must hold real numbers, got complex values"),
    (np.zeros((2, 2)), np.array([[0.0], [np.nan]]), r"factors(_train)? contains NaN or inf \(first at row 1\)"),
])
def test_bad_input(codes, factors, message):
    with pytest.raises(DisentangleError, match=message):
        mig(codes, factors)
    with pytest.raises(DisentangleError, match=message):
        modularity_explicitness(codes, factors, codes, factors)


@pytest.mark.parametrize("n_bins", [1, 0, 2.5])
def test_bad_bins(n_bins):
    with pytest.raises(DisentangleError, match="n_bins must be an integer >= 2"):
        mig(np.random.default_rng(0).standard_normal((10, 2)), _factors(10), n_bins=n_bins)


def test_constant_factor_is_skipped_not_divided_by():
    rng = np.random.default_rng(0)
    f = np.hstack([rng.integers(0, 4, (500, 1)), np.zeros((500, 1), int)])
    codes = np.hstack([f[:, :1] + 0.01 * rng.standard_normal((500, 1)), rng.standard_normal((500, 1))])
    assert mig(codes, f)["discrete_mig"] > 0.9
    f3 = np.hstack([f, rng.integers(0, 3, (500, 1))])
    codes3 = np.hstack([codes, f3[:, 2:] + 0.01 * rng.standard_normal((500, 1))])
    result = dci(codes3[:250], f3[:250], codes3[250:], f3[250:], estimator="gbt_fast")
    assert all(np.isfinite(v) for v in result.values())


def test_fast_dci_estimator_agrees_with_published_gbt(case):
    f_train, f_test = case["f"]
    rng = np.random.default_rng(4)
    mixed = lambda f: np.hstack([f / np.array(SIZES) + 0.1 * rng.standard_normal(f.shape), rng.standard_normal((len(f), 2))])  # noqa: E731
    train, test = mixed(f_train[:1500]), mixed(f_test[:750])
    gbt = dci(train, f_train[:1500], test, f_test[:750], estimator="gbt")
    fast = dci(train, f_train[:1500], test, f_test[:750], estimator="gbt_fast")
    # 1,500 points: within 0.1 here; on the dSprites-sized benchmark case (10,000 points)
    # the gap is 0.010 / 0.013 (benchmarks/metrics_speed.py), where a random forest is 0.2 off.
    assert abs(gbt["disentanglement"] - fast["disentanglement"]) < 0.1
    assert abs(gbt["completeness"] - fast["completeness"]) < 0.1


def test_dci_columns_follow_the_factors_whatever_order_they_are_fitted_in(case):
    # importance_matrix hands the costliest factor out first; its columns must still be the caller's order
    from disentangle.metrics._dci import importance_matrix

    f_train, f_test = case["f"]
    rng = np.random.default_rng(5)
    codes = lambda f: f / np.array(SIZES) + 0.1 * rng.standard_normal(f.shape)  # noqa: E731
    train, test = codes(f_train[:600]), codes(f_test[:300])
    importance, train_score, test_score = importance_matrix(train, f_train[:600], test, f_test[:300], "gbt_fast", n_jobs=2)
    order = [2, 0, 3, 1]
    permuted = importance_matrix(train, f_train[:600, order], test, f_test[:300, order], "gbt_fast", n_jobs=1)
    np.testing.assert_array_equal(permuted[0], importance[:, order])
    np.testing.assert_array_equal(permuted[2], test_score[order])
    assert np.argmax(importance, axis=0).tolist() == list(range(importance.shape[1]))  # code j explains factor j


def test_unknown_dci_estimator():
    codes = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(DisentangleError, match="DCI estimator must be one of gbt, gbt_fast, got 'svm'"):
        dci(codes, _factors(20), codes, _factors(20), estimator="svm")


def test_a_stored_continuous_sap_key_reads_under_its_current_name(tmp_path):
    from disentangle.base import runs

    (tmp_path / runs.METRICS).write_text('{"sap_test.sap_score_continuous": 0.5, "sap.sap_score": 0.25, "mig.discrete_mig": 0.1}')
    assert runs.read_metrics(tmp_path) == {"sap_test.sap_score_r2": 0.5, "sap.sap_score": 0.25, "mig.discrete_mig": 0.1}


@pytest.mark.parametrize("name", ["sap", "modularity_explicitness", "dci"])
def test_train_test_metrics_refuse_test_arrays_with_other_columns(name):
    import disentangle.metrics as metrics

    rng = np.random.default_rng(0)
    factors = rng.integers(0, 3, size=(200, 2))
    codes = factors + rng.normal(size=(200, 2))
    with pytest.raises(DisentangleError, match="train and test must have the same columns"):
        getattr(metrics, name)(codes, factors, np.c_[codes, codes[:, :1]], factors)


def test_the_mutual_information_matrix_is_sklearns_and_one_evaluation_computes_it_once(monkeypatch):
    """mutual_info_matrix: sklearn's mutual_info_score entry by entry (labels of any integers, single-valued
    columns), and within one evaluation of the seven MI metrics each distinct matrix is counted once."""
    from sklearn.metrics import mutual_info_score

    from disentangle.metrics import _utils
    from disentangle.scoring.representation import evaluate_codes

    rng = np.random.default_rng(3)
    for n in (2, 7, 500):
        factors = rng.integers(0, [1, 3, 40], size=(n, 3)) * 3 - 2  # a constant column, negative labels
        codes = _utils.discretize(rng.normal(size=(n, 4)) + factors[:, [1, 2, 1, 2]], 20)
        expected = [[mutual_info_score(factors[:, k], codes[:, i]) for k in range(3)] for i in range(4)]
        np.testing.assert_allclose(_utils.mutual_info_matrix(codes, factors), expected, rtol=0, atol=1e-12)
    counted = []
    original = _utils._mutual_information
    monkeypatch.setattr(_utils, "_mutual_information", lambda a, b: counted.append(1) or original(a, b))
    factors = np.array([(a, b) for a in range(4) for b in range(5)] * 30)
    codes = factors + rng.normal(scale=0.1, size=factors.shape)
    names = ["mig", "mig_sup", "dcimig", "jemmig", "latent_correlation"]

    def entries_computed(metrics):
        counted.clear()
        evaluate_codes(codes, factors, codes, factors, metrics, profile="tiny")
        return len(counted)

    alone = [entries_computed([name]) for name in names]
    together = entries_computed(names)
    assert min(alone) == together == 4 and sum(alone) == 5 * 4  # each alone: the 2 x 2 matrix; together: once
    assert entries_computed(names) == together  # a second evaluation computes its own: no store outlives one


def test_a_profile_lists_only_what_differs_from_the_signature():
    """Each setting has one home: a published value equal to the function's default is declared as a record
    (read from the signature), never written twice; fast and tiny override with other values."""
    import inspect

    from disentangle.metrics import list_metrics, metric_record

    for name in list_metrics():
        metric = metric_record(name)
        defaults = {k: p.default for k, p in inspect.signature(metric.function).parameters.items() if p.default is not inspect.Parameter.empty}
        for key, value in metric.profiles["published"].items():
            if key in metric.records:
                assert value == defaults[key], (name, key)
            else:
                assert key not in defaults or defaults[key] != value, f"{name}: published {key}={value!r} repeats the signature's default"
    with pytest.raises(ValueError, match="not a parameter"):
        from disentangle.metrics.registry import register_metric

        register_metric("_probe", needs="codes", published={}, records=("n_bins",), headline="x", title="x", reference="x")(lambda codes, factors: {})
