import dataclasses
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from disentangle import DisentangleError
from disentangle.base import runs
from disentangle.models.vae import BetaVAE
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import TrainingFailed, train
from disentangle.lifecycle.training.checkpoint import load_checkpoint

SMALL = {"latent_dim": 3, "beta": 2.0}


def _config(steps=12, **kw):
    return RunConfig(model="beta_vae", steps=steps, batch_size=8, model_options=dict(SMALL), checkpoint_every=4, log_every=3, **kw)


def _params(run_dir):
    return load_checkpoint(run_dir / runs.CHECKPOINT)["model"]


def test_run_folder_contract(tmp_path):
    run_dir = train(_config(), tmp_path, progress=False)
    assert run_dir.name == _config().run_id()
    assert runs.read_status(run_dir) == "done"
    assert runs.read_config(run_dir) == _config()
    rows = list(csv.DictReader(open(run_dir / runs.LOG)))
    assert [int(r["step"]) for r in rows] == [3, 6, 9, 12]
    assert {"loss", "recon", "kl", "kl_0", "kl_2", "beta", "images_per_s"} <= set(rows[0])
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_same_config_same_numbers(tmp_path):
    a = _params(train(_config(), tmp_path / "a", progress=False))
    b = _params(train(_config(), tmp_path / "b", progress=False))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _params(train(_config(seed=1), tmp_path / "c", progress=False))
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    steps = 60
    reference = _params(train(_config(steps), tmp_path / "straight", progress=False))
    killed_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "disentangle", "train", "--model", "beta_vae", "--beta", "2.0", "--set", "latent_dim=3",
               "--steps", str(steps), "--batch-size", "8", "--checkpoint-every", "4", "--log-every", "3",
               "--runs-dir", str(killed_dir), "--quiet"]
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    checkpoint = killed_dir / _config(steps).run_id() / runs.CHECKPOINT
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    step_at_kill = load_checkpoint(checkpoint)["step"]
    assert step_at_kill < steps, "the run finished before it could be killed"
    assert (checkpoint.parent / runs.STATUS).read_text().strip() == runs.RUNNING  # what the killed process left
    assert runs.read_status(checkpoint.parent) == runs.INTERRUPTED  # what readers see: nobody holds the run
    resumed = _params(train(_config(steps), killed_dir, progress=False))
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    rows = list(csv.DictReader(open(checkpoint.parent / runs.LOG)))
    assert [int(r["step"]) for r in rows] == list(range(3, steps + 1, 3))


def test_nan_loss_fails_run_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = BetaVAE.regularizer

    def poisoned(self, kl, z, mu, logvar, step):
        penalty, extra = original(self, kl, z, mu, logvar, step)
        return (penalty * float("nan") if step >= 6 else penalty), extra

    monkeypatch.setattr(BetaVAE, "regularizer", poisoned)
    with pytest.raises(TrainingFailed, match="loss is nan at step 6"):
        train(_config(), tmp_path, progress=False)
    run_dir = tmp_path / _config().run_id()
    assert runs.read_status(run_dir) == "failed: loss is nan at step 6"
    assert load_checkpoint(run_dir / runs.CHECKPOINT)["step"] == 4


def test_locked_run_is_refused(tmp_path):
    run_dir = tmp_path / _config().run_id()
    with runs.run_lock(run_dir):
        with pytest.raises(runs.RunLocked):
            train(_config(), tmp_path, progress=False)


@pytest.mark.parametrize(("field", "value"), [("steps", 0), ("batch_size", -1), ("seed", -2)])
def test_bad_run_settings(tmp_path, field, value):
    config = dataclasses.replace(_config(), **{field: value})
    with pytest.raises(DisentangleError, match=f"{field} must be"):
        train(config, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_run_files_are_readable_by_others(tmp_path):
    run_dir = train(_config(steps=4), tmp_path, progress=False)
    umask = os.umask(0)
    os.umask(umask)
    for name in (runs.CONFIG, runs.CHECKPOINT, runs.LOG, runs.STATUS):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600
