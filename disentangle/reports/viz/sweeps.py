"""Figures of a whole grid, from ``report.collect``: every metric against a swept
hyperparameter (one point per seed, a median line and a min-max band per model), the
reconstruction / disentanglement trade-off, the rank correlation between metrics
across runs (Locatello et al. 2019, Fig. 2) and the downstream sample efficiency against
each disentanglement score (ibid., Fig. 9). Only finished runs are drawn; axes carry
the metrics' human names; ``fmt`` is png, svg or pdf."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from disentangle.base.images import lay_out, new_figure, save_figure
from disentangle.metrics import human_name
from disentangle.base.validation import without_numeric_warnings
from disentangle.reports.table import TRAINING_COLUMNS, disentanglement_columns, finished_runs, rank_correlations

FORMATS = ("png", "svg", "pdf")
STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7,
         "axes.spines.top": False, "axes.spines.right": False}  # one style, readable at column width, only while drawing here


DOWNSTREAM = {"downstream_task_logistic_regression": "logistic regression", "downstream_task_boosted_trees": "boosted trees"}


def efficiency_columns(table: pd.DataFrame, metric: str) -> tuple[str, str] | None:
    """(accuracy at 100 labels, accuracy at the largest budget above 100) columns of a downstream
    metric in ``table``, or None."""
    budgets = sorted(int(budget) for c in table.columns
                     if c.startswith(metric + ".") and c.endswith(":mean_test_accuracy") and table[c].notna().any()
                     and (budget := c.split(".", 1)[1].split(":")[0]).isdigit())  # a key of a shared run may hold anything
    if 100 not in budgets or budgets[-1] <= 100:
        return None
    return f"{metric}.100:mean_test_accuracy", f"{metric}.{budgets[-1]}:mean_test_accuracy"


@matplotlib.rc_context(STYLE)
def sample_efficiency(table: pd.DataFrame, out: str | Path, fmt: str = "png") -> Path | None:
    """Sample efficiency (test accuracy with 100 labels over that with the largest budget, e.g.
    10,000) against each disentanglement score, one point per finished run and predictor
    (Locatello et al. 2019, Fig. 9); None without downstream scores."""
    table = finished_runs(table)
    pairs = {name: cols for name in DOWNSTREAM if (cols := efficiency_columns(table, name))}
    scores = [m for m in disentanglement_columns() if m in table.columns and table[m].notna().any()
              and m.partition(".")[0] not in DOWNSTREAM]
    if not pairs or not scores:
        return None
    fig, axes = _panels(len(scores))
    for ax, metric in zip(axes, scores):
        for (name, (few, many)), marker in zip(pairs.items(), ("o", "^")):
            rows = table.dropna(subset=[few, many, metric])
            for model, group in rows.groupby("model"):
                ax.scatter(group[metric].astype(float), group[few].astype(float) / group[many].astype(float), s=14, marker=marker,
                           label=f"{model}, {DOWNSTREAM[name]}")
        ax.set_xlabel(_label(metric))
        ax.set_ylabel("sample efficiency")
        _legend(ax, len(table))
    budget = next(iter(pairs.values()))[1].split(".", 1)[1].split(":")[0]
    fig.suptitle(f"sample efficiency: test accuracy at 100 labels / at {int(budget):,} — {_note(table)}", fontsize=8)
    lay_out(fig)
    return save_figure(fig, Path(out) / f"sample_efficiency.{_check_format(fmt)}")


MANY_POINTS = 500  # above this many runs in a panel, points shrink and the legend takes a fixed corner


def _legend(ax, points: int) -> None:
    """The panel's legend; matplotlib's "best" spot costs time in the number of points drawn (minutes at 12,800 runs)."""
    ax.legend(loc="best" if points <= MANY_POINTS else "upper right")


def _label(column: str) -> str:
    return {"final_kl": "KL (nats, end of training)", "final_recon": "reconstruction (nats, end of training)"}.get(column, human_name(column))


def _note(table: pd.DataFrame) -> str:
    steps = ", ".join(f"{s:g}" for s in sorted(pd.to_numeric(table["steps"], errors="coerce").dropna().unique())) if "steps" in table else "?"
    seeds = table.groupby([c for c in ("model", "dataset") if c in table]).size().max() if len(table) else 0
    profiles = sorted({part.split("=", 1)[1] for column in table.columns if column.startswith("eval:")
                       for text in table[column].dropna().astype(str) for part in text.split(", ") if part.startswith("profile=")})
    evaluation = f"; evaluation profile {', '.join(profiles)}" if profiles else ""
    return f"{len(table)} finished runs; steps {steps}; up to {seeds} runs per model{evaluation}"


def _panels(n: int, width: float = 3.2, height: float = 2.5):
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = new_figure(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


@matplotlib.rc_context(STYLE)
def metric_vs_beta(table: pd.DataFrame, out: str | Path, x: str = "beta", fmt: str = "png") -> Path | None:
    """Every headline metric against ``x`` (log2 axis): seeds as points, median line, min-max band per model."""
    table = finished_runs(table)
    metrics = [m for m in (*disentanglement_columns(), *TRAINING_COLUMNS) if m in table.columns and table[m].notna().any()]
    if x not in table.columns or not metrics or pd.to_numeric(table[x], errors="coerce").dropna().empty:
        return None
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        rows_all = table.assign(**{x: pd.to_numeric(table[x], errors="coerce")}).dropna(subset=[x, metric])
        rows_all = rows_all[np.isfinite(rows_all[metric].astype(float))]  # an infinite score has no place on an axis
        if rows_all.empty:
            ax.text(0.5, 0.5, "no finite value", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(_label(metric))
            continue
        for model, rows in rows_all.groupby("model"):
            values = rows[metric].astype(float)
            by_x = values.groupby(rows[x])
            line, = ax.plot(by_x.median().index, by_x.median().values, marker="o", ms=3, label=model)
            ax.fill_between(by_x.min().index, by_x.min().values, by_x.max().values, color=line.get_color(), alpha=0.15, lw=0)
            ax.scatter(rows[x], values, s=8, alpha=0.6, color=line.get_color())
        if (rows_all[x] > 0).all():
            ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_title(_label(metric))
        _legend(ax, len(table))
    fig.suptitle(f"metrics against {x} (points: seeds; line: median; band: min-max) — {_note(table)}", fontsize=8)
    lay_out(fig)
    return save_figure(fig, Path(out) / f"metric_vs_{x}.{_check_format(fmt)}")


@matplotlib.rc_context(STYLE)
def tradeoff(table: pd.DataFrame, out: str | Path, fmt: str = "png") -> Path | None:
    """Reconstruction against each disentanglement score, one point per finished run."""
    table = finished_runs(table)
    metrics = [m for m in disentanglement_columns() if m in table.columns and table[m].notna().any()]
    if "final_recon" not in table.columns or not metrics:
        return None
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for model, rows in table.dropna(subset=["final_recon", metric]).groupby("model"):
            points = ax.scatter(rows["final_recon"], rows[metric], label=model, s=14 if len(rows) <= MANY_POINTS else 3)
            betas = pd.to_numeric(rows["beta"], errors="coerce") if "beta" in rows else None
            medians = rows[["final_recon", metric]].astype(float).groupby(betas).median() if betas is not None else pd.DataFrame()
            for beta, (recon, score) in medians.iterrows():  # one label per beta, at its runs' median, not one per run
                ax.annotate(f"β={beta:g}", (recon, score), fontsize=6, xytext=(3, 3), textcoords="offset points",
                            color=points.get_facecolor()[0])
        ax.set_xlabel("reconstruction (nats)")
        ax.set_title(_label(metric))
        _legend(ax, len(table))
    fig.suptitle(f"reconstruction against disentanglement — {_note(table)}", fontsize=8)
    lay_out(fig)
    return save_figure(fig, Path(out) / f"tradeoff.{_check_format(fmt)}")


@matplotlib.rc_context(STYLE)
def rank_correlation(table: pd.DataFrame, out: str | Path, fmt: str = "png", minimum_runs: int = 5) -> Path | None:
    """The matrix of :func:`disentangle.reports.table.rank_correlations` (Locatello et al. 2019, Fig. 2);
    None below ``minimum_runs`` finished runs or two metrics."""
    correlations = rank_correlations(table, minimum_runs)
    if correlations.empty:
        return None
    metrics, matrix, runs_drawn = list(correlations.columns), correlations.to_numpy(), len(finished_runs(table))
    fig, ax = new_figure(figsize=(1.0 + 0.55 * len(metrics), 0.8 + 0.5 * len(metrics)))
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    names = [_label(m) for m in metrics]
    ax.set_xticks(range(len(metrics)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(metrics)), names)
    for i in range(len(metrics)):
        for j in range(len(metrics)):
            if not np.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman ρ")
    ax.set_title(f"rank correlation across {runs_drawn:,} finished runs", fontsize=8)
    lay_out(fig)
    return save_figure(fig, Path(out) / f"rank_correlation.{_check_format(fmt)}")


@without_numeric_warnings
def variance_figure(shares: pd.DataFrame, out: str | Path, fmt: str = "png") -> Path | None:
    """Stacked bars, one per metric: the share of its variance across runs explained by the model, added by
    its hyperparameters and left to the seed (the table of :func:`disentangle.reports.table.variance_explained`);
    None when no metric varies."""
    shares = shares.dropna(subset=["model", "hyperparameters", "seed"]) if not shares.empty else shares
    if shares.empty:
        return None
    fig, ax = new_figure(figsize=(6.0, 1.4 + 0.32 * len(shares)))
    left = np.zeros(len(shares))
    for part, colour in (("model", "tab:blue"), ("hyperparameters", "tab:orange"), ("seed", "tab:gray")):
        widths = shares[part].clip(lower=0).to_numpy()
        ax.barh(range(len(shares)), widths, left=left, color=colour, label=part)
        left += widths
    ax.set_yticks(range(len(shares)), [_label(m) for m in shares["metric"]])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the variance across runs")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    ax.set_title(f"what the metrics' variance comes from ({int(shares['runs'].max())} runs)", fontsize=8)
    lay_out(fig)
    return save_figure(fig, Path(out) / f"variance_explained.{_check_format(fmt)}")


@without_numeric_warnings
def sweep_figures(table: pd.DataFrame, out: str | Path, fmt: str = "png") -> list[Path]:
    """The grid figures the table has columns for: metrics against β, the trade-off, the rank
    correlation, the sample efficiency, the variance explained. The one list of a study's figures that
    ``report``, the HTML site and the quickstart draw (the variance shares' notes were said by
    :func:`disentangle.reports.table.write_report`, which wrote their CSV: not again here)."""
    import warnings

    from disentangle.reports.table import variance_explained

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        shares = variance_explained(table) if not table.empty else pd.DataFrame()
    figures = (metric_vs_beta(table, out, fmt=fmt), tradeoff(table, out, fmt=fmt), rank_correlation(table, out, fmt=fmt),
               sample_efficiency(table, out, fmt=fmt), variance_figure(shares, out, fmt=fmt))
    return [path for path in figures if path]
