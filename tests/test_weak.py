"""Weak supervision (Locatello et al. 2020): the pair samplers, the adaptive sharing rule, the
aggregates, the pair models' loss, and training on pairs with every guarantee of a run."""

import csv
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from disentangle import DisentangleError
from disentangle.base import runs
from disentangle.cli import main
from disentangle.datasets import get_dataset
from disentangle.datasets.pairs import sample_pair_batch, sample_pairs
from disentangle.models import get_model
from disentangle.models.weak import adaptive_shared, aggregate, known_shared, pairwise_kl
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train
from disentangle.lifecycle.training.checkpoint import load_checkpoint

SIZES = (3, 6, 40, 32, 32)  # dSprites


# -- pair samplers --------------------------------------------------------------------------------

def _first(n, seed=0, sizes=SIZES):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1), rng


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_paper_sampler_changes_exactly_k_factors_each_to_another_value(k):
    factors, rng = _first(5000)
    second, changed = sample_pairs(SIZES, factors, rng, k=k)
    differs = second != factors
    assert (differs == changed).all()  # every chosen factor really changed, no other did
    assert (differs.sum(1) == k).all()
    assert ((second >= 0) & (second < np.array(SIZES))).all()


def test_paper_sampler_k_is_uniform_on_1_to_K_minus_1_and_factors_uniform():
    factors, rng = _first(40_000)
    second, changed = sample_pairs(SIZES, factors, rng, k="random")
    counts = np.bincount(changed.sum(1), minlength=6)
    assert counts[0] == 0 and counts[5] == 0  # never none, never all
    assert np.allclose(counts[1:5] / 40_000, 0.25, atol=0.01)  # U{1, ..., 4}
    # by symmetry each factor is chosen with probability E[k] / K = 2.5 / 5
    assert np.allclose(changed.mean(0), 0.5, atol=0.015)


def test_paper_sampler_new_value_is_uniform_over_the_other_values():
    sizes = (4, 3)
    factors = np.zeros((30_000, 2), dtype=np.int64)
    second, changed = sample_pairs(sizes, factors, np.random.default_rng(1), k=1)
    for j, size in enumerate(sizes):
        values = second[changed[:, j], j]
        frequencies = np.bincount(values, minlength=size) / len(values)
        assert frequencies[0] == 0
        assert np.allclose(frequencies[1:], 1 / (size - 1), atol=0.02)


def test_reference_sampler_changes_one_or_k_factors_and_may_keep_a_value():
    factors, rng = _first(20_000, sizes=(2, 2, 2, 2, 2))
    second, changed = sample_pairs((2,) * 5, factors, rng, k=3, sampler="disentanglement_lib")
    chosen = changed.sum(1)
    assert set(np.unique(chosen)) == {1, 3}
    assert abs((chosen == 1).mean() - 0.5) < 0.02  # random_state.choice([1, k])
    differs = second != factors
    assert not differs[~changed].any()
    kept = (~differs[changed]).mean()
    assert abs(kept - 0.5) < 0.02  # a binary factor redrawn uniformly keeps its value half the time


