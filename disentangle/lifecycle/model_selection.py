"""UDR over a runs folder (Duan et al. 2020): unsupervised model selection across seeds.

Runs that differ only in their seed form a group; every run of a group codes the same
observations, :func:`disentangle.metrics.udr` compares them, and each run's score is written
into its metrics.json as ``udr.model_score`` (settings under ``settings.udr``, with the group's
run ids). Duan et al. validate UDR by its rank correlation with the supervised scores across
runs: :func:`udr_runs` returns it for every headline score present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.stats

from disentangle.base import runs
from disentangle.base.files import atomic_write_json
from disentangle.base.errors import DisentangleError
from disentangle.metrics import udr
from disentangle.scoring.runner import metric_rng, metric_settings, record, same_settings

CHECKED_AGAINST = ("mig.discrete_mig", "dci.disentanglement", "factor_vae.eval_accuracy")  # Duan et al.'s check


def seed_groups(runs_dir: str | Path) -> list[list[Path]]:
    """Finished runs under ``runs_dir`` grouped by everything that defines them but the seed:
    groups of two or more, each sorted by seed (unreadable folders are left out)."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    folder = Path(runs_dir)
    if not folder.is_dir():
        raise DisentangleError(f"{folder} is not a folder of runs")
    for run_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if runs.read_status(run_dir) != "done" or not (run_dir / runs.CHECKPOINT).exists():
            continue
        try:
            identity = runs.read_config(run_dir).identity()
        except DisentangleError:
            continue
        seed = identity.pop("seed")
        groups.setdefault(repr(sorted(identity.items())), []).append((seed, run_dir))
    return [[d for _, d in sorted(members)] for members in groups.values() if len(members) >= 2]


def group_codes(run_dirs, num_points: int, seed: int, data_root=None, device: str = "auto"):
    """(codes [num_points, d] per run, mean KL per latent [d] per run) on the same observations,
    drawn from the first run's data set with the ``udr`` metric's stream of ``seed``."""
    from disentangle.lifecycle.evaluation import make_posterior, mean_kl_per_latent
    from disentangle.lifecycle.training.loading import load_trained

    codes, kl, observations = [], [], None
    for run_dir in run_dirs:
        _, dataset, model = load_trained(run_dir, data_root=data_root, device=device)
        if observations is None:
            observations = dataset.sample(num_points, metric_rng(seed, "udr"))[1]
        posterior = make_posterior(model)
        codes.append(posterior(observations)[0].astype(np.float64))
        kl.append(mean_kl_per_latent(posterior, observations))
    return codes, kl


def udr_runs(runs_dir: str | Path, *, profile: str = "published", seed: int = 0, options: dict | None = None, force: bool = False,
             data_root=None, device: str = "auto", progress: bool = False) -> dict:
    """Score every seed group under ``runs_dir`` with UDR and write each run's score.

    Parameters
    ----------
    runs_dir : path
        A folder of runs; groups are runs that differ only in the seed (:func:`seed_groups`).
    profile : {"published", "fast", "tiny"}
        The ``udr`` metric's settings (published: the reference's 1,000 points, Lasso, KL > 0.01).
    seed : int
        Draws the observations every run of a group codes.
    options : dict, optional
        Overrides of the ``udr`` settings, e.g. ``{"correlation": "spearman"}``.
    force : bool
        Recompute groups whose runs already hold UDR with these settings.
    data_root, device, progress

    Returns
    -------
    dict
        ``{"scores": {run_id: model_score}, "groups": [[run_id, ...]], "spearman": {column: rho}}``;
        ``spearman`` is the rank correlation across every run with a UDR score of UDR and each of
        MIG, DCI disentanglement and the FactorVAE score present in metrics.json (NaN with fewer than 3 runs).
    """
    from tqdm.auto import tqdm

    groups = seed_groups(runs_dir)
    if not groups:
        raise DisentangleError(f"no two finished runs under {runs_dir} differ only in their seed: UDR compares seeds")
    base = metric_settings("udr", profile, seed, options=options)
    scored: dict[str, float] = {}
    for group in tqdm(groups, desc="UDR", unit="group", disable=not progress):
        settings = {**base, "runs": [d.name for d in group]}
        stored = [runs.read_metrics(d) for d in group]
        if not force and all(same_settings(m.get("settings", {}).get("udr"), settings) for m in stored):
            scored.update({d.name: m["udr.model_score"] for d, m in zip(group, stored)})
            continue
        codes, kl = group_codes(group, settings["num_data_points"], seed, data_root, device)
        values = udr(codes, kl, correlation=settings["correlation"], kl_threshold=settings["kl_threshold"])
        for i, run_dir in enumerate(group):
            with runs.run_lock(run_dir):
                result = runs.read_metrics(run_dir)
                record(result, "udr", {"model_score": values["model_scores"][i]}, {**settings, "pairwise": values["pairwise"][i]})
                atomic_write_json(run_dir / runs.METRICS, result)
            scored[run_dir.name] = values["model_scores"][i]
    return {"scores": scored, "groups": [[d.name for d in g] for g in groups], "spearman": _rank_check(runs_dir, scored)}


def _rank_check(runs_dir, scored: dict[str, float]) -> dict[str, float]:
    correlations = {}
    for column in CHECKED_AGAINST:
        pairs = [(scored[run_id], metrics[column]) for run_id in scored
                 if isinstance((metrics := runs.read_metrics(Path(runs_dir) / run_id)).get(column), (int, float))]
        if len(pairs) >= 3:
            correlations[column] = float(scipy.stats.spearmanr(*zip(*pairs)).statistic)
        elif pairs:
            correlations[column] = float("nan")
    return correlations

