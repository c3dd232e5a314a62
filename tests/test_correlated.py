"""Correlated training factors, the HFS models, and scoring correlated runs on unaltered data."""

import itertools
import json
import math

import numpy as np
import pytest
import torch

from disentangle import DisentangleError
from disentangle.datasets import get_dataset
from disentangle.datasets.base import FactorsAsObservations
from disentangle.datasets.correlations import CorrelatedFactors
from disentangle.datasets.pairs import sample_pair_batch
from disentangle.models import get_model
from disentangle.models.hfs import hausdorff_support_distance
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training.loading import evaluation_dataset_options

NAMES, SIZES = ("a", "b", "c"), (3, 4, 5)


def _by_hand(sizes, pairs):
    """The joint over all factors, cell by cell from the formula (independent of the implementation)."""
    table = np.zeros(sizes)
    for cell in itertools.product(*(range(s) for s in sizes)):
        weight = 1.0
        for first, second, inverse, sigma in pairs:
            c1, c2 = cell[first] / (sizes[first] - 1), cell[second] / (sizes[second] - 1)
            weight *= math.exp(-((c1 - ((1 - c2) if inverse else c2)) ** 2) / (2 * sigma ** 2))
        table[cell] = weight
    return table / table.sum()


@pytest.mark.parametrize(("text", "pairs"), [
    ("a:b:0.3", [(0, 1, False, 0.3)]),
    ("~a:b:0.3", [(0, 1, True, 0.3)]),
    ("b:a:0.3", [(1, 0, False, 0.3)]),
    ("a:b:0.3, ~c:b:0.5", [(0, 1, False, 0.3), (2, 1, True, 0.5)]),
    ("c:a:0.2", [(2, 0, False, 0.2)]),
])
def test_the_joint_is_the_product_of_the_pairs_weights_on_the_grid(text, pairs):
    expected = _by_hand(SIZES, pairs)
    joint = CorrelatedFactors(text, NAMES, SIZES)
    involved = joint.involved
    marginal = expected.sum(axis=tuple(j for j in range(3) if j not in involved))
    np.testing.assert_allclose(joint.probabilities, marginal, rtol=1e-12)


def test_draws_follow_the_joint_and_leave_the_other_factors_uniform_and_independent():
    joint = CorrelatedFactors("a:b:0.3", NAMES, SIZES)
    factors = joint.sample(200_000, np.random.default_rng(0))
    counts = np.zeros(SIZES[:2])
    np.add.at(counts, (factors[:, 0], factors[:, 1]), 1)
    np.testing.assert_allclose(counts / len(factors), joint.probabilities, atol=0.004)
    np.testing.assert_allclose(np.bincount(factors[:, 2], minlength=5) / len(factors), 0.2, atol=0.004)
    assert abs(np.corrcoef(factors[:, 0], factors[:, 2])[0, 1]) < 0.01
    assert np.corrcoef(factors[:, 0], factors[:, 1])[0, 1] > 0.5


def test_the_inverse_pairing_mirrors_the_second_factor():
    plain = CorrelatedFactors("a:b:0.3", NAMES, SIZES).probabilities
    inverse = CorrelatedFactors("~a:b:0.3", NAMES, SIZES).probabilities
    np.testing.assert_allclose(inverse, plain[:, ::-1])


def test_draws_are_seeded_like_every_other_draw():
    data = get_dataset("dsprites", correlations="posX:posY:0.2")
    first = data.sample(50, np.random.default_rng(7))
    second = data.sample(50, np.random.default_rng(7))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_dsprites_positions_correlate_and_uncorrelated_sets_are_unchanged():
    rng = np.random.default_rng(0)
    factors = get_dataset("dsprites", correlations="posX:posY:0.1").sample_factors(20_000, rng)
    assert np.corrcoef(factors[:, 3], factors[:, 4])[0, 1] > 0.8
    plain = get_dataset("dsprites").sample_factors(20_000, np.random.default_rng(0))
    np.testing.assert_array_equal(plain, get_dataset("dsprites", correlations=None).sample_factors(20_000, np.random.default_rng(0)))


def test_weak_pairs_draw_their_first_observation_under_the_weights():
    data = FactorsAsObservations((8, 8, 3), correlations="factor_0:factor_1:0.05")
    images, _ = sample_pair_batch(data, 5000, np.random.default_rng(0))
    first = images[:5000, 0, 0]
    assert np.corrcoef(first[:, 0], first[:, 1])[0, 1] > 0.9


