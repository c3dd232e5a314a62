"""``disentangle quickstart``: a beta grid on procedural dSprites, end to end.

Trains beta-VAE at three betas (one seed; bfloat16 autocast, which on one thread
per run trains ~1.5x as many images a second as fp32 at the same loss, measured
2026-11-27 on a 2-core AVX-512 CPU), evaluates MIG,
beta-VAE score, FactorVAE score, DCI (fast subsampled-GBT estimator) and SAP,
writes the comparison CSVs and figures, and renders traversals of every run.
"""

from __future__ import annotations

from pathlib import Path

import click

from disentangle import grid, report, viz

FULL = {"betas": (1.0, 4.0, 16.0), "steps": 4000}
FAST = {"betas": (1.0, 4.0, 16.0), "steps": 40}
METRICS = ("mig", "beta_vae", "factor_vae", "dci", "sap")


def run_quickstart(out: str | Path = "quickstart", fast: bool = False, workers: int = 3, progress: bool = True, echo=click.echo) -> dict:
    """Train, score, tabulate and plot the three-beta demo grid under ``out``.

    ``workers`` runs train side by side, each on cores / workers threads (at least
    one): on a 2-core CPU three single-thread runs train 1.28x faster in all (bf16)
    than one two-thread run at a time (benchmarks/train_throughput.py, 2026-11-27).
    """
    out = Path(out)
    settings = FAST if fast else FULL
    configs = grid.expand("beta_vae", "dsprites", betas=settings["betas"], seeds=(0,), steps=settings["steps"],
                          fixed={"latent_dim": 10}, precision="bf16")
    echo(f"quickstart: beta_vae on procedural dSprites, beta in {list(settings['betas'])}, {settings['steps']} steps each "
         f"(bf16 autocast), "
         f"{workers} workers; metrics {', '.join(METRICS)} (DCI with the fast subsampled-GBT estimator"
         + (", tiny score samples" if fast else "") + ")")
    results = grid.run_grid(configs, out / "runs", METRICS, workers=workers, profile="tiny" if fast else "fast", progress=progress)
    echo(f"grid: {grid.summary_line(results)}")
    for result in results:
        if result.outcome == "failed":
            echo(f"  {result.run_id}: {result.detail}")
    table, summary, problems = report.write_report(out / "runs", out / "metrics")
    figures = viz.sweep_figures(table, out / "metrics")
    for config in configs:
        run_dir = out / "runs" / config.run_id()
        if (run_dir / "checkpoint.pt").exists():
            viz.render_run_figures(run_dir, out / "figures" / f"beta{config.model_options['beta']:g}")
    from disentangle.metrics import get_metric

    headline = [get_metric(name).headline_column for name in METRICS]
    shown = [c for c in ("beta", "final_recon", "final_kl", *headline) if c in table.columns]
    if not table.empty:
        echo(table.sort_values("beta")[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    echo(f"tables:  {out / 'metrics' / 'runs.csv'}, {out / 'metrics' / 'summary.csv'}")
    echo(f"figures: {out / 'metrics'} (metric_vs_beta.png, tradeoff.png), {out / 'figures'}/beta*/ (traversals, reconstructions, samples)")
    return {"results": results, "table": table, "figures": figures}
