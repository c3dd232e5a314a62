"""Collect runs into tidy pandas tables and write the comparison CSVs.

``collect(runs_dir)``: one row per run folder: what the run is (model, data set,
precision, batch size, steps, every model option with the value it ran with, data
set options), how it went (status, steps done, ``finished``, training seconds,
package version), its metrics (``<metric>.<key>``) with each metric's settings
(``eval:<metric>``), and the final recon and KL. A run whose files cannot be read is
a row with its ``problem``, not a crash.

``summarize``: median, IQR, min, max, mean, std and count of every metric over the seeds of
each group of *finished* runs, grouped by everything that defines a run except the
seed; wide (``<metric>:<stat>``) and tidy (one row per group x metric) forms.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from disentangle.base import runs
from disentangle.base.files import atomic_path
from disentangle.base.errors import DisentangleError

RUN_COLUMNS = ("run_id", "status", "finished", "problem", "model", "dataset", "precision", "seed", "steps", "steps_done",
               "batch_size", "train_seconds", "package_version")
IDENTITY_COLUMNS = ("model", "dataset", "precision", "batch_size", "steps")  # + model options + data:* (see identity_columns)
TRAINING_COLUMNS = ("final_recon", "final_kl")
STATS = ("median", "iqr", "min", "max", "mean", "std", "count")


def _log_values(run_dir: Path, batch_size: int) -> dict:
    """Final recon and KL and steps logged, from the log's newest whole row (its tail only), and
    training seconds (sum of step time from images/s, the log read a line at a time)."""
    last = runs.read_log_tail(run_dir)
    if last is None:
        return {}
    values = {"steps_done": int(last["step"])}
    values.update({name: last[column] for name, column in (("final_recon", "recon"), ("final_kl", "kl")) if column in last})
    seconds = runs.log_train_seconds(run_dir, batch_size)
    if seconds is not None:
        values["train_seconds"] = seconds
    return values


def resolved_model_options(config: runs.RunConfig, data: dict | None = None) -> dict:
    """The run's model options with every default it ran with: as its config.json recorded them
    (``data``), or, for runs written before that was recorded, resolved as the trainer does now."""
    from disentangle.lifecycle.setup import resolved_model_options as resolve

    recorded = (data or {}).get("resolved_model_options")
    if isinstance(recorded, dict):
        return {**recorded, **config.model_options}
    try:
        return resolve(config)
    except DisentangleError:  # a model or data set this version does not know
        return dict(config.model_options)


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(settings.items()) if k not in ("seconds", "seed"))


_SCALARS = (str, int, float, bool, type(None))


def _row_name(name: str) -> str | None:
    """Why ``name``, an option read from a run's config.json, cannot be a column of its row (None if it can):
    options live in their own namespace and never take a row's own fields (status, run id, ...)."""
    if not isinstance(name, str) or not name.isidentifier():
        return f"option name {str(name)[:40]!r} is not a name"
    if name in RUN_COLUMNS or name in TRAINING_COLUMNS:
        return f"option {name!r} would replace the row's own {name!r}"
    return None


def _folder_name(run_dir: Path) -> tuple[str, str | None]:
    """The run's name as shown (its folder's own name, the only name used for a path) and the problem
    with it, if any: a name that is not UTF-8 is shown with replacement characters and the run is unreadable."""
    try:
        run_dir.name.encode("utf-8")
        return run_dir.name, None
    except UnicodeEncodeError:
        shown = run_dir.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return shown, "its folder name is not UTF-8"


