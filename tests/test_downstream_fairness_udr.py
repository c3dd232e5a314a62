"""Downstream sample efficiency, reduced and strong downstream, fairness and UDR: known answers,
hand-computed cases and disentanglement_lib's own test expectations restated as properties."""

from __future__ import annotations

import numpy as np
import pytest

from disentangle.datasets.base import FactorsAsObservations
from disentangle.base.errors import DisentangleError
from disentangle.metrics import downstream_task, fairness, inter_group_fairness, reduced_downstream_task, relative_strength, udr
from disentangle.metrics._interventions import fairness_summary, intervene, strong_downstream_task
from disentangle.metrics._udr import lasso_matrix, spearman_matrix


def reads(observations):
    """The representation that reads the factor row off a FactorsAsObservations observation."""
    return observations.reshape(len(observations), -1)


def _separable(n, rng, classes=(3, 2)):
    factors = np.stack([rng.integers(0, c, n) for c in classes], axis=1)
    return factors + 0.05 * rng.standard_normal(factors.shape), factors


# --- downstream ---------------------------------------------------------------------------------

def test_downstream_keys_are_the_references_and_perfect_codes_score_one():
    rng = np.random.default_rng(0)
    codes, factors = _separable(300, rng)
    scores = downstream_task(codes[:200], factors[:200], codes[200:], factors[200:], label_budgets=(20, 200), predictor="gbt")
    expected = set()
    for n in (20, 200):
        expected |= {f"{n}:{s}_{t}_accuracy" for s in ("mean", "min") for t in ("train", "test")}
        expected |= {f"{n}:{t}_accuracy_factor_{i}" for t in ("train", "test") for i in range(2)}
    assert set(scores) == expected
    assert scores["200:mean_test_accuracy"] == 1.0 and scores["200:min_train_accuracy"] == 1.0
    assert scores["20:min_test_accuracy"] == min(scores["20:test_accuracy_factor_0"], scores["20:test_accuracy_factor_1"])


def test_noise_codes_score_chance_and_the_budget_is_the_first_rows():
    rng = np.random.default_rng(1)
    factors = rng.integers(0, 2, (2000, 1))
    noise = rng.standard_normal((2000, 3))
    chance = downstream_task(noise[:1000], factors[:1000], noise[1000:], factors[1000:], label_budgets=1000, predictor="logistic_regression")
    assert abs(chance["1000:mean_test_accuracy"] - 0.5) < 0.06
    # the first 50 training rows are labelled right, the rest inverted: only a budget of 50 learns the truth
    codes = factors.astype(float) + 0.05 * rng.standard_normal((2000, 1))
    labels = factors.copy()
    labels[50:1000] = 1 - labels[50:1000]
    scores = downstream_task(codes[:1000], labels[:1000], codes[1000:], factors[1000:], label_budgets=(50, 1000), predictor="gbt")
    assert scores["50:mean_test_accuracy"] == 1.0 and scores["1000:mean_test_accuracy"] < 0.1


def test_downstream_bad_input_is_one_line():
    rng = np.random.default_rng(2)
    codes, factors = _separable(100, rng)
    with pytest.raises(DisentangleError, match="label_budgets 500 is larger than the 100 training rows"):
        downstream_task(codes, factors, codes, factors, label_budgets=(10, 500))
    constant = factors.copy()
    constant[:, 1] = 0
    with pytest.raises(DisentangleError, match="factor 1 has a single class in the 100 training rows"):
        downstream_task(codes, constant, codes, factors, label_budgets=100, predictor="gbt")
    with pytest.raises(DisentangleError, match="predictor must be one of logistic_regression, gbt, got 'svm'"):
        downstream_task(codes, factors, codes, factors, label_budgets=100, predictor="svm")


