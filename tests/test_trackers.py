"""Experiment trackers read back with each tool's own reader (TensorBoard's event accumulator,
MlflowClient on the local store, the W&B offline run file's records): the values logged are the
values in log.csv, step for step, also across a kill and resume; images at checkpoints; metrics
after evaluate; bad input is one line before training."""

from __future__ import annotations

import csv
import json
import struct

import pytest
from click.testing import CliRunner

from disentangle.base import runs
from disentangle.cli import main
from disentangle.lifecycle.evaluation import evaluate
from disentangle.models.vae import BetaVAE
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train

STEPS, LOG_EVERY, CHECKPOINT_EVERY, KILL_AT = 30, 5, 10, 17


def _config(loggers, tracking_uri=None):
    return RunConfig(model="beta_vae", steps=STEPS, batch_size=8, model_options={"latent_dim": 3}, log_every=LOG_EVERY,
                     checkpoint_every=CHECKPOINT_EVERY, loggers=loggers, tracking_uri=tracking_uri)


def _train_killed_and_resumed(tmp_path, monkeypatch, loggers, tracking_uri=None):
    """Train, killed at step KILL_AT (after the row at 15, the checkpoint at 10), then resumed to the end."""
    original = BetaVAE.regularizer
    killed = []

    def kill_once(self, kl, z, mu, logvar, step):
        if step == KILL_AT and not killed:
            killed.append(step)
            raise KeyboardInterrupt
        return original(self, kl, z, mu, logvar, step)

    monkeypatch.setattr(BetaVAE, "regularizer", kill_once)
    config = _config(loggers, tracking_uri)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, progress=False)
    run_dir = train(config, tmp_path, progress=False)
    assert killed and runs.read_status(run_dir) == "done"
    with open(run_dir / runs.LOG) as log:
        rows = {int(r["step"]): {k: float(v) for k, v in r.items() if k != "step"} for r in csv.DictReader(log)}
    return run_dir, rows


def _same_as_log(logged: dict[int, dict], rows: dict[int, dict]):
    """Every step once, every value as log.csv has it (images/s aside: the killed pass's timing)."""
    assert sorted(logged) == sorted(rows) == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    for step, row in rows.items():
        for key, value in row.items():
            if key != "images_per_s":
                assert logged[step][key] == pytest.approx(value, rel=1e-6), (step, key)


