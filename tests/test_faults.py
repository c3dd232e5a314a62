"""Faults a user meets: Ctrl-C, failing runs, bad values. Each ends in a clean recovery or a
one-line error, and nothing already written is lost."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import catches_signal, proc_stat, process_alive, process_pids

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.cli import GRID_FAILED_EXIT, main
from disentangle.lifecycle.training import train
from disentangle.lifecycle.training import log as training_log
from disentangle.lifecycle.training.checkpoint import load_checkpoint

TINY = {"steps": 20, "batch_size": 8, "fixed": {"latent_dim": 3}, "checkpoint_every": 5}


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])  # Ctrl-C; a SLURM job exiting to be requeued
def test_ctrl_c_leaves_a_resumable_run_that_ends_as_if_never_stopped(tmp_path, monkeypatch, stop):
    (config,) = grid.expand("beta_vae", **TINY)
    config = dataclasses.replace(config, log_every=5)
    straight = train(config, tmp_path / "straight", progress=False)
    appended = {"calls": 0}
    real_append = training_log.append_log

    def interrupt_on_third(path, rows):
        appended["calls"] += 1
        if appended["calls"] == 3:  # step 15: the last checkpoint is step 10
            raise stop
        real_append(path, rows)

    monkeypatch.setattr(training_log, "append_log", interrupt_on_third)
    with pytest.raises(stop):
        train(config, tmp_path / "stopped", progress=False)
    run_dir = tmp_path / "stopped" / config.run_id()
    assert runs.read_status(run_dir) == runs.INTERRUPTED
    assert load_checkpoint(run_dir / runs.CHECKPOINT)["step"] == 10
    monkeypatch.setattr(training_log, "append_log", real_append)
    (result,) = grid.run_grid([config], tmp_path / "stopped", (), workers=1, progress=False, threads=torch.get_num_threads())  # as straight ran
    assert result.outcome == "done"  # not "skipped: previously failed"
    a, b = load_checkpoint(straight / runs.CHECKPOINT)["model"], load_checkpoint(run_dir / runs.CHECKPOINT)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_grid_exit_status_says_a_run_failed(tmp_path):
    args = ["grid", "--model", "beta_vae", "--beta", "1", "--steps", "4", "--batch-size", "8", "--set", "latent_dim=3",
            "--evaluate", "", "--workers", "1", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    failing = CliRunner().invoke(main, [*args, "--set", "lr=1e12"])
    assert failing.exit_code == GRID_FAILED_EXIT and "1 failed" in failing.output and "loss is nan" in failing.output
    fine = CliRunner().invoke(main, args)
    assert fine.exit_code == 0, fine.output


def test_seed_ranges(tmp_path):
    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1", "--seeds", "0-2,5", "--steps", "2", "--batch-size", "8",
                                       "--set", "latent_dim=3", "--evaluate", "", "--workers", "1", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(runs.read_config(d).seed for d in (tmp_path / "runs").iterdir() if d.is_dir() and not d.name.startswith(".")) == [0, 1, 2, 5]
    backwards = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1", "--seeds", "4-2", "--runs-dir", str(tmp_path / "x")])
    assert backwards.exit_code == 2 and "--seeds range '4-2' runs backwards" in backwards.output


@pytest.mark.parametrize("args, message", [
    (["--checkpoint-every", "0"], "checkpoint_every must be a positive integer, got 0"),
    (["--threads", "0"], "0 is not in the range x>=1"),
])
def test_zero_is_an_error_not_a_default(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--steps", "2", *args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_constant_latent_adds_nothing_to_gaussian_total_correlation():
    from disentangle.metrics import unsupervised

    rng = np.random.default_rng(0)
    codes = rng.standard_normal((2000, 3))
    codes[:, 1] += 0.8 * codes[:, 0]
    with_constant = np.hstack([codes, np.full((2000, 1), 3.0)])
    expected = unsupervised(codes)["gaussian_total_correlation"]
    assert np.isfinite(expected) and expected > 0.1
    assert unsupervised(with_constant)["gaussian_total_correlation"] == pytest.approx(expected)


@pytest.mark.parametrize("scale", [1e100, 1e38])
def test_huge_codes_are_refused_not_hung_on(scale):
    from disentangle.base.errors import DisentangleError
    from disentangle.metrics import dci, sap

    rng = np.random.default_rng(0)
    factors = rng.integers(0, 3, (200, 2))
    codes = (factors + rng.standard_normal((200, 2))) * scale
    for function in (sap, dci):
        with pytest.raises(DisentangleError, match=r"codes_train reach magnitude .*; the metrics need \|codes\| <= 1e\+12: rescale them"):
            function(codes, factors, codes, factors)


def test_settings_record_the_profile_and_older_results_stay_valid():
    import pandas as pd

    from disentangle.scoring.runner import metric_settings, same_settings
    from disentangle.reports.viz.sweeps import _note

    wanted = metric_settings("dci", "fast", seed=0)
    assert wanted["profile"] == "fast"
    stored_before_profiles_were_recorded = {k: v for k, v in wanted.items() if k != "profile"} | {"seconds": 4.2}
    assert same_settings(stored_before_profiles_were_recorded, wanted)  # a committed study is not re-evaluated
    assert not same_settings(stored_before_profiles_were_recorded, metric_settings("dci", "published", seed=0))
    table = pd.DataFrame({"steps": [100, 100], "model": ["vae", "vae"], "eval:dci": ["estimator=gbt_fast, profile=fast"] * 2})
    assert "evaluation profile fast" in _note(table)


def _children(pid: int) -> list[int]:
    return [child for child in process_pids() if (fields := proc_stat(child)) is not None and int(fields[1]) == pid]


@pytest.mark.parametrize("executor", ["local"])  # Ray: tests/test_interruptions.py
def test_sigterm_on_a_grid_stops_its_workers_and_leaves_resumable_runs(tmp_path, executor):
    import signal
    import subprocess
    import sys
    import time

    from disentangle.cli import GRID_INTERRUPTED_EXIT

    runs_dir = tmp_path / "runs"
    command = [sys.executable, "-m", "disentangle", "grid", "--model", "beta_vae", "--beta", "1,4", "--steps", "100000",
               "--batch-size", "8", "--set", "latent_dim=3", "--evaluate", "", "--workers", "2", "--runs-dir", str(runs_dir), "--quiet",
               "--executor", executor, "--threads", "1"]
    if executor == "ray":
        pytest.importorskip("ray")
    # started with SIGINT ignored, as `grid ... &` in a script starts it (and passes that on to its
    # workers): the workers must still stop on the SIGINT the grid sends them
    grid_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    workers = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # both runs training (a log row written)
            logs = list(runs_dir.glob("*/log.csv"))
            if len(logs) == 2 and all(len(p.read_text().splitlines()) > 1 for p in logs):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the grid did not start both runs")
        workers = _children(grid_process.pid)
        grid_process.send_signal(signal.SIGTERM)
        _, err = grid_process.communicate(timeout=120)
    finally:  # a failure must not leave 100,000-step runs training behind the rest of the suite
        for pid in [grid_process.pid, *workers]:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert grid_process.returncode == GRID_INTERRUPTED_EXIT, err[-1000:]
    assert "interrupted" in err
    time.sleep(1)
    assert not [pid for pid in workers if process_alive(pid)], "workers left training as orphans"
    run_dirs = [d for d in runs_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert [(d / runs.STATUS).read_text().strip() for d in run_dirs] == [runs.INTERRUPTED] * 2  # written by each worker
    from disentangle.orchestration.grid import _needs_work

    for config in grid.expand("beta_vae", betas=(1.0, 4.0), steps=100000, batch_size=8, fixed={"latent_dim": 3}):
        assert _needs_work(config, runs_dir, (), retry_failed=False) is None  # resumable, not skipped


def test_a_data_problem_is_one_error_line_without_the_usage_banner(tmp_path):
    result = CliRunner().invoke(main, ["datasets", "verify", "mnist", "--root", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: mnist file") and "Usage:" not in result.output
    misuse = CliRunner().invoke(main, ["evaluate", "--no-such-option"])
    assert misuse.exit_code == 2 and "Usage:" in misuse.output  # bad usage keeps click's banner


def test_evaluate_takes_threads(tmp_path):
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--model", "beta_vae", "--steps", "2", "--batch-size", "8", "--set", "latent_dim=3",
                                   "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert trained.exit_code == 0, trained.output
    (run,) = (tmp_path / "runs").iterdir()
    scored = runner.invoke(main, ["evaluate", str(run), "--metrics", "mig", "--threads", "1", "--quiet"])
    assert scored.exit_code == 0, scored.output
    assert runner.invoke(main, ["evaluate", str(run), "--threads", "0"]).exit_code == 2


@pytest.mark.parametrize("setting, message", [
    ("latent_dim=ten", "bad option value for model 'beta_vae' (latent_dim='ten'"),
    ("beta=", "bad option value for model 'beta_vae' (beta=''"),
    ("dataset_size=5", "model option 'dataset_size' is set by the data set, not by the user"),
])
def test_bad_set_values_are_one_line_errors_before_any_folder(tmp_path, setting, message):
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--steps", "2", "--set", setting, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("codes, factors, message", [
    (np.zeros((10, 2)), np.array([["a", "b"]] * 10), "factors must hold integer classes, got dtype <U1"),
    (np.array([["a", "b"]] * 10), np.zeros((10, 2), int), "codes must hold numbers, got dtype <U1"),
])
def test_strings_in_the_metric_api_are_one_line_errors(codes, factors, message):
    from disentangle.base.errors import DisentangleError
    from disentangle.metrics import mig

    with pytest.raises(DisentangleError, match=message):
        mig(codes, factors)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_command_stopped_while_it_loads_says_so_in_one_line_and_exits_130(tmp_path, sig):
    """Python alone prints a traceback from whichever import a Ctrl-C hits (or loses it in an import
    lock's callback and runs the command anyway); SIGTERM would end it silently with -15."""
    runs_dir = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "disentangle", "train", "--steps", "5", "--runs-dir", str(runs_dir), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not catches_signal(process.pid, signal.SIGTERM):  # the entry point's first act; the imports after it take seconds
        assert process.poll() is None and time.monotonic() < deadline, "the command never caught SIGTERM"
        time.sleep(0.002)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err.splitlines(), out) == (130, ["disentangle: interrupted while starting; nothing was written"], "")
    assert not runs_dir.exists()


