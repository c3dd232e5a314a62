"""A grid's guarantees across reruns, kills and a second grid on the same runs folder: finished work
is never redone, a killed grid resumes, two grids never train one run twice."""

import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.base.errors import DisentangleError

pytestmark = pytest.mark.slow

TINY = {"steps": 6, "batch_size": 8, "fixed": {"latent_dim": 3}}


def _configs(betas=(1.0, 4.0), seeds=(0,)):
    return grid.expand("beta_vae", "dsprites", betas=betas, seeds=seeds, **TINY)


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
    return [sys.executable, "-m", "disentangle", "grid", "--model", "beta_vae", "--beta", betas, "--steps", str(steps),
            "--batch-size", "8", "--set", "latent_dim=3", "--evaluate", "", "--workers", "1",
            "--runs-dir", str(runs_dir), "--quiet", "--no-figures"]  # what trains (and is skipped), without the figures


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


def test_a_rerun_decides_from_status_and_manifest_without_loading_any_checkpoint(tmp_path, monkeypatch):
    import hashlib

    from disentangle.lifecycle.training import loading

    configs = _configs()
    grid.run_grid(configs, tmp_path, metric_names=(), progress=False)
    first = tmp_path / configs[0].run_id()
    manifest = runs.json.loads((first / runs.MANIFEST).read_text())["checkpoint"]
    assert manifest == {"bytes": (first / runs.CHECKPOINT).stat().st_size, "md5": hashlib.md5((first / runs.CHECKPOINT).read_bytes()).hexdigest()}

    def never(path):
        raise AssertionError(f"loaded {path}")

    monkeypatch.setattr(loading, "load_checkpoint", never)
    assert [r.outcome for r in grid.run_grid(configs, tmp_path, metric_names=(), progress=False)] == ["skipped", "skipped"]
    monkeypatch.undo()
    with open(first / runs.CHECKPOINT, "r+b") as checkpoint:  # cut short: a stat tells, no load needed
        checkpoint.truncate(100)
    results = {r.run_id: r for r in grid.run_grid(configs, tmp_path, metric_names=(), progress=False)}
    assert results[configs[1].run_id()].outcome == "skipped"
    broken = results[configs[0].run_id()]  # told apart, not skipped: a broken run is the user's to delete
    assert broken.outcome == "failed" and "is marked done but is broken" in broken.detail and runs.MANIFEST in broken.detail