def test_reduced_downstream_removes_the_factors_own_code():
    rng = np.random.default_rng(3)
    factors = rng.integers(0, 2, (400, 2))
    codes = np.hstack([factors + 0.05 * rng.standard_normal((400, 2)), rng.standard_normal((400, 1))])
    scores = reduced_downstream_task(codes[:200], factors[:200], codes[200:], factors[200:], label_budgets=200)
    for f, other in ((0, 1), (1, 0)):
        assert abs(scores[f"200:test_accuracy_{f}_factor_of_interest_{f}"] - 0.5) < 0.12  # its code is gone: chance
        assert scores[f"200:test_accuracy_{other}_factor_of_interest_{f}"] == 1.0  # the other factor's code stays
    assert scores["200:mean_test_accuracy_other_factors"] == 1.0
    with pytest.raises(DisentangleError, match="num_factors_to_remove 3 leaves no code dimension of the 3"):
        reduced_downstream_task(codes, factors, codes, factors, label_budgets=100, num_factors_to_remove=3)


# --- fairness and strong downstream ---------------------------------------------------------------

def test_inter_group_fairness_hand_case_from_the_reference():
    mean, largest = inter_group_fairness([[0, 100], [100, 100]])
    assert mean == pytest.approx(2 / 9) and largest == pytest.approx(1 / 3)
    assert inter_group_fairness([[50, 50], [50, 50]]) == (0.0, 0.0)  # predictions independent of the sensitive class


def test_fairness_summary_matches_the_references_hand_computed_dict():
    scores = fairness_summary(np.array([[0., 2., 4.], [4., 0., 8.], [2., 10., 0.]]), "test")
    expected = {"test:pred0:sens1": 2., "test:pred0:sens2": 4., "test:pred1:sens0": 4., "test:pred1:sens2": 8.,
                "test:pred2:sens0": 2., "test:pred2:sens1": 10., "test:pred0:mean_sens": 3., "test:pred0:max_sens": 4.,
                "test:pred1:mean_sens": 6., "test:pred1:max_sens": 8., "test:pred2:mean_sens": 6., "test:pred2:max_sens": 10.,
                "test:sens0:mean_pred": 3., "test:sens0:max_pred": 4., "test:sens1:mean_pred": 6., "test:sens1:max_pred": 10.,
                "test:sens2:mean_pred": 6., "test:sens2:max_pred": 8., "test:mean_sens:mean_pred": 5.,
                "test:mean_sens:max_pred": 22. / 3., "test:max_sens:mean_pred": 6., "test:max_sens:max_pred": 10.,
                "test:mean_pred:mean_sens": 5., "test:mean_pred:max_sens": 22. / 3., "test:max_pred:mean_sens": 6.,
                "test:max_pred:max_sens": 10.}
    assert scores.keys() == expected.keys()
    assert all(scores[k] == pytest.approx(v) for k, v in expected.items())


def test_fairness_is_zero_for_separate_codes_and_a_quarter_for_a_summed_code():
    grid = FactorsAsObservations((2, 2))
    fair = fairness(grid, reads, np.random.default_rng(0), num_train=400, num_test_points_per_class=200)
    assert fair["mean_fairness:mean_pred:mean_sens"] == 0.0 and fair["max_fairness:max_pred:max_sens"] == 0.0
    # one code a + b: a is read exactly except at a + b = 1, where the classifier picks one class; intervening on b
    # then moves half the predictions of a: total variation (P(a=0) / 2) = 1/4 under each value of b
    summed = fairness(grid, lambda x: reads(x).sum(1, keepdims=True), np.random.default_rng(0), num_train=400,
                      num_test_points_per_class=4000)
    assert summed["mean_fairness:pred0:sens1"] == pytest.approx(0.25, abs=0.02)
    assert summed["mean_fairness:pred1:sens0"] == pytest.approx(0.25, abs=0.02)