def test_pair_stream_is_seeded():
    data = get_dataset("dsprites")
    a = sample_pair_batch(data, 16, np.random.default_rng(3))
    b = sample_pair_batch(data, 16, np.random.default_rng(3))
    c = sample_pair_batch(data, 16, np.random.default_rng(4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (32, 1, 64, 64) and a[1].shape == (16, 5)


@pytest.mark.parametrize(("sizes", "k", "sampler", "message"), [
    ((10,), "random", "locatello2020", "at least two factors"),
    (SIZES, 5, "locatello2020", "k must be 'random' or an integer from 1 to 4"),
    (SIZES, 0, "locatello2020", "k must be"),
    (SIZES, 1, "nope", "pair_sampler must be one of"),
])
def test_bad_pair_options(sizes, k, sampler, message):
    factors, rng = _first(4, sizes=sizes)
    with pytest.raises(DisentangleError, match=message):
        sample_pairs(sizes, factors, rng, k=k, sampler=sampler)


# -- sharing and aggregation on hand-made posteriors ----------------------------------------------

def test_adaptive_sharing_averages_the_dims_below_the_kl_midpoint():
    kl = torch.tensor([[0.0, 0.1, 5.0, 4.0, 2.4, 2.5],
                       [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])  # a constant row: nothing changed, share all
    assert adaptive_shared(kl).tolist() == [[True, True, False, False, True, False],
                                            [True] * 6]


@pytest.mark.parametrize(("kl", "target"), [
    # disentanglement_lib's weak_vae_test.test_aggregate_argmax, restated: own mean 0 (or 1),
    # aggregate 1 (or 0); a shared dim takes the aggregate, the others keep their own value
    (np.concatenate([np.zeros((64, 5)), np.ones((64, 5))], 1), np.concatenate([np.ones((64, 5)), np.zeros((64, 5))], 1)),
    (np.array([[0.0, 0.1]]), np.array([[0.0, 1.0]])),
])
def test_reference_aggregate_argmax_cases(kl, target):
    own = np.zeros_like(kl) if kl.shape[1] == 10 else np.ones_like(kl)
    new = 1.0 - own
    shared = adaptive_shared(torch.tensor(kl))
    assert np.array_equal(torch.where(shared, torch.tensor(new), torch.tensor(own)).numpy(), target)


def test_known_changes_share_every_other_dim():
    changed = torch.tensor([[True, False, False], [False, True, True]])
    assert known_shared(changed, 5).tolist() == [[False, True, True, True, True], [True, False, False, True, True]]


def test_aggregates_by_hand():
    mu1, mu2 = torch.tensor([[0.0]]), torch.tensor([[2.0]])
    logvar1, logvar2 = torch.log(torch.tensor([[1.0]])), torch.log(torch.tensor([[3.0]]))
    mean, logvar = aggregate(mu1, logvar1, mu2, logvar2, "mean")
    assert mean.item() == pytest.approx(1.0) and logvar.exp().item() == pytest.approx(2.0)
    mean, logvar = aggregate(mu1, logvar1, mu2, logvar2, "product")
    # product of experts: mean (0/1 + 2/3) / (1/1 + 1/3) = 0.5; the reference's variance 2*1*3/(1+3) = 1.5
    assert mean.item() == pytest.approx(0.5) and logvar.exp().item() == pytest.approx(1.5)


def test_pairwise_kl_is_the_gaussian_kl():
    g = torch.Generator().manual_seed(0)
    mu1, mu2, lv1, lv2 = (torch.randn(7, 4, generator=g, dtype=torch.float64) for _ in range(4))
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mu1, (0.5 * lv1).exp()),
                                                 torch.distributions.Normal(mu2, (0.5 * lv2).exp()))
    assert torch.allclose(pairwise_kl(mu1, lv1, mu2, lv2), expected)


# -- the models ---------------------------------------------------------------------------------------

def _pair(model_name, **options):
    torch.manual_seed(0)
    return get_model(model_name, latent_dim=6, beta=3.0, **options)


@pytest.mark.parametrize("name", ["ada_gvae", "ada_ml_vae"])
def test_identical_pair_is_beta_vae_on_both_images(name):
    """Two equal images: equal posteriors, every dim shared, the aggregate equals each posterior,
    so the loss is beta-VAE's on the stacked batch with the same weights and noise."""
    model, beta_vae = _pair(name), _pair("beta_vae")
    beta_vae.load_state_dict(model.state_dict())
    x = torch.from_numpy(get_dataset("dsprites").sample(4, np.random.default_rng(0))[1])
    stacked = torch.cat([x, x])
    torch.manual_seed(1)
    out = model.loss(stacked)
    torch.manual_seed(1)
    reference = beta_vae.loss(stacked)
    assert out["shared_dims"].item() == 6
    for key in ("loss", "recon", "kl"):
        assert torch.allclose(out[key], reference[key], rtol=1e-5, atol=1e-6), key


@pytest.mark.parametrize("name", ["ada_gvae", "ada_ml_vae", "group_vae", "ml_vae"])
def test_loss_by_hand_from_given_posteriors(name, monkeypatch):
    """The loss from posteriors fixed by hand (noise off): which dims are aggregated, with which
    values, and the KL of what results."""
    model = get_model(name, latent_dim=5, beta=2.0)
    mu = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0, 0.0]])  # pair 0: dim 0 differs a lot
    logvar = torch.zeros(2, 5)
    monkeypatch.setattr(model, "encode", lambda x: (mu, logvar))
    monkeypatch.setattr(model, "reparameterize", lambda m, lv: m)
    monkeypatch.setattr(model, "decode", lambda z: z)
    monkeypatch.setattr(model, "reconstruction_loss", lambda x, logits: torch.tensor(7.0))
    x = torch.zeros(2, 1, 64, 64)
    changed = torch.tensor([[True, False, False, False, False]])  # known: factor 0 changed
    out = model.loss(x, 0, changed=changed)
    # dim 0 is not shared (adaptive: KL 4.5 is the max; known: factor 0 changed), dims 1-4 are
    # shared and equal in both posteriors, so every posterior keeps its own values
    expected_kl = (0.5 * mu.pow(2)).sum(1).mean()  # logvar 0: KL = mu^2 / 2 per dim
    assert out["kl"].item() == pytest.approx(expected_kl.item())
    assert out["loss"].item() == pytest.approx(7.0 + 2.0 * expected_kl.item())
    assert out["shared_dims"].item() == 4


