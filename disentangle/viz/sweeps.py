"""Figures of a whole grid, from ``report.collect``: every metric against beta
(one point per seed, median line, per model) and the reconstruction /
disentanglement trade-off."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from disentangle.metrics import get_metric, human_name, list_metrics
from disentangle.viz.images import save_figure

TRAINING_COLUMNS = ("final_kl", "final_recon")


def disentanglement_columns() -> list[str]:
    """Headline columns of the registered metrics that score codes against factors."""
    return [get_metric(n).headline_column for n in list_metrics(needs=("codes", "train_test", "sampling"))]


def _label(column: str) -> str:
    return {"final_kl": "KL (nats, end of training)", "final_recon": "reconstruction (nats, end of training)"}.get(column, human_name(column))


def _panels(n: int, width: float = 4.0, height: float = 3.2):
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def metric_vs_beta(table: pd.DataFrame, out: str | Path, x: str = "beta") -> Path | None:
    """Every headline metric against ``x`` (log2 axis), one point per seed, median line per model; the PNG path or None."""
    metrics = [m for m in (*disentanglement_columns(), *TRAINING_COLUMNS) if m in table.columns and table[m].notna().any()]
    if x not in table.columns or not metrics:
        return None
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for model, rows in table.dropna(subset=[x, metric]).groupby("model"):
            ax.scatter(rows[x], rows[metric], alpha=0.6, s=18)
            median = rows.groupby(x)[metric].median()
            ax.plot(median.index, median.values, marker="o", label=model)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_ylabel(_label(metric))
        ax.set_title(_label(metric), fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"metrics against {x} (points: seeds, line: median)")
    fig.tight_layout()
    return save_figure(fig, Path(out) / "metric_vs_beta.png")


def tradeoff(table: pd.DataFrame, out: str | Path) -> Path | None:
    """Reconstruction against disentanglement, one point per run; the PNG path or None."""
    metrics = [m for m in disentanglement_columns() if m in table.columns and table[m].notna().any()]
    if "final_recon" not in table.columns or not metrics:
        return None
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for model, rows in table.dropna(subset=["final_recon", metric]).groupby("model"):
            points = ax.scatter(rows["final_recon"], rows[metric], label=model, s=22)
            if "beta" in rows:
                for _, row in rows.iterrows():
                    if not np.isnan(row.get("beta", np.nan)):
                        ax.annotate(f"β={row['beta']:g}", (row["final_recon"], row[metric]), fontsize=6,
                                    xytext=(3, 3), textcoords="offset points", color=points.get_facecolor()[0])
        ax.set_xlabel("reconstruction loss (nats)")
        ax.set_ylabel(_label(metric))
        ax.set_title(f"trade-off: {_label(metric)}", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, Path(out) / "tradeoff.png")


def sweep_figures(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Both grid figures (metric_vs_beta.png, tradeoff.png), where the table has the columns."""
    return [path for path in (metric_vs_beta(table, out), tradeoff(table, out)) if path]
