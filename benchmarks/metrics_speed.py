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
import sys
import time
from pathlib import Path

import numpy as np

from disentangle import metrics
from disentangle.datasets import DSprites

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


def _bootstrapped(name, codes, factors):
    from disentangle.scoring.representation import evaluate_codes

    result = evaluate_codes(codes, factors, metrics=[name], bootstrap=100)
    return {k: v for k, v in result.items() if isinstance(v, float)}


def _probe_settings(name: str, profile: str) -> dict:
    """A metric's settings under ``profile`` without the sample sizes (this benchmark fixes those)."""
    return {k: v for k, v in metrics.metric_record(name).settings(profile).items() if not k.startswith("num_")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-gbt", action="store_true")
    parser.add_argument("--run", default=None)
    parser.add_argument("--published", action="store_true")
    args = parser.parse_args()
    from disentangle.lifecycle.hardware import describe_machine

    print(describe_machine())
    rng = np.random.default_rng(0)
    c_train, f_train = case(10000, rng)
    c_test, f_test = case(5000, rng)
    rows = [
        ("mig", *timed(metrics.mig, c_train, f_train)),
        ("sap", *timed(metrics.sap, c_train, f_train, c_test, f_test)),
        ("modularity_explicitness", *timed(metrics.modularity_explicitness, c_train, f_train, c_test, f_test)),
        ("unsupervised", *timed(metrics.unsupervised, c_train)),
        ("dci gbt_fast", *timed(metrics.dci, c_train, f_train, c_test, f_test, estimator="gbt_fast")),
        ("irs", *timed(metrics.irs, c_train, f_train)),
        ("mig_sup", *timed(metrics.mig_sup, c_train, f_train)),
        ("dcimig", *timed(metrics.dcimig, c_train, f_train)),
        ("jemmig", *timed(metrics.jemmig, c_train, f_train)),
        ("infomec (knn)", *timed(metrics.infomec, c_train, f_train)),
        ("infomec (binned)", *timed(metrics.infomec, c_train, f_train, estimator="binned")),
        ("mig, bootstrap 100", *timed(lambda: _bootstrapped("mig", c_train, f_train))),
        ("dci_es (fast: 6 depths x 20 trees)", *timed(metrics.dci_es_explicitness, c_train, f_train, c_test, f_test,
                                                       **_probe_settings("dci_es", "fast"))),
    ]
    data = OracleDSprites(in_memory=True)  # the bit-packed cache: rendering off the critical path
    noise = np.random.default_rng(1)
    oracle = lambda obs: data.last / np.array(SIZES) + 0.01 * noise.standard_normal(data.last.shape)  # noqa: E731
    rows.append(("beta_vae_score (published sizes)", *timed(metrics.beta_vae_score, data, oracle, np.random.default_rng(0))))
    rows.append(("factor_vae_score (published sizes)", *timed(metrics.factor_vae_score, data, oracle, np.random.default_rng(0))))
    rows.append(("z_max_variance (published sizes)", *timed(metrics.z_max_variance, data, oracle, np.random.default_rng(0))))
    rows.append(("factor_vae_score, naive 1 call/point", *timed(metrics.factor_vae_score, data, oracle, np.random.default_rng(0),
                                                                 points_per_call=1)))
    if not args.skip_gbt:
        rows.append(("dci_es (published: 12 depths x 100)", *timed(metrics.dci_es_explicitness, c_train, f_train, c_test, f_test,
                                                                    **_probe_settings("dci_es", "published"))))
        rows.append(("dci gbt (published)", *timed(metrics.dci, c_train, f_train, c_test, f_test, estimator="gbt")))
    for name, seconds, result in rows:
        shown = ", ".join(f"{k}={v:.3f}" for k, v in result.items())
        print(f"{name:38s} {seconds:8.2f} s   {shown}")
    if not args.skip_gbt:
        (_, fast_s, fast), (_, gbt_s, gbt) = rows[4], rows[-1]
        print(f"fast DCI vs gbt: {gbt_s / fast_s:.1f}x faster; |disentanglement diff| = "
              f"{abs(fast['disentanglement'] - gbt['disentanglement']):.3f}, |completeness diff| = "
              f"{abs(fast['completeness'] - gbt['completeness']):.3f}")
    if args.run:
        for profile in ("fast", "published") if args.published else ("fast",):
            evaluate_run(args.run, profile)


def naive_evaluation(run_dir: str, profile: str) -> dict:
    """The evaluation as it was before issue 10, for the baseline row: an fp32 NCHW encoder
    in batches of 512, fresh samples per metric, sampling scores at 256-512 images a call."""
    import torch

    from disentangle.metrics.registry import default_metrics
    from disentangle.scoring.runner import compute_metric, metric_rng
    from disentangle.metrics import metric_record
    from disentangle.lifecycle.training import load_trained

    _, dataset, model = load_trained(run_dir)

    @torch.no_grad()
    def represent(observations):
        return np.concatenate([model.encode(torch.as_tensor(observations[i:i + 512]))[0].numpy()
                               for i in range(0, len(observations), 512)])

    seconds = {}
    for name in default_metrics():
        settings = metric_record(name).settings(profile)
        if name in ("beta_vae", "factor_vae"):
            settings["points_per_call"] = 4
        seconds[name], _ = timed(compute_metric, name, dataset, model, settings, metric_rng(0, name), represent)
    return seconds


def evaluate_run(run_dir: str, profile: str) -> None:
    """Every default metric on a trained run: the naive path and ``evaluate``, in one run."""
    import shutil
    import tempfile

    from disentangle.lifecycle.evaluation import evaluate

    naive = naive_evaluation(run_dir, profile)
    with tempfile.TemporaryDirectory() as scratch:
        copy = shutil.copytree(run_dir, f"{scratch}/run")
        total, result = timed(evaluate, copy, profile=profile, force=True, progress=False)
    fast = {name: settings["seconds"] for name, settings in result["settings"].items()}
    print(f"evaluate {run_dir}, profile {profile}, every default metric:")
    for name in naive:
        print(f"  {name:14s} naive {naive[name]:7.1f} s   evaluate {fast.get(name, float('nan')):7.1f} s")
    print(f"  {'total':14s} naive {sum(naive.values()):7.1f} s   evaluate {total:7.1f} s "
          f"({sum(naive.values()) / total:.1f}x; targets: fast <= 30 s on an fp32 run (issue 21), published <= 240 s)")
    from disentangle.lifecycle.evaluation import encode_precision
    from disentangle.lifecycle.hardware import encode_batch_size
    from disentangle.base.runs import read_config

    encoded_in = encode_precision(read_config(run_dir).precision, "cpu")
    print(f"  the encoder ran in {encoded_in}, batches of {encode_batch_size(encoded_in)} (this machine's best, probed)")
    encoding_floor(run_dir, profile, encode_batch_size(encoded_in))


def encoding_floor(run_dir: str, profile: str, batch: int, seconds: float = 5.0) -> None:
    """How long the profile's encodes alone take at the encoder's measured rate and at this machine's
    fp32 matmul peak: a lower bound on any evaluation that codes these many images (fp32)."""
    import torch

    from disentangle.metrics import metric_record
    from disentangle.lifecycle.training import load_trained

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import forward_macs, matmul_gflops

    _, _, model = load_trained(run_dir)
    encoder = model.encoder.eval().to(memory_format=torch.channels_last)
    x = torch.rand(batch, *model.observation_shape).round().contiguous(memory_format=torch.channels_last)
    flops = 2 * forward_macs(encoder, lambda: encoder(x[:1]))
    with torch.inference_mode():
        encoder(x)
        images, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            encoder(x)
            images += batch
        rate = images / (time.perf_counter() - start)
    peak = matmul_gflops()
    sizes = {"beta_vae": lambda s: 2 * s["batch_size"] * (s["num_train"] + s["num_eval"]),
             "factor_vae": lambda s: s["batch_size"] * (s["num_train"] + s["num_eval"]) + s["num_variance_estimate"]}
    coded = sum(size(metric_record(name).settings(profile)) for name, size in sizes.items()) + 15_000  # + the shared 10,000 / 5,000 codes
    print(f"  encoder alone: {rate:,.0f} images/s = {rate * flops / 1e9:.0f} GFLOP/s, {100 * rate * flops / 1e9 / peak:.0f}% of the "
          f"fp32 matmul peak ({peak:.0f} GFLOP/s); the profile codes {coded:,} images: {coded / rate:.1f} s at this rate, "
          f"{coded * flops / peak / 1e9:.1f} s at the peak")


if __name__ == "__main__":
    main()
