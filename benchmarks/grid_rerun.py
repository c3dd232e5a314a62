"""Seconds to re-run a finished grid: every run skipped, decided from its status and manifest.

    python benchmarks/grid_rerun.py [--runs 1000]

Makes N synthetic finished runs (one tiny trained run's checkpoint hard-linked into N run folders,
configs with distinct seeds), then times ``run_grid`` over them with no metrics, three ways:

- this package: the skip decision reads the status and manifest and verifies the checkpoint's bytes
  against the manifest (size, md5, run id), never loading it; a later rerun finds the file as this machine
  verified it (its stat signature in ``.verified``) and stats it;
- the naive baseline (what a rerun did before manifests): ``torch.load`` of every checkpoint;
- the floor: one ``os.stat`` per run folder, the least any rerun can do.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from disentangle.base import runs
from disentangle.orchestration.grid import PreparedGrid, expand, run_prepared
from disentangle.lifecycle.hardware import describe_machine
from disentangle.lifecycle.setup import resolve_config
from disentangle.lifecycle.training import train
from disentangle.lifecycle.training.checkpoint import load_checkpoint


def make_runs(folder: Path, n: int) -> list[runs.RunConfig]:
    (seed_config,) = expand("beta_vae", steps=2, batch_size=8, fixed={"latent_dim": 3})
    trained = train(seed_config, folder / "template", progress=False)
    configs = [resolve_config(c) for c in expand("beta_vae", steps=2, batch_size=8, fixed={"latent_dim": 3}, seeds=range(n))]
    for config in configs:
        run_dir = folder / "runs" / config.run_id()
        run_dir.mkdir(parents=True)
        runs.write_config(run_dir, config)
        os.link(trained / runs.CHECKPOINT, run_dir / runs.CHECKPOINT)
        runs.write_manifest(run_dir, config.run_id())  # each run's own: the manifest names the run it belongs to
        (run_dir / runs.VERIFIED).unlink()  # as a copied-in folder arrives: this machine has not verified it yet
        runs.write_status(run_dir, "done")
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        configs = make_runs(folder, args.runs)
        runs_dir = folder / "runs"
        start = time.perf_counter()
        results = run_prepared(PreparedGrid(tuple(configs)), runs_dir, progress=False, figures=False)  # made by expand: resolved; the skip, not figures
        first = time.perf_counter() - start
        assert all(r.outcome == "skipped" for r in results), {r.outcome for r in results}
        start = time.perf_counter()
        results = run_prepared(PreparedGrid(tuple(configs)), runs_dir, progress=False, figures=False)  # made by expand: resolved; the skip, not figures
        ours = time.perf_counter() - start  # every checkpoint already verified on this machine: a stat each
        assert all(r.outcome == "skipped" for r in results), {r.outcome for r in results}
        start = time.perf_counter()
        for config in configs:
            runs.read_status(runs_dir / config.run_id())
            load_checkpoint(runs_dir / config.run_id() / runs.CHECKPOINT)
        naive = time.perf_counter() - start
        start = time.perf_counter()
        for config in configs:
            os.stat(runs_dir / config.run_id() / runs.CHECKPOINT)
        floor = time.perf_counter() - start
    n = args.runs
    print(f"re-running a finished {n:,}-run grid (no metrics):")
    print(f"  this package, first rerun (md5 each):    {first:6.2f} s  {n / first:8,.0f} runs/s")
    print(f"  this package, later reruns (stat each):  {ours:6.2f} s  {n / ours:8,.0f} runs/s")
    print(f"  naive baseline (torch.load each):        {naive:6.2f} s  {n / naive:8,.0f} runs/s  ({naive / ours:.1f}x slower)")
    print(f"  floor (one os.stat each):                {floor:6.2f} s  {n / floor:8,.0f} runs/s")


if __name__ == "__main__":
    main()
