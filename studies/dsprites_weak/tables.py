"""The study's tables, from the committed exports: median [min, max] over seeds per model.

    python studies/dsprites_weak/tables.py [CHECKPOINTS_DIR]

Prints Markdown: the 2019 scores, then the later evaluations (downstream sample efficiency,
reduced and strong downstream, fairness, UDR) for the mean and the sampled representation.
Every value is read from a run's ``metrics.json``; a run without a key is left out of that cell, a key no run holds out of the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from disentangle.base import runs

MODELS = {"ada_gvae": "Ada-GVAE", "beta_vae": "β-VAE"}
SCORES = [("MIG", "mig{r}.discrete_mig"), ("DCI disentanglement", "dci{r}.disentanglement"),
          ("DCI completeness", "dci{r}.completeness"), ("FactorVAE score", "factor_vae{r}.eval_accuracy"),
          ("SAP", "sap{r}.sap_score"), ("ELBO of single images (nats; 5,000 images)", "elbo{r}.elbo")]
LATER = [("downstream LR, 10 labels", "downstream_task_logistic_regression{r}.10:mean_test_accuracy"),
         ("downstream LR, 100 labels", "downstream_task_logistic_regression{r}.100:mean_test_accuracy"),
         ("downstream LR, 1,000 labels", "downstream_task_logistic_regression{r}.1000:mean_test_accuracy"),
         ("downstream GBT, 10 labels", "downstream_task_boosted_trees{r}.10:mean_test_accuracy"),
         ("downstream GBT, 100 labels", "downstream_task_boosted_trees{r}.100:mean_test_accuracy"),
         ("downstream GBT, 1,000 labels", "downstream_task_boosted_trees{r}.1000:mean_test_accuracy"),
         ("reduced downstream: factor of interest (test)", "reduced_downstream_task{r}.100:mean_test_accuracy_factor_of_interest"),
         ("reduced downstream: other factors (test)", "reduced_downstream_task{r}.100:mean_test_accuracy_other_factors"),
         ("strong downstream: generalisation gap", "strong_downstream_task{r}.1000:strong_generalization_gap"),
         ("unfairness, mean over predicted and sensitive factors", "fairness{r}.mean_fairness:mean_pred:mean_sens"),
         ("UDR (Lasso)", "udr{r}.model_score")]


def cell(values: list[float]) -> str:
    """``median [min, max]`` of the values (three decimals), or ``–`` when there are none."""
    if not values:
        return "–"
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}] (n={len(values)})"


def table(metrics_by_model: dict[str, list[dict]], rows, representation: str) -> str:
    suffix = "" if representation == "mean" else f"_{representation}"
    lines = ["| | " + " | ".join(MODELS[m] for m in metrics_by_model) + " |", "|---" * (len(metrics_by_model) + 1) + "|"]
    for label, pattern in rows:
        key = pattern.format(r=suffix)
        values = [[float(m[key]) for m in metrics if isinstance(m.get(key), (int, float))] for metrics in metrics_by_model.values()]
        if any(values):  # a key no run holds (UDR of sampled codes: UDR codes the mean) gets no row
            lines.append(f"| {label} | " + " | ".join(map(cell, values)) + " |")
    return "\n".join(lines)


def main(checkpoints: Path) -> None:
    metrics_by_model: dict[str, list[dict]] = {model: [] for model in MODELS}
    for run_dir in sorted(d for d in checkpoints.iterdir() if d.is_dir()):
        metrics_by_model[runs.read_config(run_dir).model].append(runs.read_metrics(run_dir))
    print("runs: " + ", ".join(f"{MODELS[m]} {len(v)}" for m, v in metrics_by_model.items()) + "\n")
    for representation in ("mean", "sampled"):
        print(f"#### {representation} representation: 2019 scores\n\n{table(metrics_by_model, SCORES, representation)}\n")
        print(f"#### {representation} representation: later evaluations\n\n{table(metrics_by_model, LATER, representation)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "checkpoints")
