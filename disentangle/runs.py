"""The run folder contract (DESIGN.md): ``runs/<run-id>/`` with config.json,
checkpoint.pt, log.csv, metrics.json and status, every file written atomically.

A run id is derived from the run's config, so re-launching the same config finds
the same folder, skips it when done and resumes it when not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from disentangle import __version__
from disentangle._io import atomic_write_json, atomic_write_text
from disentangle.errors import DisentangleError

CONFIG, CHECKPOINT, LOG, METRICS, STATUS, LOCK = "config.json", "checkpoint.pt", "log.csv", "metrics.json", "status", ".lock"


@dataclasses.dataclass
class RunConfig:
    """Everything needed to rebuild a run. ``model_options`` go to ``build_model``."""

    model: str
    dataset: str = "dsprites"
    steps: int = 1000
    seed: int = 0
    batch_size: int = 64
    model_options: dict = dataclasses.field(default_factory=dict)
    dataset_options: dict = dataclasses.field(default_factory=dict)
    precision: str = "fp32"  # "bf16": the networks under bfloat16 autocast (opt-in; loss terms stay float32)
    checkpoint_every: int = 1000
    log_every: int = 50
    device: str = "auto"  # where it trains (auto: CUDA when available); not part of the run id

    # settings that change how a run is executed but not its result
    _NOT_IDENTITY = ("checkpoint_every", "log_every", "device")
    # data set options that say where and how the files are read, not which data it is
    _NOT_IDENTITY_DATASET_OPTIONS = ("root", "verify", "in_memory", "progress")

    def identity(self) -> dict[str, Any]:
        """What the run is (hashed into its id): not where its data lives nor how often it saves."""
        data = dataclasses.asdict(self)
        for key in self._NOT_IDENTITY:
            data.pop(key)
        data["dataset_options"] = {k: v for k, v in data["dataset_options"].items() if k not in self._NOT_IDENTITY_DATASET_OPTIONS}
        return data

    def run_id(self) -> str:
        digest = hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]
        options = "".join(f"-{k}{_short(v)}" for k, v in sorted(self.model_options.items()) if k in _NAMED_OPTIONS)
        return f"{self.model}-{self.dataset}{options}-seed{self.seed}-{digest}"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "package_version": __version__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def default_checkpoint_every(steps: int) -> int:
    """Checkpoint every 1,000 steps, or once at the end of a shorter run."""
    return max(1, min(1000, steps))


_NAMED_OPTIONS = ("beta", "gamma", "lambda_od", "c_max", "latent_dim")


def _short(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def read_config_data(run_dir: str | Path):
    """``run_dir/config.json`` as written (with ``package_version``), or a one-line error if missing or unreadable."""
    path = Path(run_dir) / CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DisentangleError(f"{run_dir} is not a run folder: no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DisentangleError(f"{path} is corrupt ({error})") from None


def config_from_data(data, run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` of ``config.json`` content already read, or a one-line error if corrupt."""
    try:
        return RunConfig.from_json(data)
    except TypeError as error:
        raise DisentangleError(f"{Path(run_dir) / CONFIG} is corrupt ({error})") from None


def read_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` in ``run_dir/config.json``, or a one-line error if missing or corrupt."""
    return config_from_data(read_config_data(run_dir), run_dir)


def write_config(run_dir: Path, config: RunConfig) -> None:
    """Write ``config`` (and the package version) to ``run_dir/config.json`` atomically."""
    atomic_write_json(run_dir / CONFIG, config.to_json())


INTERRUPTED = "interrupted"  # stopped by Ctrl-C: resumable, never skipped as failed


def read_status(run_dir: str | Path) -> str:
    """The run's status line: ``running``, ``done``, ``failed: ...``, or ``new`` without a file."""
    try:
        return (Path(run_dir) / STATUS).read_text().strip() or "unknown"
    except FileNotFoundError:
        return "new"


def write_status(run_dir: Path, status: str) -> None:
    """Write the one-line status atomically."""
    atomic_write_text(run_dir / STATUS, status.replace("\n", " ") + "\n")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The run's metrics.json as a dict ({} without a file), or a one-line error if corrupt."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DisentangleError(f"{path} is corrupt ({error})") from None
    if not isinstance(data, dict):
        raise DisentangleError(f"{path} is corrupt (expected a JSON object)")
    return data


class RunLocked(DisentangleError):
    """Another process holds this run."""


def check_locks_work(folder: Path) -> None:
    """Raise a one-line error when ``folder``'s file system ignores ``flock`` (some network file
    systems do): two processes could then train one run at once. Probed with two descriptors of
    one file, which ``flock`` makes conflict even within a process."""
    probe = Path(folder) / ".lock-probe"
    first = os.open(probe, os.O_RDWR | os.O_CREAT, 0o644)
    second = os.open(probe, os.O_RDWR)
    try:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        raise DisentangleError(f"the file system of {folder} ignores file locks (flock): use a local folder or NFSv4 "
                               "(where Linux maps flock to POSIX locks) for the runs folder")
    finally:
        os.close(second)
        os.close(first)
        probe.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive, non-blocking lock on a run folder for the duration.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a killed
    run never stays locked.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"run {run_dir} is in use by another process (training or evaluating it)") from None
        yield
    finally:
        os.close(fd)
