"""Files users share are untrusted: opening a run or a data file never runs code from it."""

import io

import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from disentangle.base import runs
from disentangle.cli import main
from disentangle.orchestration.grid import expand
from disentangle.lifecycle.training import train
from disentangle.lifecycle.training.checkpoint import TRUST_VARIABLE, load_checkpoint


class _Payload:
    """Unpickling this calls open(marker, "w"): a harmless stand-in for code a crafted file would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def crafted_run(tmp_path_factory):
    """A finished run whose checkpoint.pt also carries a pickled object."""
    root = tmp_path_factory.mktemp("crafted")
    (config,) = expand("beta_vae", betas=(1.0,), steps=2, batch_size=8, fixed={"latent_dim": 3})
    run_dir = train(config, root / "runs", progress=False)
    state = load_checkpoint(run_dir / runs.CHECKPOINT)
    marker = root / "code-ran"
    buffer = io.BytesIO()
    torch.save({**state, "extra": _Payload(marker)}, buffer)
    (run_dir / runs.CHECKPOINT).write_bytes(buffer.getvalue())
    runs.write_manifest(run_dir, config.run_id())  # a crafter writes the manifest too: the load itself must refuse
    return run_dir, marker


@pytest.mark.parametrize("command", [["evaluate", "--metrics", "mig", "--fast"], ["traverse"], ["export"]])
def test_opening_a_crafted_checkpoint_is_refused_without_running_it(crafted_run, tmp_path, command):
    run_dir, marker = crafted_run
    args = [*command, str(run_dir)] + ([str(tmp_path / "export")] if command == ["export"] else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "refused" in result.output and TRUST_VARIABLE in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not marker.exists()


def test_resuming_or_regridding_a_crafted_run_does_not_run_it(crafted_run):
    run_dir, marker = crafted_run
    result = CliRunner().invoke(main, ["grid", "--model", "beta_vae", "--beta", "1", "--steps", "2", "--batch-size", "8",
                                       "--set", "latent_dim=3", "--evaluate", "", "--workers", "1",
                                       "--runs-dir", str(run_dir.parent), "--quiet"])
    assert not marker.exists()
    assert "already done" in result.output or "1 skipped" in result.output  # judged by its manifest, never unpickled


def test_the_opt_in_loads_a_trusted_file(crafted_run, monkeypatch):
    run_dir, marker = crafted_run
    monkeypatch.setenv(TRUST_VARIABLE, "1")
    assert "model" in load_checkpoint(run_dir / runs.CHECKPOINT)
    assert marker.exists()  # full unpickling: exactly what the opt-in allows
    marker.unlink()


def test_every_checkpoint_the_project_writes_loads_without_unpickling(tmp_path):
    (config,) = expand("factor_vae", steps=3, batch_size=8, fixed={"latent_dim": 3}, checkpoint_every=2)
    run_dir = train(config, tmp_path, progress=False)
    state = torch.load(run_dir / runs.CHECKPOINT, weights_only=True)
    assert {"model", "optimizers", "torch_rng", "numpy_rng", "log_rows", "step"} <= set(state)


def test_a_crafted_dsprites_npz_is_refused_without_running_it(tmp_path):
    from disentangle.datasets import get_dataset
    from disentangle.base.errors import DisentangleError

    marker = tmp_path / "code-ran"
    imgs = np.empty(1, dtype=object)
    imgs[0] = _Payload(marker)
    path = tmp_path / "dsprites.npz"
    np.savez(path, imgs=imgs, latents_classes=np.zeros((1, 6), dtype=np.int64))
    with pytest.raises(DisentangleError, match="is not a dSprites npz file"):
        get_dataset("dsprites", source="npz", path=str(path), verify=False)
    assert not marker.exists()


def test_export_never_overwrites_a_run(tmp_path):
    (a_config, b_config) = expand("beta_vae", betas=(1.0, 4.0), steps=2, batch_size=8, fixed={"latent_dim": 3})
    a, b = train(a_config, tmp_path / "runs", progress=False), train(b_config, tmp_path / "runs", progress=False)
    full = (a / runs.CHECKPOINT).read_bytes()
    for target in (a, b, a / "sub"):  # onto itself, onto another run, inside itself
        result = CliRunner().invoke(main, ["export", str(a), str(target)])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert not (a / "sub").exists()
    assert (a / runs.CHECKPOINT).read_bytes() == full
    assert "optimizers" in load_checkpoint(b / runs.CHECKPOINT)  # b keeps its own full checkpoint
    out = tmp_path / "exported"
    for _ in range(2):  # exporting again into the run's own export refreshes it
        assert CliRunner().invoke(main, ["export", str(a), str(out)]).exit_code == 0
    assert set(load_checkpoint(out / runs.CHECKPOINT)) == {"model", "step"}


def test_a_killed_export_leaves_no_half_export(tmp_path, monkeypatch):
    import shutil

    (config,) = expand("beta_vae", steps=2, batch_size=8, fixed={"latent_dim": 3})
    run = train(config, tmp_path / "runs", progress=False)
    out = tmp_path / "shared" / "run"
    assert CliRunner().invoke(main, ["export", str(run), str(out)]).exit_code == 0
    exported = {p.name: p.read_bytes() for p in out.iterdir()}
    copies, copy = [], shutil.copyfile

    def killed_midway(source, target, **kwargs):  # the second file copied: the export is killed there
        copies.append(source)
        if len(copies) == 2:
            raise KeyboardInterrupt
        return copy(source, target, **kwargs)

    (run / runs.METRICS).write_text('{"mig.discrete_mig": 0.5}')  # the run changed since: a half export would show it
    monkeypatch.setattr(shutil, "copyfile", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        from disentangle.lifecycle.training.export import export_run

        export_run(run, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == exported  # the earlier export, whole
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]  # no staging folder left
    monkeypatch.undo()
    (out.parent / ".run.export-left-by-a-kill").mkdir()  # what SIGKILL leaves: the next export clears it
    fresh = tmp_path / "shared" / "fresh"
    assert CliRunner().invoke(main, ["export", str(run), str(out)]).exit_code == 0
    assert not (out.parent / ".run.export-left-by-a-kill").exists() and runs.read_status(out) == "done"
    assert out.stat().st_mode & 0o055 == 0o055 & ~os.umask(os.umask(0))  # shared: readable by others, as the umask allows
    assert not fresh.exists()


@pytest.mark.parametrize(("content", "message"), [("npy", "is a single .npy array"), ("empty", "is not a readable .npz file")])
def test_score_codes_on_a_npy_or_empty_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "codes.npz"
    if content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros((4, 2)))
    else:
        path.write_bytes(b"")
    result = CliRunner().invoke(main, ["score", "--codes", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_checkpoint_that_does_not_fit_its_config_is_one_line_and_never_exported(tmp_path):
    (config,) = expand("beta_vae", steps=2, batch_size=8, fixed={"latent_dim": 3})
    run = train(config, tmp_path / "runs", progress=False)
    state = load_checkpoint(run / runs.CHECKPOINT)
    name = next(k for k, v in state["model"].items() if v.ndim == 2)
    state["model"][name] = torch.zeros(*(s + 1 for s in state["model"][name].shape))  # one tensor of another shape
    torch.save(state, run / runs.CHECKPOINT)
    runs.write_manifest(run, config.run_id())  # its manifest agrees: the misfit itself must be caught
    for command in (["evaluate", str(run), "--metrics", "mig", "--profile", "tiny"], ["export", str(run), str(tmp_path / "out")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert f"does not fit the model its config describes: 1 tensor(s) of other shapes (e.g. {name}" in result.output
    assert not (tmp_path / "out").exists()
    del state["model"][name]
    torch.save(state, run / runs.CHECKPOINT)
    runs.write_manifest(run, config.run_id())
    assert "1 missing" in CliRunner().invoke(main, ["export", str(run), str(tmp_path / "out")]).output
