"""Choices made per machine: precision ``auto``, the emulated-bf16 warning, fp32 encoding of bf16 runs
where bf16 is emulated, the cached probes, the quickstart's budget and its SIGTERM."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from disentangle.lifecycle import hardware
from disentangle.base import runs
from disentangle.cli import main
from disentangle.base.errors import DisentangleError
from disentangle.orchestration.grid import expand
from disentangle.quickstart import STEP_LADDER, choose_steps
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train
from disentangle.lifecycle.setup import check_config, resolve_config, resolve_here

TINY = ["--batch-size", "8", "--set", "latent_dim=3", "--steps", "2", "--quiet"]


@pytest.fixture
def native(monkeypatch):
    """Pretend the CPU does (True) or does not (False) compute bf16 natively."""
    def set_native(value: bool):
        monkeypatch.setattr(hardware, "native_bf16", lambda device="cpu": value)
    return set_native


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # probing the encoder batch in bf16 where bf16 is emulated (as these tests pretend) takes seconds
    monkeypatch.setattr("disentangle.lifecycle.evaluation.encode_batch_size", lambda precision: 256)


@pytest.mark.parametrize(("is_native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_resolves_where_the_run_trains_never_into_the_run_id(native, is_native, expected):
    native(is_native)
    assert hardware.resolve_precision("auto", "cpu") == expected
    assert hardware.resolve_precision("bf16", "cpu") == "bf16" and hardware.resolve_precision("fp32", "cpu") == "fp32"
    config = RunConfig(model="beta_vae", precision="auto")
    check_config(config)
    resolved = resolve_config(config)
    assert resolved.precision == "auto" and resolved.run_id() == config.run_id()  # the same id whatever machine plans it
    assert resolve_here(config)["precision"] == expected  # the node that trains it decides
    assert resolve_here(config, recorded={"precision": "fp32" if is_native else "bf16"})["precision"] != expected  # once started, kept
    assert resolve_here(RunConfig(model="beta_vae", precision="fp32"), recorded={"precision": "bf16"})["precision"] == "fp32"


@pytest.mark.parametrize("is_native", [True, False])
def test_train_auto_records_the_precision_its_machine_resolved(tmp_path, native, is_native):
    native(is_native)
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--precision", "auto", "--runs-dir", str(tmp_path), *TINY])
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    data = json.loads((run_dir / runs.CONFIG).read_text())
    assert data["precision"] == "auto" and run_dir.name == runs.config_from_data(data, run_dir).run_id()
    assert data[runs.TRAINED_WITH]["precision"] == ("bf16" if is_native else "fp32")
    assert set(data[runs.TRAINED_WITH]) == {"precision", "device", "node", "threads"}
    from disentangle.reports.table import run_row

    assert run_row(run_dir)["precision"] == ("bf16" if is_native else "fp32")  # the table shows what it trained in


def test_a_study_file_takes_auto(tmp_path, native):
    from disentangle.orchestration.spec import load_spec

    native(False)
    spec = tmp_path / "s.toml"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\nprecision = "auto"\nsteps = 2\n')
    (group,) = load_spec(spec)
    check_config(group.configs[0])
    assert resolve_config(group.configs[0]).precision == "auto" and resolve_here(group.configs[0])["precision"] == "fp32"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\nprecision = "fp16"\n')
    with pytest.raises(DisentangleError, match="'precision' is 'fp16', expected one of auto, fp32, bf16"):
        load_spec(spec)


OTHER_CPU = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}  # a Zen 3: no native bf16


@pytest.mark.parametrize("cpu", ["this", "other"])
def test_an_auto_run_has_the_same_id_whichever_cpu_plans_or_trains_it(tmp_path, cpu):
    """Planned (--dry-run) and trained here and on the other CPU kind (emulated as DEVELOPERS.md says): one run id;
    what differs is the precision the machine that trained it recorded."""
    import os

    env = {**os.environ, **(OTHER_CPU if cpu == "other" else {})}
    command = [sys.executable, "-m", "disentangle", "grid", "--model", "beta_vae", "--beta", "1", "--precision", "auto",
               "--evaluate", "", "--workers", "1", "--runs-dir", str(tmp_path), *TINY]
    planned = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, env=env, timeout=300)
    (config,) = expand("beta_vae", betas=(1.0,), steps=2, batch_size=8, fixed={"latent_dim": 3}, precision="auto")
    assert f"to train: {config.run_id()}" in planned.stdout, planned.stdout + planned.stderr
    trained = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    native = subprocess.run([sys.executable, "-c", "import torch; print(torch.ops.mkldnn._is_mkldnn_bf16_supported())"],
                            capture_output=True, text=True, env=env).stdout.strip() == "True"
    data = runs.read_config_data(tmp_path / config.run_id())
    assert runs.trained_precision(data, config) == ("bf16" if native else "fp32")


def test_a_run_planned_when_auto_went_into_the_id_is_found_under_its_new_id(tmp_path, native):
    """Runs made before auto was resolved where they train hashed the planner's fp32 or bf16: a rerun renames
    such a folder to the auto id, recording the precision it trained in, instead of training it again."""
    from disentangle.orchestration.grid import run_grid

    native(True)
    (auto,) = expand("beta_vae", betas=(1.0,), steps=2, batch_size=8, fixed={"latent_dim": 3}, precision="auto")
    old_dir = train(dataclasses.replace(auto, precision="bf16"), tmp_path, progress=False)  # as the old planner stored it
    assert old_dir.name != auto.run_id()
    native(False)  # another machine reruns the study
    (result,) = run_grid([auto], tmp_path, progress=False, workers=1, figures=False)
    assert result.outcome == "skipped" and [d.name for d in tmp_path.iterdir() if not d.name.startswith(".")] == [auto.run_id()]
    data = runs.read_config_data(tmp_path / auto.run_id())
    assert data["precision"] == "auto" and runs.trained_precision(data, auto) == "bf16"


@pytest.mark.parametrize("command", [["train", "--model", "beta_vae"], ["grid", "--model", "beta_vae"], ["quickstart"]])
def test_unknown_precision_is_one_line_listing_the_choices(tmp_path, command):
    result = CliRunner().invoke(main, [*command, "--precision", "fp16", "--runs-dir" if command[0] != "quickstart" else "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: precision must be one of auto, fp32, bf16, got 'fp16'"
    assert not (tmp_path / "out").exists()


def test_explicit_bf16_where_emulated_trains_with_one_warning(tmp_path, native):
    native(False)
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--precision", "bf16", "--runs-dir", str(tmp_path), *TINY])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "emulated" in line]
    assert len(warnings) == 1 and "slower than fp32" in warnings[0]
    (run_dir,) = tmp_path.iterdir()
    assert runs.read_status(run_dir) == "done" and runs.read_config(run_dir).precision == "bf16"
    native(True)
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--precision", "bf16", "--runs-dir", str(tmp_path), *TINY])
    assert "emulated" not in result.output


def test_a_bf16_run_is_encoded_in_fp32_where_bf16_is_emulated(tmp_path, native):
    from disentangle.lifecycle.evaluation import evaluate

    (config,) = expand("beta_vae", betas=(1.0,), steps=2, batch_size=8, fixed={"latent_dim": 3}, precision="bf16")
    run_dir = train(config, tmp_path, progress=False)
    native(False)
    scores = evaluate(run_dir, ["mig"], profile="tiny", progress=False)
    assert scores["settings"]["mig"]["encode_precision"] == "fp32"
    native(True)  # natively: encoded as trained; the fp32-encoded value is not reused for it
    scores = evaluate(run_dir, ["mig"], profile="tiny", progress=False)
    assert "encode_precision" not in scores["settings"]["mig"]
    (fp32,) = expand("beta_vae", betas=(1.0,), steps=2, batch_size=8, fixed={"latent_dim": 3})
    native(False)
    scores = evaluate(train(fp32, tmp_path, progress=False), ["mig"], profile="tiny", progress=False)
    assert "encode_precision" not in scores["settings"]["mig"]  # an fp32 run is encoded as it trained


def test_the_grid_does_not_reuse_scores_encoded_in_another_precision(tmp_path, native):
    from disentangle.orchestration.grid import _needs_work
    from disentangle.lifecycle.evaluation import evaluate

    (config,) = expand("beta_vae", betas=(1.0,), steps=2, batch_size=8, fixed={"latent_dim": 3}, precision="bf16")
    run_dir = train(config, tmp_path, progress=False)
    native(True)
    evaluate(run_dir, ["mig"], profile="tiny", progress=False)
    assert _needs_work(config, tmp_path, ["mig"], False, "tiny") == "already done"
    native(False)
    assert _needs_work(config, tmp_path, ["mig"], False, "tiny") is None


def test_choose_steps_by_hand():
    # 3 runs x steps x 64 images at 1,000 images/s in 300 s: 1,562 steps at most -> 1,500
    assert choose_steps(1000.0, runs=3, seconds=300) == 1500
    assert choose_steps(10_000.0, runs=3, seconds=300) == STEP_LADDER[0]
    assert choose_steps(1.0, runs=3, seconds=300) == STEP_LADDER[-1]
    assert choose_steps(3 * 2000 * 64 / 300, runs=3, seconds=300) == 2000  # exactly on a rung


def test_probes_are_measured_once_per_machine(monkeypatch):
    calls = []

    def measure(precision, threads, seconds):
        calls.append((precision, threads))
        return 123.4

    monkeypatch.setattr(hardware, "_measure_training_rate", measure)
    assert hardware.training_rate("fp32", 2) == 123.4
    assert hardware.training_rate("fp32", 2) == 123.4
    assert hardware.training_rate("fp32", 1) == 123.4
    assert calls == [("fp32", 2), ("fp32", 1)]  # the key includes the threads
    path = hardware._cache_file()
    path.write_text("{not json")  # a damaged cache is measured again, never an error
    assert hardware.training_rate("fp32", 2) == 123.4 and len(calls) == 3
    assert json.loads(path.read_text())[f"training_rate|{hardware.machine_key('fp32', 2)}"] == 123.4


def test_the_encode_batch_probe_picks_one_of_its_batches():
    assert hardware.encode_batch_size("fp32") in hardware.ENCODE_BATCHES
    assert hardware.encode_batch_size("fp32") == hardware.encode_batch_size("fp32")  # cached


def test_describe_machine_names_the_cpu_and_its_bf16():
    line = hardware.describe_machine()
    assert hardware.cpu_capability() in line and "native bf16" in line and "threads" in line


def test_sigterm_on_quickstart_is_one_line_and_exit_130(tmp_path):
    out = tmp_path / "qs"
    process = subprocess.Popen([sys.executable, "-m", "disentangle", "quickstart", "--out", str(out), "--steps", "100000",
                                "--precision", "fp32", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("runs/*/status")) and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["quickstart: interrupted; its unfinished runs are marked interrupted and resume when "
                                        "the command is run again"]
    statuses = {(d / runs.STATUS).read_text().strip() for d in (out / "runs").iterdir()}
    assert statuses <= {runs.INTERRUPTED}
