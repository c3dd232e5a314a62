"""The study's tables, from the committed exports: first each split's held-out factors, their own R² in
and out of distribution (the headline), then per held-out region the readout's R² in the training
region and in the held-out one, median [min, max] over seeds, then per factor and per run.

    python studies/dsprites_holdout/tables.py [CHECKPOINTS_DIR]

Every value is read from a run's ``metrics.json`` (``ood_r2``: Schott et al. 2022's R², an MLP
readout of the codes; ``mig``: on the whole grid).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from disentangle.base import runs

FACTORS = ("shape", "scale", "orientation", "posX", "posY")


def held_out_factors(holdout: str) -> tuple[str, ...]:
    """The factors a split holds values or combinations of out (``kind:factors:fraction``); none for a
    random split, which holds out cells, not factors."""
    kind, _, rest = holdout.partition(":")
    return () if kind == "random" else tuple(rest.rpartition(":")[0].split(","))


def region(run_dir: Path) -> str:
    return runs.read_config(run_dir).dataset_options.get("holdout", "none")


def cell(values: list[float]) -> str:
    """``median [min, max]`` (three decimals), or ``–`` when there are none."""
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]" if values else "–"


def main(folder: Path) -> None:
    run_dirs = sorted(p for p in folder.iterdir() if (p / runs.METRICS).is_file())
    metrics = {d: runs.read_metrics(d) for d in run_dirs}
    regions = sorted({region(d) for d in run_dirs})
    print("| split | holds out | factor | R² in distribution | R² held out | per seed (in → out) |")
    print("|---|---|---|---|---|---|")
    for r in regions:
        members = sorted((d for d in run_dirs if region(d) == r), key=lambda d: runs.read_config(d).seed)
        factors = held_out_factors(r)
        what = f"values of {', '.join(factors)}" if r.startswith("extrapolation") else (
            f"a corner of ({', '.join(factors)})" if factors else "30% of the grid's cells at random")
        for f in factors or ("mean over factors",):
            key_in, key_out = (f"ood_r2.r2_in_distribution_{f}", f"ood_r2.r2_held_out_{f}") if factors else (
                "ood_r2.r2_in_distribution", "ood_r2.r2_held_out")
            seeds = ", ".join(f"{runs.read_config(d).seed}: {metrics[d][key_in]:.3f} → {metrics[d][key_out]:.3f}" for d in members)
            print(f"| `{r}` | {what} | {f} | {cell([metrics[d][key_in] for d in members])} | {cell([metrics[d][key_out] for d in members])} | {seeds} |")
    print()
    rows = [("R² in distribution", "ood_r2.r2_in_distribution"), ("R² held out", "ood_r2.r2_held_out"), ("MIG (whole grid)", "mig.discrete_mig")]
    rows += [(f"R² held out: {f}", f"ood_r2.r2_held_out_{f}") for f in FACTORS]
    rows += [(f"R² in distribution: {f}", f"ood_r2.r2_in_distribution_{f}") for f in FACTORS]
    print("| | " + " | ".join(f"`{r}` (n={sum(region(d) == r for d in run_dirs)})" for r in regions) + " |")
    print("|---|" + "---|" * len(regions))
    for title, key in rows:
        print(f"| {title} | " + " | ".join(cell([metrics[d][key] for d in run_dirs if region(d) == r and key in metrics[d]]) for r in regions) + " |")
    print()
    print("| region | seed | R² in | R² held out | MIG |")
    print("|---|---|---|---|---|")
    for d in sorted(run_dirs, key=lambda d: (region(d), runs.read_config(d).seed)):
        values = [f"{metrics[d][k]:.3f}" if k in metrics[d] else "–" for k in ("ood_r2.r2_in_distribution", "ood_r2.r2_held_out", "mig.discrete_mig")]
        print(f"| `{region(d)}` | {runs.read_config(d).seed} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "checkpoints")
