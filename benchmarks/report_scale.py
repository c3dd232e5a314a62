"""How the report's time grows with the number of runs.

    python benchmarks/report_scale.py [--runs 100,1000] [--html-up-to 1000] [--browser]

For each N, makes N synthetic finished runs (one tiny trained and evaluated run's checkpoint
hard-linked into N folders; its log.csv, metrics.json and manifest copied; configs with distinct
seeds) and times, in this process's terms:

- ``report`` (CSVs, the terminal summary);
- ``report --html`` the first time (every run's figures drawn, over the cores) and again with
  nothing changed (no figure redrawn) — for N up to ``--html-up-to``;
- with ``--browser``: headless Chromium opening the index and showing its first page of rows.

Targets (issue 37, 2 cores): 1,000 runs, ``report`` <= 30 s, ``--html`` <= 10 min the first time and
<= 60 s unchanged; 12,800 runs, ``report`` <= 5 min, the index interactive within 3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from disentangle import runs
from disentangle.evaluation import evaluate
from disentangle.grid import expand
from disentangle.hardware import describe_machine
from disentangle.run_setup import resolve_config
from disentangle.training import train


def make_runs(folder: Path, n: int) -> Path:
    (template_config,) = expand("beta_vae", steps=20, batch_size=8, fixed={"latent_dim": 3})
    template = train(template_config, folder / "template", progress=False)
    evaluate(template, ["mig", "unsupervised"], profile="tiny", progress=False)
    runs_dir = folder / "runs"
    for config in (resolve_config(c) for c in expand("beta_vae", steps=20, batch_size=8, fixed={"latent_dim": 3}, seeds=range(n))):
        run_dir = runs_dir / config.run_id()
        run_dir.mkdir(parents=True)
        runs.write_config(run_dir, config)
        os.link(template / runs.CHECKPOINT, run_dir / runs.CHECKPOINT)
        for name in (runs.LOG, runs.METRICS, runs.MANIFEST):
            shutil.copyfile(template / name, run_dir / name)
        runs.write_status(run_dir, "done")
    return runs_dir


def timed_command(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "disentangle", *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def browser_seconds(index: Path, n: int) -> float:
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
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
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    print(describe_machine())
    print(f"{'runs':>7} {'report':>9} {'--html first':>13} {'--html again':>13} {'browser':>9}")
    for n in (int(v) for v in args.runs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            runs_dir = make_runs(Path(tmp), n)
            out = str(Path(tmp) / "metrics")
            plain = timed_command("report", "--runs-dir", str(runs_dir), "--out", out)
            first = again = browser = float("nan")
            if n <= args.html_up_to:
                first = timed_command("report", "--runs-dir", str(runs_dir), "--out", out, "--html")
                again = timed_command("report", "--runs-dir", str(runs_dir), "--out", out, "--html")
            if args.browser:
                if n > args.html_up_to:  # the site without run figures: they are not what the browser measures
                    timed_command("report", "--runs-dir", str(runs_dir), "--out", out, "--html", "--no-run-figures")
                browser = browser_seconds(Path(out) / "report" / "index.html", n)
        print(f"{n:>7,} {plain:>8.1f}s {first:>12.1f}s {again:>12.1f}s {browser:>8.2f}s", flush=True)


if __name__ == "__main__":
    main()
