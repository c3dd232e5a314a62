"""Fetch a data set's official files from where the registry says they are published.

Every transfer goes to a hidden ``.<name>.part`` file beside the target, resumes from its
length with an HTTP Range request after a dropped connection or a stall, is retried with
back-off, and is md5-checked before it is renamed into place: a file under its real name
is always whole and right. A checksum mismatch keeps nothing and names both sums.

What retrying cannot mend ends at once, in one line: a transfer growing past the most the
official file can hold (``DataFile.max_bytes``: a mirror sending without end is stopped, and a
partial file already larger is discarded rather than resumed), a full or read-only disk, a
redirect to a scheme other than HTTP(S), and the HTTP errors that mean "not here".
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from disentangle.base.files import md5_file, sole_writer
from disentangle.datasets.files import DataFile, check_md5
from disentangle.base.errors import DisentangleError

CHUNK = 1 << 20
FATAL_HTTP = (400, 401, 403, 404, 410)  # retrying cannot help


class _Refused(Exception):
    """A transfer retrying cannot mend (its message is the one line to show)."""


def download_file(url: str, target: str | Path, md5: str | None, *, retries: int = 3, timeout: float = 60.0,
                  progress: bool = True, backoff: float = 1.0, max_bytes: int | None = None) -> Path:
    """Download ``url`` to ``target``, resumable, retried and md5-checked.

    Parameters
    ----------
    url : str
    target : path
        Where the whole, checked file ends up (written only then).
    md5 : str or None
        The published md5 (None: not checked).
    retries : int, default 3
        Further attempts after a failed or stalled transfer, each resuming where the last stopped.
    timeout : float, default 60
        Seconds without data before a transfer counts as stalled.
    progress : bool
    backoff : float, default 1
        Seconds before the first retry, doubled for each further one.
    max_bytes : int, optional
        The most the file can hold: a transfer growing past it is stopped and discarded.

    Returns
    -------
    Path
        ``target``.
    """
    target = Path(target)
    partial = target.with_name(f".{target.name}.part")
    with sole_writer(target, "download"):
        if max_bytes is not None and partial.exists() and partial.stat().st_size > max_bytes:
            partial.unlink()  # larger than the file it stands for: never resumed, or its md5 can only fail
        for attempt in range(retries + 1):
            try:
                _transfer(url, partial, timeout, progress, target.name, max_bytes)
                break
            except _Refused as refused:
                raise DisentangleError(str(refused)) from None
            except urllib.error.HTTPError as error:
                if error.code in FATAL_HTTP or 300 <= error.code < 400:  # a 3xx here is a redirect urllib refused to follow
                    raise DisentangleError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
                failure = f"HTTP {error.code} {error.reason}"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                if isinstance(error, OSError) and error.filename is not None:
                    raise  # our side: a read-only or full disk, reported as such
                if isinstance(error, urllib.error.URLError) and "unknown url type" in str(error.reason):
                    raise DisentangleError(f"could not download {url}: {error.reason} (only http and https are fetched)") from None
                failure = str(getattr(error, "reason", error)) or type(error).__name__
            if attempt == retries:
                raise DisentangleError(f"could not download {url} after {retries + 1} attempts ({failure}); "
                                       f"run the command again to resume from {partial.stat().st_size if partial.exists() else 0} bytes")
            time.sleep(backoff * 2 ** attempt)
        actual = md5_file(partial)
        if md5 is not None and actual != md5:
            partial.unlink()
            raise DisentangleError(f"checksum mismatch for {target.name} from {url}: expected md5 {md5}, got {actual}; nothing was kept")
        os.replace(partial, target)
    return target


def _transfer(url: str, partial: Path, timeout: float, progress: bool, label: str, max_bytes: int | None = None) -> None:
    """Append the rest of ``url`` to ``partial`` (a Range request from its length), never past ``max_bytes``."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left after offset: the partial file is whole
            return
        raise
    with response:
        if offset and response.status != 206:  # the server ignored the range: start again
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        too_large = f"{url} sends more than {label} can hold ({max_bytes or 0:,} bytes): not the official file, nothing was kept"
        if max_bytes is not None and total is not None and total > max_bytes:
            partial.unlink(missing_ok=True)
            raise _Refused(too_large)
        written = offset
        with open(partial, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False) as bar:
            while chunk := response.read(CHUNK):
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    out.close()
                    partial.unlink(missing_ok=True)
                    raise _Refused(too_large)
                try:
                    out.write(chunk)
                    out.flush()
                except OSError as error:  # our disk, not the network: retrying cannot help
                    raise _Refused(f"could not write {partial}: {error.strerror or error}; free space and run the command "
                                   f"again to resume from {partial.stat().st_size:,} bytes") from None
                bar.update(len(chunk))
        if total is not None and partial.stat().st_size < total:
            raise ConnectionError(f"the connection closed after {partial.stat().st_size} of {total} bytes")


def file_url(file: DataFile, url_base: str | None) -> str:
    """Where ``file`` is fetched from: its published URL, or the same name under ``url_base`` (a mirror)."""
    if url_base:
        return url_base.rstrip("/") + "/" + file.name
    return file.url


def download_dataset(cls, root: str | Path, url_base: str | None = None, progress: bool = True, **options) -> list[Path]:
    """Every official file of the data set class ``cls`` (its ``files``) into ``root``, skipping
    those already there with the right md5; ``options`` go to :func:`download_file`."""
    files = [f for f in cls.files if f.url.startswith(("http://", "https://")) or url_base]
    if not files:
        raise DisentangleError(f"{cls.name} has no files to download ({cls.describe()})")
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file in files:
        target = folder / file.name
        if target.is_file():
            try:
                check_md5(target, file.md5)
                written.append(target)
                continue
            except DisentangleError:
                pass  # a wrong file under the right name: fetched again, replaced only when the new one checks
        written.append(download_file(file_url(file, url_base), target, file.md5, progress=progress, max_bytes=file.max_bytes, **options))
    return written
