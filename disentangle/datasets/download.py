"""Fetch a data set's official files from where the registry says they are published.

Every transfer goes to a hidden ``.<name>.part`` file beside the target, resumes from its
length with an HTTP Range request after a dropped connection or a stall, is retried with
back-off, and is md5-checked before it is renamed into place: a file under its real name
is always whole and right. A checksum mismatch keeps nothing and names both sums.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from disentangle._io import md5_file, sole_writer
from disentangle.datasets.files import DataFile, check_md5
from disentangle.errors import DisentangleError

CHUNK = 1 << 20
FATAL_HTTP = (400, 401, 403, 404, 410)  # retrying cannot help


def download_file(url: str, target: str | Path, md5: str | None, *, retries: int = 3, timeout: float = 60.0,
                  progress: bool = True, backoff: float = 1.0) -> Path:
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

    Returns
    -------
    Path
        ``target``.
    """
    target = Path(target)
    partial = target.with_name(f".{target.name}.part")
    with sole_writer(target, "download"):
        for attempt in range(retries + 1):
            try:
                _transfer(url, partial, timeout, progress, target.name)
                break
            except urllib.error.HTTPError as error:
                if error.code in FATAL_HTTP:
                    raise DisentangleError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
                failure = f"HTTP {error.code} {error.reason}"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                if isinstance(error, OSError) and error.filename is not None:
                    raise  # our side: a read-only or full disk, reported as such
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


def _transfer(url: str, partial: Path, timeout: float, progress: bool, label: str) -> None:
    """Append the rest of ``url`` to ``partial`` (a Range request from its length)."""
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
        with open(partial, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
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
        written.append(download_file(file_url(file, url_base), target, file.md5, progress=progress, **options))
    return written
