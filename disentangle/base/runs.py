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
import math
import os
from pathlib import Path
from typing import Any

from disentangle import __version__
from disentangle.base.files import (UntrustedFileError, atomic_write_json, atomic_write_text, exclusive_lock, finite_json_value, md5_file,
                             open_inside, read_inside, read_tail_inside)
from disentangle.base.errors import DisentangleError

CONFIG, CHECKPOINT, LOG, METRICS, STATUS, LOCK = "config.json", "checkpoint.pt", "log.csv", "metrics.json", "status", ".lock"
MANIFEST = "manifest.json"  # the finished checkpoint's size, md5 and run id: reruns tell a broken run apart without loading it
VERIFIED = ".verified"  # this machine's memory of a checkpoint it verified: its stat signature and md5

MAX_BYTES = {CONFIG: 1 << 20, METRICS: 64 << 20, STATUS: 4 << 10, MANIFEST: 64 << 10, VERIFIED: 4 << 10, CHECKPOINT: 4 << 30}
"""The schema's size bounds: the most bytes each file of a run folder may hold (a larger one is refused
unread). ``log.csv`` has none: only its tail is read (:func:`read_log_tail`)."""


def read_run_file(run_dir: str | Path, name: str, max_bytes: int | None = None) -> bytes:
    """The bytes of one file of a run folder, through the one gate every reader uses
    (:func:`disentangle.base.files.read_inside`: a regular file inside the folder, opened without blocking,
    within ``max_bytes``, by default the file's :data:`MAX_BYTES`); a missing file raises
    FileNotFoundError, a refused one a one-line :class:`~disentangle.base.errors.DisentangleError`."""
    try:
        return read_inside(run_dir, name, MAX_BYTES[name] if max_bytes is None else max_bytes)
    except UntrustedFileError as error:
        raise DisentangleError(str(error)) from None
    except IsADirectoryError:
        raise DisentangleError(f"{Path(run_dir) / name} is a folder, expected a file") from None


PRECISIONS = ("fp32", "bf16")  # what a run is (in its id)
PRECISION_CHOICES = ("auto", *PRECISIONS)  # what may be asked: auto resolves where the run trains (see trained_with)


def check_precision(precision) -> str:
    """``precision`` if it is one of auto, fp32, bf16, else a one-line error listing them: the one check
    of a precision, wherever it is given (options, study files, configs)."""
    if precision not in PRECISION_CHOICES:
        raise DisentangleError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    return precision


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run. ``model_options`` go to ``get_model``."""

    model: str
    dataset: str = "dsprites"
    steps: int = 20000  # the one default: train, grid and study files without steps train this many
    seed: int = 0
    batch_size: int = 64
    model_options: dict = dataclasses.field(default_factory=dict)
    dataset_options: dict = dataclasses.field(default_factory=dict)
    precision: str = "fp32"  # "bf16": the networks under bfloat16 autocast (opt-in; loss terms stay float32)
    checkpoint_every: int = None  # not given: every 1,000 steps, or once at the end of a shorter run (__post_init__)
    log_every: int = 50
    device: str = "auto"  # where it trains (auto: CUDA when available); not part of the run id
    compile: bool = False  # torch.compile the loss (falls back to eager if compiling fails); not part of the run id
    loggers: list = dataclasses.field(default_factory=list)  # experiment trackers besides log.csv; not part of the run id
    tracking_uri: str | None = None  # where the mlflow tracker writes (default: the runs folder's mlflow.db)

    def __post_init__(self):
        if self.checkpoint_every is None:  # the one rule for a checkpoint interval not given, wherever a run is described
            object.__setattr__(self, "checkpoint_every", default_checkpoint_every(self.steps) if isinstance(self.steps, int) else 1000)

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

    def to_json(self, resolved_model_options: dict | None = None, trained_with: dict | None = None) -> dict[str, Any]:
        """The config as config.json holds it, with the package version and (when given) every
        model option the run resolved, defaults included, and what the node that trains it resolved
        (:data:`TRAINED_WITH`); none of these is part of the run id."""
        data = {**dataclasses.asdict(self), "package_version": __version__}
        if resolved_model_options is not None:
            data["resolved_model_options"] = resolved_model_options
        if trained_with is not None:
            data[TRAINED_WITH] = trained_with
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
study files fall back to when a value is not given (``RUN_DEFAULTS["steps"]``: 20,000; ``checkpoint_every``:
None, filled from the steps)."""


