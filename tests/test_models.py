import math

import numpy as np
import pytest
import torch

from disentangle import DisentangleError
from disentangle.models import get_model, kl_per_dim, list_models
from disentangle.models.annealed_vae import capacity
from disentangle.models.beta_tcvae import total_correlation
from disentangle.models.dip_vae import dip_penalty
from disentangle.models.factor_vae import permute_dims

ALL = ["vae", "beta_vae", "annealed_vae", "beta_tcvae", "factor_vae", "dip_vae_i", "dip_vae_ii", "hfs_tcvae", "hfs_vae"]
PAIRS = ["ada_gvae", "ada_ml_vae", "group_vae", "ml_vae"]  # weak supervision: trained on pairs (tests/test_weak.py)


def test_every_family_is_registered():
    assert sorted(ALL + PAIRS) == list_models()


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize(("architecture", "shape"), [("conv64", (1, 64, 64)), ("conv28", (1, 28, 28)), ("mlp", (1, 28, 28))])
def test_pair_models_forward_backward_and_contract(name, architecture, shape):
    torch.manual_seed(0)
    model = get_model(name, observation_shape=shape, architecture=architecture, latent_dim=4)
    x = torch.rand(6, *shape).round()  # three pairs: rows i and 3 + i
    changed = torch.tensor([[True, False], [False, True], [True, True]])
    out = model.training_step(x, 0, model.configure_optimizers(), changed=changed)
    assert {"loss", "recon", "kl", "kl_per_dim", "shared_dims"} <= set(out)
    assert out["kl_per_dim"].shape == (4,) and torch.isfinite(out["loss"])
    assert model.encode(x[:1])[0].shape == (1, 4)  # single images code as for every model


@pytest.mark.parametrize("name", PAIRS)
def test_pair_models_loss_decreases_on_small_subset(name):
    torch.manual_seed(0)
    prototypes = (torch.rand(4, 1, 28, 28) > 0.7).float()
    model = get_model(name, observation_shape=(1, 28, 28), architecture="conv28", latent_dim=4, lr=1e-3)
    optimizers = model.configure_optimizers()
    losses = []
    for step in range(200):
        first, second = torch.randint(0, 4, (8,)), torch.randint(0, 4, (8,))
        changed = torch.stack([first != second, torch.zeros(8, dtype=torch.bool)], 1)
        out = model.training_step(torch.cat([prototypes[first], prototypes[second]]), step, optimizers, changed=changed)
        losses.append(float(out["loss"].detach()))
    assert np.mean(losses[-20:]) < 0.8 * np.mean(losses[:20])


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("architecture", "shape"), [("conv64", (1, 64, 64)), ("conv28", (1, 28, 28)), ("mlp", (1, 28, 28))])
def test_forward_backward_and_contract(name, architecture, shape):
    torch.manual_seed(0)
    model = get_model(name, observation_shape=shape, architecture=architecture, latent_dim=4)
    x = torch.rand(6, *shape).round()
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4)
    assert model.decode(mu).shape == x.shape
    out = model.training_step(x, 0, model.configure_optimizers())
    assert {"loss", "recon", "kl", "kl_per_dim"} <= set(out)
    assert out["kl_per_dim"].shape == (4,)
    assert torch.isfinite(out["loss"])


@pytest.mark.parametrize("name", ALL)
def test_loss_decreases_on_small_subset(name):
    torch.manual_seed(0)
    prototypes = (torch.rand(4, 1, 28, 28) > 0.7).float()  # four images to learn
    small = {"factor_vae": {"discriminator_hidden": 100}}.get(name, {})  # the reference's 6 x 1000 takes 4x a step here
    model = get_model(name, observation_shape=(1, 28, 28), architecture="conv28", latent_dim=4, lr=1e-3, **small)
    optimizers = model.configure_optimizers()
    losses = []
    for step in range(200):
        out = model.training_step(prototypes[torch.randint(0, 4, (16,))], step, optimizers)
        losses.append(float(out["loss"].detach()))
    assert np.mean(losses[-20:]) < 0.8 * np.mean(losses[:20])


def test_kl_closed_form_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    expected = [0.5 * (1 + 1 - 0 - 1), 0.5 * (0 + 2 - math.log(2) - 1)]
    assert kl_per_dim(mu, logvar).tolist() == pytest.approx(expected)


