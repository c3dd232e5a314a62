"""The discretised mutual-information matrix: computed with np.bincount and once per evaluation.

    python benchmarks/mutual_information.py [--run RUN_DIR]

Case: 10,000 points (the published num_train), 10 codes in 20 bins, the 5 dSprites factors. Prints, in one run:
- the matrix: the naive baseline (scikit-learn's ``mutual_info_score`` per pair, what every MI metric did
  before 2026-12-08) against ``mutual_info_matrix`` (one ``np.bincount`` contingency per pair), and the bytes
  it reads per second against this machine's memory copy bandwidth measured here (its peak for a counting pass);
- the seven MI metrics (MIG, MIG-sup, DCIMIG, JEMMIG, InfoMEC, modularity, latent correlation) scored in one
  ``evaluate_codes`` (one matrix, shared) against the same seven each scored alone with the naive matrix;
- with ``--run``, ``evaluate`` of those seven on a trained run (published profile, forced), the same two ways.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time

import numpy as np
from sklearn.metrics import mutual_info_score

from disentangle.lifecycle.hardware import describe_machine
from disentangle.metrics import _utils

SIZES = (3, 6, 40, 32, 32)
SEVEN = ["mig", "mig_sup", "dcimig", "jemmig", "infomec", "modularity", "latent_correlation"]


def naive_matrix(discrete_codes, factors):
    return np.array([[mutual_info_score(factors[:, k], discrete_codes[:, i]) for k in range(factors.shape[1])]
                     for i in range(discrete_codes.shape[1])])


@contextlib.contextmanager
def naive():
    """The matrix as before: scikit-learn per pair, nothing shared."""
    import sys

    fast = _utils.mutual_info_matrix
    modules = [m for m in list(sys.modules.values()) if getattr(m, "mutual_info_matrix", None) is fast]  # _utils and each metric
    for module in modules:
        module.mutual_info_matrix = naive_matrix
    try:
        yield
    finally:
        for module in modules:
            module.mutual_info_matrix = fast


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def copy_bandwidth() -> float:
    """Bytes per second numpy copies a 256 MB array (read + write) on this machine: the counting pass's ceiling."""
    source = np.ones(32 << 20)
    target = np.empty_like(source)
    seconds = best_of(lambda: np.copyto(target, source), 5)
    return 2 * source.nbytes / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a trained run folder (evaluate of the seven, published, forced)")
    args = parser.parse_args()
    print(describe_machine())
    import disentangle.metrics  # noqa: F401 -- every metric module loaded (the naive patch reaches each)
    from disentangle.scoring.representation import evaluate_codes

    rng = np.random.default_rng(0)
    factors = rng.integers(0, SIZES, size=(10_000, len(SIZES)))
    codes = rng.normal(size=(10_000, 10)) + factors[:, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]] / np.array(SIZES * 2)
    discrete = _utils.discretize(codes, 20)
    assert np.allclose(naive_matrix(discrete, factors), _utils.mutual_info_matrix(discrete, factors), rtol=0, atol=1e-12)
    slow, fast = best_of(lambda: naive_matrix(discrete, factors), 3), best_of(lambda: _utils.mutual_info_matrix(discrete, factors), 10)
    touched = discrete.nbytes + factors.nbytes * discrete.shape[1]  # each pair reads a code column and a factor column
    peak = copy_bandwidth()
    print(f"MI matrix, 10,000 x (10 codes, 5 factors): naive (sklearn per pair) {slow * 1e3:.1f} ms, bincount {fast * 1e3:.1f} ms "
          f"({slow / fast:.1f}x); {touched / fast / 1e9:.2f} GB/s read against a memory copy of {peak / 1e9:.1f} GB/s here "
          f"({touched / fast / peak:.1%} of it: per-pair work is np.unique and small arrays, not bandwidth)")
    evaluate_codes(codes, factors, codes, factors, SEVEN, profile="published")  # warm-up: imports, first calls
    with naive():
        alone = best_of(lambda: [evaluate_codes(codes, factors, codes, factors, [m], profile="published") for m in SEVEN], 1)
    together = best_of(lambda: evaluate_codes(codes, factors, codes, factors, SEVEN, profile="published"), 1)
    print(f"the seven MI metrics on these codes (published): naive matrix each {alone:.2f} s, one shared bincount matrix "
          f"{together:.2f} s (saves {alone - together:.2f} s, {1 - together / alone:.1%})")
    if args.run:
        from disentangle.lifecycle.evaluation import evaluate

        with tempfile.TemporaryDirectory() as scratch:
            run = shutil.copytree(args.run, f"{scratch}/run")
            evaluate(run, SEVEN, profile="published", force=True, progress=False)  # warm-up: imports, the encoder's first batches
            with naive():
                before = best_of(lambda: evaluate(run, SEVEN, profile="published", force=True, progress=False), 1)
            after = best_of(lambda: evaluate(run, SEVEN, profile="published", force=True, progress=False), 1)
        print(f"evaluate {args.run} (the seven, published, forced): before {before:.2f} s, after {after:.2f} s "
              f"(saves {before - after:.2f} s, {1 - after / before:.1%})")


if __name__ == "__main__":
    main()
