"""Broken run files, paths of the wrong kind and a full disk: each is one error line naming the
file, the rest of the runs folder goes on, and nothing already written is lost."""

import json
import shutil

import pytest
from click.testing import CliRunner

from disentangle.orchestration import grid
from disentangle.reports import table as report
from disentangle.base import runs
from disentangle.cli import main
from disentangle.lifecycle.training import train

TINY = {"steps": 4, "batch_size": 8, "fixed": {"latent_dim": 3}}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    (config,) = grid.expand("beta_vae", **TINY)
    return config, train(config, tmp_path_factory.mktemp("runs"), progress=False)


def _edit_config(run_dir, **changes):
    data = json.loads((run_dir / runs.CONFIG).read_text())
    data.update(changes)
    (run_dir / runs.CONFIG).write_text(json.dumps(data))


BREAKAGES = {
    "non-UTF-8 status": (lambda d: (d / runs.STATUS).write_bytes(b"\xff\xfe"), "status is not UTF-8 text"),
    "config.json is []": (lambda d: (d / runs.CONFIG).write_text("[]"), "expected a JSON object, got list"),
    "string model_options": (lambda d: _edit_config(d, model_options="abc"), "model_options is 'abc', expected dict"),
    "steps 'abc'": (lambda d: _edit_config(d, steps="abc"), "steps is 'abc', expected int"),
    "truncated metrics.json": (lambda d: (d / runs.METRICS).write_text('{"mig.discrete_mig": 0.'), "metrics.json is corrupt"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_one_bad_file_is_a_row_with_its_problem_and_the_rest_go_on(finished_run, tmp_path, breakage):
    config, run_dir = finished_run
    folder = tmp_path / "runs"
    shutil.copytree(run_dir, folder / run_dir.name)
    broken = folder / "broken-run"
    shutil.copytree(run_dir, broken)
    damage, problem = BREAKAGES[breakage]
    damage(broken)
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(folder), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    table, _, problems = report.write_report(folder, tmp_path / "out")
    rows = table.set_index("run_id")
    assert problem in rows.loc["broken-run", "problem"]
    assert rows.loc[run_dir.name, "finished"] and not rows.loc["broken-run", "finished"]
    assert len(problems) == 1
    (outcome,) = grid.run_grid([config], folder, (), workers=1, progress=False, figures=False)
    assert outcome.outcome == "skipped"  # the good run, unaffected by its broken neighbour


def test_a_done_run_whose_checkpoint_does_not_load_is_broken_not_done(finished_run, tmp_path):
    config, run_dir = finished_run
    folder = tmp_path / "runs"
    shutil.copytree(run_dir, folder / run_dir.name)
    checkpoint = folder / run_dir.name / runs.CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    args = ["train", "--model", "beta_vae", "--steps", "4", "--batch-size", "8", "--set", "latent_dim=3",
            "--runs-dir", str(folder), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "is marked done but is broken" in result.output and "checkpoint" in result.output
    (outcome,) = grid.run_grid([config], folder, (), workers=1, progress=False, figures=False)
    assert outcome.outcome == "failed" and "broken" in outcome.detail


def test_config_records_every_option_the_run_trained_with_and_keeps_its_id(finished_run):
    config, run_dir = finished_run
    data = json.loads((run_dir / runs.CONFIG).read_text())
    resolved = data["resolved_model_options"]
    assert resolved["latent_dim"] == 3 and resolved["architecture"] == "conv64"
    assert {"lr", "beta", "decoder"} <= set(resolved)  # defaults the command line never named
    assert runs.config_from_data(data, run_dir).run_id() == run_dir.name == config.run_id()


def test_a_running_status_without_a_live_process_reads_interrupted(finished_run, tmp_path):
    _, run_dir = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    runs.write_status(copy, runs.RUNNING)  # what a SIGKILL or a power cut leaves
    assert runs.read_status(copy) == runs.INTERRUPTED
    with runs.run_lock(copy):  # a live holder: really running
        assert runs.read_status(copy) == runs.RUNNING


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "beta_vae", "--steps", "2", "--runs-dir", "{file}"], "is a file, expected a folder"),
    (["grid", "--model", "beta_vae", "--steps", "2", "--runs-dir", "{file}"], "is not writable"),
    (["evaluate", "{file}"], "is not a run folder"),
    (["traverse", "{file}"], "is not a run folder"),
    (["traverse", "{run}", "--out", "{file}"], "is a file, expected a folder"),
    (["train", "--model", "beta_vae", "--steps", "1000000000"], "steps must be at most 10,000,000"),
])
def test_paths_of_the_wrong_kind_are_one_line_errors(finished_run, tmp_path, args, message):
    _, run_dir = finished_run
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    result = CliRunner().invoke(main, [a.format(file=a_file, run=run_dir) for a in args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and a_file.read_text() == "keep me"


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(small_disk):
    args = ["train", "--model", "beta_vae", "--steps", "40", "--batch-size", "8", "--set", "latent_dim=3", "--checkpoint-every", "10",
            "--runs-dir", str(small_disk / "runs"), "--quiet"]
    (small_disk / "ballast").write_bytes(b"\0" * 3_000_000)  # room for one checkpoint (8.3 MB), not for its successor beside it
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.output.startswith("Error: no space left on the device"), result.output
    (run_dir,) = (small_disk / "runs").iterdir()
    from disentangle.lifecycle.training.checkpoint import load_checkpoint

    kept = load_checkpoint(run_dir / runs.CHECKPOINT)["step"]
    assert kept >= 10
    assert runs.read_status(run_dir) == runs.INTERRUPTED
    assert not list(run_dir.glob(".*.tmp"))  # the failed write's temporary is gone
    (small_disk / "ballast").unlink()
    resumed = CliRunner().invoke(main, args)
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run_dir / runs.CHECKPOINT)["step"] == 40


def test_a_full_disk_under_evaluate_and_report_is_one_line_and_keeps_what_was_written(finished_run, small_disk):
    _, source = finished_run
    run_dir = small_disk / "runs" / source.name
    shutil.copytree(source, run_dir)
    runner = CliRunner()
    assert runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--profile", "tiny", "--quiet"]).exit_code == 0
    before = (run_dir / runs.METRICS).read_text()
    free = shutil.disk_usage(small_disk).free
    (small_disk / "ballast").write_bytes(b"\0" * free)  # the disk is full
    result = runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "sap", "--profile", "tiny", "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: no space left on the device of {run_dir / runs.METRICS}"), result.output
    assert (run_dir / runs.METRICS).read_text() == before and not list(run_dir.glob(".*.tmp"))
    result = runner.invoke(main, ["report", "--runs-dir", str(small_disk / "runs"), "--out", str(small_disk / "report"), "--quiet"])
    assert result.exit_code == 2 and result.output.startswith("Error: no space left on the device"), result.output


