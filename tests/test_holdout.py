"""Held-out regions of the factor grid (Schott et al. 2022) and the out-of-distribution R²."""

import itertools
import json

import numpy as np
import pytest

from disentangle import DisentangleError
from disentangle.datasets import get_dataset
from disentangle.datasets.base import FactorsAsObservations
from disentangle.datasets.holdout import parse_holdout
from disentangle.datasets.pairs import sample_pair_batch
from disentangle.metrics import ood_r2
from disentangle.metrics._held_out import grid_variances
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training.loading import evaluation_dataset_options

NAMES, SIZES = ("factor_0", "factor_1", "factor_2"), (3, 6, 4)  # FactorsAsObservations names its factors so


def _by_hand(kind, factors, q, sizes=SIZES):
    """The held-out cells of the whole grid, from the definitions, cell by cell."""
    held = set()
    for cell in itertools.product(*(range(s) for s in sizes)):
        v = [cell[j] / (sizes[j] - 1) for j in factors]
        if kind == "composition" and all(x < q for x in v):
            held.add(cell)
        if kind == "interpolation" and any(abs(x - 0.5) < q / 2 for x in v):
            held.add(cell)
        if kind == "extrapolation" and any(x > 1 - q for x in v):
            held.add(cell)
    return held


@pytest.mark.parametrize(("text", "kind", "factors", "q"), [
    ("composition:factor_0,factor_1:0.3", "composition", (0, 1), 0.3),
    ("composition:0.5", "composition", (0, 1, 2), 0.5),
    ("interpolation:factor_1:0.3", "interpolation", (1,), 0.3),
    ("extrapolation:factor_1", "extrapolation", (1,), 0.3),
    ("extrapolation:factor_2,factor_0:0.4", "extrapolation", (2, 0), 0.4),
])
def test_the_held_out_region_is_the_definition_on_the_grid(text, kind, factors, q):
    region = parse_holdout(text, NAMES, SIZES)
    dataset = FactorsAsObservations(SIZES, holdout=text)
    drawn = {tuple(row) for row in dataset.sample_factors(20000, np.random.default_rng(0))}
    held = _by_hand(kind, factors, q)
    everything = set(itertools.product(*(range(s) for s in SIZES)))
    assert held and drawn == everything - held  # every training cell is drawn, no held-out one
    assert {tuple(r) for r in dataset.sample_holdout_factors("held_out", 20000, np.random.default_rng(1))} == held
    mask = region.held_out(SIZES)  # over the listed factors only
    assert {cell for cell in everything if mask[tuple(cell[j] for j in region.factors)]} == held


def test_extrapolation_on_dsprites_scale_holds_out_the_two_largest_sizes_and_draws_the_rest_uniformly():
    dataset = get_dataset("dsprites", holdout="extrapolation:scale")
    counts = np.bincount(dataset.sample_factors(60000, np.random.default_rng(0))[:, 1], minlength=6)
    assert counts[4:].sum() == 0  # scale values 0.8 and 1.0 (> 0.7) never train
    assert np.all(np.abs(counts[:4] / 60000 - 0.25) < 0.01)
    assert set(dataset.sample_holdout_factors("held_out", 1000, np.random.default_rng(0))[:, 1]) == {4, 5}


def test_random_holdout_is_the_same_fraction_and_cells_for_every_run():
    first, second = (parse_holdout("random:0.25", NAMES, SIZES).held_out(SIZES) for _ in range(2))
    assert first.sum() == round(0.25 * np.prod(SIZES)) and np.array_equal(first, second)
    drawn = FactorsAsObservations(SIZES, holdout="random:0.25").sample_factors(20000, np.random.default_rng(3))
    assert not first[tuple(drawn.T)].any()


def test_holdout_parts_and_correlations_multiply():
    all_cells = FactorsAsObservations(SIZES, holdout="extrapolation:factor_1", holdout_part="all").sample_factors(20000, np.random.default_rng(0))
    assert set(all_cells[:, 1]) == set(range(6))
    held = FactorsAsObservations(SIZES, holdout="extrapolation:factor_1", holdout_part="held_out").sample_factors(2000, np.random.default_rng(0))
    assert set(held[:, 1]) == {4, 5}
    both = FactorsAsObservations(SIZES, correlations="factor_0:factor_1:0.2", holdout="extrapolation:factor_1")
    correlated = FactorsAsObservations(SIZES, correlations="factor_0:factor_1:0.2").training_joint.probabilities  # over (a, b)
    expected = correlated * (np.arange(6) < 4)[None, :]
    assert np.allclose(both.training_joint.probabilities, expected / expected.sum())


@pytest.mark.parametrize(("text", "message"), [
    ("sideways", "kind must be one of random, composition, interpolation, extrapolation, got 'sideways'"),
    ("extrapolation:z", "unknown factor 'z', expected one of factor_0, factor_1, factor_2"),
    ("extrapolation:factor_1:1.5", "fraction must be between 0 and 1, got 1.5"),
    ("composition:factor_1", "needs two or more factors"),
    ("interpolation:factor_1:0.05", "holds out no cell"), ("random:0.999", "holds out every cell"),
    ("random:factor_0:0.3", "must read random"),
    ("extrapolation:factor_0,factor_0", "names a factor twice"),
])
def test_bad_holdouts_are_one_line(text, message):
    with pytest.raises(DisentangleError, match=message):
        FactorsAsObservations(SIZES, holdout=text)


