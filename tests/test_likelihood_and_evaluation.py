import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from disentangle.base import runs
from disentangle.cli import main
from disentangle.metrics import active_units, elbo, iwae_nll
from disentangle.models import get_model
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = get_model("vae", observation_shape=(1, 28, 28), architecture="mlp", latent_dim=4).eval()
    data = (np.random.default_rng(0).random((64, 1, 28, 28)) > 0.8).astype(np.float32)
    return model, data


def test_iwae_bound_is_at_least_as_tight_as_the_elbo(model_and_data):
    model, data = model_and_data
    torch.manual_seed(0)
    negative_elbo = -elbo(model, data)["elbo"]
    torch.manual_seed(0)
    nll_1 = iwae_nll(model, data, k=1)["iwae_nll"]
    torch.manual_seed(0)
    nll_50 = iwae_nll(model, data, k=50)["iwae_nll"]
    assert nll_1 == pytest.approx(negative_elbo, rel=1e-5)  # k = 1 is the ELBO itself
    assert nll_50 <= negative_elbo
    assert nll_50 > 0 and math.isfinite(nll_50)


def test_elbo_by_hand_for_a_collapsed_posterior(model_and_data):
    model, data = model_and_data
    # force q(z|x) = N(0, I): KL = 0, so ELBO = E_z log p(x|z) with z ~ prior
    with torch.no_grad():
        last = model.encoder[-1]
        last.weight.zero_()
        last.bias.zero_()
        torch.manual_seed(1)
        z = torch.randn(len(data), 4)
        expected = float(model.log_likelihood(torch.as_tensor(data), model.decode(z)).mean())
    torch.manual_seed(1)
    assert elbo(model, data)["elbo"] == pytest.approx(expected, rel=1e-5)
    assert active_units(model, data)["active_units"] == 0


def test_active_units_counts_variance_above_threshold(model_and_data):
    model, data = model_and_data
    with torch.no_grad():
        means = model.encode(torch.as_tensor(data))[0].numpy()
    expected = int((means.var(0) > 0.01).sum())
    assert active_units(model, data)["active_units"] == expected


def test_evaluate_adds_missing_metrics_and_keeps_present_ones(tmp_path):
    config = RunConfig(model="beta_vae", steps=4, batch_size=8, model_options={"latent_dim": 3}, checkpoint_every=4)
    run_dir = train(config, tmp_path, progress=False)
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--fast", "--quiet"])
    assert result.exit_code == 0, result.output
    first = json.loads((run_dir / runs.METRICS).read_text())
    assert first["settings"]["mig"]["num_train"] == 10000 and "package_version" in first
    result = runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig,unsupervised", "--fast", "--quiet"])
    assert result.exit_code == 0, result.output
    second = json.loads((run_dir / runs.METRICS).read_text())
    assert second["settings"]["mig"] == first["settings"]["mig"]  # not recomputed
    assert "unsupervised.gaussian_total_correlation" in second
    result = runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "elbo", "--fast", "--quiet"])
    assert result.exit_code == 0 and "elbo.elbo" in json.loads((run_dir / runs.METRICS).read_text())


def test_evaluate_bad_input(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(tmp_path), "--metrics", "mig"])
    assert result.exit_code == 2 and "not finished" in result.output
    (tmp_path / "status").write_text("done\n")
    result = runner.invoke(main, ["evaluate", str(tmp_path), "--metrics", "mig"])
    assert result.exit_code == 2 and "no config.json" in result.output
    result = runner.invoke(main, ["evaluate", str(tmp_path), "--metrics", "accuracy"])
    assert result.exit_code == 2 and "unknown metric 'accuracy'" in result.output