def run_row(run_dir: Path, notes: list[str] | None = None) -> dict:
    """One row of the runs table, read through the run folder's gate: the row's own fields (run id = the
    folder's name, status from its status file, ...) come first and nothing read from inside the folder
    replaces them; a model or data set option that would, or whose value is not a plain value, and a metric
    value that is not a number are left out with a note in ``notes``. A run whose files cannot be read
    gets its ``problem``."""
    notes = [] if notes is None else notes
    name, problem = _folder_name(run_dir)
    row = {"run_id": name, "status": runs.read_status(run_dir)}
    if problem is None and row["status"] == runs.UNREADABLE:
        problem = f"{runs.STATUS} is not UTF-8 text"
    if problem is None:
        try:
            data = runs.read_config_data(run_dir)
            config = runs.config_from_data(data, run_dir)
            values = runs.read_metrics(run_dir)
        except (DisentangleError, UnicodeDecodeError) as error:
            problem = str(error)
    if problem is not None:
        return {**row, "finished": False, "problem": problem}
    row.update({"model": config.model, "dataset": config.dataset, "precision": runs.trained_precision(data, config), "seed": config.seed,
                "steps": config.steps, "batch_size": config.batch_size,
                "package_version": data.get("package_version") if isinstance(data.get("package_version"), str) else None})
    fields = dict(row)
    for option, value in resolved_model_options(config, data).items():
        why = _row_name(option) or (None if isinstance(value, _SCALARS) else f"option {option!r} is not a plain value")
        if why:
            notes.append(f"{name}: {why}: left out")
        else:
            row[option] = value
    for option, value in config.identity()["dataset_options"].items():
        if isinstance(value, _SCALARS):
            row[f"data:{option}"] = value
        else:
            notes.append(f"{name}: data set option {str(option)[:40]!r} is not a plain value: left out")
    row.update(_log_values(run_dir, config.batch_size))
    row.update(_metric_values(values, name, notes))
    row.update(fields)  # the row's own fields, whatever was read
    row["finished"] = row["status"] == "done" and row.get("steps_done", config.steps) >= config.steps
    for metric, settings in (values.get("settings") or {}).items():
        if isinstance(settings, dict) and isinstance(metric, str):
            row[f"eval:{metric}"] = _settings_text(settings)
    return row