def test_sharing_replaces_shared_dims_by_the_aggregate(monkeypatch):
    model = get_model("ada_gvae", latent_dim=3, beta=1.0)
    mu = torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.2, 0.0]])
    logvar = torch.zeros(2, 3)
    monkeypatch.setattr(model, "encode", lambda x: (mu, logvar))
    monkeypatch.setattr(model, "reparameterize", lambda m, lv: m)
    captured = {}
    monkeypatch.setattr(model, "decode", lambda z: captured.setdefault("z", z))
    monkeypatch.setattr(model, "reconstruction_loss", lambda x, logits: torch.tensor(0.0))
    model.loss(torch.zeros(2, 1, 64, 64))
    # KL per dim 8.0, 0.02, 0: midpoint 4.0, so dims 1 and 2 are averaged (0.1 and 0), dim 0 is kept
    assert captured["z"].tolist() == [[0.0, pytest.approx(0.1), 0.0], [4.0, pytest.approx(0.1), 0.0]]


def test_known_change_models_need_the_changes():
    model = get_model("group_vae", latent_dim=5)
    with pytest.raises(DisentangleError, match="needs the changed factors"):
        model.loss(torch.zeros(2, 1, 64, 64))


# -- training on pairs -----------------------------------------------------------------------------

def _config(model="ada_gvae", steps=12, **options):
    return RunConfig(model=model, steps=steps, batch_size=4, model_options={"latent_dim": 5, "beta": 2.0, **options},
                     checkpoint_every=4, log_every=3)


@pytest.mark.parametrize("name", ["ada_gvae", "ada_ml_vae", "group_vae", "ml_vae"])
def test_pair_models_train_and_log(tmp_path, name):
    run_dir = train(_config(name, steps=6), tmp_path, progress=False)
    rows = list(csv.DictReader(open(run_dir / runs.LOG)))
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert {"shared_dims", "pair_kl", "kl_4"} <= set(rows[0])
    assert 0 <= float(rows[0]["shared_dims"]) <= 5


def test_pair_run_resumes_bit_identical_after_sigkill(tmp_path):
    steps = 40
    straight = load_checkpoint(train(_config(steps=steps), tmp_path / "straight", progress=False) / runs.CHECKPOINT)["model"]
    killed_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "disentangle", "train", "--model", "ada_gvae", "--beta", "2.0", "--set", "latent_dim=5",
               "--steps", str(steps), "--batch-size", "4", "--checkpoint-every", "4", "--log-every", "3",
               "--runs-dir", str(killed_dir), "--quiet", "--threads", str(torch.get_num_threads())]
    process = subprocess.Popen(command)
    checkpoint = killed_dir / _config(steps=steps).run_id() / runs.CHECKPOINT
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_checkpoint(checkpoint)["step"] < steps, "the run finished before it could be killed"
    resumed = load_checkpoint(train(_config(steps=steps), killed_dir, progress=False) / runs.CHECKPOINT)["model"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "ada_gvae", "--dataset", "mnist"], "at least two factors"),
    (["--model", "ada_gvae", "--set", "k=5"], "k must be 'random' or an integer from 1 to 4"),
    (["--model", "ada_gvae", "--set", "k=0"], "k must be"),
    (["--model", "ada_ml_vae", "--set", "pair_sampler=paper"], "pair_sampler must be one of"),
    (["--model", "group_vae", "--set", "latent_dim=3"], "latent_dim must be at least 5"),
])
def test_bad_pair_input_is_one_line_and_creates_nothing(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", *args, "--steps", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_pair_run_evaluates_and_traverses(tmp_path):
    from disentangle.lifecycle.evaluation import evaluate
    from disentangle.reports.viz import render_run_figures

    run_dir = train(_config(steps=4), tmp_path, progress=False)
    scores = evaluate(run_dir, ["mig", "sap"], profile="tiny", progress=False)
    assert 0 <= scores["mig.discrete_mig"] <= 1
    assert render_run_figures(run_dir, tmp_path / "figures")