@pytest.mark.parametrize(("text", "message"), [
    ("posX:posZ:0.1", "unknown factor 'posZ', expected one of shape, scale, orientation, posX, posY"),
    ("posX:posX:0.1", "pairs factor 'posX' with itself"),
    ("posX:posY:0", r"sigma must be in \[0.001, 1000\] \(values are normalised to \[0, 1\]\), got 0"),
    ("posX:posY:-1", r"sigma must be in \[0.001, 1000\].*got -1"),
    ("posX:posY:nan", r"sigma must be in \[0.001, 1000\]"),
    ("posX:posY:wide", "sigma must be a number, got 'wide'"),
    ("posX:posY", "must read FACTOR:FACTOR:SIGMA"),
    ("posX:posY:0.1,posY:posX:0.2", r"the pair \(posY, posX\) is given twice"),
])
def test_bad_correlations_are_one_line(text, message):
    with pytest.raises(DisentangleError, match=message) as error:
        get_dataset("dsprites", correlations=text)
    assert "\n" not in str(error.value)


def test_bad_correlations_are_refused_before_any_file_is_read(tmp_path):
    from disentangle.datasets import dataset_class

    with pytest.raises(DisentangleError, match="unknown factor 'posX'"):
        dataset_class("shapes3d").check_option_values({"correlations": "posX:floor_hue:0.1"})
    with pytest.raises(DisentangleError, match="pairs factor 'label' with itself"):
        dataset_class("mnist").check_option_values({"correlations": "label:label:0.1"})


# -- Hausdorff factorized support ---------------------------------------------------------------

def test_a_batch_covering_its_product_support_gives_zero():
    z = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert hausdorff_support_distance(z, torch.tensor([[0, 1]])).item() == 0.0


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-1.0, 2.0)])
def test_the_diagonal_misses_its_corners_by_their_squared_distance(low, high):
    z = torch.tensor([[low, low], [high, high]])
    # the corner (low, high) is nearest to either diagonal point at squared distance (high - low)^2
    assert hausdorff_support_distance(z, torch.tensor([[0, 1]])).item() == pytest.approx((high - low) ** 2)


def test_the_distance_matches_the_definition_on_random_codes_and_sums_over_pairs():
    z = torch.randn(9, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pairs = torch.tensor([[0, 1], [3, 2], [1, 3]])
    total = 0.0
    for i, j in pairs.tolist():
        total += max(min(float((z[a, i] - z[k, i]) ** 2 + (z[b, j] - z[k, j]) ** 2) for k in range(9))
                     for a in range(9) for b in range(9))
    assert hausdorff_support_distance(z, pairs).item() == pytest.approx(total)


def test_hfs_loss_is_recon_plus_beta_kl_plus_gamma_hfs_and_beta_zero_is_allowed():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 64, 64).round()
    for beta in (0.0, 3.0):
        model = get_model("hfs_vae", beta=beta, gamma=2.0, latent_dim=3)  # 3 pairs < 25: all of them each step
        torch.manual_seed(1)
        out = model.loss(x)
        torch.manual_seed(1)
        mu, _ = model.encode(x)
        expected_hfs = hausdorff_support_distance(mu, torch.tensor([[0, 1], [0, 2], [1, 2]]))
        assert out["hfs"].item() == pytest.approx(expected_hfs.item(), rel=1e-5)
        assert out["loss"].item() == pytest.approx((out["recon"] + beta * out["kl"] + 2.0 * out["hfs"]).item(), rel=1e-5)
    out["loss"].backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0


def test_hfs_samples_its_latent_pairs_from_torchs_generator():
    model = get_model("hfs_vae", latent_dim=10, num_latent_pairs=3)
    mu = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    first = model.support_penalty(mu)
    torch.manual_seed(5)
    assert model.support_penalty(mu).item() == first.item()


@pytest.mark.parametrize(("options", "message"), [
    ({"gamma": -1.0}, "gamma must be a finite number >= 0"),
    ({"num_latent_pairs": 0}, "num_latent_pairs must be a positive integer, got 0"),
])
def test_bad_hfs_options(options, message):
    with pytest.raises(DisentangleError, match=message):
        get_model("hfs_vae", **options)


# -- scoring on unaltered data -------------------------------------------------------------------

def test_correlated_runs_are_scored_on_the_unaltered_grid_unless_asked():
    config = RunConfig(model="beta_vae", dataset="dsprites", dataset_options={"correlations": "posX:posY:0.2"})
    assert "correlations" not in evaluation_dataset_options(config)
    assert evaluation_dataset_options(config, distribution="training")["correlations"] == "posX:posY:0.2"
    with pytest.raises(DisentangleError, match="distribution"):
        evaluation_dataset_options(config, distribution="test")


