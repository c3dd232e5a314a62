"""Sharing a finished run: a copy with the model weights only (``disentangle export``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from disentangle.base import runs
from disentangle.base.files import current_umask
from disentangle.base.errors import DisentangleError
from disentangle.lifecycle.training.checkpoint import load_run_checkpoint, load_weights
from disentangle.lifecycle.training.loading import model_for_config


def export_run(run_dir: Path, out_dir: Path) -> Path:
    """Copy a finished run to ``out_dir`` for sharing: config.json (without the data
    location), status, metrics.json, log.csv, and a ``checkpoint.pt`` with the model weights only (``{"model": ..., "step": ...}``,
    no optimizer state or RNG), which ``evaluate`` and ``traverse`` accept."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.resolve() == run_dir.resolve():
        raise DisentangleError(f"export {run_dir} onto itself would replace its full checkpoint with the weights only: "
                               "give another folder")
    if out_dir.resolve().is_relative_to(run_dir.resolve()):
        raise DisentangleError(f"export {run_dir} into {out_dir} would nest the export inside the run it copies: give a folder outside it")
    if out_dir.exists() and any(out_dir.iterdir()) and not _same_run(run_dir, out_dir):
        raise DisentangleError(f"{out_dir} is not empty and is not an export of {run_dir}: give a new or empty folder")
    if runs.read_status(run_dir) != "done":
        raise DisentangleError(f"{run_dir} is not finished (status: {runs.read_status(run_dir)}): only finished runs are exported")
    state = load_run_checkpoint(run_dir)  # verified against its manifest: never another run's weights under this name
    data = runs.read_config_data(run_dir)
    config = runs.config_from_data(data, run_dir)
    load_weights(model_for_config(config), state, run_dir / runs.CHECKPOINT)  # a misfit is not exported as good
    config.dataset_options.pop("root", None)  # where the data lived on this machine: --data-root says it elsewhere
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.export-*"):  # what a killed export left
        shutil.rmtree(stale, ignore_errors=True)
    # the export is built in a hidden sibling and renamed into place whole: a kill leaves no half export
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700; an export is meant to be shared
    try:
        torch.save({"model": state["model"], "step": state["step"]}, staging / runs.CHECKPOINT)
        recorded = data.get("resolved_model_options")
        runs.write_config(staging, config, recorded if isinstance(recorded, dict) else None, runs.trained_with(data))
        runs.write_manifest(staging, config.run_id())  # the weights-only checkpoint's own
        for name in (runs.METRICS, runs.LOG, runs.STATUS):
            if (run_dir / name).exists():
                shutil.copyfile(run_dir / name, staging / name)
        if out_dir.exists():  # empty, or an earlier export of this run: replaced whole
            previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-previous-", dir=out_dir.parent))
            os.replace(out_dir, previous / "run")
            os.replace(staging, out_dir)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _same_run(run_dir: Path, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an earlier export of the same run (same config identity), which a
    new export may refresh."""
    try:
        return runs.read_config(out_dir).identity() == runs.read_config(run_dir).identity()
    except DisentangleError:
        return False