def run_config(model: str, **given) -> RunConfig:
    """The :class:`RunConfig` of the settings ``given``, each one not given (None) left to RunConfig's own default:
    the one place a command line option, a study file key or a library argument that was not given is filled."""
    return RunConfig(model=model, **{name: value for name, value in given.items() if value is not None})


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
        return json.loads(read_run_file(run_dir, CONFIG))
    except (FileNotFoundError, NotADirectoryError):
        raise DisentangleError(f"{run_dir} is not a run folder: no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DisentangleError(f"{path} is corrupt ({type(error).__name__}: {str(error)[:200]})") from None


def config_from_data(data, run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` of ``config.json`` content already read, or a one-line error if corrupt."""
    try:
        return RunConfig.from_json(data)
    except (TypeError, DisentangleError) as error:
        raise DisentangleError(f"{Path(run_dir) / CONFIG} is corrupt ({error})") from None


def read_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` in ``run_dir/config.json``, or a one-line error if missing or corrupt."""
    return config_from_data(read_config_data(run_dir), run_dir)


def write_config(run_dir: Path, config: RunConfig, resolved_model_options: dict | None = None, trained_with: dict | None = None) -> None:
    """Write ``config`` (the package version, the resolved model options, what its node resolved) to
    ``run_dir/config.json`` atomically."""
    atomic_write_json(run_dir / CONFIG, config.to_json(resolved_model_options, trained_with))


TRAINED_WITH = "trained_with"
"""config.json's record of the machine facts the node that trains a run resolved there (never on the machine
that planned it): ``{"precision": "fp32"|"bf16", "device": "cpu"|"cuda:0"|..., "node": host name,
"threads": torch threads}``. The precision is fixed when the run starts: a run resumed on another node keeps
it (its arithmetic does not change half way); device, node and threads are the latest start's."""


def trained_with(data) -> dict | None:
    """The :data:`TRAINED_WITH` record of config.json content ``data`` if it follows its schema (precision one
    of :data:`PRECISIONS`, the rest short plain values), else None: a config read from a shared folder decides nothing else."""
    record = data.get(TRAINED_WITH) if isinstance(data, dict) else None
    if not isinstance(record, dict) or record.get("precision") not in PRECISIONS:
        return None
    kinds = {"precision": str, "device": str, "node": str, "threads": int}
    return {key: record[key] for key, kind in kinds.items()
            if isinstance(record.get(key), kind) and not isinstance(record.get(key), bool) and len(str(record[key])) <= 200}


def trained_precision(data, config: RunConfig) -> str:
    """The precision the run trained in: its config's, or for ``auto`` what its node resolved (config.json's
    :data:`TRAINED_WITH`); ``auto`` for a run that has not started, or whose record is missing or malformed."""
    if config.precision != "auto":
        return config.precision
    record = trained_with(data)
    return record["precision"] if record else "auto"


def write_manifest(run_dir: Path, run_id: str) -> None:
    """Record the checkpoint's size and md5 and the run it belongs to (written when a run finishes, and by
    an export): what :func:`verified_checkpoint_bytes` holds a checkpoint to before anything trusts it."""
    path = Path(run_dir) / CHECKPOINT
    signature, digest = _signature(path), md5_file(path)
    atomic_write_json(Path(run_dir) / MANIFEST, {"checkpoint": {"bytes": path.stat().st_size, "md5": digest}, "run_id": run_id})
    if signature is not None and signature == _signature(path):  # this machine just hashed this very file
        atomic_write_json(Path(run_dir) / VERIFIED, {**signature, "md5": digest, "run_id": run_id})


def readdress_manifest(run_dir: str | Path, old_id: str, new_id: str) -> None:
    """The manifest of a run whose id changed (an older id scheme, :func:`disentangle.lifecycle.setup.migrate_legacy_run`)
    made out to ``new_id``, if it was ``old_id``'s; one made out to another run stays as it is (so the checkpoint
    still reads as broken). This machine's memory of the verification is dropped: the next reader verifies again."""
    manifest = read_manifest(run_dir)
    if manifest is not None and manifest["run_id"] in (old_id, None):
        atomic_write_json(Path(run_dir) / MANIFEST, {"checkpoint": {"bytes": manifest["bytes"], "md5": manifest["md5"]}, "run_id": new_id})
    (Path(run_dir) / VERIFIED).unlink(missing_ok=True)


def read_manifest(run_dir: str | Path) -> dict | None:
    """The manifest as ``{"bytes": int, "md5": str, "run_id": str | None}``, None without one (a run made
    before manifests), or a one-line error for one that does not follow its schema."""
    import re

    try:
        data = json.loads(read_run_file(run_dir, MANIFEST))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DisentangleError(f"{Path(run_dir) / MANIFEST} is corrupt (not JSON)") from None
    entry = data.get("checkpoint") if isinstance(data, dict) else None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    if (not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int) or isinstance(entry.get("bytes"), bool)
            or not isinstance(entry.get("md5"), str) or not re.fullmatch(r"[0-9a-f]{32}", entry["md5"])
            or not isinstance(run_id, (str, type(None)))):
        raise DisentangleError(f"{Path(run_dir) / MANIFEST} is corrupt (expected a checkpoint's bytes and md5, and a run id)")
    return {"bytes": entry["bytes"], "md5": entry["md5"], "run_id": run_id}


