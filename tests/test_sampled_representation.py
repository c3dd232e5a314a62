"""The sampled representation (disentanglement_lib's postprocessing ``sampled``): one seeded draw
from the posterior per observation, stored apart from the mean representation's scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import disentangle
from disentangle.base import runs
from disentangle.cli import main
from disentangle.datasets.base import FactorsAsObservations
from disentangle.base.errors import DisentangleError
from disentangle.lifecycle.evaluation import evaluate
from disentangle.metrics import human_name, list_metrics
from disentangle.metrics.registry import REPRESENTATIONS, parse_result_key, result_key
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train

GRID = FactorsAsObservations((5, 6))


def posterior_with(log_variance: float):
    """A posterior whose mean is the factor row (jittered per factor cell, so no code sits on a histogram
    bin edge) and whose log variance is ``log_variance`` everywhere."""
    def posterior(observations):
        factors = observations.reshape(len(observations), -1).astype(np.float64)
        mean = factors + 0.3 * np.sin(7 * factors[:, :1] + 3 * factors[:, 1:] + np.arange(2))
        return mean, np.full_like(mean, log_variance)
    return posterior


def _mig(log_variance, seed=0, representation="sampled"):
    result = disentangle.evaluate_representation(posterior_with(log_variance), GRID, ["mig"], profile="tiny", seed=seed,
                                                 representation=representation)
    return result


def test_sampled_codes_equal_the_mean_when_the_posterior_is_sharp_and_blur_it_when_wide():
    mean = disentangle.evaluate_representation(lambda x: posterior_with(0.0)(x)[0], GRID, ["mig"], profile="tiny")
    sharp, wide = _mig(-40.0), _mig(np.log(25.0))  # std 2e-9 vs std 5 on codes 0..5
    assert sharp["mig_sampled.discrete_mig"] == pytest.approx(mean["mig.discrete_mig"], abs=1e-9)
    assert wide["mig_sampled.discrete_mig"] < mean["mig.discrete_mig"] - 0.3
    assert "mig.discrete_mig" not in sharp and sharp["settings"]["mig_sampled"]["representation"] == "sampled"
    assert "representation" not in mean["settings"]["mig"]  # mean scores stored before sampling existed stay valid


def test_sampled_codes_follow_the_seed():
    first, again, other = _mig(0.0, seed=1), _mig(0.0, seed=1), _mig(0.0, seed=2)
    assert first["mig_sampled.discrete_mig"] == again["mig_sampled.discrete_mig"]
    assert first["mig_sampled.discrete_mig"] != other["mig_sampled.discrete_mig"]


def test_sampling_needs_a_posterior():
    with pytest.raises(DisentangleError, match=r"needs represent to return \(mean, log_variance\), got ndarray"):
        disentangle.evaluate_representation(lambda x: posterior_with(0.0)(x)[0], GRID, ["mig"], profile="tiny", representation="sampled")
    with pytest.raises(DisentangleError, match="representation must be one of mean, sampled, got 'median'"):
        disentangle.evaluate_representation(lambda x: posterior_with(0.0)(x)[0], GRID, ["mig"], profile="tiny", representation="median")


def test_result_keys_round_trip_and_read_well():
    for name in list_metrics():
        for split in ("train", "test"):
            for representation in REPRESENTATIONS:
                stored = result_key(name, split, representation)
                assert parse_result_key(stored)[0] == name
    assert result_key("iwae", "train", "sampled") == "iwae"  # a likelihood reads no codes
    assert human_name("mig_sampled_test.discrete_mig") == "MIG (sampled, test)"


def test_a_run_keeps_mean_and_sampled_scores_apart(tmp_path):
    config = RunConfig(model="beta_vae", steps=4, batch_size=8, model_options={"latent_dim": 3}, checkpoint_every=4)
    run_dir = train(config, tmp_path, progress=False)
    runner = CliRunner()
    for representation in ("mean", "sampled", "sampled"):
        result = runner.invoke(main, ["evaluate", str(run_dir), "--metrics", "mig", "--profile", "tiny", "--quiet",
                                      "--representation", representation])
        assert result.exit_code == 0, result.output
        if representation == "sampled":
            stored = json.loads((run_dir / runs.METRICS).read_text())
            assert "mig_sampled=" in result.output or "mig_sampled.discrete_mig" in result.output
    stored = json.loads((run_dir / runs.METRICS).read_text())
    assert {"mig.discrete_mig", "mig_sampled.discrete_mig"} <= set(stored)
    assert stored["settings"]["mig_sampled"]["representation"] == "sampled" and "representation" not in stored["settings"]["mig"]
    # a fresh sampled request with the same settings is the stored one: not recomputed (same timing record)
    again = evaluate(run_dir, ["mig"], profile="tiny", representation="sampled", progress=False)
    assert again["settings"]["mig_sampled"] == stored["settings"]["mig_sampled"]


def test_grid_scores_the_sampled_representation_when_asked(tmp_path):
    args = ["grid", "--model", "beta_vae", "--steps", "3", "--batch-size", "4", "--set", "latent_dim=2", "--evaluate", "mig",
            "--profile", "tiny", "--representation", "sampled", "--runs-dir", str(tmp_path), "--workers", "1", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    stored = json.loads((run_dir / runs.METRICS).read_text())
    assert "mig_sampled.discrete_mig" in stored and "mig.discrete_mig" not in stored
