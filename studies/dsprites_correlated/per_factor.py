"""Per-factor MIG of the correlated-dSprites studies' exports: each factor's gap between the two latents that
share most information with it, over its entropy (MIG before the average over factors), so that what the
correlated pair (posX, posY) loses is told apart from the other factors.

    python studies/dsprites_correlated/per_factor.py [CHECKPOINTS_DIR]

Each run's posterior means of 10,000 observations drawn (seed 0) from the unaltered, independent grid,
discretised into 20 bins, as the published MIG; printed as median [min, max] per arm and per factor.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from disentangle.base import runs
from disentangle.lifecycle.evaluation import make_posterior
from disentangle.lifecycle.training.loading import load_trained
from disentangle.metrics._utils import discretize, entropies, mutual_info_matrix, top_two_gap

sys.path.insert(0, str(Path(__file__).parent))
from tables import arm  # noqa: E402  (the arms as the study's tables name them)


def per_factor_mig(run_dir: Path, points: int = 10_000) -> tuple[list[str], np.ndarray]:
    _, dataset, model = load_trained(run_dir, device="cpu")
    factors, observations = dataset.sample(points, np.random.default_rng(0))
    means = make_posterior(model)(observations)[0]
    information = mutual_info_matrix(discretize(means, 20), factors)
    return list(dataset.factor_names), top_two_gap(information, axis=0) / entropies(factors)


def main(folder: Path) -> None:
    results = {d: per_factor_mig(d) for d in sorted(folder.iterdir()) if (d / runs.METRICS).is_file()}
    names = next(iter(results.values()))[0]
    arms = sorted({arm(d) for d in results})
    print("| per-factor MIG | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for a in arms:
        gaps = np.array([results[d][1] for d in results if arm(d) == a])
        cells = [f"{np.median(column):.3f} [{column.min():.3f}, {column.max():.3f}]" for column in gaps.T]
        print(f"| {a} (n={len(gaps)}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "checkpoints")
