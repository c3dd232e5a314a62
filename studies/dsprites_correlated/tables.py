"""The correlated-dSprites studies' tables, from committed exports: median [min, max] over seeds per arm,
then per run (the arms share their seeds: each seed is a paired comparison).

    python studies/dsprites_correlated/tables.py [CHECKPOINTS_DIR]

``CHECKPOINTS_DIR``: this folder's ``checkpoints`` (the first attempt, the default) or
``reference_settings/checkpoints`` (the reference's settings). An arm is a model, its γ and the correlation
it trained under (``data:correlations``); every value is read from a run's ``metrics.json``, scored on the
unaltered, independent factor grid. A score a study did not compute shows as ``–``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from disentangle.base import runs

SCORES = [("MIG", "mig.discrete_mig"), ("DCI disentanglement", "dci.disentanglement"), ("DCI completeness", "dci.completeness"),
          ("DCI informativeness (test)", "dci.informativeness_test"),
          ("latent correlation of posX, posY", "latent_correlation.pair_3_4"), ("FoS", "factorized_support.fos"),
          ("active latents", "active_units.active_units")]


def arm(run_dir: Path) -> str:
    config = runs.read_config(run_dir)
    correlations = config.dataset_options.get("correlations")
    gamma = f", γ = {config.model_options['gamma']:g}" if "gamma" in config.model_options else ""
    if not correlations:
        return f"{config.model}{gamma} (independent: the control)"
    first, second, sigma = correlations.split(":")
    return f"{config.model}{gamma} (({first}, {second}) at σ = {sigma})"


def cell(values: list[float]) -> str:
    """``median [min, max]`` (three decimals) over the finite values, or ``–``."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]" if values else "–"


def main(folder: Path) -> None:
    run_dirs = sorted(p for p in folder.iterdir() if (p / runs.METRICS).is_file())
    metrics = {d: runs.read_metrics(d) for d in run_dirs}
    arms = sorted({arm(d) for d in run_dirs})
    print("| | " + " | ".join(f"{a} (n={sum(arm(d) == a for d in run_dirs)})" for a in arms) + " |")
    print("|---|" + "---|" * len(arms))
    for title, key in SCORES:
        print(f"| {title} | " + " | ".join(cell([metrics[d].get(key, math.nan) for d in run_dirs if arm(d) == a]) for a in arms) + " |")
    print()
    print("| run | seed | " + " | ".join(title for title, _ in SCORES) + " |")
    print("|---|---|" + "---|" * len(SCORES))
    for d in sorted(run_dirs, key=lambda d: (runs.read_config(d).seed, arm(d))):
        values = [f"{metrics[d][key]:.3f}" if isinstance(metrics[d].get(key), (int, float)) else "–" for _, key in SCORES]
        print(f"| {arm(d)} | {runs.read_config(d).seed} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "checkpoints")
