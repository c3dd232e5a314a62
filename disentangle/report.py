"""Collect runs into tidy pandas tables and write the comparison CSVs.

``collect(runs_dir)``: one row per run: config columns (model, dataset, every
model option, seed, steps), metric columns, and the final recon and KL from the
log. Broken runs (corrupt config.json or metrics.json) are reported and skipped.
``summarize``: mean, std, median and count over seeds per model x options x dataset.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from disentangle import runs
from disentangle._io import atomic_path
from disentangle.errors import DisentangleError

CONFIG_COLUMNS = ("run_id", "status", "model", "dataset", "seed", "steps", "batch_size")


def _final_log_values(run_dir: Path) -> dict:
    try:
        log = pd.read_csv(run_dir / runs.LOG)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return {}
    if log.empty:
        return {}
    last = log.iloc[-1]
    return {"final_recon": float(last["recon"]), "final_kl": float(last["kl"])}


def collect(runs_dir: str | Path = "runs", problems: list[str] | None = None) -> pd.DataFrame:
    """One row per run folder under ``runs_dir``; unreadable runs go to ``problems``."""
    problems = [] if problems is None else problems
    rows = []
    for run_dir in sorted(p for p in Path(runs_dir).iterdir() if p.is_dir()) if Path(runs_dir).is_dir() else []:
        try:
            config = runs.read_config(run_dir)
            values = runs.read_metrics(run_dir)
        except DisentangleError as error:
            problems.append(str(error))
            continue
        row = {"run_id": run_dir.name, "status": runs.read_status(run_dir), "model": config.model,
               "dataset": config.dataset, "seed": config.seed, "steps": config.steps, "batch_size": config.batch_size}
        row.update(config.model_options)
        row.update(_final_log_values(run_dir))
        row.update({k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        rows.append(row)
    for problem in problems:
        warnings.warn(f"skipped: {problem}", stacklevel=2)
    return pd.DataFrame(rows)


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Columns of a runs table that hold metrics (``metric.key``, final recon and KL)."""
    return [c for c in table.columns if "." in c or c in ("final_recon", "final_kl")]


def hyperparameter_columns(table: pd.DataFrame) -> list[str]:
    """Columns of a runs table that hold model options (neither config nor metric)."""
    return [c for c in table.columns if c not in CONFIG_COLUMNS and c not in metric_columns(table)]


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, median and count over seeds of every metric, per model x options x dataset."""
    if table.empty:
        return pd.DataFrame()
    keys = ["model", "dataset", *hyperparameter_columns(table), "steps"]
    values = metric_columns(table)
    grouped = table.fillna({k: "-" for k in keys}).groupby(keys, dropna=False)[values]
    summary = grouped.agg(["mean", "std", "median", "count"])
    summary.columns = [f"{metric}:{stat}" for metric, stat in summary.columns]
    return summary.reset_index()


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_report(runs_dir: str | Path = "runs", out: str | Path = "metrics") -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Write ``out/runs.csv`` and ``out/summary.csv``; return both tables and the problems met.

    A ``runs_dir`` that is not a folder is an error, and nothing is written.
    """
    if not Path(runs_dir).is_dir():
        raise DisentangleError(f"runs folder {runs_dir} does not exist (or is not a folder): nothing to report")
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = collect(runs_dir, problems)
    summary = summarize(table)
    out = Path(out)
    _write_csv(table, out / "runs.csv")
    _write_csv(summary, out / "summary.csv")
    return table, summary, problems