def test_beta_vae_loss_is_recon_plus_beta_kl():
    torch.manual_seed(0)
    model = get_model("beta_vae", beta=3.0, observation_shape=(1, 28, 28), architecture="mlp")
    out = model.loss(torch.rand(4, 1, 28, 28).round())
    assert float(out["loss"].detach()) == pytest.approx(float((out["recon"] + 3.0 * out["kl"]).detach()), rel=1e-5)


def test_bernoulli_reconstruction_by_hand():
    model = get_model("vae", observation_shape=(1, 28, 28), architecture="mlp")
    x = torch.zeros(2, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0
    logits = torch.zeros_like(x)  # p = 0.5 everywhere: -log p = log 2 per pixel
    assert float(model.reconstruction_loss(x, logits)) == pytest.approx(784 * math.log(2), rel=1e-6)


def test_tc_estimator_known_answers():
    torch.manual_seed(0)
    m, n = 8, 1000
    mu = torch.randn(m, 1)
    logvar = torch.zeros(m, 1)
    z = mu + torch.randn(m, 1)
    assert float(total_correlation(z, mu, logvar, n)) == pytest.approx(0.0, abs=1e-5)  # one dim: no TC
    # well separated, near-deterministic posteriors: each marginal and the joint are
    # dominated by their own sample, so TC = (d - 1) log(N M) exactly
    d = 3
    mu = torch.arange(m, dtype=torch.float64)[:, None].repeat(1, d) * 10
    logvar = torch.full((m, d), math.log(1e-4), dtype=torch.float64)
    assert float(total_correlation(mu.clone(), mu, logvar, n)) == pytest.approx((d - 1) * math.log(n * m), rel=1e-6)


def test_stratified_weights_sum_to_one():
    from disentangle.models.beta_tcvae import _log_weights

    w = _log_weights(8, 100, stratified=True).exp()
    # each row estimates q(z_i) = E_p(x) q(z_i|x) as a weighted sum over the batch
    assert w.sum(1).tolist() == pytest.approx([(1 / 100) + (100 - 7) / (100 * 7) + 6 / 7] * 8)


def test_dip_penalty_by_hand():
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    # off-diagonal: 2 * 0.25 = 0.5; diagonal: (2 - 1)^2 + 0 = 1
    assert float(dip_penalty(cov, lambda_od=3.0, lambda_d=7.0)) == pytest.approx(3.0 * 0.5 + 7.0 * 1.0)


def test_annealed_capacity_schedule():
    assert capacity(0, 25.0, 100) == 0.0
    assert capacity(50, 25.0, 100) == 12.5
    assert capacity(500, 25.0, 100) == 25.0


def test_permute_dims_keeps_marginals():
    z = torch.arange(20.0).reshape(10, 2)
    p = permute_dims(z)
    for j in range(2):
        assert sorted(p[:, j].tolist()) == z[:, j].tolist()


def test_factor_vae_discriminator_shape():
    model = get_model("factor_vae", latent_dim=10)
    widths = [m.out_features for m in model.discriminator if isinstance(m, torch.nn.Linear)]
    assert widths == [1000] * 6 + [2]
    assert model.configure_optimizers()["discriminator"].defaults["betas"] == (0.5, 0.9)
    smaller = get_model("factor_vae", latent_dim=3, discriminator_hidden=20, discriminator_layers=2)
    assert [(m.in_features, m.out_features) for m in smaller.discriminator if isinstance(m, torch.nn.Linear)] == [(3, 20), (20, 20), (20, 2)]


@pytest.mark.parametrize(("name", "options", "message"), [
    ("nope", {}, "unknown model 'nope'"),
    ("beta_vae", {"beta": -1.0}, "beta must be a finite number >= 0, got -1.0"),
    ("beta_vae", {"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
    ("beta_vae", {"observation_shape": (1, 32, 32)}, "architecture 'conv64' needs 64x64 images, got 32x32"),
    ("vae", {"gamma": 3}, "unknown option 'gamma' for model 'vae'"),
    ("factor_vae", {"discriminator_layers": 0}, "discriminator_layers must be a positive integer, got 0"),
    ("vae", {"architecture": "resnet"}, "unknown architecture 'resnet'"),
])
def test_bad_configs(name, options, message):
    with pytest.raises(DisentangleError, match=message):
        get_model(name, **options)
