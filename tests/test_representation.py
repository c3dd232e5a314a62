"""Scoring representations that are not from this project: the metric registry,
``evaluate_representation``, ``evaluate_codes`` and ``disentangle score``."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import disentangle
from disentangle.cli import main
from disentangle.datasets import get_dataset
from disentangle.base.errors import DisentangleError
from disentangle.scoring.runner import CodeSamples
from disentangle.metrics import metric_record, headline_columns, human_name, list_metrics
from disentangle.scoring.representation import checked_represent

ARRAY_METRICS = ["mig", "sap", "dci", "modularity", "unsupervised"]


class CentroidEncoder(torch.nn.Module):
    """A hand-written encoder: the sprite's centre of mass and its area (no training)."""

    def forward(self, x):
        mass = x.sum(dim=(1, 2, 3)) + 1e-6
        grid = torch.linspace(0, 1, x.shape[-1])
        cx = (x.sum(dim=(1, 2)) * grid).sum(-1) / mass
        cy = (x.sum(dim=(1, 3)) * grid).sum(-1) / mass
        return torch.stack([cx, cy, mass / 4096.0], dim=1)


def centroid_numpy(observations):
    with torch.no_grad():
        return CentroidEncoder()(torch.as_tensor(observations)).numpy()


def test_registry_declares_every_metric_once():
    names = list_metrics()
    assert list_metrics(default_only=True) == ["mig", "beta_vae", "factor_vae", "dci", "sap", "modularity", "unsupervised"]
    assert {"elbo", "iwae", "active_units", "irs", "mig_sup", "dcimig", "jemmig", "infomec", "z_max_variance"} <= set(names)
    assert "mig.discrete_mig" in headline_columns() and human_name("mig.discrete_mig") == "MIG"
    assert human_name("dci.completeness") == "DCI: completeness"
    for name in names:
        metric = metric_record(name)
        assert set(metric.profiles) == {"published", "fast", "tiny"} and metric.reference
    with pytest.raises(DisentangleError, match="unknown metric 'bogus', expected one of active_units, beta_vae"):
        metric_record("bogus")
    assert "unsupervised, elbo, iwae, active_units" in " ".join(CliRunner().invoke(main, ["evaluate", "--help"]).output.split())


def test_unknown_metric_fails_before_any_training(tmp_path):
    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1", "--steps", "2", "--evaluate", "mig,bogus",
                                       "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2 and "unknown metric 'bogus'" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.fixture(scope="module")
def python_result():
    return disentangle.evaluate_representation(centroid_numpy, "dsprites", metrics=ARRAY_METRICS + ["factor_vae"], profile="tiny", seed=3)


def test_python_api_scores_a_foreign_encoder(python_result):
    assert python_result["mig.discrete_mig"] > 0.1  # the centroid separates posX from posY
    assert python_result["settings"]["mig"]["num_train"] == 1000 and python_result["settings"]["mig"]["seed"] == 3
    assert 0 <= python_result["factor_vae.eval_accuracy"] <= 1


def test_same_codes_through_evaluate_codes_give_the_same_numbers(python_result):
    samples = CodeSamples(get_dataset("dsprites"), checked_represent(centroid_numpy), seed=3)
    f_mig, c_mig = samples.get("train", 1000)
    f_train, c_train = samples.get("train", 500)
    f_test, c_test = samples.get("test", 250)
    by_arrays = {**disentangle.evaluate_codes(c_mig, f_mig, metrics=["mig"], profile="tiny"),
                 **disentangle.evaluate_codes(c_train, f_train, c_test, f_test, metrics=["sap", "dci", "modularity", "unsupervised"], profile="tiny")}
    keys = [k for k in python_result if k.partition(".")[0] in ARRAY_METRICS]
    assert len(keys) >= 8
    for key in keys:
        assert by_arrays[key] == pytest.approx(python_result[key], abs=1e-12), key


