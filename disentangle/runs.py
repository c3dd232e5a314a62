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
from disentangle._io import atomic_write_json, atomic_write_text, exclusive_lock, finite_json_value, md5_file
from disentangle.errors import DisentangleError

CONFIG, CHECKPOINT, LOG, METRICS, STATUS, LOCK = "config.json", "checkpoint.pt", "log.csv", "metrics.json", "status", ".lock"
PRECISIONS = ("fp32", "bf16")  # what a run is (in its id)
PRECISION_CHOICES = ("auto", *PRECISIONS)  # what may be asked: auto resolves on the run's device before the id


def check_precision(precision) -> str:
    """``precision`` if it is one of auto, fp32, bf16, else a one-line error listing them: the one check
    of a precision, wherever it is given (options, study files, configs)."""
    if precision not in PRECISION_CHOICES:
        raise DisentangleError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    return precision


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run. ``model_options`` go to ``build_model``."""

    model: str
    dataset: str = "dsprites"
    steps: int = 20000  # the one default: train, grid and study files without steps train this many
    seed: int = 0
    batch_size: int = 64
    model_options: dict = dataclasses.field(default_factory=dict)
    dataset_options: dict = dataclasses.field(default_factory=dict)
    precision: str = "fp32"  # "bf16": the networks under bfloat16 autocast (opt-in; loss terms stay float32)
    checkpoint_every: int = 1000
    log_every: int = 50
    device: str = "auto"  # where it trains (auto: CUDA when available); not part of the run id
    compile: bool = False  # torch.compile the loss (falls back to eager if compiling fails); not part of the run id
    loggers: list = dataclasses.field(default_factory=list)  # experiment trackers besides log.csv; not part of the run id
    tracking_uri: str | None = None  # where the mlflow tracker writes (default: the runs folder's mlflow.db)

    # settings that change how a run is executed but not what it is
    _NOT_IDENTITY = ("checkpoint_every", "log_every", "device", "compile", "loggers", "tracking_uri")
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

    def to_json(self, resolved_model_options: dict | None = None) -> dict[str, Any]:
        """The config as config.json holds it, with the package version and (when given) every
        model option the run resolved, defaults included; neither is part of the run id."""
        data = {**dataclasses.asdict(self), "package_version": __version__}
        if resolved_model_options is not None:
            data["resolved_model_options"] = resolved_model_options
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunConfig":
        """The config in ``data`` (config.json content); a one-line error naming the first field of the
        wrong kind."""
        if not isinstance(data, dict):
            raise DisentangleError(f"expected a JSON object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        for name, expected in _FIELD_TYPES.items():
            if name in data and (not isinstance(data[name], expected) or (isinstance(data[name], bool) and expected is not bool)):
                expected_name = expected.__name__ if isinstance(expected, type) else "str or null"
                raise DisentangleError(f"{name} is {data[name]!r}, expected {expected_name}")
        if "model" not in data:
            raise DisentangleError("no model")
        return cls(**{k: v for k, v in data.items() if k in fields})


RUN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING}
"""Every run setting's default, from :class:`RunConfig` alone: what the command line, ``grid.expand`` and
study files fall back to when a value is not given (``RUN_DEFAULTS["steps"]``: 20,000)."""


_KINDS = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list, "str | None": (str, type(None))}
_FIELD_TYPES = {f.name: _KINDS[f.type] for f in dataclasses.fields(RunConfig)}  # config.json's kinds, from the annotations


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
    except (FileNotFoundError, NotADirectoryError):
        raise DisentangleError(f"{run_dir} is not a run folder: no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DisentangleError(f"{path} is corrupt ({error})") from None


def config_from_data(data, run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` of ``config.json`` content already read, or a one-line error if corrupt."""
    try:
        return RunConfig.from_json(data)
    except (TypeError, DisentangleError) as error:
        raise DisentangleError(f"{Path(run_dir) / CONFIG} is corrupt ({error})") from None


