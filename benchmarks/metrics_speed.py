"""Seconds per metric on a dSprites-sized case, and DCI estimator agreement.

    python benchmarks/metrics_speed.py [--skip-gbt] [--run RUN_DIR [--published]]

Case: 10,000 train / 5,000 test points, 10 code dims (5 noisy factor codes, 3
mixtures, 2 noise), the 5 dSprites factors (113 classes). The sampling scores run
on procedural dSprites (bit-packed cache) with an oracle ``represent`` at their
published sizes, against a naive baseline that calls ``represent`` once per
score point (with a cheap oracle the two tie; the batching pays off with a real
encoder, where per-call overhead dominates).
``--run`` also times ``evaluate --fast`` (and with ``--published`` the published
settings, DCI with GBT) on a trained run.
Targets (issue 5): every metric except DCI-gbt < 10 s; gbt no slower than
disentanglement_lib's ~300 s; the fast DCI >= 10x faster than gbt and within 0.05.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from disentangle import metrics
from disentangle.datasets import DSprites
from disentangle.metrics import sampling

SIZES = (3, 6, 40, 32, 32)


def case(n: int, rng: np.random.Generator):
    factors = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    scaled = factors / np.array(SIZES)
    mixing = rng.standard_normal((5, 3))
    codes = np.hstack([scaled + 0.05 * rng.standard_normal((n, 5)), scaled @ mixing, rng.standard_normal((n, 2))])
    return codes, factors


class OracleDSprites(DSprites):
    def sample_observations_from_factors(self, factors, rng=None):
        self.last = np.asarray(factors)
        return super().sample_observations_from_factors(factors, rng)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-gbt", action="store_true")
    parser.add_argument("--run", default=None)
    parser.add_argument("--published", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    c_train, f_train = case(10000, rng)
    c_test, f_test = case(5000, rng)
    rows = [
        ("mig", *timed(metrics.mig, c_train, f_train)),
        ("sap", *timed(metrics.sap, c_train, f_train, c_test, f_test)),
        ("modularity_explicitness", *timed(metrics.modularity_explicitness, c_train, f_train, c_test, f_test)),
        ("unsupervised", *timed(metrics.unsupervised, c_train)),
        ("dci gbt_fast", *timed(metrics.dci, c_train, f_train, c_test, f_test, estimator="gbt_fast")),
    ]
    data = OracleDSprites(in_memory=True)  # the bit-packed cache: rendering off the critical path
    noise = np.random.default_rng(1)
    oracle = lambda obs: data.last / np.array(SIZES) + 0.01 * noise.standard_normal(data.last.shape)  # noqa: E731
    rows.append(("beta_vae_score (published sizes)", *timed(metrics.beta_vae_score, data, oracle, np.random.default_rng(0))))
    rows.append(("factor_vae_score (published sizes)", *timed(metrics.factor_vae_score, data, oracle, np.random.default_rng(0))))
    sampling.POINTS_PER_CALL = 1  # naive baseline: one represent call per score point
    rows.append(("factor_vae_score, naive 1 call/point", *timed(metrics.factor_vae_score, data, oracle, np.random.default_rng(0))))
    if not args.skip_gbt:
        rows.append(("dci gbt (published)", *timed(metrics.dci, c_train, f_train, c_test, f_test, estimator="gbt")))
    for name, seconds, result in rows:
        shown = ", ".join(f"{k}={v:.3f}" for k, v in result.items())
        print(f"{name:38s} {seconds:8.2f} s   {shown}")
    if not args.skip_gbt:
        (_, _, fast), (_, gbt_s, gbt) = rows[4], rows[-1]
        print(f"fast DCI vs gbt: {gbt_s / rows[4][1]:.1f}x faster; |disentanglement diff| = "
              f"{abs(fast['disentanglement'] - gbt['disentanglement']):.3f}, |completeness diff| = "
              f"{abs(fast['completeness'] - gbt['completeness']):.3f}")
    if args.run:
        from disentangle.evaluation import evaluate

        for profile in ("fast", "published") if args.published else ("fast",):
            seconds, _ = timed(evaluate, args.run, profile=profile, force=True, progress=False)
            print(f"evaluate {args.run} (all default metrics, profile {profile}): {seconds:.1f} s")


if __name__ == "__main__":
    main()
