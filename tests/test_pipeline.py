"""The grid -> evaluate -> report -> figures path, on tiny settings."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.cli import main


TINY = {"steps": 6, "batch_size": 8, "fixed": {"latent_dim": 3}}


def _configs(betas=(1.0, 4.0), seeds=(0,)):
    return grid.expand("beta_vae", "dsprites", betas=betas, seeds=seeds, **TINY)


def _check_image(path, min_size=(200, 100)):
    with Image.open(path) as image:
        image.load()
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 5, f"{path} looks blank"


@pytest.fixture(scope="module")
def quickstart_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    result = CliRunner().invoke(main, ["quickstart", "--fast", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_quickstart_writes_runs_tables_and_figures(quickstart_out):
    out, output = quickstart_out
    assert "3 done, 0 failed" in output and "subsampled-GBT" in output
    run_dirs = sorted((out / "runs").iterdir())
    assert len(run_dirs) == 3
    for run_dir in run_dirs:
        assert runs.read_status(run_dir) == "done"
        values = runs.read_metrics(run_dir)
        assert {"mig.discrete_mig", "beta_vae.eval_accuracy", "factor_vae.eval_accuracy", "dci.disentanglement", "sap.sap_score"} <= set(values)
        assert values["settings"]["dci"]["estimator"] == "gbt_fast"
    table = pd.read_csv(out / "metrics" / "runs.csv")
    assert {"run_id", "model", "dataset", "beta", "latent_dim", "seed", "steps", "final_recon", "final_kl", "mig.discrete_mig"} <= set(table.columns)
    assert sorted(table["beta"]) == [1.0, 4.0, 16.0]
    summary = pd.read_csv(out / "metrics" / "summary.csv")
    assert {"model", "beta", "mig.discrete_mig:mean", "mig.discrete_mig:std", "mig.discrete_mig:median", "mig.discrete_mig:count"} <= set(summary.columns)
    assert len(summary) == 3 and (summary["mig.discrete_mig:count"] == 1).all()


def test_quickstart_figures_decode_and_are_not_blank(quickstart_out):
    out, _ = quickstart_out
    _check_image(out / "metrics" / "metric_vs_beta.png", (600, 400))
    _check_image(out / "metrics" / "tradeoff.png", (600, 300))
    figures = out / "figures" / "beta4"
    for name in ("traversals.png", "reconstructions.png", "samples.png", "kl_per_latent.png"):
        _check_image(figures / name)
    with Image.open(figures / "traversals.gif") as gif:
        assert 1 < gif.n_frames <= 18  # there and back in 18 steps (identical neighbours merge)
        assert gif.size[0] >= 10 * 64


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "nope", "--beta", "1"], "unknown model 'nope'"),
    (["--model", "beta_vae", "--beta", "1", "--executor", "bogus"], "unknown executor 'bogus', expected one of local, ray, slurm"),
    (["--model", "beta_vae", "--beta", ""], "the beta list is empty"),
    (["--model", "beta_vae", "--beta", "1,x"], "--beta must be a comma-separated list of numbers"),
    (["--model", "beta_vae", "--beta", "1", "--evaluate", "mig,nope"], "unknown metric 'nope'"),
    (["--model", "beta_vae", "--executor", "slurm", "--executor-option", "bogus=1"], "unknown option 'bogus' for executor 'slurm'"),
    (["--model", "beta_vae", "--executor", "slurm", "--executor-option", "time=ten"], "(time='ten'): expected int"),
    (["--model", "beta_vae", "--executor", "ray", "--executor-option", "address"], "--executor-option expects KEY=VALUE, got 'address'"),
    (["--model", "beta_vae", "--executor", "ray", "--executor-option", "workers=3"], "give --workers instead"),
])
def test_grid_bad_input(tmp_path, args, message):
    result = CliRunner().invoke(main, ["grid", *args, "--steps", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2
    assert message in result.output


def test_executor_options_reach_the_executor_and_shorthand_flags_win(tmp_path, monkeypatch):
    seen = {}

    def run_prepared(prepared, runs_dir, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(grid, "run_prepared", run_prepared)
    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--steps", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet",
                                       "--executor", "slurm", "--executor-option", "partition=a", "--executor-option", "signal_delay_s=30",
                                       "--executor-option", "wait=false", "--partition", "b", "--time", "5"])
    assert result.exit_code == 0, result.output
    assert seen["executor"] == "slurm"
    assert seen["executor_options"] == {"partition": "b", "signal_delay_s": 30, "wait": False, "time": 5}


def test_unwritable_runs_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1", "--steps", "2", "--runs-dir", str(blocker / "runs")])
    assert result.exit_code == 2
    assert "is not writable" in result.output


def test_report_lists_corrupt_runs_with_their_problem(tmp_path):
    grid.run_grid(_configs(), tmp_path / "runs", ("mig",), workers=1, profile="tiny", progress=False)
    good, broken = sorted((tmp_path / "runs").iterdir())
    (broken / runs.METRICS).write_text("{ not json")
    bad_config = tmp_path / "runs" / "broken-config"
    bad_config.mkdir()
    (bad_config / runs.CONFIG).write_text("[1, 2")
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "metrics")])
    assert result.exit_code == 0, result.output
    assert "unreadable:" in result.output and "corrupt" in result.output
    table = pd.read_csv(tmp_path / "metrics" / "runs.csv").set_index("run_id")
    assert sorted(table.index) == sorted([good.name, broken.name, "broken-config"])
    assert "corrupt" in table.loc[broken.name, "problem"] and "corrupt" in table.loc["broken-config", "problem"]
    assert pd.isna(table.loc[good.name, "problem"]) and bool(table.loc[good.name, "finished"])
    assert json.loads((good / runs.METRICS).read_text())["mig.discrete_mig"] == pytest.approx(table.loc[good.name, "mig.discrete_mig"])
    summary = pd.read_csv(tmp_path / "metrics" / "summary.csv")
    assert summary["mig.discrete_mig:count"].tolist() == [1]  # only the readable, finished run is averaged
