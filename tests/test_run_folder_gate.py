"""One gate for what a run folder holds (issue 43): every reader goes through it, nothing read from inside
a folder decides a path or a status, a bad file makes one run unreadable and the rest go on, and a finished
run's checkpoint is verified before anything trusts it."""

import json
import os
import shutil
import subprocess
import sys
import tracemalloc

import pytest
from click.testing import CliRunner

from disentangle.orchestration import grid
from disentangle.reports import table as report
from disentangle.base import runs
from disentangle.cli import main
from disentangle.lifecycle.training import train

TINY = {"steps": 4, "batch_size": 8, "fixed": {"latent_dim": 3}}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished runs of one setting, seeds 0 and 1 (their checkpoints have the same size)."""
    configs = grid.expand("beta_vae", seeds=(0, 1), **TINY)
    folder = tmp_path_factory.mktemp("runs")
    return configs, [train(config, folder, progress=False) for config in configs]


def _copy(run_dir, folder, name=None):
    target = folder / (name or run_dir.name)
    shutil.copytree(run_dir, target)
    return target


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_config_never_decides_where_the_report_writes(two_runs, tmp_path):
    run = _copy(two_runs[1][0], tmp_path / "runs")
    _edit(run / runs.CONFIG, lambda d: d["model_options"].update(run_id="../../../../escaped"))
    _edit(run / runs.CONFIG, lambda d: d.setdefault("resolved_model_options", {}).update(run_id=str(tmp_path / "absolute")))
    with pytest.warns(UserWarning, match="would replace the row's own 'run_id'"):
        table = report.collect(tmp_path / "runs")
    assert list(table["run_id"]) == [run.name]
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--html",
                                       "--no-run-figures", "--quiet"])
    assert result.exit_code == 0, result.output
    written = {p.name for p in tmp_path.rglob("*.html")}
    assert written == {"index.html", f"{run.name}.html"}, written
    assert not list(tmp_path.parent.glob("escaped*")) and not (tmp_path / "absolute.html").exists()


def test_a_config_never_turns_a_failed_run_into_a_finished_one(two_runs, tmp_path):
    run = _copy(two_runs[1][0], tmp_path / "runs")
    runs.write_status(run, "failed: diverged")
    _edit(run / runs.CONFIG, lambda d: d["resolved_model_options"].update(status="done", finished=True, problem=""))
    with pytest.warns(UserWarning, match="would replace"):
        row = report.collect(tmp_path / "runs").iloc[0]
    assert row["status"] == "failed: diverged" and not row["finished"]
    assert report.summarize(report.collect(tmp_path / "runs")).empty


@pytest.mark.parametrize("last_line", ["abc,x,y\n", ",,\n", "4,12", "\n\n"])
def test_a_partial_or_text_last_log_line_is_passed_over(two_runs, tmp_path, last_line):
    run = _copy(two_runs[1][0], tmp_path / "runs")
    with open(run / runs.LOG, "a") as log:
        log.write(last_line)
    table, _, problems = report.write_report(tmp_path / "runs", tmp_path / "out")
    assert not problems and table.iloc[0]["steps_done"] == 4 and table.iloc[0]["finished"]


def test_only_the_tail_of_a_long_log_is_read(two_runs, tmp_path):
    run = _copy(two_runs[1][0], tmp_path / "runs")
    header, row = (run / runs.LOG).read_text().splitlines()[:2]
    fields = row.split(",")
    with open(run / runs.LOG, "w") as log:  # 40,000 rows (several MB), the last one cut short
        log.write(header + "\n")
        for step in range(1, 40001):
            log.write(",".join([str(step), *fields[1:]]) + "\n")
        log.write("40001,1.")
    assert (run / runs.LOG).stat().st_size > 50 * runs.LOG_TAIL_BYTES
    tracemalloc.start()
    try:
        assert runs.read_log_tail(run)["step"] == 40000  # the cut row passed over
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * runs.LOG_TAIL_BYTES, peak  # the tail, not the file


def test_a_folder_name_that_is_not_utf8_is_one_unreadable_run(two_runs, tmp_path):
    folder = tmp_path / "runs"
    _copy(two_runs[1][0], folder)
    os.makedirs(os.fsencode(folder) + b"/run-\xff\xfe")
    shutil.copy(two_runs[1][0] / runs.CONFIG, os.fsencode(folder) + b"/run-\xff\xfe/config.json")
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(folder), "--out", str(tmp_path / "out"), "--html",
                                       "--no-run-figures", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "unreadable: run-\ufffd\ufffd: its folder name is not UTF-8" in result.output


def test_odd_metric_keys_and_model_names_do_not_stop_the_report(two_runs, tmp_path):
    folder = tmp_path / "runs"
    for number, source in enumerate(two_runs[1] * 3):
        run = _copy(source, folder, f"run{number}")
        _edit(run / runs.CONFIG, lambda d: d.update(model="$\\undefinedcommand{$"))
        (run / runs.METRICS).write_text("{}")
        _edit(run / runs.METRICS, lambda d: d.update({"mig.discrete_mig": number / 10, "mig.discrete_mig.ci_low": 0.0,
                                                       "downstream_task_logistic_regression.lots:mean_test_accuracy": 0.5,
                                                       "downstream_task_logistic_regression.100:mean_test_accuracy": 0.4,
                                                       "sap.sap_score": "NaN", "modularity.modularity_score": "Infinity"}))
    result = subprocess.run([sys.executable, "-m", "disentangle", "report", "--runs-dir", str(folder), "--out", str(tmp_path / "out"),
                             "--html", "--no-run-figures"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr, result.stderr
    assert "left out: run0: mig.discrete_mig.ci_low has no ci_high: left out" in result.stderr
    assert (tmp_path / "out" / "metric_vs_beta.png").is_file() or list((tmp_path / "out").glob("*.png"))


def test_a_checkpoint_swapped_for_another_runs_is_broken_everywhere(two_runs, tmp_path):
    configs, (first, second) = two_runs
    folder = tmp_path / "runs"
    run, other = _copy(first, folder), _copy(second, folder)
    assert (run / runs.CHECKPOINT).stat().st_size == (other / runs.CHECKPOINT).stat().st_size
    shutil.copy(other / runs.CHECKPOINT, run / runs.CHECKPOINT)
    results = {r.run_id: r for r in grid.run_grid(configs, folder, (), workers=1, progress=False, figures=False)}
    assert results[other.name].outcome == "skipped"
    assert results[run.name].outcome == "failed" and "is marked done but is broken" in results[run.name].detail
    for command in (["evaluate", str(run), "--metrics", "mig", "--profile", "tiny"], ["traverse", str(run)],
                    ["export", str(run), str(tmp_path / "out")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2 and "is broken" in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()
    (run / runs.CHECKPOINT).unlink()  # a link to the other's file (inside the runs folder, outside this run's)
    (run / runs.CHECKPOINT).symlink_to(other / runs.CHECKPOINT)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--metrics", "mig", "--profile", "tiny"])
    assert result.exit_code == 2 and "outside" in result.output, result.output


def test_a_manifest_swapped_with_its_checkpoint_is_still_another_run(two_runs, tmp_path):
    _, (first, second) = two_runs
    run = _copy(first, tmp_path / "runs")
    for name in (runs.CHECKPOINT, runs.MANIFEST):
        shutil.copy(second / name, run / name)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--metrics", "mig", "--profile", "tiny"])
    assert result.exit_code == 2 and f"belong to run {second.name}" in result.output, result.output


@pytest.mark.parametrize("with_manifest", [True, False])
def test_a_checkpoint_that_is_a_fifo_never_hangs(two_runs, tmp_path, with_manifest):
    configs, (first, _) = two_runs
    run = _copy(first, tmp_path / "runs")
    if not with_manifest:
        (run / runs.MANIFEST).unlink()
    (run / runs.CHECKPOINT).unlink()
    os.mkfifo(run / "weights.fifo")  # inside the folder: refused as no regular file (outside: as a link out of it)
    (run / runs.CHECKPOINT).symlink_to(run / "weights.fifo")
    base = [sys.executable, "-m", "disentangle"]
    rerun = base + ["grid", "--model", "beta_vae", "--steps", "4", "--batch-size", "8", "--set", "latent_dim=3", "--evaluate", "",
                    "--workers", "1", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    for command in (rerun, base + ["evaluate", str(run), "--metrics", "mig", "--profile", "tiny"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)  # a hang fails here
        assert result.returncode in (2, 3) and "not a regular file: refused" in result.stdout + result.stderr, result.stdout + result.stderr


def test_every_file_of_a_run_folder_is_read_within_its_bound(two_runs, tmp_path):
    run = _copy(two_runs[1][0], tmp_path / "runs")
    with open(run / runs.METRICS, "w") as metrics:
        metrics.write('{"pad": "' + "x" * (runs.MAX_BYTES[runs.METRICS] + 1) + '"}')
    row = report.run_row(run)
    assert "more than the" in row["problem"] and "refused" in row["problem"]
    (run / runs.STATUS).write_text("done\x1b[31m\n")
    assert runs.read_status(run).startswith("unknown")


def test_a_report_stopped_early_links_only_pages_that_exist(two_runs, tmp_path, monkeypatch):
    import re

    from disentangle.reports import site as html_report

    folder = tmp_path / "runs"
    for source in two_runs[1]:
        _copy(source, folder)
    written = []
    real_page = html_report._run_page

    def stop_after_one(*args, **kwargs):
        if written:
            raise KeyboardInterrupt  # Ctrl-C while the second page is being written
        written.append(args[1]["run_id"])
        return real_page(*args, **kwargs)

    monkeypatch.setattr(html_report, "_run_page", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        html_report.write_html_report(folder, tmp_path / "out", run_figures=False)
    site = tmp_path / "out" / "report"
    links = re.findall(r'href="runs/([^"]+)"', (site / "index.html").read_text())
    assert all((site / "runs" / link).is_file() for link in links)
    assert written and not links  # the first index links no page: none existed when it was written


def test_a_rerun_remembers_a_verified_checkpoint_by_its_stat_and_still_sees_a_swap(two_runs, tmp_path, monkeypatch):
    import hashlib

    configs, (first, second) = two_runs
    folder = tmp_path / "runs"
    run, other = _copy(first, folder), _copy(second, folder)
    assert [r.outcome for r in grid.run_grid(configs, folder, (), workers=1, progress=False, figures=False)] == ["skipped", "skipped"]
    assert (run / runs.VERIFIED).is_file()
    hashed = []
    real_md5 = hashlib.md5
    monkeypatch.setattr(hashlib, "md5", lambda *a, **k: hashed.append(1) or real_md5(*a, **k))
    assert [r.outcome for r in grid.run_grid(configs, folder, (), workers=1, progress=False, figures=False)] == ["skipped", "skipped"]
    assert not hashed  # remembered: a stat each
    shutil.copy(other / runs.CHECKPOINT, run / runs.CHECKPOINT)  # same size, same folder entry: another file's bytes
    results = {r.run_id: r for r in grid.run_grid(configs, folder, (), workers=1, progress=False, figures=False)}
    assert results[run.name].outcome == "failed" and "is marked done but is broken" in results[run.name].detail and hashed
