"""The report is robust to any mix of good, broken, empty and foreign folders: one bad run never
makes a healthy one look failed, and a value the project can write never crashes it."""

import json

import numpy as np
import pandas as pd

from disentangle.orchestration import grid
from disentangle.reports import table as report
from disentangle.base import runs
from disentangle.reports.site import write_html_report

TINY = {"steps": 2, "batch_size": 8, "fixed": {"latent_dim": 3}}


def _healthy(runs_dir):
    (config,) = grid.expand("beta_vae", "dsprites", betas=(1.0,), seeds=(0,), **TINY)
    grid.run_grid([config], runs_dir, ("mig",), workers=1, profile="tiny", progress=False)
    return config.run_id()


def _healthy_at(runs_dir, beta):
    (config,) = grid.expand("beta_vae", "dsprites", betas=(beta,), seeds=(0,), **TINY)
    grid.run_grid([config], runs_dir, ("mig",), workers=1, profile="tiny", progress=False)
    return config.run_id()


def test_an_unreadable_folder_does_not_mark_healthy_runs_failed(tmp_path):
    runs_dir = tmp_path / "runs"
    healthy = _healthy(runs_dir)
    (runs_dir / "empty-folder").mkdir()
    (runs_dir / "corrupt").mkdir()
    (runs_dir / "corrupt" / runs.CONFIG).write_text("{not json")
    table = report.collect(runs_dir)
    rows = table.set_index("run_id")
    assert not rows.loc[healthy, "problem"] and rows.loc[healthy, "finished"]
    assert rows.loc["empty-folder", "problem"] and rows.loc["corrupt", "problem"]
    site = write_html_report(runs_dir, tmp_path / "out", progress=False)
    index = site.read_text()
    healthy_row = next(line for line in index.split("<tr") if f"runs/{healthy}.html" in line)
    assert "failed" not in healthy_row and "unreadable" not in healthy_row
    assert (site.parent / "img" / healthy / "traversals.png").is_file()  # its figures are drawn


def test_an_infinite_metric_value_does_not_crash_the_report(tmp_path):
    runs_dir = tmp_path / "runs"
    healthy = _healthy(runs_dir)
    # identical code columns give an infinite Gaussian total correlation; Python's json writes it as Infinity
    from click.testing import CliRunner

    from disentangle.cli import main

    second = _healthy_at(runs_dir, beta=4.0)
    for run_id, value in ((healthy, float("inf")), (second, 1.5)):
        path = runs_dir / run_id / runs.METRICS
        values = json.loads(path.read_text())
        values["unsupervised.gaussian_total_correlation"] = value
        values["settings"]["unsupervised"] = {"num_train": 10}
        path.write_text(json.dumps(values))
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(runs_dir), "--out", str(tmp_path / "metrics"), "--html",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "metrics" / "runs.csv")
    assert np.isinf(written["unsupervised.gaussian_total_correlation"]).sum() == 1


def test_csv_cells_that_would_run_as_formulas_are_defused(tmp_path):
    runs_dir = tmp_path / "runs"
    healthy = _healthy(runs_dir)
    config = json.loads((runs_dir / healthy / runs.CONFIG).read_text())
    config["dataset_options"]["note"] = '=HYPERLINK("http://example.com","x")'
    (runs_dir / healthy / runs.CONFIG).write_text(json.dumps(config))
    (runs_dir / "@bad").mkdir()  # a folder whose name (the run id cell) starts a formula
    report.write_report(runs_dir, tmp_path / "metrics")
    text = (tmp_path / "metrics" / "runs.csv").read_text()
    assert "'=HYPERLINK" in text and "'@bad" in text
    assert not any(cell.startswith(("=", "@")) for line in text.splitlines() for cell in line.split(","))
    written = pd.read_csv(tmp_path / "metrics" / "runs.csv")
    assert (written["mig.discrete_mig"].dropna() >= 0).all()  # numbers stay numbers


def test_a_killed_reports_temporaries_are_removed_a_live_ones_kept(tmp_path):
    import os
    import time

    runs_dir = tmp_path / "runs"
    _healthy(runs_dir)
    img = tmp_path / "out" / "report" / "img" / "somerun"
    img.mkdir(parents=True)
    stale, live = img / ".traversals.png.abc.tmp", img / ".samples.png.def.tmp"
    stale.write_bytes(b"half a png")
    live.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    write_html_report(runs_dir, tmp_path / "out", progress=False)
    assert not stale.exists() and live.exists()


