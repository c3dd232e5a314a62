"""The study report: grouping, the static HTML site, and the site in a real headless browser.

The browser test drives Debian's Chromium through Selenium and chromium-driver. CI
installs both (``.ci/run`` sets DISENTANGLE_REQUIRE_BROWSER=1, so a missing browser
fails there); elsewhere the test is skipped when Chromium is absent.
"""

import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from disentangle.orchestration import grid
from disentangle.reports import table as report
from disentangle.base import runs
from disentangle.reports.site import write_html_report

pytestmark = pytest.mark.slow

TINY = {"steps": 6, "batch_size": 8, "fixed": {"latent_dim": 3}}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2 models x 2 betas x 2 seeds, finished and evaluated, plus one run that failed for real."""
    runs_dir = tmp_path_factory.mktemp("study") / "runs"
    configs = [c for model in ("beta_vae", "beta_tcvae") for c in grid.expand(model, "dsprites", betas=(1.0, 4.0), seeds=(0, 1), **TINY)]
    failing = grid.expand("beta_vae", "dsprites", betas=(1.0,), seeds=(0,), steps=6, batch_size=8, fixed={"latent_dim": 3, "lr": 1e12})
    results = grid.run_grid(configs + failing, runs_dir, ("mig", "sap"), workers=2, profile="tiny", progress=False, figures=False)
    assert [r.outcome for r in results].count("done") == 8 and [r.outcome for r in results].count("failed") == 1
    return runs_dir


def test_summary_groups_by_identity_minus_seed_and_skips_unfinished(study, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(study, runs_dir)
    bf16 = grid.expand("beta_vae", "dsprites", betas=(1.0,), seeds=(0,), precision="bf16", **TINY)
    grid.run_grid(bf16, runs_dir, ("mig",), workers=1, profile="tiny", progress=False, figures=False)
    killed = next(d for d in runs_dir.iterdir() if "beta_tcvae" in d.name and "seed1" in d.name)
    runs.write_status(killed, "running")  # as a run killed before its last step looks
    table, summary, _ = report.write_report(runs_dir, tmp_path / "metrics")
    assert "precision" in table and {"architecture", "decoder", "lr"} <= set(table.columns)  # defaults that ran, not only the options given
    assert not table.set_index("run_id").loc[killed.name, "finished"]
    long = pd.read_csv(tmp_path / "metrics" / "summary_long.csv")
    mig = long[long["metric"] == "mig.discrete_mig"]
    groups = {(r.model, r.beta, r.precision): r.count for r in mig.itertuples()}
    assert groups[("beta_vae", 1.0, "fp32")] == 2 and groups[("beta_vae", 1.0, "bf16")] == 1  # bf16 is not a third seed
    assert sorted(v for (m, *_), v in groups.items() if m == "beta_tcvae") == [1, 2]  # the killed run is listed, not averaged
    assert {"median", "iqr", "min", "max", "count"} <= set(long.columns)
    assert "mig.discrete_mig:iqr" in summary.columns
    rho = pd.read_csv(tmp_path / "metrics" / "rank_correlation.csv", index_col="metric")
    assert list(rho.index) == list(rho.columns) and {"mig.discrete_mig", "sap.sap_score", "final_kl"} <= set(rho.columns)
    assert np.allclose(rho.to_numpy(), rho.to_numpy().T, equal_nan=True)
    assert rho.loc["mig.discrete_mig", "sap.sap_score"] == pytest.approx(table[table["finished"] == True][["mig.discrete_mig", "sap.sap_score"]]  # noqa: E712
                                                                         .astype(float).corr(method="spearman").iloc[0, 1])


@pytest.fixture(scope="module")
def site(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics")
    start = time.perf_counter()
    index = write_html_report(study, out)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (out / "report").rglob("*") if p.is_file())
    print(f"report of 9 runs: {seconds:.1f} s, {size / 1e6:.2f} MB")
    return index


def test_site_is_self_contained(site):
    folder = site.parent
    text = site.read_text()
    assert "http://" not in text and "https://" not in text  # no CDN
    pages = sorted((folder / "runs").glob("*.html"))
    assert len(pages) == 9
    failed = next(p for p in pages if "failed:" in p.read_text()).read_text()
    assert "loss is nan" in failed  # the reason is on its page
    done = next(p for p in pages if "beta_tcvae" in p.name).read_text()
    for name in ("traversals.png", "traversals.gif", "training_curves.png", "reconstructions.png"):
        assert name in done
    for image in folder.rglob("*.png"):
        assert image.stat().st_size > 1000
    assert (folder / "img" / "metric_vs_beta.png").is_file() and (folder / "img" / "rank_correlation.png").is_file()


def test_rerun_updates_and_a_corrupt_run_shows_its_problem(study, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(study, runs_dir)
    victim = next(d for d in sorted(runs_dir.iterdir()) if "beta_vae-dsprites" in d.name)
    (victim / runs.METRICS).write_bytes(b"\xff\xfe not json")
    index = write_html_report(runs_dir, tmp_path / "metrics")
    page = (index.parent / "runs" / f"{victim.name}.html").read_text()
    assert "corrupt" in page
    assert victim.name in index.read_text()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_site_in_a_real_browser(site, tmp_path):
    if not (_chromium() and shutil.which("chromedriver")):
        if os.environ.get("DISENTANGLE_REQUIRE_BROWSER"):
            pytest.fail("Chromium and chromedriver are required here (apt-get install chromium chromium-driver)")
        pytest.skip("no Chromium/chromedriver on this machine")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(site.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        widths = driver.execute_script("return Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth])")
        assert widths and all(w for _, w in widths), widths
        rows = lambda: [r for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr") if r.is_displayed()]  # noqa: E731
        assert len(rows()) == 9
        header = next(th for th in driver.find_elements(By.CSS_SELECTOR, "#runs th") if th.text.strip() == "MIG")
        column = driver.find_elements(By.CSS_SELECTOR, "#runs th").index(header)
        values = lambda: [r.find_elements(By.TAG_NAME, "td")[column].text for r in rows()]  # noqa: E731
        header.click()
        ascending = [float(v) for v in values() if v]
        assert ascending == sorted(ascending)
        header.click()
        assert [float(v) for v in values() if v] == sorted(ascending, reverse=True)
        Select(driver.find_element(By.ID, "filter-model")).select_by_visible_text("beta_tcvae")
        assert len(rows()) == 4 and all("beta_tcvae" in r.text for r in rows())
        Select(driver.find_element(By.ID, "filter-model")).select_by_index(0)
        Select(driver.find_element(By.ID, "filter-status")).select_by_visible_text("failed")
        assert len(rows()) == 1 and "failed" in rows()[0].text
        driver.save_screenshot(str(tmp_path / "index.png"))
        rows()[0].find_element(By.TAG_NAME, "a").click()
        assert "runs/" in driver.current_url and "loss is nan" in driver.find_element(By.TAG_NAME, "body").text
        driver.back()
        Select(driver.find_element(By.ID, "filter-status")).select_by_visible_text("done")
        link = rows()[0].find_element(By.TAG_NAME, "a")
        link.click()
        widths = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
        assert len(widths) >= 5 and all(widths)
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        driver.save_screenshot(str(tmp_path / "run.png"))
        if os.environ.get("DISENTANGLE_SCREENSHOTS"):  # refresh the README's pictures: DISENTANGLE_SCREENSHOTS=docs
            shutil.copy(tmp_path / "run.png", os.path.join(os.environ["DISENTANGLE_SCREENSHOTS"], "report_run.png"))
            driver.back()
            Select(driver.find_element(By.ID, "filter-status")).select_by_index(0)
            driver.save_screenshot(os.path.join(os.environ["DISENTANGLE_SCREENSHOTS"], "report_index.png"))
    finally:
        driver.quit()


def test_the_site_finds_a_runs_data_through_data_root(tiny_mnist, tmp_path, monkeypatch):
    from disentangle.lifecycle.training import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISENTANGLE_DATA", raising=False)
    (config,) = grid.expand("vae", "mnist", steps=4, batch_size=8, fixed={"latent_dim": 3},
                            dataset_options={"root": str(tiny_mnist), "verify": False})
    run_dir = train(config, tmp_path / "runs", progress=False)
    assert "root" not in runs.read_config(run_dir).identity()["dataset_options"]  # where data lives is not what a run is
    moved = tmp_path / "elsewhere"
    shutil.move(tiny_mnist, moved)
    page = tmp_path / "out" / "report" / "runs" / f"{run_dir.name}.html"
    write_html_report(tmp_path / "runs", tmp_path / "out")
    assert "figures could not be drawn" in page.read_text()  # the recorded folder is gone
    write_html_report(tmp_path / "runs", tmp_path / "out2", data_root=moved)
    assert (tmp_path / "out2" / "report" / "img" / run_dir.name / "traversals.png").is_file()


def test_runs_draw_their_figures_as_they_finish_and_the_report_copies_them(study, tmp_path):
    """grid --figures draws RUN/figures once (a rerun skips current figures, redraws stale ones); the
    site copies those files rather than drawing its own."""
    from disentangle.lifecycle.run_figures import ALWAYS_DRAWN, figures_current

    runs_dir = tmp_path / "runs"
    shutil.copytree(study, runs_dir)
    configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0), seeds=(0,), **TINY)
    first = grid.run_grid(configs, runs_dir, (), workers=1, progress=False, figures=True)
    assert [(r.outcome, r.detail) for r in first] == [("done", "training was already done; figures drawn")] * 2
    run_dir = runs_dir / first[0].run_id
    assert figures_current(run_dir) and all((run_dir / runs.FIGURES / name).stat().st_size > 1000 for name in ALWAYS_DRAWN)
    assert [r.outcome for r in grid.run_grid(configs, runs_dir, (), workers=1, progress=False, figures=True)] == ["skipped"] * 2
    earlier = (run_dir / runs.CHECKPOINT).stat().st_mtime - 10
    os.utime(run_dir / runs.FIGURES / "samples.png", (earlier, earlier))  # drawn before the run last changed
    assert not figures_current(run_dir)
    again = grid.run_grid(configs[:1], runs_dir, (), workers=1, progress=False, figures=True)
    assert again[0].detail == "training was already done; figures drawn" and figures_current(run_dir)

    marker = (run_dir / runs.FIGURES / "samples.png").read_bytes() + b"drawn by the run"
    (run_dir / runs.FIGURES / "samples.png").write_bytes(marker)  # newer than the run: current, and told apart from a redraw
    index = write_html_report(runs_dir, tmp_path / "metrics")
    copied = index.parent / "img" / run_dir.name
    assert (copied / "samples.png").read_bytes() == marker
    assert figures_current(run_dir, copied)
    drawn_here = index.parent / "img" / next(d.name for d in runs_dir.iterdir() if "beta_tcvae" in d.name) / "samples.png"
    assert drawn_here.is_file() and b"drawn by the run" not in drawn_here.read_bytes()  # a run without figures: drawn by the report
    stamp = (copied / "samples.png").stat().st_mtime_ns
    write_html_report(runs_dir, tmp_path / "metrics")
    assert (copied / "samples.png").stat().st_mtime_ns == stamp  # nothing changed, nothing copied again
    quick = write_html_report(runs_dir, tmp_path / "quick", run_figures=False).parent / "img"
    assert (quick / run_dir.name / "samples.png").read_bytes() == marker  # --no-run-figures still copies what runs drew
    assert not (quick / drawn_here.parent.name).exists()  # and draws nothing


def test_a_figure_counts_as_current_only_when_drawn_after_the_checkpoint_and_log(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    figure = run_dir / "figure.png"
    assert not runs.drawn_from_current_run(figure, run_dir)  # missing
    for name in (runs.CHECKPOINT, runs.LOG, "figure.png"):
        (run_dir / name).write_bytes(b"x")
    os.utime(figure, (100, 100))
    os.utime(run_dir / runs.CHECKPOINT, (50, 50))
    os.utime(run_dir / runs.LOG, (150, 150))
    assert not runs.drawn_from_current_run(figure, run_dir)  # the log was written after it
    os.utime(run_dir / runs.LOG, (100, 100))
    assert runs.drawn_from_current_run(figure, run_dir)
    (run_dir / runs.LOG).unlink()
    assert runs.drawn_from_current_run(figure, run_dir)  # a source that does not exist does not make it stale
