"""Sizes a user types are bounded up front, or streamed in bounded memory (hardening III)."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from disentangle import DisentangleError
from disentangle.cli import main
from disentangle.orchestration.grid import expand
from disentangle.metrics import _likelihood as likelihood
from disentangle.models import get_model
from disentangle.scoring.runner import MAX_BOOTSTRAP, MAX_SAMPLE_POINTS, metric_settings
from disentangle.lifecycle.training import train


@pytest.mark.parametrize(("name", "key"), [("mig", "num_train"), ("dci", "num_test"), ("beta_vae", "num_train"), ("iwae", "num_points")])
def test_sample_sizes_above_the_bound_are_one_line_naming_it(name, key):
    assert metric_settings(name, options={key: MAX_SAMPLE_POINTS})[key] == MAX_SAMPLE_POINTS  # the bound itself is allowed
    with pytest.raises(DisentangleError, match=f"{name}.{key} must be at most 1,000,000 .*got 100,000,000"):
        metric_settings(name, options={key: 100_000_000})


def test_bootstrap_replicates_are_bounded():
    assert metric_settings("mig", bootstrap=MAX_BOOTSTRAP)["bootstrap"] == MAX_BOOTSTRAP
    with pytest.raises(DisentangleError, match="bootstrap must be at most 10,000 replicates"):
        metric_settings("mig", bootstrap=1_000_000_000)


def test_the_cli_refuses_them_before_scoring(tmp_path):
    (config,) = expand("beta_vae", steps=2, batch_size=8, fixed={"latent_dim": 3})
    run = train(config, tmp_path / "runs", progress=False)
    for extra in (["--set", "mig.num_train=100000000"], ["--bootstrap", "1000000000"]):
        result = CliRunner().invoke(main, ["evaluate", str(run), "--metrics", "mig", "--profile", "tiny", *extra])
        assert result.exit_code != 0 and "must be at most" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_iwae_streams_its_samples_whatever_k_is(monkeypatch):
    torch.manual_seed(0)
    model = get_model("vae", observation_shape=(1, 28, 28), architecture="mlp", latent_dim=3).eval()
    x = torch.as_tensor((np.random.default_rng(0).random((4, 1, 28, 28)) > 0.5).astype(np.float32))
    monkeypatch.setattr(likelihood, "SAMPLES_PER_CALL", 12)  # 3 samples of the 4 images per chunk
    with torch.no_grad():
        chunks = likelihood.log_importance_weights(model, x, 10 ** 12)  # lazy: nothing of k = 10^12 is held
        first = [next(chunks) for _ in range(2)]
        assert [c.shape for c in first] == [torch.Size([3, 4])] * 2
        torch.manual_seed(1)
        everything = torch.cat(list(likelihood.log_importance_weights(model, x, 7)))  # chunks of 3, 3, 1
        torch.manual_seed(1)
        streamed = likelihood.log_mean_importance_weight(model, x, 7)
    assert torch.allclose(streamed, torch.logsumexp(everything, 0) - math.log(7), atol=1e-5)


def test_every_metric_setting_lies_within_its_declared_bound_and_bigger_is_refused():
    from disentangle.metrics import metric_record, list_metrics
    from disentangle.metrics.registry import setting_bounds
    from disentangle.scoring.runner import metric_settings

    bounded = 0
    for name in list_metrics():
        for profile in ("published", "fast", "tiny"):
            for key, value in metric_settings(name, profile).items():
                bounds = setting_bounds(metric_record(name), key)
                if bounds and isinstance(value, (int, float)):
                    assert bounds[0] <= value <= bounds[1], (name, profile, key, value)
                    bounded += 1
    assert bounded > 20
    for name, key, value in (("mig", "n_bins", 2_000_000_000), ("factorized_support", "batch_size", 20_000), ("iwae", "k", 10 ** 9)):
        with pytest.raises(DisentangleError, match=rf"{name}\.{key} must be in \["):
            metric_settings(name, "published", options={key: value})


def test_the_support_penalty_in_chunks_is_the_same_number_with_bounded_memory(monkeypatch):
    import torch

    from disentangle.models import hfs

    z, pairs = torch.randn(96, 10, generator=torch.Generator().manual_seed(0)), hfs._all_pairs(10)[:25]
    whole = hfs.hausdorff_support_distance(z, pairs)
    monkeypatch.setattr(hfs, "_SUPPORT_CHUNK_ELEMENTS", 96 * 96 * 25 * 7)  # 7 product rows a chunk: 14 chunks
    assert hfs.hausdorff_support_distance(z, pairs).item() == whole.item()
