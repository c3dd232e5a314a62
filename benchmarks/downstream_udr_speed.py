"""Seconds for disentanglement_lib's later evaluations at their published settings.

    python benchmarks/downstream_udr_speed.py [--skip-gbt] [--skip-baseline]

Case: as ``metrics_speed.py``, 10,000 train / 5,000 test points, 10 code dims, the 5 dSprites
factors (113 classes). Rows:

- downstream task, logistic regression and boosted trees: budgets 10 / 100 / 1,000 / 10,000
  labels, 5,000 test points (Locatello et al. 2019 §5), factors fitted in 2 threads, against the
  naive baseline that fits them one after another (the reference's loop). The hardware's own
  ceiling for this choice is a speed-up equal to the number of cores: the rows print both.
- UDR on 9 models (1,000 points, 10 latents; Lasso and Spearman), against the reference's
  per-pair Spearman loop (``scipy.stats.spearmanr`` per latent pair).
- fairness and strong downstream on procedural dSprites with an oracle ``represent`` at the
  published sizes (``--skip-gbt`` leaves out fairness's 10,000-point boosted trees).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import scipy.stats

from disentangle import metrics
from disentangle.metrics._udr import relative_strength

from metrics_speed import SIZES, OracleDSprites, case, timed  # noqa: E402 -- the same dSprites-sized case and oracle


def naive_spearman_udr(codes):
    """The reference's Spearman path: one ``spearmanr`` call per latent pair per model pair."""
    m, d = len(codes), codes[0].shape[1]
    for i in range(m):
        for j in range(m):
            if i != j:
                matrix = np.array([[abs(scipy.stats.spearmanr(codes[i][:, a], codes[j][:, b])[0]) for b in range(d)] for a in range(d)])
                relative_strength(matrix)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-gbt", action="store_true", help="Leave out fairness (10,000-point boosted trees per factor).")
    parser.add_argument("--skip-baseline", action="store_true", help="Leave out the sequential downstream baselines.")
    args = parser.parse_args()
    from disentangle.lifecycle.hardware import describe_machine

    print(describe_machine())
    cores = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    c_train, f_train = case(10000, rng)
    c_test, f_test = case(5000, rng)
    print(f"{'evaluation':58s} {'seconds':>8s}  notes")
    for predictor in ("logistic_regression", "gbt"):
        seconds, scores = timed(metrics.downstream_task, c_train, f_train, c_test, f_test, predictor=predictor, n_jobs=2)
        note = f"10,000 labels: mean test accuracy {scores['10000:mean_test_accuracy']:.3f}; 100: {scores['100:mean_test_accuracy']:.3f}"
        print(f"{'downstream_task ' + predictor + ' (published, 2 threads)':58s} {seconds:8.1f}  {note}")
        if not args.skip_baseline:
            naive, _ = timed(metrics.downstream_task, c_train, f_train, c_test, f_test, predictor=predictor, n_jobs=1)
            print(f"{'  naive: factors one after another':58s} {naive:8.1f}  speed-up {naive / seconds:.2f}x "
                  f"(hardware ceiling: {cores}x on {cores} cores)")
    latent = [np.hstack([c_train[:1000, [5, 0, 1, 2, 3, 4, 6, 7, 8, 9]] + 0.1 * rng.standard_normal((1000, 10))]) for _ in range(9)]
    kl = [np.ones(10)] * 9
    for correlation in ("lasso", "spearman"):
        seconds, scores = timed(metrics.udr, latent, kl, correlation=correlation)
        print(f"{'udr ' + correlation + ' (9 models, 1,000 points, 10 latents)':58s} {seconds:8.2f}  "
              f"median model score {np.median(scores['model_scores']):.3f}")
    naive, _ = timed(naive_spearman_udr, latent)
    print(f"{'  naive: spearmanr per latent pair (the reference)':58s} {naive:8.2f}")
    data = OracleDSprites(in_memory=True)
    noise = np.random.default_rng(1)
    oracle = lambda obs: data.last / np.array(SIZES) + 0.01 * noise.standard_normal(data.last.shape)  # noqa: E731
    seconds, scores = timed(metrics.strong_downstream_task, data, oracle, np.random.default_rng(0))
    print(f"{'strong_downstream_task (published: 1,000 / 1,000, 2 experiments)':58s} {seconds:8.1f}  "
          f"gap {scores['1000:strong_generalization_gap']:.3f}")
    seconds, scores = timed(metrics.reduced_downstream_task, c_train[:100], f_train[:100], c_test[:100], f_test[:100], num_train=100)
    print(f"{'reduced_downstream_task (published: 100 / 100, 1 removed)':58s} {seconds:8.1f}  "
          f"factor of interest {scores['100:mean_test_accuracy_factor_of_interest']:.3f}")
    if not args.skip_gbt:
        seconds, scores = timed(metrics.fairness, data, oracle, np.random.default_rng(0))
        print(f"{'fairness (published: 10,000 train, 100 per class, GBT)':58s} {seconds:8.1f}  "
              f"mean unfairness {scores['mean_fairness:mean_pred:mean_sens']:.3f}")


if __name__ == "__main__":
    main()