def test_holdout_errors_come_before_any_file_and_where_they_cannot_apply(tmp_path):
    from disentangle.datasets import dataset_class

    with pytest.raises(DisentangleError, match="unknown factor 'size'"):
        dataset_class("shapes3d").check_option_values({"holdout": "extrapolation:size"})
    with pytest.raises(DisentangleError, match="holdout_part must be one of"):
        dataset_class("dsprites").check_option_values({"holdout": "extrapolation:scale", "holdout_part": "some"})
    with pytest.raises(DisentangleError, match="holdout is for the ground-truth grids"):
        dataset_class("mnist").check_option_values({"holdout": "extrapolation:digit"})
    with pytest.raises(DisentangleError, match="pair models cannot train under holdout"):
        sample_pair_batch(get_dataset("dsprites", holdout="extrapolation:scale"), 4, np.random.default_rng(0))


def test_holdout_runs_are_scored_on_the_whole_grid_and_keep_their_region():
    config = RunConfig(model="beta_vae", dataset="dsprites", dataset_options={"holdout": "extrapolation:scale"})
    assert evaluation_dataset_options(config) == {"holdout": "extrapolation:scale", "holdout_part": "all"}
    assert evaluation_dataset_options(config, distribution="training") == {"holdout": "extrapolation:scale"}


# -- the out-of-distribution R² --------------------------------------------------------------------

def test_grid_variances_are_the_uniform_grid_formula():
    assert np.allclose(grid_variances([2, 10, 6]), [(s + 1) / (12 * (s - 1)) for s in (2, 10, 6)])


def test_a_code_that_saturates_at_the_trained_range_loses_the_held_out_r2_by_hand():
    grid = FactorsAsObservations((10, 4), holdout="extrapolation:factor_0:0.3")  # factor 0: 7, 8, 9 held out

    def saturating(x):
        codes = x.reshape(len(x), -1).astype(np.float64)
        codes[:, 0] = np.minimum(codes[:, 0], 6)  # the code never goes past the largest trained value
        return codes

    scores = ood_r2(grid, saturating, np.random.default_rng(0), num_train=500, num_test=3000, regressor="linear")
    # the readout learns v = code / 9 exactly; held out it predicts 6/9 for 7/9, 8/9, 9/9 (errors 1, 2, 3 ninths)
    expected = 1 - ((1 + 4 + 9) / (3 * 81)) / grid_variances([10])[0]
    assert scores["r2_held_out_factor_0"] == pytest.approx(expected, abs=0.03)
    assert scores["r2_in_distribution_factor_0"] == pytest.approx(1.0) and scores["r2_held_out_factor_1"] == pytest.approx(1.0)
    assert scores["r2_held_out"] == pytest.approx((expected + 1) / 2, abs=0.02)


def test_the_mlp_readout_recovers_the_factors_and_noise_scores_what_the_training_mean_would():
    grid = FactorsAsObservations((8, 8), holdout="random:0.3")
    rng = np.random.default_rng(5)
    noise = lambda x: rng.standard_normal((len(x), 3))  # noqa: E731
    read = ood_r2(grid, lambda x: x.reshape(len(x), -1), np.random.default_rng(0), num_train=1000, num_test=500)
    blind = ood_r2(grid, noise, np.random.default_rng(0), num_train=1000, num_test=500)
    assert read["r2_in_distribution"] > 0.95 and read["r2_held_out"] > 0.9
    assert abs(blind["r2_in_distribution"]) < 0.1  # no information: no better than the mean
    # held out, R² is over the whole grid's variance (the paper's): the training mean scores what it scores there
    held = grid.sample_holdout_factors("held_out", 20000, np.random.default_rng(1)) / 7
    trained = grid.sample_holdout_factors("train", 20000, np.random.default_rng(2)) / 7
    mean_only = 1 - ((held - trained.mean(0)) ** 2).mean(0) / grid_variances((8, 8))
    assert blind["r2_held_out"] == pytest.approx(mean_only.mean(), abs=0.1) and blind["r2_held_out"] < read["r2_held_out"] - 0.5


def test_ood_r2_needs_a_holdout_run():
    with pytest.raises(DisentangleError, match="ood_r2 scores a run trained with a holdout"):
        ood_r2(FactorsAsObservations((3, 3)), lambda x: x.reshape(len(x), -1), np.random.default_rng(0))


@pytest.mark.slow
def test_a_holdout_run_trains_outside_the_region_and_is_scored_on_it(tmp_path):
    from click.testing import CliRunner

    from disentangle.cli import main

    spec = tmp_path / "study.toml"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\ndataset = "dsprites"\nsteps = 2\nseeds = [0]\nevaluate = ["mig", "ood_r2"]\n'
                    'profile = "tiny"\n[grid.fixed]\nlatent_dim = 2\n[grid.dataset_options]\nholdout = "extrapolation:scale"\n')
    result = CliRunner().invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    stored = json.loads((run / "metrics.json").read_text())
    assert stored["settings"]["ood_r2"]["distribution"] == "unaltered"
    assert {"ood_r2.r2_held_out", "ood_r2.r2_in_distribution", "ood_r2.r2_held_out_scale"} <= set(stored)