def test_tensorboard_holds_the_log_step_for_step_across_a_resume_with_images(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, rows = _train_killed_and_resumed(tmp_path, monkeypatch, ["tensorboard"])
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    logged: dict[int, dict] = {}
    for tag in events.Tags()["scalars"]:
        for event in events.Scalars(tag):
            assert event.step not in logged.get(event.step, {}) or tag not in logged[event.step], (tag, event.step)
            logged.setdefault(event.step, {})[tag] = event.value
    _same_as_log(logged, rows)
    assert [e.step for e in events.Images("reconstructions")] == [10, 20, 30]  # the 10 of the killed pass, once
    assert {"traversals", "reconstructions"} <= set(events.Tags()["images"])


def test_mlflow_holds_params_and_the_log_and_gets_the_metrics_after_evaluate(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # MLflow's own default put images in ./mlruns, wherever the command ran
    run_dir, rows = _train_killed_and_resumed(tmp_path / "runs", monkeypatch, ["mlflow"], uri)
    client = MlflowClient(tracking_uri=uri)
    run_id = json.loads((run_dir / "trackers.json").read_text())["mlflow"]["run_id"]
    run = client.get_run(run_id)
    assert run.data.params["model"] == "beta_vae" and run.data.params["model.beta"] == "4.0" and run.info.status == "FINISHED"
    logged: dict[int, dict] = {}
    for key in rows[LOG_EVERY]:
        for metric in client.get_metric_history(run_id, key):
            assert key not in logged.get(metric.step, {}), (key, metric.step)  # no step twice
            logged.setdefault(metric.step, {})[key] = metric.value
    _same_as_log(logged, rows)
    result = evaluate(run_dir, ["mig"], profile="tiny", progress=False)
    (after,) = client.get_metric_history(run_id, "mig.discrete_mig")
    assert after.value == pytest.approx(result["mig.discrete_mig"]) and after.step == STEPS
    assert not (tmp_path / "cwd" / "mlruns").exists() and list((tmp_path / "mlruns").rglob("*.png"))  # images beside the store


def _wandb_records(path):
    """The records of a W&B run file (its LevelDB-log framing: 32 KiB blocks, 7-byte chunk headers),
    parsed with W&B's own protobuf schema."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def test_wandb_offline_run_holds_the_log_step_for_step_across_a_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir, rows = _train_killed_and_resumed(tmp_path, monkeypatch, ["wandb"])
    logged: dict[int, dict] = {}
    for path in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        for record in _wandb_records(path):
            if record.WhichOneof("record_type") == "history":
                items = [(item.key or ".".join(item.nested_key), item.value_json) for item in record.history.item]
                values = {key: json.loads(value) for key, value in items if not key.startswith("_") and "." not in key}
                numbers = {k: v for k, v in values.items() if isinstance(v, (int, float))}
                if numbers:
                    step = record.history.step.num
                    assert not set(numbers) & set(logged.get(step, {})), step  # no value logged twice at a step
                    logged.setdefault(step, {}).update(numbers)
    _same_as_log(logged, rows)


def test_bad_tracker_input_is_one_line_before_any_run_folder(tmp_path, monkeypatch):
    runner = CliRunner()
    base = ["train", "--model", "beta_vae", "--steps", "2", "--runs-dir", str(tmp_path / "runs")]
    result = runner.invoke(main, [*base, "--logger", "comet"])
    assert result.exit_code == 2 and "unknown logger 'comet'" in result.output
    result = runner.invoke(main, [*base, "--logger", "mlflow", "--tracking-uri", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "MLflow tracking URI http://127.0.0.1:9 is unreachable" in result.output
    import importlib.util

    from disentangle.lifecycle import trackers

    trackers._check_one.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    result = runner.invoke(main, [*base, "--logger", "tensorboard"])
    assert result.exit_code == 2 and 'needs the tensorboard package: pip install -e ".[tensorboard]"' in result.output
    assert not (tmp_path / "runs").exists()


# -- probed before the first step, harmless after it ------------------------------------------------

def _train_args(tmp_path, *extra):
    return ["train", "--model", "beta_vae", "--steps", "2", "--batch-size", "8", "--set", "latent_dim=3",
            "--runs-dir", str(tmp_path / "runs"), "--quiet", *extra]


def test_two_workers_share_a_new_mlflow_store_created_once_before_them(tmp_path):
    from mlflow.tracking import MlflowClient

    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1,2", "--seeds", "0-1", "--steps", "2",
                                       "--batch-size", "8", "--set", "latent_dim=3", "--workers", "2", "--threads", "1",
                                       "--logger", "mlflow", "--evaluate", "", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(runs.read_status(r) for r in (tmp_path / "runs").iterdir() if r.is_dir() and r.name != "mlruns") == ["done"] * 4
    client = MlflowClient(tracking_uri=f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}")
    assert len(client.search_runs([client.get_experiment_by_name("disentangle").experiment_id])) == 4


def test_an_unwritable_or_schemeless_mlflow_store_is_one_line_before_training(tmp_path, read_only_folder):
    for uri, message in ((f"sqlite:///{read_only_folder}/mlflow.db", "is not writable"), ("mlflow.db", "names no scheme")):
        result = CliRunner().invoke(main, _train_args(tmp_path, "--logger", "mlflow", "--tracking-uri", uri))
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not list((tmp_path / "runs").glob("beta_vae*"))  # nothing trained


def test_wandb_without_a_key_or_offline_mode_is_one_line_before_training(tmp_path, monkeypatch):
    from disentangle.lifecycle import trackers

    trackers._check_one.cache_clear()
    for variable in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc from `wandb login`
    result = CliRunner().invoke(main, _train_args(tmp_path, "--logger", "wandb"))
    trackers._check_one.cache_clear()
    assert result.exit_code == 2 and "logger 'wandb' has no API key" in result.output and not (tmp_path / "runs").exists()


def test_a_read_only_tensorboard_folder_is_one_line(tmp_path, read_only_folder):
    from disentangle.lifecycle.setup import prepare_run

    config = prepare_run(_config(["tensorboard"]), tmp_path / "runs")
    run_dir = tmp_path / "runs" / config.run_id()
    run_dir.mkdir(parents=True)
    (run_dir / "tensorboard").symlink_to(read_only_folder)
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--steps", str(STEPS), "--batch-size", "8", "--set", "latent_dim=3",
                                       "--log-every", str(LOG_EVERY), "--checkpoint-every", str(CHECKPOINT_EVERY),
                                       "--logger", "tensorboard", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code != 0 and "TensorBoard folder" in result.output and "is not writable" in result.output
    assert "Traceback" not in result.output and "b'" not in result.output


def test_a_tracker_failing_mid_run_is_a_warning_and_the_run_finishes(tmp_path, monkeypatch):
    from disentangle.lifecycle.trackers import TensorBoardTracker

    original, calls = TensorBoardTracker.scalars, []

    def fails_at_step_10(self, values, step):
        calls.append(step)
        if step == 10:
            raise ConnectionError("the disk went away")
        return original(self, values, step)

    monkeypatch.setattr(TensorBoardTracker, "scalars", fails_at_step_10)
    with pytest.warns(UserWarning, match=r"logger 'tensorboard' failed at step 10 \(ConnectionError: the disk went away\); it is off"):
        run_dir = train(_config(["tensorboard"]), tmp_path, progress=False)
    assert runs.read_status(run_dir) == "done" and calls == [5, 10]  # off after the failure, the training went on


def test_a_tracking_uri_without_the_mlflow_logger_is_warned(tmp_path):
    with pytest.warns(UserWarning, match="is used by the mlflow logger only"):
        train(_config([], tracking_uri="sqlite:///x.db"), tmp_path, progress=False)
