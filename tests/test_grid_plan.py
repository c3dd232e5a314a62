"""Planning a grid before it runs (issue 37): counted before anything is built, refused in one line
above the limit, and --dry-run's classification of every run from its status alone."""

import pytest
import time

from click.testing import CliRunner

from disentangle.base import runs
from disentangle.cli import main
from disentangle.orchestration.grid import expand, plan_grid
from disentangle.lifecycle.setup import resolve_config


def test_a_study_of_ten_to_the_eleven_seeds_is_refused_in_seconds(tmp_path):
    spec = tmp_path / "huge.toml"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\nseeds = 100000000000\n[grid.sweep]\nbeta = [1.0, 4.0]\n')
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "this grid has 200,000,000,000 runs, more than the 100,000 one grid can hold" in result.output
    assert time.perf_counter() - started < 5 and not (tmp_path / "runs").exists()


def test_the_limit_is_an_option_and_the_literatures_scale_is_planned_in_seconds(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text('[[grid]]\nmodel = "beta_vae"\nsteps = 1000\nseeds = 2134\nevaluate = []\n[grid.sweep]\nbeta = [1.0, 2.0, 4.0, 6.0, 8.0, 16.0]\n')
    runner = CliRunner()
    refused = runner.invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert refused.exit_code == 2 and "this grid has 12,804 runs, more than --max-runs 10,000: raise it" in refused.output
    started = time.perf_counter()
    planned = runner.invoke(main, ["grid", "--spec", str(spec), "--runs-dir", str(tmp_path / "runs"), "--max-runs", "20000", "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert planned.output.splitlines()[0] == "12,804 runs: 12,804 new" and "budget (fp32): 12,804,000 steps" in planned.output
    assert time.perf_counter() - started < 60 and not (tmp_path / "runs").exists()  # nothing created


def test_dry_run_tells_every_kind_of_run_apart_from_its_status_and_log(tmp_path):
    configs = [resolve_config(c) for c in expand("beta_vae", betas=(1.0, 2.0, 4.0, 8.0), steps=100, batch_size=8)]
    folders = [tmp_path / c.run_id() for c in configs]
    for folder, status in zip(folders[:3], ("done", runs.INTERRUPTED, "failed: boom")):
        folder.mkdir()
        runs.write_status(folder, status)
    (folders[1] / runs.LOG).write_text("step,loss\n20,1.0\n40,0.5\n")  # resumable from step 40
    before = sorted(p.name for p in tmp_path.rglob("*"))
    plan = plan_grid(configs, tmp_path)
    assert {k: len(v) for k, v in plan.runs.items() if v} == {"new": 1, "resumable": 1, "finished": 1, "failed": 1}
    assert plan.steps_to_train == {"fp32": 100 + 60} and plan.images_to_train == {"fp32": 160 * 8}
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # a plan writes nothing
    lines = plan.lines(threads=1)
    assert lines[0] == "4 runs: 1 new, 1 resumable, 1 finished, 1 failed" and configs[3].run_id() in lines[1]


def test_one_entry_point_gives_frozen_grids_and_a_task_trains_only_a_prepared_config(tmp_path):
    """The grid command hands orchestration a GridRequest and gets frozen grids whose configs are resolved
    (run ids final); the trainer's grid path refuses a config that did not go through preparation."""
    import dataclasses

    from disentangle.lifecycle.training import train_prepared
    from disentangle.orchestration.requests import GridRequest, plan_grids

    (planned,) = plan_grids(GridRequest(model="beta_vae", betas="4", steps=2, batch_size=8, settings=("latent_dim=3",), metric_names=""))
    (config,) = planned.configs
    assert config.model_options["beta"] == 4.0 and isinstance(config.model_options["latent_dim"], int)
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.configs = ()
    unprepared = dataclasses.replace(config, model_options={**config.model_options, "beta": 4})  # the integer: another id
    with pytest.raises(ValueError, match="takes a config from prepare_runs"):
        train_prepared(unprepared, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())
