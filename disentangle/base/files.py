"""Atomic file writes and checksums.

Every file the project writes goes through here: write a temporary file in the
destination folder, flush it to disk, then ``os.replace`` it over the target, so a
crash or kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def current_umask() -> int:
    """The process's umask (read once at import): what files and folders made here should respect."""
    return _UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as error:
        tmp_path.unlink(missing_ok=True)
        if error.filename is None:  # a full disk fails a write or fsync with no path: name the file it was for
            raise type(error)(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, busy: Exception, attempts: int = 1, wait_s: float = 0.05):
    """Hold an exclusive ``flock`` on ``lock_file`` (created, with its folder) for the duration, or raise
    ``busy`` when another process still holds it after ``attempts`` tries ``wait_s`` apart. The kernel
    drops the lock when its holder dies (even by SIGKILL), so a killed holder never blocks the next.
    The one lock of the package: a run's (:func:`disentangle.base.runs.run_lock`) and a sole writer's."""
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == attempts - 1:
                    raise busy from None
                time.sleep(wait_s)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def sole_writer(path: str | os.PathLike, what: str):
    """Hold an exclusive lock on ``.<name>.lock`` beside ``path`` while writing it, or raise a one-line
    error when another process holds it (``what`` names the command); under it, stale temporaries are
    safe to remove (:func:`remove_stale_temporaries`)."""
    from disentangle.base.errors import DisentangleError

    path = Path(path)
    with exclusive_lock(path.parent / f".{path.name}.lock", DisentangleError(f"another {what} is writing {path}: wait for it to finish")):
        yield


def remove_stale_temporaries(path: str | os.PathLike, older_than: float = 0.0) -> list[Path]:
    """Delete the temporaries (``.<name>.*.tmp``) an interrupted :func:`atomic_path` left (a kill between
    writing and renaming): those beside the file ``path``, or every one under the folder ``path``. Only
    those older than ``older_than`` seconds go: 0 for a writer that is alone on ``path`` (``datasets
    prepare`` under its lock), more where live writers may share the place (two reports on one site)."""
    path, now, removed = Path(path), time.time(), []
    if path.is_dir():
        candidates = path.rglob(".*.tmp")
    else:
        candidates = path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else ()
    for tmp in candidates:
        try:
            if now - tmp.stat().st_mtime >= older_than:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            pass
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: all or nothing."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}  # JSON has no such numbers


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted, valid JSON atomically (numpy values become lists/numbers;
    an infinite or NaN float becomes the string ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``, which
    :func:`finite_json_value` reads back)."""
    atomic_write_text(path, json.dumps(_strict(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def finite_json_value(value: Any) -> Any:
    """A value read from JSON written by :func:`atomic_write_json`: the non-finite strings back to floats."""
    return NON_FINITE[value] if isinstance(value, str) and value in NON_FINITE else value


def _strict(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _strict(value.tolist())  # numpy scalars and arrays appear in metric results and configs
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def md5_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The md5 hex digest of a file, read in ``chunk_size`` chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UntrustedFileError(OSError):
    """A file inside a shared folder that is not a regular file of that folder (a FIFO, a device, a
    symbolic link leading out of it) or larger than its schema allows: refused before a byte is read."""


def open_inside(folder: str | os.PathLike, name: str):
    """A binary stream on ``folder/name`` if it is a regular file whose real path lies inside ``folder``,
    opened without blocking (a FIFO never hangs the reader); the open descriptor itself is checked, so
    what was checked is what is read."""
    import errno
    import stat

    path = Path(folder) / name
    if not os.path.lexists(path):
        raise FileNotFoundError(errno.ENOENT, "No such file", str(path))
    real = os.path.realpath(path)
    if not Path(real).is_relative_to(os.path.realpath(folder)):
        raise UntrustedFileError(f"{path} is a link to {real}, outside {folder}: refused")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except NotADirectoryError:
        raise FileNotFoundError(errno.ENOENT, "No such file", str(path)) from None
    stream = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        stream.close()
        raise UntrustedFileError(f"{path} is not a regular file: refused")
    return stream


def read_inside(folder: str | os.PathLike, name: str, max_bytes: int) -> bytes:
    """The bytes of ``folder/name``, a file of a folder that may come from anyone (a run, a study export).

    Read only if it is a regular file whose real path lies inside ``folder`` (a symbolic link to a
    file elsewhere, a FIFO or a device is refused), without blocking, and only up to ``max_bytes``
    (its schema's bound: a larger file is refused rather than read).

    Raises
    ------
    FileNotFoundError
        No such file.
    UntrustedFileError
        Present but refused; the message says why, in one line.
    """
    with open_inside(folder, name) as stream:
        size = os.fstat(stream.fileno()).st_size
        data = stream.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        shown = max(size, len(data))
        raise UntrustedFileError(f"{Path(folder) / name} is {shown:,} bytes, more than the {max_bytes:,} it may hold: refused")
    return data


def read_tail_inside(folder: str | os.PathLike, name: str, tail_bytes: int) -> tuple[bytes, bytes]:
    """The first line (at most ``tail_bytes``) and the last ``tail_bytes`` after it of ``folder/name``,
    checked as :func:`read_inside` checks, of any size: what a reader of a log's newest rows needs,
    whatever the log's length."""
    with open_inside(folder, name) as stream:
        head = stream.readline(tail_bytes)
        size = os.fstat(stream.fileno()).st_size
        stream.seek(max(len(head), size - tail_bytes))
        return head, stream.read(tail_bytes)
