"""The grid -> evaluate -> report -> figures path, on tiny settings."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from disentangle import grid, runs
from disentangle.cli import main
from disentangle.errors import DisentangleError

from conftest import assert_tensorboard_holds_the_log

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


def test_rerun_skips_finished_work(tmp_path):
    configs = _configs()
    first = grid.run_grid(configs, tmp_path, ("mig",), workers=1, profile="tiny", progress=False)
    assert [r.outcome for r in first] == ["done", "done"]
    stamp = {c.run_id(): (tmp_path / c.run_id() / runs.CHECKPOINT).stat().st_mtime_ns for c in configs}
    again = grid.run_grid(configs, tmp_path, ("mig",), workers=1, profile="tiny", progress=False)
    assert [r.outcome for r in again] == ["skipped", "skipped"]
    assert stamp == {c.run_id(): (tmp_path / c.run_id() / runs.CHECKPOINT).stat().st_mtime_ns for c in configs}
    # asking for a new metric evaluates, without retraining
    more = grid.run_grid(configs, tmp_path, ("mig", "sap"), workers=1, profile="tiny", progress=False)
    assert [r.outcome for r in more] == ["done", "done"]
    assert stamp == {c.run_id(): (tmp_path / c.run_id() / runs.CHECKPOINT).stat().st_mtime_ns for c in configs}
    assert "sap.sap_score" in runs.read_metrics(tmp_path / configs[0].run_id())


def test_failed_run_is_recorded_and_retried_only_when_asked(tmp_path, monkeypatch):
    configs = _configs()
    bad = configs[1].run_id()
    (tmp_path / bad).mkdir()
    runs.write_status(tmp_path / bad, "failed: loss is nan at step 3")
    results = grid.run_grid(configs, tmp_path, (), workers=1, progress=False)
    assert [r.outcome for r in results] == ["done", "skipped"]
    assert "failed" in results[1].detail
    retried = grid.run_grid(configs, tmp_path, (), workers=1, retry_failed=True, progress=False)
    assert [r.outcome for r in retried] == ["skipped", "done"]


def _grid_command(runs_dir, betas="1,2,4", steps=40):
    return [sys.executable, "-m", "disentangle.cli", "grid", "--model", "beta_vae", "--beta", betas, "--steps", str(steps),
            "--batch-size", "8", "--set", "latent_dim=3", "--evaluate", "", "--workers", "1",
            "--runs-dir", str(runs_dir), "--quiet"]


def test_killed_grid_resumes_without_losing_or_repeating_work(tmp_path):
    process = subprocess.Popen(_grid_command(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not any(runs.read_status(d) == "done" for d in tmp_path.iterdir() if d.is_dir()):
        time.sleep(0.05)
    process.kill()
    process.wait()
    finished = {d.name: (d / runs.CHECKPOINT).stat().st_mtime_ns for d in tmp_path.iterdir() if d.is_dir() and runs.read_status(d) == "done"}
    assert finished
    result = subprocess.run(_grid_command(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "0 failed" in result.stdout
    for run_id, stamp in finished.items():
        assert f"skipped  {run_id}" in result.stdout
        assert (tmp_path / run_id / runs.CHECKPOINT).stat().st_mtime_ns == stamp
    assert all(runs.read_status(d) == "done" for d in tmp_path.iterdir() if d.is_dir())


def test_two_concurrent_grids_never_train_a_run_twice(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(_grid_command(tmp_path, "1,2,4,8", steps=30), stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    trained = [line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("done ")]
    assert len(trained) == len(set(trained)), "a run was trained by both grids"
    assert len([d for d in tmp_path.iterdir() if d.is_dir()]) == 4
    for run_dir in (d for d in tmp_path.iterdir() if d.is_dir()):
        assert runs.read_status(run_dir) == "done"
        steps = pd.read_csv(run_dir / runs.LOG)["step"].tolist()
        assert steps == sorted(set(steps))  # one writer: no duplicated log rows


def test_a_runs_folder_whose_file_system_ignores_locks_is_refused(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setattr(fcntl, "flock", lambda fd, operation: None)  # what a file system without flock support does
    with pytest.raises(DisentangleError, match="ignores file locks"):
        grid.run_grid(_configs(), tmp_path / "runs", progress=False)


@pytest.mark.slow
def test_ray_executor_on_a_two_node_cluster(tmp_path, ray_exclusive):
    """A Ray head and a second node, each its own raylet process on this machine (one CPU each):
    the runs spread over both and every worker sees the shared runs folder. (A grid on a private local
    instance, interrupted and then finished, is ``tests/test_fault_sweep.py::test_grid[ray-SIGTERM]``.)"""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        configs = _configs(betas=(1.0, 4.0), seeds=(0,))
        for config in configs:
            config.loggers, config.log_every = ["tensorboard"], 2  # trackers run where the run runs
        results = grid.run_grid(configs, tmp_path, ("mig",), executor="ray", workers=2, profile="tiny", progress=False, threads=1,
                                executor_options={"address": cluster.address})
        assert [r.outcome for r in results] == ["done"] * 2, [r.detail for r in results]
        assert all("mig.discrete_mig" in runs.read_metrics(tmp_path / r.run_id) for r in results)
        for result in results:
            assert_tensorboard_holds_the_log(tmp_path / result.run_id)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "nope", "--beta", "1"], "unknown model 'nope'"),
    (["--model", "beta_vae", "--beta", "1", "--executor", "bogus"], "unknown executor 'bogus', expected one of local, ray, slurm"),
    (["--model", "beta_vae", "--beta", ""], "the beta list is empty"),
    (["--model", "beta_vae", "--beta", "1,x"], "--beta must be a comma-separated list of numbers"),
    (["--model", "beta_vae", "--beta", "1", "--evaluate", "mig,nope"], "unknown metric 'nope'"),
    (["--model", "beta_vae", "--executor", "slurm", "--executor-option", "bogus=1"], "unknown option 'bogus' for executor 'slurm'"),
    (["--model", "beta_vae", "--executor", "slurm", "--executor-option", "time=ten"], "(time='ten'): expected int"),
    (["--model", "beta_vae", "--executor", "ray", "--executor-option", "address"], "--executor-option expects key=value, got 'address'"),
    (["--model", "beta_vae", "--executor", "ray", "--executor-option", "workers=3"], "give --workers instead"),
])
def test_grid_bad_input(tmp_path, args, message):
    result = CliRunner().invoke(main, ["grid", *args, "--steps", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2
    assert message in result.output


def test_executor_options_reach_the_executor_and_shorthand_flags_win(tmp_path, monkeypatch):
    seen = {}

    def run_grid(configs, runs_dir, metrics, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(grid, "run_grid", run_grid)
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