@pytest.mark.slow
def test_a_correlated_run_records_the_distribution_it_was_scored_on(tmp_path):
    from click.testing import CliRunner

    from disentangle.cli import main

    spec = tmp_path / "study.toml"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\ndataset = "dsprites"\nsteps = 2\nseeds = [0]\nevaluate = ["mig"]\n'
                    'profile = "tiny"\n[grid.fixed]\nlatent_dim = 2\n[grid.dataset_options]\ncorrelations = "posX:posY:0.2"\n')
    runner = CliRunner()
    result = runner.invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["settings"]["mig"]["distribution"] == "unaltered"
    result = runner.invoke(main, ["evaluate", str(run), "--metrics", "mig", "--profile", "tiny", "--distribution", "training", "--quiet"])
    assert result.exit_code == 0, result.output
    settings = json.loads((run / "metrics.json").read_text())["settings"]  # its own key: the unaltered score stays
    assert settings["mig_training"]["distribution"] == "training" and settings["mig"]["distribution"] == "unaltered"


# -- the metrics ---------------------------------------------------------------------------------

from disentangle.metrics import factorized_support, latent_correlation  # noqa: E402

GRID = np.array([(a, b, c) for a in range(5) for b in range(5) for c in range(3)] * 8)


def test_latents_that_each_capture_one_factor_are_uncorrelated_on_the_independent_grid():
    values = latent_correlation(GRID.astype(float), GRID)
    assert values == {"pair_0_1": 0.0, "pair_0_2": 0.0, "pair_1_2": 0.0, "mean_abs_correlation": 0.0}


def test_a_latent_mixing_two_factors_correlates_as_pearson_says():
    # latent 1 = b + w * a captures b (most MI) and correlates with latent 0 = a by w / sqrt(1 + w^2) (equal variances)
    for w in (0.3, 1.0):
        codes = np.c_[GRID[:, 0], GRID[:, 1] + w * GRID[:, 0], GRID[:, 2]].astype(float)
        values = latent_correlation(codes, GRID, pairs="0:1")
        assert values["pair_0_1"] == pytest.approx(w / math.sqrt(1 + w * w), abs=1e-9)
        assert set(values) == {"pair_0_1", "mean_abs_correlation"}


def test_two_factors_in_one_latent_score_one():
    codes = np.c_[GRID[:, 0] * 5 + GRID[:, 1], GRID[:, 2]].astype(float)  # latent 0 holds a and b
    assert latent_correlation(codes, GRID, pairs="0:1")["pair_0_1"] == 1.0


@pytest.mark.parametrize(("pairs", "message"), [("0-1", "FACTOR:FACTOR"), ("0:0", "two different factors"), ("0:7", r"in \[0, 2\]")])
def test_bad_latent_correlation_pairs(pairs, message):
    with pytest.raises(DisentangleError, match=message):
        latent_correlation(GRID.astype(float), GRID, pairs=pairs)


def test_fos_is_zero_on_a_factorized_support_and_the_corner_distance_on_a_diagonal():
    assert factorized_support(np.array([(a, b) for a in (0.0, 2.0) for b in (0.0, 1.0)]))["fos"] == 0.0
    # three latents on the diagonal {0, 2}: each of the 3 pairs misses corners at squared distance 2^2
    assert factorized_support(np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]))["fos"] == pytest.approx(3 * 4.0)


def test_fos_is_the_training_penalty_over_every_pair_averaged_over_batches():
    codes = np.random.default_rng(0).normal(size=(20, 4))
    pairs = torch.tensor(list(itertools.combinations(range(4), 2)))
    batches = [hausdorff_support_distance(torch.from_numpy(codes[s:s + 8]), pairs).item() for s in (0, 8, 16)]
    assert factorized_support(codes, batch_size=8)["fos"] == pytest.approx(np.mean(batches), rel=1e-5)


def _line_band_by_hand(n1, n2, width):
    """Träuble et al.'s line band computed cell by cell, without numpy's vector forms: the definition."""
    import math as m

    if width >= 1:
        return [[1.0] * n2 for _ in range(n1)]
    thickness = m.ceil(width * min(n1, n2))
    ex, ey = float(n2), float(n1)
    reach = (ex + ey) / (2 * m.hypot(ex, ey))
    band = [[0.0] * n2 for _ in range(n1)]
    for i in range(n1):
        for j in range(n2):
            t = min(1.0, max(0.0, (j * ex + i * ey) / (ex * ex + ey * ey)))
            band[i][j] = 255.0 if m.hypot(j - t * ex, i - t * ey) <= thickness / 2 + reach else 0.0
    k = min(n1, n2) // 4
    k = k if k % 2 else k + 1
    sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8
    g = [m.exp(-((a - (k - 1) / 2) ** 2) / (2 * sigma * sigma)) for a in range(k)]
    g = [v / sum(g) for v in g]

    def reflect(index, size):  # OpenCV's BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba
        while index < 0 or index >= size:
            index = -index if index < 0 else 2 * (size - 1) - index
        return index

    half = (k - 1) // 2
    rows = [[sum(g[a] * band[reflect(i + a - half, n1)][j] for a in range(k)) for j in range(n2)] for i in range(n1)]
    both = [[sum(g[a] * rows[i][reflect(j + a - half, n2)] for a in range(k)) for j in range(n2)] for i in range(n1)]
    return [[float(min(255, max(0, round(v)))) for v in row] for row in both]


