"""``disentangle quickstart``: a beta grid on procedural dSprites, end to end.

Trains beta-VAE at three betas (one seed), evaluates MIG, beta-VAE score, FactorVAE
score, DCI (fast subsampled-GBT estimator) and SAP, writes the comparison CSVs and
figures, and renders traversals of every run.

Precision and budget are chosen on the machine it runs on, and printed with the reason:
bf16 autocast only where the CPU computes bf16 natively (:mod:`disentangle.lifecycle.hardware`),
and the most steps (from :data:`STEP_LADDER`) that train in about
:data:`TRAINING_SECONDS` at the rate this machine measured (a 3-second probe, cached).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from disentangle.orchestration import grid
from disentangle.lifecycle import hardware
from disentangle.reports import table as report
from disentangle.reports import viz

BETAS = (1.0, 4.0, 16.0)
FAST_STEPS = 40
STEP_LADDER = (4000, 3000, 2500, 2000, 1500, 1000, 500)  # coarse, so one machine picks the same budget every time
TRAINING_SECONDS = 300  # of an 8-minute quickstart; evaluation (~2-3 min on 2 cores) and figures take the rest
METRICS = ("mig", "beta_vae", "factor_vae", "dci", "sap")


def choose_steps(images_per_s: float, runs: int = len(BETAS), batch_size: int = 64, seconds: float = TRAINING_SECONDS) -> int:
    """The largest budget of :data:`STEP_LADDER` whose ``runs`` runs train in ``seconds`` at
    ``images_per_s`` in all (the smallest rung when none does)."""
    for steps in STEP_LADDER:
        if runs * steps * batch_size / images_per_s <= seconds:
            return steps
    return STEP_LADDER[-1]


def run_quickstart(out: str | Path = "quickstart", fast: bool = False, workers: int = 3, progress: bool = True, echo=click.echo,
                   precision: str = "auto", steps: int | None = None) -> dict:
    """Train, score, tabulate and plot the three-beta demo grid under ``out``.

    ``workers`` runs train side by side, each on cores / workers threads (at least
    one): on a 2-core CPU three single-thread runs train more in all than one two-thread
    run at a time (benchmarks/train_throughput.py: 1.28x in bf16 on a Zen 4, 2026-11-27;
    fp32 on a Zen 3: see the README). ``precision`` (``auto``: bf16 where native) and
    ``steps`` (None: chosen from this machine's measured rate, :func:`choose_steps`).
    """
    requested = precision
    out = Path(out)
    precision = hardware.resolve_precision(precision, "cpu")
    if fast:
        steps, why = FAST_STEPS, "--fast"
    elif steps is not None:
        why = "--steps"
    else:
        cores = os.cpu_count() or 1
        # one run on every core: what the runs side by side train in all, or a little less (2-core Zen 3, fp32:
        # 734 images/s one run vs 715 three; Zen 4, bf16: 1,424 vs 1,823), so the budget errs on the short side
        in_all = hardware.training_rate(precision, cores)
        steps = choose_steps(in_all)
        why = (f"measured here: {in_all:,.0f} images/s on {cores} core{'s' * (cores > 1)} -> the largest of "
               f"{'/'.join(map(str, STEP_LADDER))} steps whose {len(BETAS)} runs train in ~{TRAINING_SECONDS // 60} min")
    configs = grid.expand("beta_vae", "dsprites", betas=BETAS, seeds=(0,), steps=steps, fixed={"latent_dim": 10},
                          precision=requested)  # as asked: each run resolves "auto" where it trains (the same here)
    echo(f"quickstart: beta_vae on procedural dSprites, beta in {list(BETAS)}, {workers} runs at once; metrics "
         f"{', '.join(METRICS)} (DCI with the fast subsampled-GBT estimator" + (", tiny score samples" if fast else "") + ")")
    echo(f"  precision {precision}: {hardware.precision_reason('cpu') if requested == 'auto' else 'as asked'}")
    echo(f"  budget {steps:,} steps of batch 64 per run ({why})")
    results = grid.run_grid(configs, out / "runs", METRICS, workers=workers, profile="tiny" if fast else "fast", progress=progress,
                            figures=False)  # drawn once below, under out/figures
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
    from disentangle.metrics import metric_record

    headline = [metric_record(name).headline_column for name in METRICS]
    shown = [c for c in ("beta", "final_recon", "final_kl", *headline) if c in table.columns]
    if not table.empty:
        echo(table.sort_values("beta")[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        echo(tradeoff_line(table))
    echo(f"tables:  {out / 'metrics' / 'runs.csv'}, {out / 'metrics' / 'summary.csv'}")
    echo(f"figures: {out / 'metrics'} (metric_vs_beta.png, tradeoff.png), {out / 'figures'}/beta*/ (traversals, reconstructions, samples)")
    return {"results": results, "table": table, "figures": figures}


def tradeoff_line(table) -> str:
    """Whether the runs show the beta trade-off (final KL falls and reconstruction error rises with
    beta, as published), with the numbers."""
    rows = table.dropna(subset=["final_kl", "final_recon"]).sort_values("beta")
    if len(rows) < 2:
        return "beta trade-off: fewer than two finished runs"
    kl, recon = rows["final_kl"].to_numpy(), rows["final_recon"].to_numpy()
    shown = (f"final KL {' -> '.join(f'{v:.3g}' for v in kl)} nats, reconstruction {' -> '.join(f'{v:.4g}' for v in recon)} "
             f"nats for beta {', '.join(f'{b:g}' for b in rows['beta'])}")
    if (kl[1:] < kl[:-1]).all() and (recon[1:] > recon[:-1]).all():
        return f"beta trade-off shown: {shown} (KL falls, reconstruction error rises, as published)"
    return f"beta trade-off NOT shown at this budget: {shown}"
