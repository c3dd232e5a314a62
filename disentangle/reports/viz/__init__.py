"""Figures: per run (traversals, reconstructions, samples, KL) and per grid (sweeps)."""

from disentangle.lifecycle.run_figures import render_run_figures
from disentangle.reports.viz.sweeps import metric_vs_beta, rank_correlation, sweep_figures, tradeoff, variance_figure

__all__ = ["metric_vs_beta", "rank_correlation", "render_run_figures", "sweep_figures", "tradeoff", "variance_figure"]
