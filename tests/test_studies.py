"""Study files, binarised MNIST, held-out likelihoods, and evaluation of exported runs."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from disentangle import DisentangleError
from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.orchestration import tasks
from disentangle.cli import main
from disentangle.datasets import get_dataset
from disentangle.metrics import _likelihood as likelihood
from disentangle.metrics import iwae_nll
from disentangle.models import get_model
from disentangle.lifecycle.evaluation import evaluate
from disentangle.metrics.registry import default_metrics
from disentangle.base.runs import RunConfig
from disentangle.orchestration.spec import load_spec
from disentangle.lifecycle.training import train
from tests.conftest import idx_bytes

STUDY = """
[[grid]]
model = "beta_vae"
steps = 3
batch_size = 4
seeds = [0, 1]
evaluate = ["mig"]
profile = "tiny"
[grid.sweep]
beta = [1.0, 4.0]
[grid.fixed]
latent_dim = 2
"""


def test_binarisation_dynamic_redraws_fixed_is_one_draw(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.full((50, 28, 28), 64, np.uint8)  # intensity 64/255: P(pixel = 1) = 0.251
    labels = (np.arange(50) % 10).astype(np.uint8)
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    dynamic = get_dataset("mnist", root=folder, verify=False, binarize="dynamic")
    rng = np.random.default_rng(0)
    first, second = dynamic.observations(np.arange(50), rng), dynamic.observations(np.arange(50), rng)
    assert set(np.unique(first)) == {0.0, 1.0} and not np.array_equal(first, second)
    assert first.mean() == pytest.approx(64 / 255, abs=0.01)  # 39,200 Bernoulli draws: sd 0.002
    fixed = get_dataset("mnist", root=folder, verify=False, split="test", binarize="fixed", binarize_seed=3)
    again = get_dataset("mnist", root=folder, verify=False, split="test", binarize="fixed", binarize_seed=3)
    other = get_dataset("mnist", root=folder, verify=False, split="test", binarize="fixed", binarize_seed=4)
    everything = fixed.evaluation_observations(None, rng)
    assert everything.shape == (50, 1, 28, 28) and set(np.unique(everything)) == {0.0, 1.0}
    assert np.array_equal(everything, again.evaluation_observations(None, np.random.default_rng(9)))
    assert not np.array_equal(everything, other.evaluation_observations(None, rng))
    assert everything.mean() == pytest.approx(64 / 255, abs=0.01)
    assert len(np.unique(fixed.evaluation_observations(20, rng).reshape(20, -1), axis=0)) == 20  # without replacement
    with pytest.raises(DisentangleError, match="binarize must be one of none, dynamic, fixed, got 'yes'"):
        get_dataset("mnist", root=folder, verify=False, binarize="yes")
    with pytest.raises(DisentangleError, match="num_points must be at most 50"):
        fixed.evaluation_observations(51, rng)


def test_iwae_by_hand_for_a_z_independent_decoder(monkeypatch):
    # q(z|x) = prior and logits = b whatever z: every importance weight is log p(x) = sum x b - softplus(b),
    # so the bound is exact for every k, in any chunking
    torch.manual_seed(0)
    model = get_model("vae", observation_shape=(1, 28, 28), architecture="mlp", latent_dim=3).eval()
    with torch.no_grad():
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.zero_()
        model.decoder[-2].weight.zero_()
        model.decoder[-2].bias.fill_(-1.5)
    data = (np.random.default_rng(0).random((5, 1, 28, 28)) > 0.7).astype(np.float32)
    ones = data.reshape(5, -1).sum(1)
    expected = float(np.mean(-(ones * -1.5 - 784 * math.log1p(math.exp(-1.5)))))
    monkeypatch.setattr(likelihood, "SAMPLES_PER_CALL", 3)  # k = 7 samples in chunks that do not divide it
    result = iwae_nll(model, data, k=7)
    assert result["iwae_nll"] == pytest.approx(expected, rel=1e-5)
    assert result["iwae_k"] == 7 and result["num_points"] == 5


@pytest.fixture
def mnist_run(tiny_mnist, tmp_path):
    config = RunConfig(model="vae", dataset="mnist", steps=4, batch_size=5,
                       model_options={"latent_dim": 2, "architecture": "mlp"},
                       dataset_options={"root": str(tiny_mnist), "verify": False, "binarize": "dynamic"})
    return train(config, tmp_path / "runs", progress=False)


def test_evaluate_test_split_with_all_points_and_k(mnist_run):
    result = CliRunner().invoke(main, ["evaluate", str(mnist_run), "--metrics", "iwae", "--split", "test",
                                       "--set", "iwae.k=20", "--set", "iwae.num_points=all", "--quiet"])
    assert result.exit_code == 0, result.output
    values = runs.read_metrics(mnist_run)
    assert values["iwae_test.num_points"] == 10 and values["iwae_test.iwae_k"] == 20  # all 10 test images
    assert values["settings"]["iwae_test"]["split"] == "test" and values["settings"]["iwae_test"]["num_points"] == "all"
    assert 0 < values["iwae_test.iwae_nll"] < 784 * math.log(2) * 2
    result = CliRunner().invoke(main, ["evaluate", str(mnist_run), "--metrics", "iwae", "--set", "iwae.kk=3"])
    assert result.exit_code == 2 and "unknown setting iwae.kk" in result.output


def test_single_factor_metrics_are_skipped_and_said_so(mnist_run):
    result = CliRunner().invoke(main, ["evaluate", str(mnist_run), "--metrics", "mig,dci,beta_vae,factor_vae,modularity,sap", "--fast", "--quiet"])
    assert result.exit_code == 0, result.output
    values = runs.read_metrics(mnist_run)
    for name in ("dci", "beta_vae", "factor_vae", "modularity"):
        assert not any(key.startswith(name + ".") for key in values), name  # no number at all
        assert "needs at least 2 factors" in values["settings"][name]["skipped"]
        assert name in result.output
    assert "mig.discrete_mig" in values and "sap.sap_score" in values


def test_changed_settings_recompute_same_settings_reuse(mnist_run):
    runner = CliRunner()
    assert runner.invoke(main, ["evaluate", str(mnist_run), "--metrics", "mig", "--quiet"]).exit_code == 0
    first = runs.read_metrics(mnist_run)["settings"]["mig"]
    assert runner.invoke(main, ["evaluate", str(mnist_run), "--metrics", "mig", "--quiet"]).exit_code == 0
    assert runs.read_metrics(mnist_run)["settings"]["mig"] == first  # reused, timing and all
    assert runner.invoke(main, ["evaluate", str(mnist_run), "--metrics", "mig", "--set", "mig.n_bins=5", "--quiet"]).exit_code == 0
    assert runs.read_metrics(mnist_run)["settings"]["mig"]["n_bins"] == 5


def test_exported_weights_only_run_reevaluates_to_the_same_numbers(tmp_path):
    config = RunConfig(model="beta_vae", steps=3, batch_size=4, model_options={"latent_dim": 2})
    run_dir = train(config, tmp_path / "runs", progress=False)
    runner = CliRunner()
    assert runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--fast", "--quiet"]).exit_code == 0
    result = runner.invoke(main, ["export", str(run_dir), str(tmp_path / "shared" / run_dir.name)])
    assert result.exit_code == 0, result.output
    copy = tmp_path / "shared" / run_dir.name
    assert set(torch.load(copy / "checkpoint.pt", weights_only=False)) == {"model", "step"}
    assert (copy / "checkpoint.pt").stat().st_size < (run_dir / "checkpoint.pt").stat().st_size
    result = runner.invoke(main, ["evaluate", str(copy), "--metrics", "mig", "--fast", "--force", "--quiet"])
    assert result.exit_code == 0, result.output
    assert runs.read_metrics(copy)["mig.discrete_mig"] == runs.read_metrics(run_dir)["mig.discrete_mig"]


def test_spec_file_runs_skips_and_orders_by_seed(tmp_path, monkeypatch):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    (group,) = load_spec(spec)
    assert [(c.model_options["beta"], c.seed) for c in group.configs] == [(1.0, 0), (1.0, 1), (4.0, 0), (4.0, 1)]
    assert group.metrics == ("mig",) and group.profile == "tiny"
    order = []
    original = tasks.run_one
    monkeypatch.setattr(tasks, "run_one", lambda config, *a, **k: order.append((config.model_options["beta"], config.seed)) or original(config, *a, **k))
    results = grid.run_grid(group.configs, tmp_path / "runs", group.metrics, workers=1, profile=group.profile, progress=False)
    assert [r.outcome for r in results] == ["done"] * 4
    assert order == [(1.0, 0), (4.0, 0), (1.0, 1), (4.0, 1)]  # every setting at seed 0 first
    result = CliRunner().invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "0 done, 0 failed, 4 skipped" in result.output


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace('model = "beta_vae"', 'modle = "beta_vae"'), "'modle' is not a key"),
    (lambda s: s.replace("steps = 3", 'steps = "abc"'), "'steps' must be a positive integer, got 'abc'"),
    (lambda s: s.replace("beta = [1.0, 4.0]", "beta = 4.0"), "'sweep.beta' must be a non-empty list"),
    (lambda s: s.replace("beta = [1.0, 4.0]", 'beta = [1.0, "x"]'), "model options .* are bad"),
    (lambda s: s.replace("latent_dim = 2", "gamma = 2"), "'fixed.gamma' is not an option of model 'beta_vae'"),
    (lambda s: s + '[grid.evaluate_options.mig]\nn_bins = "x"\n', r"bad option value for metric 'mig' \(n_bins='x'\): expected int"),
    (lambda s: s + "[grid.evaluate_options.mig]\nnum_train = 0\n", "mig.num_train must be a positive integer, got 0"),
    (lambda s: s + "[grid.dataset_options]\nbogus = 1\n", "unknown option 'bogus' for dataset 'dsprites'"),
    (lambda s: s + '[grid.dataset_options]\nin_memory = "yes"\n', r"bad option value for dataset 'dsprites' \(in_memory='yes'\)"),
    (lambda s: s + '[grid.dataset_options]\nsource = "zip"\n', "dSprites source must be 'procedural' or 'npz', got 'zip'"),
    (lambda s: s.replace('["mig"]', '["accuracy"]'), "'evaluate' is bad: unknown metric 'accuracy'"),
    (lambda s: s.replace('"tiny"', '"slow"'), "'profile' is 'slow', expected one of published, fast, tiny"),
    (lambda s: s.replace("[[grid]]", "[[grids]]"), "unknown top-level key 'grids'"),
    (lambda s: s.replace('profile = "tiny"', 'profile = "tiny"\nrepresentation = "median"'),
     "'representation' must be one of mean, sampled or a list of them, got 'median'"),
    (lambda s: s.replace('profile = "tiny"', 'profile = "tiny"\ncompile = "yes"'), "'compile' must be a bool, got 'yes'"),
    (lambda s: s + "\nnot toml ==", "not valid TOML"),
])
def test_bad_spec_is_one_line_naming_file_and_key(tmp_path, edit, message):
    spec = tmp_path / "study.toml"
    spec.write_text(edit(STUDY))
    with pytest.raises(DisentangleError, match=message) as error:
        load_spec(spec)
    assert str(spec) in str(error.value) and "\n" not in str(error.value)
    result = CliRunner().invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and not (tmp_path / "runs").exists()


def test_spec_scores_both_representations_and_a_rerun_skips(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY.replace('profile = "tiny"', 'profile = "tiny"\nrepresentation = ["mean", "sampled"]').replace("seeds = [0, 1]", "seeds = [0]"))
    (group,) = load_spec(spec)
    assert group.representations == ("mean", "sampled")
    runner = CliRunner()
    result = runner.invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    for config in group.configs:
        stored = json.loads((tmp_path / "runs" / config.run_id() / "metrics.json").read_text())
        assert {"mig.discrete_mig", "mig_sampled.discrete_mig"} <= set(stored)
    again = runner.invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--workers", "1", "--quiet"])
    assert f"0 done, 0 failed, {len(group.configs)} skipped" in again.output


def test_spec_compile_key_sets_how_runs_execute_not_their_ids(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    plain = [c for g in load_spec(spec) for c in g.configs]
    spec.write_text(STUDY.replace('profile = "tiny"', 'profile = "tiny"\ncompile = true'))
    compiled = [c for g in load_spec(spec) for c in g.configs]
    assert all(c.compile for c in compiled) and not any(c.compile for c in plain)
    assert [c.run_id() for c in compiled] == [c.run_id() for c in plain]


def test_spec_conflicts_with_run_options(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    result = CliRunner().invoke(main, ["grid", "--spec", str(spec), "--model", "vae"])
    assert result.exit_code == 2 and "--model conflicts with --spec" in result.output


def test_committed_study_files_parse():
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[1] / "studies").rglob("*.toml"))
    assert len(files) >= 3
    for path in files:
        assert load_spec(path)


def test_data_location_is_not_part_of_the_run_id():
    here = RunConfig(model="vae", dataset="mnist", dataset_options={"root": "/a", "binarize": "dynamic"})
    there = RunConfig(model="vae", dataset="mnist", dataset_options={"root": "/b", "binarize": "dynamic"})
    other = RunConfig(model="vae", dataset="mnist", dataset_options={"root": "/a", "binarize": "fixed"})
    assert here.run_id() == there.run_id() != other.run_id()


def test_dci_leaves_constant_factors_out():
    rng = np.random.default_rng(0)
    factors = np.hstack([rng.integers(0, 5, (400, 2)), np.zeros((400, 1), int)])
    codes = rng.standard_normal((400, 4))  # noise
    from disentangle.metrics import dci

    with_constant = dci(codes[:200], factors[:200], codes[200:], factors[200:], estimator="gbt_fast")
    without = dci(codes[:200], factors[:200, :2], codes[200:], factors[200:, :2], estimator="gbt_fast")
    assert with_constant == without  # the constant factor adds no "perfect" prediction
    assert with_constant["informativeness_test"] < 0.4  # noise predicts 5 classes near chance


def test_report_refuses_a_missing_runs_folder_and_writes_nothing(tmp_path):
    out = tmp_path / "metrics"
    out.mkdir()
    (out / "runs.csv").write_text("keep me\n")
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "typo"), "--out", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert (out / "runs.csv").read_text() == "keep me\n"


def test_evaluate_holds_the_run_lock(tmp_path):
    config = RunConfig(model="beta_vae", steps=2, batch_size=4, model_options={"latent_dim": 2})
    run_dir = train(config, tmp_path / "runs", progress=False)
    with runs.run_lock(run_dir):
        result = CliRunner().invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--quiet"])
    assert result.exit_code == 2 and "in use by another process" in result.output
    assert not (run_dir / "metrics.json").exists()
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "nosuch"), "--metrics", "mig"])
    assert result.exit_code == 2 and "not a run folder" in result.output
    with runs.run_lock(run_dir), pytest.raises(runs.RunLocked):  # the library takes the lock, not only the CLI
        evaluate(run_dir, ["mig"], profile="tiny", progress=False)
    with pytest.raises(DisentangleError, match="not finished"):
        evaluate(tmp_path / "nosuch", ["mig"], progress=False)
    assert not (tmp_path / "nosuch").exists()  # refused before the lock could create the folder


def test_one_default_metric_set_for_evaluate_grid_and_study_files(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY.replace('evaluate = ["mig"]\n', ""))
    assert load_spec(spec)[0].metrics == default_metrics() and len(default_metrics()) > 1
    spec.write_text(STUDY.replace('evaluate = ["mig"]', "evaluate = []"))
    assert load_spec(spec)[0].metrics == ()
    from disentangle.orchestration.requests import GridRequest, grid_from_options

    assert grid_from_options(GridRequest(model="beta_vae", steps=3, batch_size=4)).metrics == default_metrics()
    assert grid_from_options(GridRequest(model="beta_vae", steps=3, batch_size=4, metric_names="")).metrics == ()


def test_profile_is_one_option_everywhere_and_the_old_flags_still_work(tmp_path):
    config = RunConfig(model="beta_vae", steps=2, batch_size=4, model_options={"latent_dim": 2})
    run_dir = train(config, tmp_path / "runs", progress=False)
    runner = CliRunner()
    assert runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--profile", "tiny", "--quiet"]).exit_code == 0
    assert runs.read_metrics(run_dir)["settings"]["mig"]["profile"] == "tiny"
    assert runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--fast", "--quiet"]).exit_code == 0
    assert runs.read_metrics(run_dir)["settings"]["mig"]["profile"] == "fast"
    result = runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--fast", "--profile", "tiny"])
    assert result.exit_code == 2 and "conflicts with --profile tiny" in result.output
    for command in ("evaluate", "grid", "score"):
        assert "--profile" in runner.invoke(main, [command, "--help"]).output


def test_integer_and_float_hyperparameters_are_one_run_and_old_integer_runs_are_migrated(tmp_path):
    import dataclasses
    import shutil

    spec = tmp_path / "study.toml"
    spec.write_text(STUDY.replace("beta = [1.0, 4.0]", "beta = [4, 4.0]").replace("seeds = [0, 1]", "seeds = [0]"))
    (group,) = load_spec(spec)
    results = grid.run_grid(group.configs, tmp_path / "runs", group.metrics, workers=1, profile=group.profile, progress=False)
    assert len({r.run_id for r in results}) == 1 and [r.outcome for r in results] == ["done", "done"]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert runs.read_config(run_dir).model_options["beta"] == 4.0
    # a run made before normalisation: its id hashed the integer 4 and its config.json says 4
    integer = dataclasses.replace(runs.read_config(run_dir), model_options={**runs.read_config(run_dir).model_options, "beta": 4})
    legacy = tmp_path / "runs" / integer.run_id()
    assert legacy.name != run_dir.name
    shutil.move(run_dir, legacy)
    data = json.loads((legacy / runs.CONFIG).read_text())
    data["model_options"]["beta"] = 4
    (legacy / runs.CONFIG).write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--workers", "1", "--quiet"])
    assert result.exit_code == 0 and "0 done, 0 failed, 2 skipped" in result.output, result.output
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]  # renamed to its new id, not retrained
    assert runs.read_config(run_dir).model_options["beta"] == 4.0


def test_a_huge_sweep_is_refused_and_bad_executor_options_are_refused_before_expansion(tmp_path, monkeypatch):
    import time

    expanded = []
    monkeypatch.setattr(grid, "expand", lambda *a, **k: expanded.append(1) or [])
    runner = CliRunner()
    start = time.perf_counter()
    result = runner.invoke(main, ["grid", "--model", "beta_vae", "--seeds", "0-999999", "--beta", "1,4", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "this grid has 2,000,000 runs, more than the 100,000 one grid can hold" in result.output
    result = runner.invoke(main, ["grid", "--model", "beta_vae", "--seeds", "0-3", "--executor", "local", "--partition", "gpu",
                                  "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown option 'partition' for executor 'local'" in result.output
    assert not expanded and time.perf_counter() - start < 5 and not any(tmp_path.iterdir())


def test_a_run_without_steps_trains_the_same_steps_from_every_entry_point(tmp_path):
    """One default (RunConfig's): a study file, grid's options and grid.expand agree, and train's --steps shows it."""
    from click.testing import CliRunner

    from disentangle.orchestration import grid
    from disentangle.cli import main
    from disentangle.orchestration.requests import GridRequest, grid_from_options
    from disentangle.base.runs import RUN_DEFAULTS

    spec = tmp_path / "study.toml"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\n')
    (from_study,) = load_spec(spec)[0].configs
    (from_options,) = grid_from_options(GridRequest(model="beta_vae")).configs
    (from_library,) = grid.expand("beta_vae")
    assert from_study.steps == from_options.steps == from_library.steps == RunConfig(model="beta_vae").steps == RUN_DEFAULTS["steps"]
    assert from_study.batch_size == from_options.batch_size == from_library.batch_size == RUN_DEFAULTS["batch_size"]
    assert f"[default: {RUN_DEFAULTS['steps']}]" in CliRunner().invoke(main, ["train", "--help"]).output.replace("\n", " ")
