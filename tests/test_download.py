"""Data set downloads against a local HTTP server on 127.0.0.1 (never the internet): a whole
transfer, one cut short and resumed with a Range request, a server that stalls, a wrong
checksum, a missing file, a read-only folder."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time

import pytest
from click.testing import CliRunner

from disentangle.cli import main
from disentangle.datasets import dataset_class
from disentangle.datasets.download import download_file
from disentangle.datasets.files import DataFile
from disentangle.base.errors import DisentangleError

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Server(http.server.ThreadingHTTPServer):
    """Serves PAYLOAD at any path but /missing; ``faults`` is a list of what to do to the next requests:
    "cut" (send a third, then close), "stall" (send nothing for 2 s), "redirect" (to file://),
    "endless" (a body without Content-Length that never ends)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.faults: list[str] = []
        self.ranges: list[str | None] = []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        if self.path.endswith("/missing"):
            self.send_error(404, "Not Found")
            return
        fault = server.faults.pop(0) if server.faults else None
        if fault == "stall":
            time.sleep(2.0)
            return
        if fault == "redirect":  # to a scheme urllib must not follow
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        if fault == "endless":  # no Content-Length, a body without end
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(PAYLOAD)
            except OSError:  # the client hung up
                return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 3] if fault == "cut" else body)


@pytest.fixture
def server():
    served = Server()
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{served.server_address[1]}"
    served.shutdown()


def test_a_whole_transfer_is_checked_and_renamed_into_place(server, tmp_path):
    _, url = server
    path = download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, progress=False)
    assert path.read_bytes() == PAYLOAD and sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["file.bin"]


def test_a_cut_transfer_resumes_with_a_range_request(server, tmp_path):
    served, url = server
    served.faults = ["cut"]
    path = download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, progress=False, backoff=0)
    assert path.read_bytes() == PAYLOAD
    assert served.ranges == [None, f"bytes={len(PAYLOAD) // 3}-"]  # the second request asked only for the rest


def test_a_stalled_server_is_retried_and_gives_up_with_one_line(server, tmp_path):
    served, url = server
    served.faults = ["stall"]
    assert download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, timeout=0.5, progress=False, backoff=0).read_bytes() == PAYLOAD
    served.faults = ["cut", "stall"]
    with pytest.raises(DisentangleError, match=r"after 2 attempts .*run the command again to resume from 100000 bytes"):
        download_file(f"{url}/file.bin", tmp_path / "again.bin", MD5, timeout=0.5, retries=1, progress=False, backoff=0)
    assert not (tmp_path / "again.bin").exists()
    assert download_file(f"{url}/file.bin", tmp_path / "again.bin", MD5, progress=False).read_bytes() == PAYLOAD  # resumed later


def test_a_wrong_checksum_keeps_nothing_and_a_missing_file_is_one_line(server, tmp_path):
    _, url = server
    with pytest.raises(DisentangleError, match=f"checksum mismatch for file.bin from {url}/file.bin: expected md5 0{{32}}, got {MD5}; nothing was kept"):
        download_file(f"{url}/file.bin", tmp_path / "file.bin", "0" * 32, progress=False)
    with pytest.raises(DisentangleError, match=f"could not download {url}/missing: HTTP 404"):
        download_file(f"{url}/missing", tmp_path / "missing", None, progress=False)
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]


def test_the_command_fetches_every_registry_file_from_a_mirror(server, tmp_path, monkeypatch):
    _, url = server
    shapes = dataset_class("shapes3d")
    monkeypatch.setattr(shapes, "files", (DataFile("3dshapes.h5", MD5, "https://example.invalid/3dshapes.h5"),))
    runner = CliRunner()
    result = runner.invoke(main, ["datasets", "download", "shapes3d", "--root", str(tmp_path / "d"), "--url-base", url, "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "3dshapes.h5").read_bytes() == PAYLOAD
    again = runner.invoke(main, ["datasets", "download", "shapes3d", "--root", str(tmp_path / "d"), "--url-base", url + "/nowhere", "--quiet"])
    assert again.exit_code == 0  # present with the right md5: not fetched again


def test_a_download_into_a_read_only_folder_is_one_line(server, read_only_folder, monkeypatch):
    _, url = server
    monkeypatch.setattr(dataset_class("shapes3d"), "files", (DataFile("3dshapes.h5", MD5, "https://example.invalid/3dshapes.h5"),))
    result = CliRunner().invoke(main, ["datasets", "download", "shapes3d", "--root", str(read_only_folder), "--url-base", url])
    assert result.exit_code == 2 and "read-only file system" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_mirror_sending_without_end_is_stopped_at_the_files_bound_and_nothing_is_kept(server, tmp_path):
    served, url = server
    served.faults = ["endless"]
    with pytest.raises(DisentangleError, match="sends more than file.bin can hold \\(300,000 bytes\\): not the official file, nothing was kept"):
        download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, progress=False, max_bytes=len(PAYLOAD))
    assert len(served.ranges) == 1 and not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    with pytest.raises(DisentangleError, match="sends more than"):  # announced too large: refused before any byte
        download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, progress=False, max_bytes=len(PAYLOAD) - 1)


def test_a_partial_larger_than_the_file_is_discarded_and_the_download_completes(server, tmp_path):
    served, url = server
    (tmp_path / ".file.bin.part").write_bytes(os.urandom(len(PAYLOAD) + 10))  # what an endless mirror left before
    path = download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, progress=False, max_bytes=len(PAYLOAD))
    assert path.read_bytes() == PAYLOAD and served.ranges == [None]  # started over, no Range request


def test_a_full_disk_and_a_refused_redirect_are_one_line_and_not_retried(server, tmp_path):
    served, url = server
    (tmp_path / ".file.bin.part").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(DisentangleError, match=r"could not write .*\.file\.bin\.part: No space left on device; free space and run"):
        download_file(f"{url}/file.bin", tmp_path / "file.bin", MD5, progress=False, backoff=0)
    assert len(served.ranges) == 1
    served.faults, served.ranges = ["redirect"], []
    with pytest.raises(DisentangleError, match="could not download .*HTTP 302"):
        download_file(f"{url}/other.bin", tmp_path / "other.bin", MD5, progress=False, backoff=0)
    assert len(served.ranges) == 1


def test_the_stall_timeout_and_retries_are_options(server, tmp_path, monkeypatch):
    served, url = server
    monkeypatch.setattr(dataset_class("shapes3d"), "files", (DataFile("3dshapes.h5", MD5, "https://example.invalid/3dshapes.h5"),))
    served.faults = ["stall"]
    started = time.monotonic()
    result = CliRunner().invoke(main, ["datasets", "download", "shapes3d", "--root", str(tmp_path), "--url-base", url,
                                       "--timeout", "0.3", "--retries", "0", "--quiet"])
    assert result.exit_code != 0 and "after 1 attempts" in result.output and time.monotonic() - started < 1.9