@pytest.mark.parametrize("n1, n2, width", [(32, 32, 0.2), (32, 32, 0.7), (40, 32, 0.4), (6, 32, 0.4), (10, 10, 10.0)])
def test_the_line_band_is_its_definition_cell_by_cell(n1, n2, width):
    from disentangle.datasets.correlations import line_band

    assert line_band(n1, n2, width).tolist() == _line_band_by_hand(n1, n2, width)


def test_the_line_kind_draws_from_its_band_exactly_and_leaves_cells_empty():
    from disentangle.datasets.correlations import CorrelatedFactors, line_band

    names, sizes = ("a", "b", "c"), (32, 32, 3)
    joint = CorrelatedFactors("a:b:line=0.2", names, sizes)
    band = line_band(32, 32, 0.2)
    assert np.allclose(joint.probabilities, band / band.sum())
    assert 0.37 < (band == 0).mean() < 0.45  # more than a third of the pair's cells get no mass (OpenCV's: 36.7%)
    flipped = CorrelatedFactors("~a:b:line=0.2", names, sizes).probabilities
    assert np.allclose(flipped, joint.probabilities[:, ::-1])  # the inverse pairing: the other diagonal
    assert np.allclose(CorrelatedFactors("a:b:line=10", names, sizes).probabilities, 1 / 1024)  # w >= 1: independent


@pytest.mark.parametrize("text, expected", [(" posX : posY : 0.20", "posX:posY:0.2"), ("posX:posY:line= 0.40", "posX:posY:line=0.4"),
                                            ("", None), ("~shape:scale:0.5,posX:posY:0.1", "~shape:scale:0.5,posX:posY:0.1")])
def test_correlations_are_one_spelling_before_the_run_id(text, expected):
    from disentangle.base import runs
    from disentangle.lifecycle.setup import resolve_config

    config = resolve_config(runs.RunConfig("beta_vae", dataset_options={"correlations": text}))
    assert config.dataset_options.get("correlations") == expected
    if expected:
        assert config.run_id() == resolve_config(runs.RunConfig("beta_vae", dataset_options={"correlations": expected})).run_id()
    else:
        assert config.run_id() == resolve_config(runs.RunConfig("beta_vae")).run_id()


@pytest.mark.parametrize("options, message", [({"correlations": "posX:posY:1e200"}, "sigma must be in [0.001, 1000]"),
                                              ({"correlations": "posX:posY:1e-200"}, "sigma must be in [0.001, 1000]"),
                                              ({"correlations": "posX:posY:line=-1"}, "line width must be a number > 0"),
                                              ({"holdout_part": "held_out"}, "needs a holdout")])
def test_data_set_option_values_are_refused_before_any_folder(tmp_path, options, message):
    from click.testing import CliRunner

    from disentangle.cli import main

    args = ["grid", "--model", "beta_vae", "--steps", "2", "--runs-dir", str(tmp_path / "runs"), "--evaluate", ""]
    for key, value in options.items():
        args += ["--dataset-option", f"{key}={value}"]
    for extra in ([], ["--dry-run"]):
        result = CliRunner().invoke(main, args + extra)
        assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_score_on_the_training_distribution_never_replaces_the_unaltered_one():
    from disentangle.metrics.registry import parse_result_key, result_key
    from disentangle.scoring.runner import record

    assert result_key("mig", distribution="training") == "mig_training" and result_key("mig", distribution="unaltered") == "mig"
    assert parse_result_key("mig_sampled_training_test") == ("mig", "test", "sampled")
    result = {}
    record(result, "mig", {"discrete_mig": 0.1}, {"distribution": "unaltered"})
    record(result, "mig", {"discrete_mig": 0.9}, {"distribution": "training"})
    assert result["mig.discrete_mig"] == 0.1 and result["mig_training.discrete_mig"] == 0.9
