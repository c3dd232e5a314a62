"""Shared fixtures and helpers; under pytest-xdist, each worker gets its share of the cores.

The README's test command runs ``-n auto --dist loadfile`` (pyproject's addopts): each file's
tests on one worker, in a row, so a file's module fixtures (a SLURM cluster, a trained reference
run) are built once (grouping only the tests that use them interleaves other files' tests, and
pytest then tears the fixture down and builds it again). Files with a test marked ``slow`` are
handed out first, so the longest files do not start last; ``--no-loadscope-reorder`` keeps that
order (xdist otherwise hands out the files with the most tests first, which put the four longest
files, with two to six tests each, at the end of the queue: measured 2026-11-30). There is one
worker more than there are cores, because many tests wait (on SLURM's queue, Ray starting, a
signal's delay) rather than compute. Each worker's torch (OpenMP, and MKL through
torch) and numpy's BLAS get cores / workers threads (at least one), set here before numpy or torch
load and inherited by the commands tests start: workers spinning two threads each on two cores
would be slower than one worker. A test that changes torch's thread count gets it back afterwards,
so no test depends on which tests ran before it on its worker.

The suite keeps its own cache folder (``XDG_CACHE_HOME``, shared by its workers and the commands they
start, removed at the end): speed probes measured on a machine this busy must not become the
user's cached answers (the encoder-batch probe beside three busy loops on 2 cores: 512 in 2 of 5
tries, where the quiet machine's best is 64 or 128).
"""
import gzip
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

if "DISENTANGLE_SUITE_CACHE" not in os.environ:  # the first process of the run (xdist's workers inherit it)
    os.environ["DISENTANGLE_SUITE_CACHE"] = os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="disentangle-suite-cache-")
    _OWN_CACHE = True
else:
    _OWN_CACHE = False

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _WORKER_THREADS = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # not MKL's: torch.set_num_threads sets it, in-process only
        os.environ.setdefault(_variable, _WORKER_THREADS)

import numpy as np  # noqa: E402  (after the thread variables)
import pytest  # noqa: E402

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # a suite started in a script's background (cmd &) inherits Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored, and so would every command the tests send it to


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["DISENTANGLE_SUITE_CACHE"], ignore_errors=True)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than cores (see the module docstring)."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config, items):
    """Files holding a test marked ``slow`` first (stable: the files' and tests' order otherwise kept)."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)


@pytest.fixture
def ray_exclusive(tmp_path_factory):
    """This test's Ray instance is the only one the suite runs: Ray tests on different xdist workers
    take turns (a file lock in the session's temporary folder), because two Ray clusters starting at
    once on a small machine were seen to hang in ``ray.init`` (2026-11-30)."""
    import fcntl

    with open(tmp_path_factory.getbasetemp().parent / "ray.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(autouse=True)
def _torch_threads_kept():
    """Restore torch's thread count after each test (a test that sets it must not change the next one's numbers)."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@pytest.fixture
def tiny_mnist(tmp_path):
    """A folder with four tiny IDX files (train: 20 images, test: 10), train files gzipped."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n, zipped in (("train", 20, True), ("t10k", 10, False)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            if zipped:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
    return folder


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...), None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_pids() -> list[int]:
    """Every process id on this machine (Linux /proc)."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def catches_signal(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``signum`` (``SigCgt`` in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (exists and is not a zombie)."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def _tmpfs(tmp_path, options: str):
    """A tmpfs mounted with ``options`` for the test (root only: CI runs as root), unmounted after."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                                           capture_output=True).returncode != 0:
        pytest.skip(f"mounting a tmpfs ({options}) needs root (CI runs as root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB disk that fills up mid-run."""
    yield from _tmpfs(tmp_path, "size=16m")


@pytest.fixture
def read_only_folder(tmp_path):
    yield from _tmpfs(tmp_path, "size=1m,ro")


def assert_tensorboard_holds_the_log(run_dir: Path) -> None:
    """The run's TensorBoard events (read with TensorBoard's own reader) hold every log.csv row once,
    value for value (images/s aside: timing), and images at the last step."""
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open(run_dir / "log.csv") as log:
        rows = {int(r["step"]): {k: float(v) for k, v in r.items() if k not in ("step", "images_per_s")} for r in csv.DictReader(log)}
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for key in next(iter(rows.values())):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert [step for step, _ in logged] == sorted(rows), key
        assert [value for _, value in logged] == pytest.approx([rows[step][key] for step, _ in logged], rel=1e-6), key
    assert max(rows) in [e.step for e in events.Images("reconstructions")]
