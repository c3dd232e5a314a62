"""``--compile``: torch.compile of the loss, with the same noise as eager and an eager fallback."""

import warnings

import pandas as pd
import pytest
import torch

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.lifecycle.training import train

TINY = {"steps": 30, "batch_size": 8, "fixed": {"latent_dim": 3, "architecture": "mlp"}}


def _log(run_dir):
    return pd.read_csv(run_dir / runs.LOG).drop(columns="images_per_s")


@pytest.mark.slow
def test_a_compiled_run_matches_the_eager_run_and_keeps_its_id(tmp_path):
    (eager,) = grid.expand("beta_vae", **TINY)
    (compiled,) = grid.expand("beta_vae", compile_loss=True, **TINY)
    assert compiled.run_id() == eager.run_id()  # how it runs, not what it is
    eager_dir, compiled_dir = train(eager, tmp_path / "eager", progress=False), train(compiled, tmp_path / "compiled", progress=False)
    assert runs.read_config(compiled_dir).compile is True
    pd.testing.assert_frame_equal(_log(compiled_dir), _log(eager_dir), rtol=1e-4)  # same noise draws; fused ops round differently


def test_a_loss_that_fails_to_compile_trains_eagerly_with_a_warning(tmp_path, monkeypatch):
    def backend_without_a_compiler(graph, example_inputs):  # what a machine without a C++ compiler meets
        raise RuntimeError("no C++ compiler")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda function, **kw: real_compile(function, backend=backend_without_a_compiler))
    torch._dynamo.reset()
    (eager,) = grid.expand("beta_vae", **TINY)
    (compiled,) = grid.expand("beta_vae", compile_loss=True, **TINY)
    eager_dir = train(eager, tmp_path / "eager", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled_dir = train(compiled, tmp_path / "compiled", progress=False)
    assert any("torch.compile failed" in str(w.message) and "training eagerly" in str(w.message) for w in caught)
    pd.testing.assert_frame_equal(_log(compiled_dir), _log(eager_dir))  # the failed attempt changed nothing
