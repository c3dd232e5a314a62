"""``--device``: how a run executes, not what it is. Tests run on the CPU; a CUDA request on a
machine without CUDA is a clean error (benchmarks/gpu_check.py covers real GPUs)."""

import json

import pytest
import torch
from click.testing import CliRunner

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.cli import main
from disentangle.base.devices import resolve_device
from disentangle.base.errors import DisentangleError

TRAIN = ["train", "--model", "beta_vae", "--steps", "4", "--batch-size", "8", "--set", "latent_dim=3", "--quiet"]


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DisentangleError, match="unknown device 'gpu', expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_and_creates_nothing(tmp_path):
    result = CliRunner().invoke(main, [*TRAIN, "--device", "cuda", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "device 'cuda' asked for, but node" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1", "--steps", "2", "--device", "cuda:1",
                                       "--runs-dir", str(tmp_path / "grid"), "--quiet"])
    assert result.exit_code == 2 and "device 'cuda:1' asked for" in result.output


def test_device_is_recorded_but_not_part_of_the_run_id(tmp_path):
    runner = CliRunner()
    first = runner.invoke(main, [*TRAIN, "--device", "cpu", "--runs-dir", str(tmp_path / "runs")])
    assert first.exit_code == 0, first.output
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / runs.CONFIG).read_text())["device"] == "cpu"
    (config_auto,) = grid.expand("beta_vae", steps=4, batch_size=8, fixed={"latent_dim": 3}, device="auto")
    assert config_auto.run_id() == run.name  # the same run, wherever it trains
    again = runner.invoke(main, [*TRAIN, "--device", "auto", "--runs-dir", str(tmp_path / "runs")])
    assert again.exit_code == 0 and len(list((tmp_path / "runs").iterdir())) == 1
    scored = runner.invoke(main, ["evaluate", str(run), "--metrics", "mig", "--device", "cpu", "--quiet"])
    assert scored.exit_code == 0, scored.output
    assert runs.read_metrics(run)["settings"]["mig"]["device"] == "cpu"
    rescored = runner.invoke(main, ["evaluate", str(run), "--metrics", "mig", "--device", "auto", "--quiet"])
    assert rescored.exit_code == 0  # device does not make the stored result stale


def test_the_library_and_the_command_line_share_one_device_default():
    import inspect

    from disentangle.cli import main
    from disentangle.lifecycle.evaluation import evaluate
    from disentangle.scoring.representation import load_encoder
    from disentangle.base.runs import RUN_DEFAULTS
    from disentangle.lifecycle.training.loading import load_trained
    from disentangle.lifecycle.model_selection import udr_runs
    from disentangle.lifecycle.run_figures import render_run_figures

    for function in (evaluate, load_encoder, load_trained, udr_runs, render_run_figures):
        assert inspect.signature(function).parameters["device"].default == RUN_DEFAULTS["device"], function.__name__
    for name, command in main.commands.items():
        for param in command.params:
            if "--device" in param.opts and param.default is not None:
                assert param.default == RUN_DEFAULTS["device"], name