def _metric_values(values: dict, name: str, notes: list[str]) -> dict:
    """The numbers of a metrics.json that may be columns: ``metric.key`` names with numeric values, and
    intervals only as ``.ci_low`` / ``.ci_high`` pairs (one without the other is left out, with a note)."""
    numbers = {k: float(v) if isinstance(v, int) else v for k, v in values.items()
               if isinstance(k, str) and "." in k and isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key in [k for k in numbers if k.endswith((".ci_low", ".ci_high"))]:
        stem, _, end = key.rpartition(".")
        other = f"{stem}.{'ci_high' if end == 'ci_low' else 'ci_low'}"
        if other not in numbers:
            notes.append(f"{name}: {key} has no {other.rpartition('.')[2]}: left out")
            numbers.pop(key)
    return numbers


def collect(runs_dir: str | Path = "runs", problems: list[str] | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """One row per run folder under ``runs_dir``; unreadable runs keep a row and go to ``problems``, fields
    left out of a readable run's row (:func:`run_row`) to ``notes``; each is also a warning."""
    problems = [] if problems is None else problems
    folder = Path(runs_dir)
    run_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    left_out: list[str] = []
    rows = [run_row(d, left_out) for d in run_dirs]  # hidden folders (.slurm, .drivers) are the executors', not runs
    problems += [f"{row['run_id']}: {row['problem']}" for row in rows if row.get("problem")]
    for problem in problems:
        warnings.warn(f"unreadable: {problem}", stacklevel=2)
    for note in left_out:
        warnings.warn(note, stacklevel=2)
    if notes is not None:
        notes += left_out
    table = pd.DataFrame(rows)
    if not table.empty:  # "" for a readable run: a missing value would be NaN, which reads as true
        table["problem"] = table["problem"].fillna("").astype(str) if "problem" in table else ""
    return table


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Columns of a runs table that hold metric values (``metric.key``, not intervals) and final recon / KL."""
    from disentangle.metrics.registry import result_names

    names = result_names()
    return [c for c in table.columns if (c.partition(".")[0] in names and not c.endswith((".ci_low", ".ci_high")))
            or c in TRAINING_COLUMNS]


def identity_columns(table: pd.DataFrame) -> list[str]:
    """Everything that defines a run except its seed: config fields, model options, data set options."""
    known = set(RUN_COLUMNS) | set(metric_columns(table))
    extra = [c for c in table.columns if c not in known and not c.startswith("eval:") and "." not in c]
    return [c for c in IDENTITY_COLUMNS if c in table.columns] + extra


def finished_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of finished runs (done, every step trained): what the summaries and grid figures use."""
    return table[table["finished"] == True] if "finished" in table else table.iloc[0:0]  # noqa: E712 (object column)


def disentanglement_columns() -> list[str]:
    """Headline columns of the registered metrics that score codes against factors (and UDR, which
    scores them against other seeds)."""
    from disentangle.metrics import metric_record, list_metrics

    return [metric_record(n).headline_column for n in list_metrics(needs=("codes", "train_test", "sampling", "runs"))]


def rank_correlations(table: pd.DataFrame, minimum_runs: int = 5) -> pd.DataFrame:
    """Spearman rank correlation between every pair of disentanglement metrics (and the final
    reconstruction and KL) across finished runs: Locatello et al. 2019, Fig. 2 ("most metrics agree
    with each other, except modularity"). A metric enters when at least ``minimum_runs`` runs have it;
    each pair uses the runs that have both.

    Returns
    -------
    pandas.DataFrame
        Square, one row and one column per metric (headline column names), values in [-1, 1]; NaN
        for a pair that never varies together. Empty below ``minimum_runs`` finished runs or two metrics.
    """
    done = finished_runs(table)
    metrics = [m for m in (*disentanglement_columns(), *TRAINING_COLUMNS) if m in done.columns and done[m].notna().sum() >= minimum_runs]
    if len(done) < minimum_runs or len(metrics) < 2:
        return pd.DataFrame()
    return done[metrics].astype(float).corr(method="spearman", min_periods=minimum_runs)


def _groups(table: pd.DataFrame):
    done = finished_runs(table)
    keys = identity_columns(done)
    filled = done.copy()
    for key in keys:
        filled[key] = filled[key].map(lambda v: "-" if v is None or (isinstance(v, float) and np.isnan(v)) else v)
    if "seed" in filled and not filled.empty:  # the same training in two folders (a copy, a rename) is one run, counted once
        run = filled[[*keys, "seed"]].astype(str).apply(tuple, axis=1)
        same = run.duplicated(keep="first")
        if "run_id" in filled:
            first = dict(zip(run[~same], filled.loc[~same, "run_id"]))
            for identity, run_id in zip(run[same], filled.loc[same, "run_id"]):
                warnings.warn(f"runs {first[identity]} and {run_id} are one run (the same config and seed): counted once", stacklevel=3)
        filled = filled[~same]
    return filled, keys


def summarize_long(table: pd.DataFrame) -> pd.DataFrame:
    """Tidy summary: one row per group x metric with median, IQR, min, max, mean, std, count over seeds (finished runs only)."""
    if table.empty:
        return pd.DataFrame()
    filled, keys = _groups(table)
    values = metric_columns(filled)
    if filled.empty or not values:
        return pd.DataFrame()
    rows = []
    for group, frame in filled.groupby(keys, dropna=False, sort=True):
        group = group if isinstance(group, tuple) else (group,)
        for metric in values:
            column = pd.to_numeric(frame[metric], errors="coerce").dropna()
            if column.empty:
                continue
            q25, q75 = np.percentile(column, [25, 75])
            rows.append({**dict(zip(keys, group)), "metric": metric, "median": float(column.median()), "iqr": float(q75 - q25),
                         "min": float(column.min()), "max": float(column.max()), "mean": float(column.mean()),
                         "std": float(column.std()) if len(column) > 1 else float("nan"), "count": int(len(column)),
                         "seeds": " ".join(str(s) for s in sorted(frame.loc[column.index, "seed"]))})
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Wide summary: one row per group, ``<metric>:<stat>`` columns (median, iqr, min, max, mean, std, count)."""
    long = summarize_long(table)
    if long.empty:
        return pd.DataFrame()
    keys = [c for c in long.columns if c not in ("metric", "seeds", *STATS)]
    wide = long.pivot_table(index=keys, columns="metric", values=list(STATS), aggfunc="first", dropna=False)
    wide.columns = [f"{metric}:{stat}" for stat, metric in wide.columns]
    wide = wide.dropna(how="all")  # dropna=False keeps all-NaN metrics, but also every combination of the keys: only real groups
    ordered = [f"{m}:{s}" for m in dict.fromkeys(long["metric"]) for s in STATS if f"{m}:{s}" in wide.columns]
    return wide[ordered].reset_index()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a text cell starting so as a formula


def _defused(value):
    """A text cell a spreadsheet would run as a formula, quoted with a leading apostrophe (OWASP's CSV
    injection advice); numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` atomically; text cells that would start a formula are defused (run ids,
    option values and problem texts come from files users share)."""
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):  # object or pandas' string dtype
            frame[column] = frame[column].map(_defused)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def variance_explained(table: pd.DataFrame) -> pd.DataFrame:
    """How much of each headline metric's variance across finished runs the model explains, how much its
    hyperparameters add, and how much is left to the seed (Locatello et al. 2019, §5: "the random seed
    matters more than the model").

    With y a metric over the finished runs that have it, SS the sum of squared deviations from its mean,
    and group means taken over runs of one model (ȳ_m) or one setting (every identity column but the
    seed, ȳ_s): model = Σ n_m (ȳ_m − ȳ)² / SS; hyperparameters = Σ n_s (ȳ_s − ȳ)² / SS − model;
    seed = 1 − Σ n_s (ȳ_s − ȳ)² / SS (the spread within a setting). The three sum to 1.

    Returns
    -------
    pandas.DataFrame
        One row per metric: ``metric``, ``runs``, ``settings``, ``model``, ``hyperparameters``, ``seed``
        (NaN when the metric does not vary).
    """
    from disentangle.metrics import headline_columns

    done, keys = _groups(table)
    rows, not_estimable = [], set()
    for metric in (c for c in (*headline_columns(), *TRAINING_COLUMNS) if c in done.columns):
        values = done[[*keys, metric]].dropna(subset=[metric])
        if len(values) < 2:
            continue
        y = values[metric].astype(float)
        total = float(((y - y.mean()) ** 2).sum())

        def between(columns):
            means = y.groupby([values[c].astype(str) for c in columns]).transform("mean")
            return float(((means - y.mean()) ** 2).sum())

        settings = values[keys].astype(str).drop_duplicates().shape[0]
        model, setting = (between(["model"]), between(keys)) if total > 0 else (np.nan, np.nan)
        share = {"model": model / total if total else np.nan, "hyperparameters": (setting - model) / total if total else np.nan,
                 "seed": 1 - setting / total if total else np.nan}
        if values["model"].nunique() < 2:  # one model: its share is 0 by construction, not a measurement
            share["model"] = np.nan
            not_estimable.add("the model's share (one model)")
        if settings == len(values):  # one run per setting: no spread within a setting to measure the seed by
            share["seed"] = share["hyperparameters"] = np.nan
            not_estimable.add("the seed's and the hyperparameters' shares (one seed per setting)")
        rows.append({"metric": metric, "runs": len(values), "settings": settings, **share})
    for what in sorted(not_estimable):
        warnings.warn(f"variance explained: {what} cannot be estimated: NaN", stacklevel=2)
    return pd.DataFrame(rows, columns=["metric", "runs", "settings", "model", "hyperparameters", "seed"])


def write_report(runs_dir: str | Path = "runs", out: str | Path = "metrics", notes: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Write ``out/runs.csv``, ``out/summary.csv`` (wide), ``out/summary_long.csv`` (tidy),
    ``out/variance_explained.csv`` (:func:`variance_explained`) and ``out/rank_correlation.csv``
    (:func:`rank_correlations`, with a ``metric`` column naming the rows); return the runs table, the
    wide summary and the problems met (``notes``, when given, receives the fields left out of readable
    runs' rows). No numpy warning about NaN or infinite values reaches the terminal: a metric that is NaN
    is a value of the table, not a fault of the report.

    A ``runs_dir`` that is not a folder is an error, and nothing is written.
    """
    if not Path(runs_dir).is_dir():
        raise DisentangleError(f"runs folder {runs_dir} does not exist (or is not a folder): nothing to report")
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its problems and notes are returned
        table = collect(runs_dir, problems, notes)
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        summary = summarize(table)
        out = Path(out)
        _write_csv(table, out / "runs.csv")
        _write_csv(summary, out / "summary.csv")
        _write_csv(summarize_long(table), out / "summary_long.csv")
        _write_csv(variance_explained(table), out / "variance_explained.csv")
        correlations = rank_correlations(table)
        if correlations.empty:
            (out / "rank_correlation.csv").unlink(missing_ok=True)  # not left over from an earlier report
        else:
            _write_csv(correlations.rename_axis("metric").reset_index(), out / "rank_correlation.csv")
    for message, category in dict.fromkeys((str(w.message), w.category) for w in caught if not issubclass(w.category, RuntimeWarning)):
        warnings.warn(message, category, stacklevel=2)  # each said once (the summaries group the runs several times); numpy's not at all
    return table, summary, problems


TERMINAL_WIDTH, TERMINAL_ROWS = 100, 36  # what report prints: the wide tables are the CSVs' job


def _headline_rank(column: str) -> int | None:
    """Where a summary column (``"<result key>.<key>:median"``) that is its metric's headline value comes
    in the registry's order (None for any other column)."""
    from disentangle.metrics.registry import metric_record, list_metrics, parse_result_key

    stored, _, key = column.removesuffix(":median").partition(".")
    try:
        name = parse_result_key(stored)[0]
        return list_metrics().index(name) if metric_record(name).headline == key else None
    except DisentangleError:
        return None


def summary_text(summary: pd.DataFrame, width: int = TERMINAL_WIDTH, rows: int = TERMINAL_ROWS) -> str:
    """The summary as the command line prints it, at most ``width`` characters wide and about ``rows``
    lines: the hyperparameters that vary (and the model), then the median over seeds of each metric's
    headline value, under its human name, as many as fit; a last line says what was left to summary.csv."""
    from disentangle.metrics import human_name

    if summary.empty:
        return "no finished runs to summarise"
    keys = [c for c in summary.columns if ":" not in c and (summary[c].astype(str).nunique() > 1 or c == "model")]
    shown = summary[keys].copy()
    for column in keys:  # lr 0.0005 stays 0.0005
        shown[column] = shown[column].map(lambda v: f"{v:g}" if isinstance(v, float) else v)
    ranks = {c: _headline_rank(c) for c in summary.columns if c.endswith(":median")}
    headlines = sorted((c for c, rank in ranks.items() if rank is not None), key=ranks.get)
    left_out = 0
    for column in headlines:
        trial = shown.assign(**{human_name(column.removesuffix(":median")): summary[column].map(lambda v: f"{v:.3f}")})
        if max(len(line) for line in trial.head(rows).to_string(index=False).splitlines()) > width and len(shown.columns) > len(keys):
            left_out += 1
            continue
        shown = trial
    text = shown.head(rows).to_string(index=False)
    more = [f"{len(shown) - rows} more groups"] if len(shown) > rows else []
    more += [f"{left_out} more headline metrics"] if left_out else []
    return text + (f"\n(+ {' and '.join(more)} in summary.csv)" if more else "")