def _signature(path: Path) -> dict | None:
    """The stat signature of a checkpoint on this machine (inode, size, mtime and ctime in ns): a copy, a
    rename over it or a rewrite changes it, and no shared folder can bring one that matches (the kernel sets
    ctime when the file arrives here). None for anything but a regular file inside its folder."""
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return {"inode": info.st_ino, "bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns}


def checkpoint_verified(run_dir: str | Path) -> None:
    """:func:`verified_checkpoint_bytes` without its bytes, for a rerun's skip decision: when this machine
    already verified the file as it is now (``.verified`` holds its stat signature and the manifest's md5),
    a stat suffices; otherwise the file is read and verified and the signature remembered. Raises as
    :func:`verified_checkpoint_bytes` does."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    signature = _signature(run_dir / CHECKPOINT)
    expected = {**signature, "md5": manifest["md5"], "run_id": manifest["run_id"]} if manifest and signature else None
    if expected is not None:
        try:
            remembered = json.loads(read_run_file(run_dir, VERIFIED))  # through the gate: it lies in the folder too
        except (OSError, ValueError, DisentangleError):
            remembered = None
        if remembered == expected and manifest["run_id"] in (None, read_config(run_dir).run_id()):
            return
    verified_checkpoint_bytes(run_dir)
    if expected is not None:
        try:
            atomic_write_json(run_dir / VERIFIED, expected)
        except OSError:  # a read-only runs folder: verified again next time
            pass


def verified_checkpoint_bytes(run_dir: str | Path) -> bytes:
    """A finished run's ``checkpoint.pt``, read once through the gate and verified before anything trusts it:
    its size and md5 are those its manifest recorded when the run finished, and the manifest belongs to this
    run (its run id is the config's). The bytes verified are the bytes returned (no second read to swap).
    A run without a manifest (made before manifests) is returned unverified: loading it is the check.

    Raises
    ------
    DisentangleError
        One line: ``<run> is broken: ...`` (missing, not a regular file inside the folder, or another
        checkpoint than the one the run finished with).
    """
    import hashlib

    run_dir = Path(run_dir)
    try:
        data = read_run_file(run_dir, CHECKPOINT)
    except FileNotFoundError:
        raise DisentangleError(f"{run_dir} is broken: it has no {CHECKPOINT}") from None
    except DisentangleError as error:
        raise DisentangleError(f"{run_dir} is broken: {error}") from None
    manifest = read_manifest(run_dir)
    if manifest is None:
        return data
    digest = hashlib.md5(data).hexdigest()
    if len(data) != manifest["bytes"] or digest != manifest["md5"]:
        raise DisentangleError(f"{run_dir} is broken: its {CHECKPOINT} (md5 {digest}) is not the one it finished with "
                               f"(md5 {manifest['md5']}, {MANIFEST})")
    if manifest["run_id"] is not None:
        run_id = read_config(run_dir).run_id()
        if manifest["run_id"] != run_id:
            raise DisentangleError(f"{run_dir} is broken: its {MANIFEST} and {CHECKPOINT} belong to run {manifest['run_id']}, "
                                   f"not to {run_id} (its config)")
    return data


FIGURES = "figures"  # the run's own figures (a grid draws them as it finishes, traverse): the report copies them rather than draw


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


LOG_TAIL_BYTES = 64 << 10  # the newest rows of a log are in its last 64 KiB (a row is ~300 bytes)
LOG_FULL_READ_MAX = 64 << 20  # a log read whole (training seconds) only up to this: 200,000 rows


def _log_row(header: list[str], line: str) -> dict[str, float] | None:
    """A log.csv line as floats by column, or None for a line that is not a whole row of numbers (a
    partial last line a kill left mid-append, text)."""
    fields = line.split(",")
    if len(fields) != len(header):
        return None
    try:
        return dict(zip(header, map(float, fields)))
    except ValueError:
        return None


def _log_header(first_line: bytes) -> list[str] | None:
    try:
        header = first_line.decode("utf-8").strip().split(",")
    except UnicodeDecodeError:
        return None
    return header if header and header[0] == "step" else None


def read_log_tail(run_dir: str | Path) -> dict[str, float] | None:
    """The newest whole row of ``log.csv`` as ``{column: float}``, reading its header and last
    :data:`LOG_TAIL_BYTES` only (through the gate: a regular file inside the folder), whatever the log's
    size; a partial or malformed last line is passed over for the row before it. None without a log
    or a readable row."""
    try:
        head, tail = read_tail_inside(run_dir, LOG, LOG_TAIL_BYTES)
    except OSError:  # missing, or refused by the gate (UntrustedFileError is an OSError)
        return None
    header = _log_header(head)
    if header is None:
        return None
    lines = tail.decode("utf-8", "replace").split("\n")
    for line in reversed(lines[1:] if len(tail) == LOG_TAIL_BYTES else lines):  # the first may be cut
        row = _log_row(header, line.strip())
        if row is not None and math.isfinite(row.get("step", math.nan)):
            return row
    return None


def log_train_seconds(run_dir: str | Path, batch_size: int) -> float | None:
    """Training seconds: each row's steps since the one before times ``batch_size`` over its images/s,
    summed; read a line at a time (constant memory), only from a log of at most :data:`LOG_FULL_READ_MAX`
    bytes, skipping rows that are not numbers. None without a log, its column, or above the bound."""
    try:
        stream = open_inside(run_dir, LOG)
    except OSError:  # missing, or refused by the gate
        return None
    with stream:
        if os.fstat(stream.fileno()).st_size > LOG_FULL_READ_MAX:
            return None
        header = _log_header(stream.readline())
        if header is None or "images_per_s" not in header:
            return None
        total, previous = 0.0, 0.0
        for raw in stream:
            row = _log_row(header, raw.decode("utf-8", "replace").strip())
            if row is None or not row["images_per_s"] > 0:
                continue
            total += (row["step"] - previous) * batch_size / row["images_per_s"]
            previous = row["step"]
    return round(total, 1) if math.isfinite(total) else None


RUNNING = "running"
INTERRUPTED = "interrupted (resumable)"  # stopped by a signal, a full disk or a kill: the next train or grid continues it
UNREADABLE = "unknown (unreadable status file)"
_STATUS_MAX_CHARS = 500  # a failure's reason is cut here: a status is one line a table shows


def read_status(run_dir: str | Path) -> str:
    """The run's status: ``running`` (a live process holds it), ``done``, ``failed: ...``,
    ``interrupted (resumable)`` (also a ``running`` run whose process died: nobody holds its lock),
    ``new`` without a file, or ``unknown (...)`` for a file that is unreadable or says anything else
    (the schema of a status: one of those lines, printable text only)."""
    try:
        text = read_run_file(run_dir, STATUS).decode("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return "new"
    except (UnicodeDecodeError, DisentangleError):
        return UNREADABLE
    status = text.strip()
    if not status:
        return "unknown (empty status file)"
    if "\n" in status or not status.isprintable():
        return "unknown (a status file that is not one line of text)"
    if status.startswith("interrupted") or (status == RUNNING and not is_held(run_dir)):
        return INTERRUPTED
    if status in ("done", RUNNING) or status.startswith("failed"):
        return status[:_STATUS_MAX_CHARS]
    return f"unknown (status {status[:60]!r})"


def write_status(run_dir: Path, status: str) -> None:
    """Write the one-line status atomically."""
    atomic_write_text(run_dir / STATUS, status.replace("\n", " ") + "\n")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The run's metrics.json as a dict ({} without a file), or a one-line error if corrupt."""
    path = Path(run_dir) / METRICS
    try:
        data = json.loads(read_run_file(run_dir, METRICS))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DisentangleError(f"{path} is corrupt ({type(error).__name__}: {str(error)[:200]})") from None
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
