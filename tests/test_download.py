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
from disentangle.errors import DisentangleError

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Server(http.server.ThreadingHTTPServer):
    """Serves PAYLOAD at any path but /missing; ``faults`` is a list of what to do to the next requests:
    "cut" (send a third, then close), "stall" (send nothing for 2 s)."""

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
