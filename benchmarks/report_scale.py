"""How the report's time grows with the number of runs.

    python benchmarks/report_scale.py [--runs 100,1000] [--html-up-to 1000] [--draw-up-to 100] [--browser]

For each N, makes N synthetic finished runs over five betas (one tiny trained and evaluated run's
checkpoint hard-linked into N folders; its log.csv and manifest copied; configs with distinct betas
and seeds; metrics.json with made-up scores of known rank correlation: MIG = 0.1 log2 β + 0.05 u,
modularity = −MIG³ (ρ = −1), SAP = v (ρ ≈ 0), u, v uniform) and times, in this process's terms:

- ``report`` (CSVs, the grid figures, the terminal summary), then checks rank_correlation.csv
  against the construction and prints variance_explained.csv's β share of MIG;
- ``report --html`` the first time when every run drew its own figures as it finished
  (``grid --figures``: the template's figures copied into each run) and again with nothing changed
  — for N up to ``--html-up-to``; the drawing moved into the worker is timed once, on the template;
- ``report --html`` the first time when no run drew its figures (the report draws them, over the
  cores) — for N up to ``--draw-up-to``;
- with ``--browser``: headless Chromium opening the index and showing its first page of rows.

Targets (issue 37, 2 cores): 1,000 runs, ``report`` <= 30 s, ``--html`` <= 10 min the first time and
<= 60 s unchanged; 12,800 runs, ``report`` <= 5 min, the index interactive within 3 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from disentangle.base import runs
from disentangle.lifecycle.evaluation import evaluate
from disentangle.orchestration.grid import expand
from disentangle.lifecycle.hardware import describe_machine
from disentangle.lifecycle.setup import resolve_config

BETAS = (1.0, 2.0, 4.0, 8.0, 16.0)
TINY = {"steps": 20, "batch_size": 8, "fixed": {"latent_dim": 3}}


def make_template(folder: Path, runs_timed: int = 10) -> tuple[Path, float]:
    """A tiny trained, evaluated run whose worker drew its figures, and what drawing them added to a
    run: the same ``runs_timed``-run grid timed with and without ``--figures``, one worker."""
    grid = ["grid", "--model", "beta_vae", "--beta", "1,2", "--seeds", f"0-{runs_timed // 2 - 1}", "--steps", str(TINY["steps"]),
            "--batch-size", str(TINY["batch_size"]), "--set", "latent_dim=3", "--evaluate", "", "--workers", "1"]
    plain = timed_command(*grid, "--runs-dir", str(folder / "plain"))
    with_figures = timed_command(*grid, "--runs-dir", str(folder / "figures"), "--figures")
    template = next(d for d in sorted((folder / "figures").iterdir()) if d.is_dir() and "beta1" in d.name)
    evaluate(template, ["mig", "sap", "modularity"], profile="tiny", progress=False)
    return template, (with_figures - plain) / runs_timed


def make_runs(folder: Path, template: Path, n: int, figures: bool) -> Path:
    rng = np.random.default_rng(n)
    metrics = json.loads((template / runs.METRICS).read_text())
    runs_dir = folder / "runs"
    configs = [resolve_config(c) for c in expand("beta_vae", betas=BETAS, seeds=range(math.ceil(n / len(BETAS))), **TINY)][:n]
    for config in configs:
        run_dir = runs_dir / config.run_id()
        run_dir.mkdir(parents=True)
        runs.write_config(run_dir, config)
        os.link(template / runs.CHECKPOINT, run_dir / runs.CHECKPOINT)
        for name in (runs.LOG, runs.MANIFEST):
            shutil.copyfile(template / name, run_dir / name)
        mig = 0.1 * math.log2(config.model_options["beta"]) + 0.05 * rng.random()
        scores = {"mig.discrete_mig": mig, "modularity.modularity_score": -mig ** 3, "sap.sap_score": rng.random()}
        (run_dir / runs.METRICS).write_text(json.dumps({**metrics, **scores}))
        if figures:  # what grid --figures leaves: drawn after the log and checkpoint
            shutil.copytree(template / runs.FIGURES, run_dir / runs.FIGURES, copy_function=shutil.copyfile)
        runs.write_status(run_dir, "done")
    return runs_dir


def check_aggregates(out: Path, n: int) -> str:
    """The rank correlations the construction fixes, and the share of MIG's variance β explains."""
    rho = pd.read_csv(out / "rank_correlation.csv", index_col="metric")
    exact = rho.loc["mig.discrete_mig", "modularity.modularity_score"]
    independent = rho.loc["mig.discrete_mig", "sap.sap_score"]
    assert abs(exact + 1) < 1e-9, f"rho(MIG, -MIG^3) = {exact}, expected -1"
    assert abs(independent) < 4 / math.sqrt(n), f"rho(MIG, independent SAP) = {independent} over {n} runs"
    shares = pd.read_csv(out / "variance_explained.csv").set_index("metric")
    return f"rho {exact:+.3f} / {independent:+.3f}, beta share of MIG {shares.loc['mig.discrete_mig', 'hyperparameters']:.3f}"