def test_links_to_runs_with_url_characters_in_their_names_resolve(tmp_path):
    import shutil
    from urllib.parse import unquote

    runs_dir = tmp_path / "runs"
    healthy = _healthy(runs_dir)
    name = "run #1?x=50%"
    shutil.move(runs_dir / healthy, runs_dir / name)
    site = write_html_report(runs_dir, tmp_path / "out", progress=False)
    index = site.read_text()
    href = index.split('<a href="runs/')[1].split('"')[0]
    assert "#" not in href and "?" not in href and " " not in href
    assert (site.parent / "runs" / unquote(href)).is_file()
    page = (site.parent / "runs" / f"{name}.html").read_text()
    sources = [part.split('"')[0] for part in page.split('src="')[1:]]
    assert sources and all((site.parent / "runs" / unquote(src)).resolve().is_file() for src in sources)


def test_the_report_shows_udr_fairness_and_downstream_columns(tmp_path):
    runs_dir = tmp_path / "runs"
    run_id = _healthy(runs_dir)
    stored = json.loads((runs_dir / run_id / runs.METRICS).read_text())
    stored.update({"udr.model_score": 0.61, "fairness.mean_fairness:mean_pred:mean_sens": 0.07,
                   "downstream_task_boosted_trees.100:mean_test_accuracy": 0.52, "mig_sampled.discrete_mig": 0.03})
    (runs_dir / run_id / runs.METRICS).write_text(json.dumps(stored))
    table = report.collect(runs_dir)
    assert {"udr.model_score", "fairness.mean_fairness:mean_pred:mean_sens", "mig_sampled.discrete_mig"} <= set(report.metric_columns(table))
    index = write_html_report(runs_dir, tmp_path / "out", progress=False).read_text()
    for shown in (">UDR<", ">Unfairness<", ">Downstream accuracy, 100 labels (GBT)<", ">0.61<", ">0.07<"):
        assert shown in index, shown


def _summary(groups: int, metrics: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"model": ["beta_vae"] * groups, "beta": [float(b) for b in range(1, groups + 1)], "lr": [0.0005] * groups})
    for m, column in enumerate(metrics):
        frame[f"{column}:median"] = np.linspace(0, 1, groups) + m
        frame[f"{column}:iqr"] = 0.1
    return frame


def test_the_printed_summary_fits_a_terminal_and_says_what_it_left_to_the_csv():
    from disentangle.metrics import list_metrics, metric_record

    headlines = [metric_record(name).headline_column for name in list_metrics()]
    text = report.summary_text(_summary(80, headlines + ["mig.other_key"]))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= report.TERMINAL_WIDTH
    assert len(lines) <= report.TERMINAL_ROWS + 2
    assert lines[0].split()[:3] == ["model", "beta", "MIG"]  # varying keys, then headlines in registry order
    assert "lr" not in lines[0] and "other_key" not in text and "iqr" not in text  # constants, non-headline keys, other stats
    import re

    left = re.fullmatch(rf"\(\+ {80 - report.TERMINAL_ROWS} more groups and (\d+) more headline metrics in summary.csv\)", lines[-1])
    assert left and 0 < int(left.group(1)) < len(headlines)


def test_a_summary_without_finished_runs_is_one_line():
    assert report.summary_text(pd.DataFrame()) == "no finished runs to summarise"


def test_summary_groups_are_the_runs_groups_not_every_combination_of_their_keys():
    table = pd.DataFrame({"model": ["a", "b"], "k": ["x", "y"], "seed": [0, 0], "finished": [True, True], "mig.discrete_mig": [0.1, 0.2]})
    assert report.summarize(table)[["model", "k"]].values.tolist() == [["a", "x"], ["b", "y"]]  # not also (a, y), (b, x)


def test_a_metric_with_no_finite_value_draws_an_empty_panel_not_a_traceback(tmp_path):
    """Every run's score infinite (or -inf beside nothing finite): matplotlib refused the log axis
    ('Data cannot be log-scaled') and the report ended in a traceback, with and without --html."""
    from disentangle.reports.viz import sweep_figures

    for values in ([np.inf, np.inf], [np.inf, -np.inf]):
        table = pd.DataFrame({"model": ["beta_vae"] * 2, "beta": [1.0, 4.0], "seed": [0, 0], "finished": [True, True],
                              "status": ["done"] * 2, "mig.discrete_mig": values, "final_kl": [1.0, 2.0], "final_recon": [3.0, 4.0]})
        names = [path.name for path in sweep_figures(table, tmp_path / str(values[1]))]
        assert "metric_vs_beta.png" in names


def test_report_on_a_folder_without_a_readable_run_says_so_in_one_line(tmp_path):
    from click.testing import CliRunner

    from disentangle.cli import main

    (tmp_path / "runs" / "broken").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / runs.CONFIG).write_text("{bad")
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "no finished runs to summarise" in result.output and "Empty DataFrame" not in result.output
    assert CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--quiet"]).output.startswith("unreadable")