def read_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` in ``run_dir/config.json``, or a one-line error if missing or corrupt."""
    return config_from_data(read_config_data(run_dir), run_dir)


def write_config(run_dir: Path, config: RunConfig, resolved_model_options: dict | None = None) -> None:
    """Write ``config`` (the package version, the resolved model options) to ``run_dir/config.json`` atomically."""
    atomic_write_json(run_dir / CONFIG, config.to_json(resolved_model_options))


MANIFEST = "manifest.json"  # the finished checkpoint's size and md5: reruns tell a broken run apart without loading it


def write_manifest(run_dir: Path) -> None:
    """Record the checkpoint's size and md5 (written when a run finishes, and by an export)."""
    path = Path(run_dir) / CHECKPOINT
    atomic_write_json(Path(run_dir) / MANIFEST, {"checkpoint": {"bytes": path.stat().st_size, "md5": md5_file(path)}})


FIGURES = "figures"  # the run's own figures (grid --figures, traverse): the report copies them rather than draw


def drawn_from_current_run(path: str | Path, run_dir: str | Path) -> bool:
    """Whether the file at ``path`` (a run's figure) exists and is no older than the run's checkpoint
    and log, so it shows the model as it now is; a stat of each, nothing read."""
    try:
        drawn = Path(path).stat().st_mtime
    except OSError:
        return False
    for source in (Path(run_dir) / CHECKPOINT, Path(run_dir) / LOG):
        try:
            if source.stat().st_mtime > drawn:
                return False
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def checkpoint_intact(run_dir: str | Path) -> bool | None:
    """Whether a finished run's checkpoint is the one its manifest records, by its size alone (a stat,
    no read); None for a run without a manifest (made before manifests: load it to know)."""
    try:
        recorded = json.loads((Path(run_dir) / MANIFEST).read_text())["checkpoint"]["bytes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        return (Path(run_dir) / CHECKPOINT).stat().st_size == recorded
    except OSError:
        return False


RUNNING = "running"
INTERRUPTED = "interrupted (resumable)"  # stopped by a signal, a full disk or a kill: the next train or grid continues it
UNREADABLE = "unknown (unreadable status file)"


def read_status(run_dir: str | Path) -> str:
    """The run's status: ``running`` (a live process holds it), ``done``, ``failed: ...``,
    ``interrupted (resumable)`` (also a ``running`` run whose process died: nobody holds its lock),
    ``new`` without a file, or ``unknown (...)`` for an unreadable file."""
    try:
        status = (Path(run_dir) / STATUS).read_text(encoding="utf-8").strip() or "unknown (empty status file)"
    except (FileNotFoundError, NotADirectoryError):
        return "new"
    except UnicodeDecodeError:
        return UNREADABLE
    if status.startswith("interrupted") or (status == RUNNING and not is_held(run_dir)):
        return INTERRUPTED
    return status


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
    return {_current_key(key): finite_json_value(value) for key, value in data.items()}


# result keys renamed since runs stored them: read under the current name (continuous-factor
# keys end in ``_r2``, as DCI's and DCI-ES's always did; SAP's was ``sap_score_continuous``)
_RENAMED_KEYS = {"sap_score_continuous": "sap_score_r2"}


def _current_key(key: str) -> str:
    metric, dot, name = key.partition(".")
    return f"{metric}.{_RENAMED_KEYS[name]}" if dot and name in _RENAMED_KEYS else key


_LOCK_ATTEMPTS = 5


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


def is_held(run_dir: str | Path) -> bool:
    """Whether a live process holds the run's lock (training or evaluating it), probed without
    creating anything: a shared lock taken and dropped at once (:func:`run_lock` retries briefly,
    so the probe never makes a trainer give up)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return False  # a trainer creates the lock file before it writes "running"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive, non-blocking lock on a run folder for the duration.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a killed
    run never stays locked.
    """
    busy = RunLocked(f"run {run_dir} is in use by another process (training or evaluating it)")
    with exclusive_lock(run_dir / LOCK, busy, attempts=_LOCK_ATTEMPTS):  # a reader's is_held probe holds it for microseconds
        yield