def test_a_signal_in_a_training_step_is_acted_on_between_steps():
    """handled_between_steps: the first Ctrl-C or SIGTERM waits for the loop's check; a second acts at once;
    one that came in the last step acts when the block ends; an ignored signal stays ignored."""
    from disentangle.base.signals import handled_between_steps, sigterm_as_interrupt

    steps = []
    with pytest.raises(KeyboardInterrupt):
        with handled_between_steps() as stop_if_asked:
            for step in range(5):
                stop_if_asked()
                if step == 2:
                    signal.raise_signal(signal.SIGINT)  # mid-step: the step still ends
                steps.append(step)
    assert steps == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        with handled_between_steps():
            signal.raise_signal(signal.SIGTERM)
            steps.append("after the first")
            signal.raise_signal(signal.SIGTERM)  # a step that never ends: the second one stops it
            steps.append("after the second")
    assert steps[-1] == "after the first"
    with pytest.raises(KeyboardInterrupt):
        with handled_between_steps():
            signal.raise_signal(signal.SIGINT)  # in the last step
        steps.append("after the block")
    assert steps[-1] == "after the first"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with handled_between_steps() as stop_if_asked:
            signal.raise_signal(signal.SIGINT)
            stop_if_asked()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


SWALLOWED_STOP = """
import os, signal
from disentangle.base.signals import stops_recorded

def exit_like_ray(signum, frame):  # ray.init's driver handler
    raise SystemExit(signum)

signal.signal(signal.SIGTERM, exit_like_ray)
os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGTERM) or sum(range(10)))  # lands in the callback
with stops_recorded() as arrived:
    before = arrived()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print(before, arrived())
"""


def test_a_stop_whose_exception_a_fork_callback_swallowed_is_still_seen():
    """The Ray grid's lost SIGTERM (CI, 2026-12-08): a handler's SystemExit raised inside an at-fork callback is
    only printed, and the process goes on; stops_recorded still says a stop arrived, and nothing before it."""
    done = subprocess.run([sys.executable, "-c", SWALLOWED_STOP], capture_output=True, text=True, timeout=120)
    assert "Exception ignored" in done.stderr and done.stdout.split() == ["False", "True"], done.stderr
