"""Defaults that must match disentanglement_lib (Locatello et al. 2019), pinned."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from disentangle import DisentangleError
from disentangle.models import get_model
from disentangle.models.beta_tcvae import total_correlation
from disentangle.metrics import beta_vae_score, dci, factor_vae_score, modularity_explicitness
from disentangle.metrics._utils import standardize


def _layers(module):
    return [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


def test_conv64_matches_the_reference_layer_by_layer():
    model = get_model("beta_vae", latent_dim=10)
    # (kind, in, out, kernel, stride) of conv_encoder / deconv_decoder in architectures.py of the reference
    encoder = [("Conv2d", 1, 32, 4, 2), ("Conv2d", 32, 32, 4, 2), ("Conv2d", 32, 64, 2, 2), ("Conv2d", 64, 64, 2, 2),
               ("Linear", 1024, 256), ("Linear", 256, 20)]
    decoder = [("Linear", 10, 256), ("Linear", 256, 1024), ("ConvTranspose2d", 64, 64, 4, 2), ("ConvTranspose2d", 64, 32, 4, 2),
               ("ConvTranspose2d", 32, 32, 4, 2), ("ConvTranspose2d", 32, 1, 4, 2)]
    for layers, expected in ((_layers(model.encoder), encoder), (_layers(model.decoder), decoder)):
        described = []
        for layer in layers:
            if isinstance(layer, nn.Linear):
                described.append((type(layer).__name__, layer.in_features, layer.out_features))
            else:  # the image layer is a ConvTranspose2d subclass with a faster forward (models/layers.py)
                kind = "ConvTranspose2d" if isinstance(layer, nn.ConvTranspose2d) else type(layer).__name__
                described.append((kind, layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.stride[0]))
        assert described == expected
    # parameter counts, computed by hand from the shapes: k*k*in*out + out per conv, in*out + out per dense
    encoder_count = (16 * 1 * 32 + 32) + (16 * 32 * 32 + 32) + (4 * 32 * 64 + 64) + (4 * 64 * 64 + 64) + (1024 * 256 + 256) + (256 * 20 + 20)
    assert encoder_count == 309_204
    assert sum(p.numel() for p in model.encoder.parameters()) == encoder_count
    decoder_count = (10 * 256 + 256) + (256 * 1024 + 1024) + (16 * 64 * 64 + 64) + (16 * 64 * 32 + 32) + (16 * 32 * 32 + 32) + (16 * 32 + 1)
    assert sum(p.numel() for p in model.decoder.parameters()) == decoder_count
    x = torch.zeros(2, 1, 64, 64)
    assert [tuple(t.shape) for t in model.encode(x)] == [(2, 10), (2, 10)]
    assert model.decode(torch.zeros(2, 10)).shape == x.shape


def test_weights_start_glorot_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = get_model("factor_vae", latent_dim=10)
    for layer in _layers(model):
        assert torch.count_nonzero(layer.bias) == 0
        # fan_in + fan_out = (in + out) x kernel area, whichever way round the weight is stored
        a, b, *kernel = layer.weight.shape
        bound = math.sqrt(6.0 / ((a + b) * math.prod(kernel)))
        weights = layer.weight.detach()
        assert weights.abs().max() <= bound
        if weights.numel() > 1000:  # uniform on [-bound, bound]: the largest draw comes close
            assert weights.abs().max() > 0.95 * bound


def test_explicitness_standardises_with_the_training_statistics_by_hand():
    train = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    test = np.array([[1.0, 20.0]])
    standard_train, standard_test = standardize(train, test)
    # column 0: mean 2, std sqrt(8/3); column 1: mean 20, std sqrt(200/3) (ddof 0)
    assert standard_train[:, 0] == pytest.approx([-2 / math.sqrt(8 / 3), 0.0, 2 / math.sqrt(8 / 3)])
    assert standard_test[0] == pytest.approx([-1 / math.sqrt(8 / 3), 0.0])
    assert standard_train[:, 1] == pytest.approx([-10 / math.sqrt(200 / 3), 10 / math.sqrt(200 / 3), 0.0])


def test_explicitness_does_not_depend_on_the_scale_of_the_codes():
    # the reference standardises, so an informative code on a tiny scale (where the
    # default L2-regularised logistic regression underfits raw codes) scores the same
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, (600, 2))
    codes = factors + 0.3 * rng.standard_normal((600, 2))
    base = modularity_explicitness(codes[:400], factors[:400], codes[400:], factors[400:])
    tiny = modularity_explicitness(1e-4 * codes[:400], factors[:400], 1e-4 * codes[400:], factors[400:])
    assert tiny["explicitness_score_test"] == pytest.approx(base["explicitness_score_test"], abs=1e-6)


@pytest.mark.parametrize("metric", ["dci", "modularity"])
def test_array_metrics_refuse_a_single_factor(metric):
    rng = np.random.default_rng(0)
    noise, labels = rng.standard_normal((200, 5)), rng.integers(0, 10, (200, 1))
    function = dci if metric == "dci" else modularity_explicitness
    with pytest.raises(DisentangleError, match=f"{metric} needs at least 2 factors"):
        function(noise[:100], labels[:100], noise[100:], labels[100:])


class _OneFactor:
    name, factor_names, factor_sizes, observation_shape, num_factors = "one", ("label",), (10,), (1, 2, 2), 1

    def sample_factors(self, n, rng):
        return rng.integers(0, 10, (n, 1))

    def sample_observations_from_factors(self, factors, rng):
        return rng.random((len(factors), 1, 2, 2)).astype(np.float32)


@pytest.mark.parametrize("score", [beta_vae_score, factor_vae_score])
def test_sampling_scores_refuse_a_single_factor(score):
    noise = lambda x: np.random.default_rng(0).standard_normal((len(x), 4))  # noqa: E731
    with pytest.raises(DisentangleError, match="needs at least 2 factors"):
        score(_OneFactor(), noise, np.random.default_rng(0), batch_size=4, num_train=10, num_eval=10)


@pytest.mark.parametrize("name", ["beta_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii", "factor_vae", "annealed_vae"])
def test_bf16_loss_terms_within_1e_3_of_fp32_on_the_same_posterior(name):
    torch.manual_seed(0)
    model = get_model(name, observation_shape=(1, 64, 64), latent_dim=10)
    x = (torch.rand(64, 1, 64, 64) > 0.8).float()
    with torch.no_grad():
        mu, logvar = model.encode(x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.encode(x)[0].dtype == torch.float32  # the posterior leaves the encoder in float32
    model.encode = lambda _: (mu, logvar)  # the same posterior for both precisions

    def terms(low_precision):
        torch.manual_seed(1)  # the same z
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision):
            out = model.loss(x, 10)
        return {k: float(v) for k, v in out.items() if k in ("kl", "tc", "dip")} | {"penalty": float(out["loss"] - out["recon"])}

    exact, low = terms(False), terms(True)
    assert set(exact) >= {"kl", "penalty"}
    for key in exact:
        if key == "penalty":  # recon is a 4096-pixel bf16 decoder sum; the penalty is loss - recon in float32
            continue
        assert abs(low[key] - exact[key]) < 1e-3, (key, low[key], exact[key])


def test_tc_in_bf16_would_be_coarse():
    # why the guard exists: the same minibatch TC estimate computed in bfloat16 is off by far more than 1e-3
    torch.manual_seed(0)
    mu, logvar = torch.randn(64, 10) * 2, torch.randn(64, 10) * 0.5 - 2
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    exact = float(total_correlation(z, mu, logvar, 737280))
    rough = float(total_correlation(z.bfloat16(), mu.bfloat16(), logvar.bfloat16(), 737280))
    assert abs(rough - exact) > 1e-2


def test_l2_decoder_is_the_reference_squared_error_by_hand():
    model = get_model("vae", observation_shape=(1, 28, 28), architecture="mlp", decoder="l2")
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 0, :3] = 1.0
    logits = torch.zeros_like(x)  # sigmoid = 0.5 everywhere
    assert float(model.reconstruction_loss(x, logits)) == pytest.approx(784 * 0.25)
    with pytest.raises(DisentangleError, match="not a likelihood"):
        model.log_likelihood(x, logits)


@pytest.mark.parametrize("variance", [0.0, -1.0, float("nan")])
def test_gaussian_decoder_variance_must_be_positive(variance):
    with pytest.raises(DisentangleError, match="decoder_variance must be a finite number > 0"):
        get_model("vae", decoder="gaussian", decoder_variance=variance)


def test_gaussian_decoder_by_hand():
    model = get_model("vae", observation_shape=(1, 28, 28), architecture="mlp", decoder="gaussian", decoder_variance=0.5)
    x, logits = torch.ones(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    per_pixel = 0.25 / (2 * 0.5) + 0.5 * math.log(2 * math.pi * 0.5)
    assert float(model.reconstruction_loss(x, logits)) == pytest.approx(784 * per_pixel, rel=1e-6)


def test_annealed_vae_warns_when_the_run_ends_before_full_capacity(tmp_path):
    from disentangle.base.runs import RunConfig
    from disentangle.lifecycle.training import train

    config = RunConfig(model="annealed_vae", steps=2, batch_size=4, model_options={"latent_dim": 2, "c_max": 25.0})
    with pytest.warns(UserWarning, match=r"capacity reaches 0.0005 of c_max=25 nats by step 2 \(iteration_threshold=100000\)"):
        train(config, tmp_path, progress=False)
    quiet = RunConfig(model="annealed_vae", steps=2, batch_size=4, model_options={"latent_dim": 2, "iteration_threshold": 2})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(quiet, tmp_path, progress=False)