def test_intervention_fixes_one_other_factor_in_training_and_avoids_its_value_in_test():
    rng = np.random.default_rng(0)
    grid = FactorsAsObservations((3, 4, 5))
    train, test = grid.sample_factors(500, rng), grid.sample_factors(500, rng)
    for target in range(3):
        shifted_train, shifted_test, factor, value = intervene(train, test, target, grid.factor_sizes, rng)
        assert factor != target
        assert (shifted_train[:, factor] == value).all() and (shifted_test[:, factor] != value).all()
        untouched = [j for j in range(3) if j != factor]
        assert (shifted_train[:, untouched] == train[:, untouched]).all()


def test_strong_downstream_gap_is_zero_for_separate_codes_and_positive_when_entangled():
    grid = FactorsAsObservations((2, 3))
    separate = strong_downstream_task(grid, reads, np.random.default_rng(0), num_train=[200], num_test=200, n_experiment=2)
    assert separate["200:strong_generalization_gap"] == 0.0
    # a code that mixes both factors generalises worse to values of the other factor it never saw
    mixed = strong_downstream_task(grid, lambda x: reads(x) @ np.array([[1.0], [2.0]]), np.random.default_rng(0),
                                   num_train=[200], num_test=200, n_experiment=2)
    assert mixed["200:strong_generalization_gap"] > 0.3


# --- UDR ---------------------------------------------------------------------------------------------

def test_relative_strength_hand_cases_from_the_reference():
    assert relative_strength(np.eye(3)) == 1.0
    block = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # columns and rows: 1/2, 1/2, 1
    assert relative_strength(block) == pytest.approx(2 / 3)
    assert relative_strength(np.ones((3, 3))) == pytest.approx(1 / 3)
    assert relative_strength(np.zeros((3, 3))) == 0.0


def test_correlation_matrices_find_copied_and_duplicated_latents():
    rng = np.random.default_rng(0)
    a = rng.random((1000, 3)) * 10
    b = a.copy()
    b[:, 1] = b[:, 0]  # latent 0 of a explains b's 0 and 1; a's latent 1 explains nothing
    expected = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert np.allclose(spearman_matrix(a, b), expected, atol=0.1)
    assert np.allclose(lasso_matrix(a, b), expected * 10 / 10, atol=0.2)
    assert np.allclose(spearman_matrix(a, a.copy()), np.eye(3), atol=0.1)


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_udr_is_invariant_to_permutation_and_sign_and_low_for_a_noise_model(correlation):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1000, 4))
    twin = -z[:, [3, 1, 0, 2]] * 2.5 + 1.0
    noise = rng.standard_normal((1000, 4))
    scores = udr([z, twin], [np.ones(4)] * 2, correlation=correlation)
    assert all(0.85 < s <= 1.0 for s in scores["model_scores"])
    with_noise = udr([z, twin, noise], [np.ones(4)] * 3, correlation=correlation)
    pairwise = np.array(with_noise["pairwise"])
    assert np.all(np.diag(pairwise) == 0)
    assert with_noise["model_scores"][2] < 0.6  # the noise model matches neither
    # with three models a score is the median of two: the mean of the twin match and the noise match
    assert with_noise["model_scores"][0] == pytest.approx((pairwise[1, 0] + pairwise[2, 0]) / 2)


def test_udr_kl_mask_restated_from_the_reference():
    rng = np.random.default_rng(0)
    informative = rng.standard_normal((1000, 1))
    models = [np.hstack([informative, rng.random((1000, 4))]) for _ in range(2)]
    kl = [np.array([1.0, 0, 0, 0, 0])] * 2
    assert all(s > 0.8 for s in udr(models, kl)["model_scores"])
    assert all(s < 0.2 for s in udr(models, kl, filter_low_kl=False)["model_scores"])


def test_udr_bad_input_is_one_line():
    z = np.zeros((10, 3)) + np.arange(3)
    with pytest.raises(DisentangleError, match="it needs at least 2, got 1"):
        udr([z], [np.ones(3)])
    with pytest.raises(DisentangleError, match=r"same d, got shapes \[\[10, 2\], \[10, 3\]\]"):
        udr([z, z[:, :2]], [np.ones(3), np.ones(2)])
    with pytest.raises(DisentangleError, match="kl of model 1 must be 3 finite non-negative numbers"):
        udr([z, z], [np.ones(3), np.ones(2)])
    with pytest.raises(DisentangleError, match="correlation must be one of lasso, spearman"):
        udr([z, z], [np.ones(3)] * 2, correlation="pearson")


