"""The files a data set is read from: official names, md5 sums, where they are published.

A user brings the files (by hand, or with :mod:`disentangle.datasets.download`); loaders find them in a folder,
check them by md5 (once per file version: a verified file's size and modification
time are remembered beside it, so a 12 GB file is not hashed at every start), and
say exactly which file is missing and where it is published.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from disentangle.base.files import atomic_write_text, md5_file
from disentangle.base.errors import DisentangleError


@dataclass(frozen=True)
class DataFile:
    """One official file: its name, its md5 (``None`` where none is published), its source, and
    ``max_bytes``, the most it can hold (its exact size, or its content's uncompressed size plus
    the archive's overhead): a download that grows past it is refused, whatever a mirror sends."""

    name: str
    md5: str | None
    url: str = ""
    max_bytes: int | None = None


def content_bound(*uncompressed: int) -> int:
    """The most a gzip/zip/HDF5 file of contents of these uncompressed sizes can take: stored data
    never grows by more than ~0.1 % plus headers (deflate's worst case is 5 bytes per 16 KB block)."""
    total = sum(uncompressed)
    return total + total // 1000 + (1 << 16)


def missing_message(dataset: str, folder: Path, files, url: str) -> str:
    """The one-line error for absent files: which, where to put them, where they are published."""
    names = ", ".join(f.name for f in files)
    return f"{dataset} files not found in {folder}: put {names} there (published at {url})"


def _stamp(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def check_md5(path: Path, expected: str | None) -> str:
    """Return ``path``'s md5, raising a one-line error when it differs from ``expected``.

    A match is remembered in ``.<name>.md5ok`` beside the file (skipped silently when the
    folder is read-only); an unchanged file (same size and mtime) is not hashed again.
    """
    path = Path(path)
    marker = path.with_name(f".{path.name}.md5ok")
    if expected is not None and marker.is_file():
        try:
            remembered = json.loads(marker.read_text())
            if remembered == {"md5": expected, **_stamp(path)}:
                return expected
        except (OSError, ValueError):
            pass
    actual = md5_file(path)
    if expected is not None and actual != expected:
        raise DisentangleError(f"checksum mismatch for {path}: expected md5 {expected}, got {actual}")
    if expected is not None:
        try:
            atomic_write_text(marker, json.dumps({"md5": actual, **_stamp(path)}))
        except OSError:
            pass
    return actual


def read_bytes(path: Path) -> bytes:
    """A file's bytes, decompressed when its name ends in ``.gz``; a one-line error on a bad gzip file."""
    raw = Path(path).read_bytes()
    if Path(path).suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DisentangleError(f"{path} is not a valid gzip file ({error})") from None
    return raw