def test_torchscript_and_module_function_through_the_cli(python_result, tmp_path, monkeypatch):
    scripted = tmp_path / "encoder.pt"
    torch.jit.script(CentroidEncoder()).save(str(scripted))
    out = tmp_path / "scores.json"
    args = ["--dataset", "dsprites", "--profile", "tiny", "--seed", "3", "--metrics", "mig,sap,factor_vae", "--quiet"]
    result = CliRunner().invoke(main, ["score", "--encoder", str(scripted), *args, "--batch-size", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    for key in ("mig.discrete_mig", "sap.sap_score", "factor_vae.eval_accuracy"):
        assert written[key] == pytest.approx(python_result[key], abs=1e-6), key
    exported = tmp_path / "encoder.pt2"
    program = torch.export.export(CentroidEncoder(), (torch.zeros(4, 1, 64, 64),), dynamic_shapes=({0: torch.export.Dim("n")},))
    torch.export.save(program, str(exported))
    result = CliRunner().invoke(main, ["score", "--encoder", str(exported), *args])
    assert result.exit_code == 0, result.output
    assert f"sap.sap_score {python_result['sap.sap_score']:.6g}" in result.output
    (tmp_path / "my_encoder.py").write_text(
        "import numpy as np\n"
        "def represent(x):\n"
        "    mass = x.sum(axis=(1, 2, 3)) + 1e-6\n"
        "    grid = np.linspace(0, 1, x.shape[-1], dtype=np.float32)\n"
        "    return np.stack([(x.sum(axis=(1, 2)) * grid).sum(-1) / mass, (x.sum(axis=(1, 3)) * grid).sum(-1) / mass, mass / 4096], 1)\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["score", "--encoder", "my_encoder:represent", *args])
    assert result.exit_code == 0, result.output
    assert f"mig.discrete_mig {python_result['mig.discrete_mig']:.6g}" in result.output


def test_score_codes_file(tmp_path):
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, (600, 2))
    codes = factors + 0.01 * rng.standard_normal((600, 2))
    np.savez(tmp_path / "codes.npz", codes=codes[:400], factors=factors[:400], codes_test=codes[400:], factors_test=factors[400:])
    result = CliRunner().invoke(main, ["score", "--codes", str(tmp_path / "codes.npz"), "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["mig.discrete_mig"] > 0.9 and written["dci.disentanglement"] > 0.9
    assert written["settings"]["dci"]["num_train"] == 400 and written["settings"]["dci"]["num_test"] == 200
    np.savez(tmp_path / "train_only.npz", codes=codes, factors=factors)
    written = CliRunner().invoke(main, ["score", "--codes", str(tmp_path / "train_only.npz")]).output
    assert "mig.discrete_mig" in written and "dci." not in written  # metrics needing a test set are left out by default


@pytest.mark.parametrize("represent, message", [
    (lambda x: np.zeros((len(x) - 1, 3)), r"represent returned codes of shape \[\d+, 3\] for \d+ observations, expected \[\d+, d\]"),
    (lambda x: np.zeros(len(x)), r"represent returned codes of shape \[\d+\]"),
    (lambda x: np.full((len(x), 2), np.nan), r"represent returned NaN or inf codes \(row 0 of the sample\)"),
    (lambda x: np.array([["a", "b"]] * len(x)), "represent returned codes of dtype <U1, expected floats"),
])
def test_bad_encoder_output_is_a_one_line_error(represent, message):
    with pytest.raises(DisentangleError, match=message):
        disentangle.evaluate_representation(represent, "dsprites", metrics=["mig"], profile="tiny")


def test_bad_requests_are_one_line_errors(tmp_path):
    codes, factors = np.zeros((10, 2)), np.zeros((10, 2), int)
    with pytest.raises(DisentangleError, match="dci fits on one set and scores on another: give codes_test and factors_test"):
        disentangle.evaluate_codes(codes, factors, metrics=["dci"])
    with pytest.raises(DisentangleError, match="beta_vae draws its own observations: use evaluate_representation"):
        disentangle.evaluate_codes(codes, factors, metrics=["beta_vae"])
    with pytest.raises(DisentangleError, match=r"factors_train has 9 rows but codes have 10"):
        disentangle.evaluate_codes(codes, factors[:9])
    with pytest.raises(DisentangleError, match="codes_train contains NaN or inf"):
        disentangle.evaluate_codes(np.full((10, 2), np.nan), factors)
    with pytest.raises(DisentangleError, match="iwae needs a trained model of this project"):
        disentangle.evaluate_representation(centroid_numpy, "dsprites", metrics=["iwae"])
    np.savez(tmp_path / "bad.npz", z=codes)
    runner = CliRunner()
    result = runner.invoke(main, ["score", "--codes", str(tmp_path / "bad.npz")])
    assert result.exit_code == 2 and "has no array 'codes', expected codes, factors" in result.output
    result = runner.invoke(main, ["score", "--codes", str(tmp_path / "bad.npz"), "--encoder", "x:y"])
    assert result.exit_code == 2 and "give exactly one of --codes FILE.npz or --encoder" in result.output
    result = runner.invoke(main, ["score", "--encoder", "no_such_module:f", "--dataset", "dsprites"])
    assert result.exit_code == 2 and "cannot import 'no_such_module:f'" in result.output
    scripted = tmp_path / "enc.pt"
    torch.jit.script(CentroidEncoder()).save(str(scripted))
    if not torch.cuda.is_available():
        result = runner.invoke(main, ["score", "--encoder", str(scripted), "--dataset", "dsprites", "--device", "cuda"])
        assert result.exit_code == 2 and "device 'cuda' asked for, but node" in result.output


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_points():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, (4000, 2))
    codes = factors + 0.7 * rng.standard_normal((4000, 2))
    small = disentangle.evaluate_codes(codes[:400], factors[:400], codes[400:600], factors[400:600], metrics=["sap"], bootstrap=40)
    large = disentangle.evaluate_codes(codes[:3000], factors[:3000], codes[3000:], factors[3000:], metrics=["sap"], bootstrap=40)
    for result in (small, large):
        assert result["sap.sap_score.ci_low"] <= result["sap.sap_score"] <= result["sap.sap_score.ci_high"]
        assert result["settings"]["sap"]["bootstrap"] == 40
    assert (large["sap.sap_score.ci_high"] - large["sap.sap_score.ci_low"]) < (small["sap.sap_score.ci_high"] - small["sap.sap_score.ci_low"])
    again = disentangle.evaluate_codes(codes[:400], factors[:400], codes[400:600], factors[400:600], metrics=["sap"], bootstrap=40)
    values = lambda result: {k: v for k, v in result.items() if k != "settings"}  # noqa: E731 -- timing aside
    assert values(again) == values(small)  # seeded
    assert {**again["settings"]["sap"], "seconds": 0} == {**small["settings"]["sap"], "seconds": 0}
    with pytest.raises(DisentangleError, match="bootstrap replicates must be an integer >= 2, got 1"):
        disentangle.evaluate_codes(codes, factors, metrics=["mig"], bootstrap=1)
    scored = disentangle.evaluate_representation(centroid_numpy, "dsprites", metrics=["mig", "beta_vae"], profile="tiny", bootstrap=5)
    assert "mig.discrete_mig.ci_low" in scored and "beta_vae.eval_accuracy.ci_low" not in scored  # sampling scores draw their own points
    assert "bootstrap" not in scored["settings"]["beta_vae"]


def test_continuous_factors_run_the_regression_variants():
    rng = np.random.default_rng(0)
    factors = rng.random((2000, 2))
    good = factors + 0.02 * rng.standard_normal((2000, 2))
    noise = rng.standard_normal((2000, 2))
    scores = [disentangle.evaluate_codes(c[:1500], factors[:1500], c[1500:], factors[1500:], profile="fast") for c in (good, noise)]
    for key in ("dci.disentanglement", "dci.informativeness_test_r2", "sap.sap_score_r2", "mig.discrete_mig"):
        assert scores[0][key] > scores[1][key] + 0.3, key
    assert scores[0]["settings"]["dci"]["continuous_factors"] is True
    assert "modularity.modularity_score" not in scores[0]  # no continuous variant: left out by default ...
    with pytest.raises(DisentangleError, match="modularity needs integer factor classes, got real-valued factors"):
        disentangle.evaluate_codes(good, factors, good, factors, metrics=["modularity"])  # ... and refused when asked


def test_incomplete_factor_grid_works_with_every_array_metric():
    rng = np.random.default_rng(0)
    full = np.stack(np.meshgrid(np.arange(5), np.arange(6), indexing="ij"), -1).reshape(-1, 2)
    factors = np.repeat(full[(full[:, 0] + full[:, 1]) % 3 != 0], 30, axis=0)  # a third of the grid missing
    factors = factors[rng.permutation(len(factors))]  # a random sample's order (downstream budgets take the first rows)
    codes = factors + 0.1 * rng.standard_normal(factors.shape)
    array_metrics = list_metrics(needs=("codes", "codes_only", "train_test"))
    budgets = {name: {"label_budgets": [10, 100]} for name in array_metrics if "label_budgets" in metric_record(name).settings("fast")}
    assert budgets  # the downstream tasks: their fast budgets (up to 1,000 labels) exceed these 600 rows
    result = disentangle.evaluate_codes(codes, factors, codes, factors, metrics=array_metrics, profile="fast", options=budgets)
    for name in array_metrics:
        assert any(k.startswith(name + ".") for k in result), name


def test_score_out_writes_valid_json_even_for_an_infinite_value(tmp_path):
    import json

    from disentangle.base import runs

    rng = np.random.default_rng(0)
    column = rng.standard_normal((200, 1))
    path = tmp_path / "codes.npz"
    np.savez(path, codes=np.hstack([column, column]), factors=rng.integers(0, 3, (200, 2)))  # two identical codes
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, ["score", "--codes", str(path), "--metrics", "unsupervised", "--profile", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    written = json.loads(out.read_text(), parse_constant=refuse)  # strict JSON: no bare Infinity or NaN
    assert written["unsupervised.gaussian_total_correlation"] == "Infinity"
    (tmp_path / runs.METRICS).write_text(out.read_text())
    assert runs.read_metrics(tmp_path)["unsupervised.gaussian_total_correlation"] == float("inf")  # read back as a number