# --- UDR over a runs folder ------------------------------------------------------------------------

def test_udr_over_runs_scores_each_seed_group_and_writes_metrics_json(tmp_path):
    import json

    from click.testing import CliRunner

    from disentangle.base import runs
    from disentangle.cli import main
    from disentangle.base.runs import RunConfig
    from disentangle.lifecycle.training import train
    from disentangle.lifecycle.model_selection import seed_groups

    def trained(seed, beta):
        return train(RunConfig(model="beta_vae", steps=4, batch_size=8, seed=seed, model_options={"latent_dim": 3, "beta": beta},
                               checkpoint_every=4), tmp_path, progress=False)

    group = [trained(seed, 4.0) for seed in (0, 1, 2)]
    alone = trained(0, 1.0)  # no other seed: no group
    assert seed_groups(tmp_path) == [sorted(group, key=lambda d: runs.read_config(d).seed)]
    runner = CliRunner()
    result = runner.invoke(main, ["udr", "--runs-dir", str(tmp_path), "--profile", "tiny", "--quiet"])
    assert result.exit_code == 0, result.output
    for run_dir in group:
        stored = json.loads((run_dir / runs.METRICS).read_text())
        assert 0 <= stored["udr.model_score"] <= 1 and f"{run_dir.name}  udr {stored['udr.model_score']:.3f}" in result.output
        assert stored["settings"]["udr"]["runs"] == [d.name for d in sorted(group, key=lambda d: runs.read_config(d).seed)]
        assert stored["settings"]["udr"]["num_data_points"] == 200
    assert not (alone / runs.METRICS).exists()
    first = json.loads((group[0] / runs.METRICS).read_text())
    again = runner.invoke(main, ["udr", "--runs-dir", str(tmp_path), "--profile", "tiny", "--quiet", "--correlation", "spearman"])
    assert again.exit_code == 0 and json.loads((group[0] / runs.METRICS).read_text())["settings"]["udr"]["correlation"] == "spearman"
    assert first["settings"]["udr"]["correlation"] == "lasso"
    result = runner.invoke(main, ["evaluate", str(group[0]), "--metrics", "udr", "--quiet"])
    assert result.exit_code == 2 and "udr compares runs trained alike with different seeds" in result.output
    result = runner.invoke(main, ["udr", "--runs-dir", str(alone.parent / "nothing")])
    assert result.exit_code == 2 and "is not a folder of runs" in result.output


def test_sample_efficiency_figure_uses_the_largest_budget_and_needs_downstream_scores(tmp_path):
    import pandas as pd
    from PIL import Image

    from disentangle.reports.viz.sweeps import efficiency_columns, sample_efficiency

    rng = np.random.default_rng(0)
    lr = "downstream_task_logistic_regression"
    table = pd.DataFrame({"finished": True, "model": ["beta_vae"] * 4 + ["ada_gvae"] * 4, "steps": 100,
                          "mig.discrete_mig": rng.random(8), f"{lr}.10:mean_test_accuracy": rng.random(8),
                          f"{lr}.100:mean_test_accuracy": rng.random(8), f"{lr}.1000:mean_test_accuracy": rng.random(8)})
    assert efficiency_columns(table, lr) == (f"{lr}.100:mean_test_accuracy", f"{lr}.1000:mean_test_accuracy")
    assert sample_efficiency(table.drop(columns=[f"{lr}.1000:mean_test_accuracy"]), tmp_path) is None  # no budget above 100
    path = sample_efficiency(table, tmp_path)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    assert path.name == "sample_efficiency.png" and pixels.std() > 10  # drawn, not blank