def timed_command(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "disentangle", *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def browser_seconds(index: Path, n: int) -> float:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)  # the installed driver: no download
    try:
        start = time.perf_counter()
        driver.get(index.as_uri())
        driver.find_element(By.ID, "page-next").click()  # the script ran and paging answers
        pages = -(-n // 100)
        assert driver.find_element(By.ID, "page-info").text == f"{n} runs, page {min(2, pages)} of {pages}"
        return time.perf_counter() - start
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="100,1000")
    parser.add_argument("--html-up-to", type=int, default=1000)
    parser.add_argument("--draw-up-to", type=int, default=100)
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    print(describe_machine())
    # beta share of MIG by construction: var(0.1 log2 beta) over five betas = 0.02; var(0.05 u) = 0.0025 / 12
    print(f"expected: rho(MIG, modularity) = -1, rho(MIG, SAP) ~ 0, beta share of MIG ~ {0.02 / (0.02 + 0.0025 / 12):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        template, drawing = make_template(Path(tmp))
        print(f"a run's figures drawn in its worker as it finishes (grid --figures): +{drawing:.2f} s a run")
        print(f"{'runs':>7} {'report':>9} {'--html first':>13} {'--html again':>13} {'report draws':>13} {'browser':>9}  aggregates")
        for n in (int(v) for v in args.runs.split(",")):
            first = again = drawn = browser = float("nan")
            with tempfile.TemporaryDirectory(dir=tmp) as work:
                runs_dir = make_runs(Path(work), template, n, figures=n <= args.html_up_to)
                out = Path(work) / "metrics"
                plain = timed_command("report", "--runs-dir", str(runs_dir), "--out", str(out))
                aggregates = check_aggregates(out, n)
                if n <= args.html_up_to:
                    first = timed_command("report", "--runs-dir", str(runs_dir), "--out", str(out), "--html")
                    again = timed_command("report", "--runs-dir", str(runs_dir), "--out", str(out), "--html")
                if args.browser:
                    if n > args.html_up_to:  # the site without run figures: they are not what the browser measures
                        timed_command("report", "--runs-dir", str(runs_dir), "--out", str(out), "--html", "--no-run-figures")
                    browser = browser_seconds(out / "report" / "index.html", n)
            if n <= args.draw_up_to:
                with tempfile.TemporaryDirectory(dir=tmp) as work:
                    runs_dir = make_runs(Path(work), template, n, figures=False)
                    drawn = timed_command("report", "--runs-dir", str(runs_dir), "--out", str(Path(work) / "metrics"), "--html")
            print(f"{n:>7,} {plain:>8.1f}s {first:>12.1f}s {again:>12.1f}s {drawn:>12.1f}s {browser:>8.2f}s  {aggregates}", flush=True)


if __name__ == "__main__":
    main()
