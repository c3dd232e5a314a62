"""The study's tables, from the committed exports: median [min, max] over seeds per arm, then per run.

    python studies/dsprites_correlated/tables.py [CHECKPOINTS_DIR]

An arm is a model and the correlation it trained under (``data:correlations``); every value is
read from a run's ``metrics.json`` (scored on the unaltered, independent factor grid).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from disentangle import runs

SCORES = [("MIG", "mig.discrete_mig"), ("DCI disentanglement", "dci.disentanglement"),
          ("DCI completeness", "dci.completeness"), ("latent correlation of posX, posY", "latent_correlation.pair_3_4"),
          ("FoS", "factorized_support.fos")]


def arm(run_dir: Path) -> str:
    config = runs.read_config(run_dir)
    correlations = config.dataset_options.get("correlations")
    return f"{config.model} ({'(posX, posY) at σ = 0.2' if correlations else 'independent: the control'})"


def cell(values: list[float]) -> str:
    """``median [min, max]`` (three decimals), or ``–`` when there are none."""
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]" if values else "–"


def main(folder: Path) -> None:
    run_dirs = sorted(p for p in folder.iterdir() if (p / runs.METRICS).is_file())
    metrics = {d: runs.read_metrics(d) for d in run_dirs}
    arms = sorted({arm(d) for d in run_dirs})
    print("| | " + " | ".join(f"{a} (n={sum(arm(d) == a for d in run_dirs)})" for a in arms) + " |")
    print("|---|" + "---|" * len(arms))
    for title, key in SCORES:
        print(f"| {title} | " + " | ".join(cell([metrics[d][key] for d in run_dirs if arm(d) == a and key in metrics[d]]) for a in arms) + " |")
    print()
    print("| run | seed | " + " | ".join(title for title, _ in SCORES) + " |")
    print("|---|---|" + "---|" * len(SCORES))
    for d in sorted(run_dirs, key=lambda d: (arm(d), runs.read_config(d).seed)):
        values = [f"{metrics[d][key]:.3f}" if key in metrics[d] else "–" for _, key in SCORES]
        print(f"| {arm(d)} | {runs.read_config(d).seed} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "checkpoints")