def test_traverse_on_an_unfinished_run_says_which_checkpoint_it_draws(finished_run, tmp_path):
    _, source = finished_run
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    (run_dir / runs.STATUS).write_text("interrupted\n")
    result = CliRunner().invoke(main, ["traverse", str(run_dir), "--out", str(tmp_path / "figures")])
    assert result.exit_code == 0, result.output
    assert f"{run_dir} is interrupted (resumable): drawing its checkpoint at step 4, not a finished model" in result.output


def test_a_garbled_log_leaves_the_run_listed_and_resumable(finished_run, tmp_path):
    config, run_dir = finished_run
    folder = tmp_path / "runs"
    shutil.copytree(run_dir, folder / run_dir.name)
    (folder / run_dir.name / runs.LOG).write_bytes(b"\xff\x00garbage\n1,2\n")
    table, _, problems = report.write_report(folder, tmp_path / "out")
    assert list(table["run_id"]) == [run_dir.name] and not problems
    (outcome,) = grid.run_grid([config], folder, (), workers=1, progress=False, figures=False)
    assert outcome.outcome == "skipped"


def test_prepare_into_a_read_only_folder_is_one_line(read_only_folder):
    result = CliRunner().invoke(main, ["datasets", "prepare", "dsprites", "--root", str(read_only_folder / "dsprites"), "--quiet"])
    assert result.exit_code == 2 and result.output == f"Error: cannot write {read_only_folder / 'dsprites'}: read-only file system\n"
