"""Schedules of the regularisation weight: hand-computed values, one-line errors, every model with a
β-like weight scaled by them, logged per row and part of the run id."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from disentangle.cli import main
from disentangle.base.errors import DisentangleError
from disentangle.models import get_model
from disentangle.models.schedules import parse_schedule
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train


def test_hand_computed_values_and_shapes():
    linear, cosine = parse_schedule("linear:200"), parse_schedule("cosine:200")
    assert [linear(s) for s in (0, 1, 100, 200, 10_000)] == [0.0, 0.005, 0.5, 1.0, 1.0]
    assert cosine(100) == pytest.approx(0.5) and cosine(50) == pytest.approx((1 - np.cos(np.pi / 4)) / 2)
    cyclical = parse_schedule("cyclical:100:0.25")  # Fu et al.: rise over a quarter of each cycle, hold the rest
    assert [cyclical(s) for s in (0, 10, 25, 60, 100, 110, 225)] == [0.0, 0.4, 1.0, 1.0, 0.0, 0.4, 1.0]
    values = [parse_schedule(text)(s) for text in ("linear:37", "cyclical:37", "cosine:37") for s in range(200)]
    assert min(values) >= 0.0 and max(values) <= 1.0
    assert parse_schedule("constant")(123) == 1.0 and str(parse_schedule("cyclical:100:0.25")) == "cyclical:100:0.25"


@pytest.mark.parametrize("text", ["linear", "linear:0", "linear:-5", "cyclical:10:2", "cyclical:10:0", "exp:5", "cosine:x", "", 5])
def test_a_schedule_that_does_not_parse_is_one_line(text):
    with pytest.raises(DisentangleError, match="beta_schedule .* expected constant, linear:W, cyclical:P"):
        parse_schedule(text)


def test_a_bad_schedule_is_refused_before_any_run_folder(tmp_path):
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--steps", "2", "--set", "beta_schedule=warmup:10",
                                       "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "beta_schedule 'warmup:10' does not parse" in result.output
    assert not (tmp_path / "runs").exists()


ZERO_WEIGHT = {  # each model's β-like weight at zero: what a schedule gives at step 0
    "vae": None, "beta_vae": {"beta": 0.0}, "beta_tcvae": {"beta": 1.0}, "factor_vae": {"gamma": 0.0},
    "dip_vae_i": {"lambda_od": 0.0, "lambda_d": 0.0}, "annealed_vae": {"gamma": 0.0},
}


@pytest.mark.parametrize("model", ZERO_WEIGHT)
def test_every_beta_like_weight_follows_the_schedule(model):
    x = torch.rand(8, 1, 64, 64).round()

    def loss(step, **options):
        torch.manual_seed(0)
        built = get_model(model, latent_dim=3, **options)
        torch.manual_seed(1)
        return built.loss(x, step)

    warm = loss(0, beta_schedule="linear:100")
    if ZERO_WEIGHT[model] is None:  # the plain VAE: a KL warm-up
        assert float(warm["loss"]) == pytest.approx(float(warm["recon"]), rel=1e-6)
    else:
        assert float(warm["loss"]) == pytest.approx(float(loss(0, **ZERO_WEIGHT[model])["loss"]), rel=1e-6)
    assert float(loss(100, beta_schedule="linear:100")["loss"]) == pytest.approx(float(loss(100)["loss"]), rel=1e-6)


def test_the_scheduled_beta_is_logged_per_row_and_names_its_own_run(tmp_path):
    base = dict(model="beta_vae", steps=40, batch_size=8, log_every=5, checkpoint_every=40)
    run_dir = train(RunConfig(**base, model_options={"latent_dim": 3, "beta": 4.0, "beta_schedule": "linear:20"}), tmp_path, progress=False)
    with open(run_dir / "log.csv") as log:
        rows = list(csv.DictReader(log))
    betas = [float(r["beta"]) for r in rows]
    assert betas == sorted(betas) and betas[0] < 1.0 and betas[-1] == 4.0  # rises over 20 steps, then held at 4
    constant = RunConfig(**base, model_options={"latent_dim": 3, "beta": 4.0})
    assert constant.run_id() != run_dir.name


def test_annealed_capacity_in_the_same_vocabulary():
    default = get_model("annealed_vae", latent_dim=3)
    assert [default.capacity(s) for s in (0, 50_000, 100_000, 200_000)] == [0.0, 12.5, 25.0, 25.0]
    cosine = get_model("annealed_vae", latent_dim=3, capacity_schedule="cosine:1000")
    assert cosine.capacity(500) == pytest.approx(12.5) and cosine.capacity(1000) == 25.0


def test_a_bad_capacity_schedule_is_named_as_itself():
    import pytest

    from disentangle import DisentangleError
    from disentangle.models import get_model

    with pytest.raises(DisentangleError, match="^capacity_schedule 'cosine:-1' does not parse"):
        get_model("annealed_vae", capacity_schedule="cosine:-1")
