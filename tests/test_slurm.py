"""Grids on a real one-node SLURM cluster (Debian's slurm-wlm + munge), started per module.

The fixture writes a slurm.conf into a temp folder (linuxproc process tracking, no task
plugin, cons_tres selection, a ``debug`` partition with this machine's CPUs, no
accounting), starts munged, slurmctld and slurmd as root, and stops them afterwards.
CI installs the packages and sets DISENTANGLE_REQUIRE_SLURM=1 (missing ones fail there);
elsewhere the tests are skipped without them.
"""

import dataclasses
import os
import shutil
import socket
import subprocess
import time

import pandas as pd
import pytest

from disentangle.orchestration import grid
from disentangle.base import runs
from disentangle.base.errors import DisentangleError

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
TINY = {"batch_size": 8, "fixed": {"latent_dim": 3}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    missing = [d for d in DAEMONS if not os.path.exists(d)] + [c for c in ("sbatch", "squeue", "scancel") if not shutil.which(c)]
    if missing or os.geteuid() != 0:
        if os.environ.get("DISENTANGLE_REQUIRE_SLURM"):
            pytest.fail(f"a one-node SLURM cluster needs root and {', '.join(missing) or 'nothing missing'}")
        pytest.skip("no SLURM daemons here (apt-get install slurm-wlm munge) or not root")
    home = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "log"):
        (home / sub).mkdir()
    key = home / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = home / "munge.socket"
    subprocess.run(["/usr/sbin/munged", "--force", f"--key-file={key}", f"--socket={socket_path}", f"--pid-file={home}/munged.pid",
                    f"--log-file={home}/log/munged.log", f"--seed-file={home}/munge.seed"], check=True)
    host = socket.gethostname()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
    conf = home / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=disentangle", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={socket_path}", "CredType=cred/munge",
        f"StateSaveLocation={home}/state", f"SlurmdSpoolDir={home}/spool",
        f"SlurmctldPidFile={home}/slurmctld.pid", f"SlurmdPidFile={home}/slurmd.pid",
        f"SlurmctldLogFile={home}/log/slurmctld.log", f"SlurmdLogFile={home}/log/slurmd.log",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
        "ReturnToService=2", "MpiDefault=none", "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none", "KillWait=5",
        "MaxArraySize=4",  # lowered: a grid of more than 4 runs needs several arrays
        f"NodeName={host} CPUs={os.cpu_count()} RealMemory={memory} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    subprocess.run(["/usr/sbin/slurmctld", "-f", str(conf)], check=True)
    subprocess.run(["/usr/sbin/slurmd", "-f", str(conf)], check=True)
    try:
        _wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout, 60, "the node to be idle")
        yield home
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = home / f"{name}.pid"
            if pid.is_file():
                subprocess.run(["kill", pid.read_text().strip()], capture_output=True)
        time.sleep(2)
        subprocess.run(["pkill", "-9", "-f", str(home)], capture_output=True)  # slurmd can outlive SIGTERM
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def test_a_2x2_grid_through_slurm(slurm_cluster, tmp_path):
    configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0), seeds=(0, 1), steps=6, **TINY)
    start = time.perf_counter()
    results = grid.run_grid(configs, tmp_path / "runs", ("mig",), executor="slurm", workers=2, profile="tiny", progress=False,
                            threads=1, executor_options={"partition": "debug", "time": 10})
    print(f"2x2 grid through SLURM: {time.perf_counter() - start:.1f} s")
    assert [r.outcome for r in results] == ["done"] * 4, results
    for config in configs:
        assert runs.read_status(tmp_path / "runs" / config.run_id()) == "done"
        assert "mig.discrete_mig" in runs.read_metrics(tmp_path / "runs" / config.run_id())
    again = grid.run_grid(configs, tmp_path / "runs", ("mig",), executor="slurm", profile="tiny", progress=False,
                          executor_options={"partition": "debug"})
    assert [r.outcome for r in again] == ["skipped"] * 4


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_grid_is_planned_on_a_host_without_cuda_and_each_task_fails_on_its_node(slurm_cluster, tmp_path):
    """Where a grid runs is decided where it runs: a login node without CUDA plans and submits a --device cuda grid
    (the guide's own example), and each task, on a node without CUDA, fails there in one line naming the node."""
    from click.testing import CliRunner

    from disentangle.cli import GRID_FAILED_EXIT, main

    command = ["grid", "--model", "beta_vae", "--beta", "1,4", "--steps", "2", "--batch-size", "8", "--set", "latent_dim=3",
               "--evaluate", "", "--executor", "slurm", "--partition", "debug", "--time", "10", "--device", "cuda",
               "--precision", "auto", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    planned = CliRunner().invoke(main, [*command, "--dry-run"])
    assert planned.exit_code == 0 and "2 runs: 2 new" in planned.output, planned.output
    submitted = CliRunner().invoke(main, command)
    assert submitted.exit_code == GRID_FAILED_EXIT, submitted.output
    failed = [line for line in submitted.output.splitlines() if line.startswith("failed")]
    assert len(failed) == 2 and all(line.endswith(f"device 'cuda' asked for, but node {socket.gethostname()} has no CUDA")
                                    for line in failed), submitted.output
    assert not [d for d in (tmp_path / "runs").iterdir() if not d.name.startswith(".")]  # nothing made for a run that cannot train there


def test_a_grid_larger_than_max_array_size_goes_as_chained_arrays(slurm_cluster, tmp_path):
    from disentangle.orchestration.executors.slurm import max_array_size

    assert max_array_size() == 4  # read from the cluster's own scontrol
    configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0, 16.0), seeds=(0, 1), steps=4, **TINY)
    results = grid.run_grid(configs, tmp_path / "runs", (), executor="slurm", workers=2, progress=False, threads=1,
                            executor_options={"partition": "debug", "time": 10, "slurm_array_parallelism": 2})
    assert [r.outcome for r in results] == ["done"] * 6, results
    arrays = {path.name.split("_")[0] for path in (tmp_path / "runs" / ".slurm").iterdir() if path.name[0].isdigit()}
    assert len(arrays) == 2  # 4 + 2 tasks, the second array after the first


def test_no_wait_submits_every_array_and_reruns_collect_them_all(slurm_cluster, tmp_path):
    """--no-wait over chained arrays: every run is submitted (its job id kept), a rerun submits nothing
    while any is queued, and a rerun after the queue empties finds every run done."""
    configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0, 16.0), seeds=(0, 1), steps=4, **TINY)
    runs_dir, options = tmp_path / "runs", {"partition": "debug", "time": 10, "slurm_array_parallelism": 2, "wait": False}
    submitted = grid.run_grid(configs, runs_dir, (), executor="slurm", workers=2, progress=False, threads=1, executor_options=options)
    assert [r.outcome for r in submitted] == ["submitted"] * 6, submitted
    jobs = {r.run_id: r.detail.split()[-1] for r in submitted}
    assert len({job.split("_")[0] for job in jobs.values()}) == 2  # two arrays of at most MaxArraySize = 4
    queued = grid.run_grid(configs, runs_dir, (), executor="slurm", progress=False, threads=1, executor_options=options)
    for result in queued:  # whatever is still queued is not submitted again; what finished is not redone
        assert result.outcome == "skipped" and (jobs[result.run_id] in result.detail or result.detail == "already done"), result
    _wait_for(lambda: all(runs.read_status(runs_dir / c.run_id()) == "done" for c in configs), 300, "every array to finish")
    _wait_for(lambda: not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip(), 60, "the queue to empty")
    collected = grid.run_grid(configs, runs_dir, (), executor="slurm", progress=False, threads=1, executor_options=options)
    assert [(r.outcome, r.detail) for r in collected] == [("skipped", "already done")] * 6


def test_trackers_log_from_a_slurm_job(slurm_cluster, tmp_path):
    pytest.importorskip("tensorboard")
    from conftest import assert_tensorboard_holds_the_log

    (config,) = grid.expand("beta_vae", "dsprites", betas=(1.0,), seeds=(0,), steps=20, checkpoint_every=10, **TINY)
    config = dataclasses.replace(config, loggers=["tensorboard"], log_every=5)
    (result,) = grid.run_grid([config], tmp_path / "runs", (), executor="slurm", progress=False, threads=1,
                              executor_options={"partition": "debug", "time": 10})
    assert result.outcome == "done", result
    assert_tensorboard_holds_the_log(tmp_path / "runs" / config.run_id())


@pytest.mark.slow
def test_a_cancelled_job_is_resumed_by_the_rerun(slurm_cluster, tmp_path):
    (config,) = grid.expand("beta_vae", "dsprites", betas=(1.0,), seeds=(0,), steps=1200, checkpoint_every=50, **TINY)
    runs_dir = tmp_path / "runs"
    options = {"partition": "debug", "time": 10, "wait": False}
    (submitted,) = grid.run_grid([config], runs_dir, (), executor="slurm", progress=False, threads=1, executor_options=options)
    assert submitted.outcome == "submitted"
    job_id = submitted.detail.split()[-1]
    (queued,) = grid.run_grid([config], runs_dir, (), executor="slurm", progress=False, threads=1, executor_options=options)
    assert queued.outcome == "skipped" and job_id in queued.detail  # nothing submitted twice
    assert not (runs_dir / ".drivers").is_dir() or len(list((runs_dir / ".drivers").iterdir())) == 1  # the first call's, kept
    run_dir = runs_dir / config.run_id()
    _wait_for(lambda: (run_dir / runs.CHECKPOINT).is_file() and len(pd.read_csv(run_dir / runs.LOG)) >= 4, 240, "a checkpoint")
    subprocess.run(["scancel", job_id], check=True)
    _wait_for(lambda: not subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip(), 60, "the job to go")
    assert runs.read_status(run_dir) != "done"
    (finished,) = grid.run_grid([config], runs_dir, (), executor="slurm", progress=False, threads=1,
                                executor_options={"partition": "debug", "time": 10})
    assert finished.outcome == "done", finished
    log = pd.read_csv(run_dir / runs.LOG)
    assert log["step"].is_monotonic_increasing and log["step"].iloc[-1] == 1200 and log["step"].is_unique


@pytest.mark.slow
def test_a_job_warned_of_its_time_limit_is_requeued_and_finishes(slurm_cluster, tmp_path):
    """SLURM warns a job ``signal_delay_s`` before its time limit with USR2; submitit checkpoints the run
    and requeues the job, which resumes where the run stopped.

    The warning is sent here by the test, right after the run's first checkpoint, exactly as SLURM sends
    it (USR2 to the job's step): SLURM's own timer "may send the signal up to 60 seconds earlier than
    specified" (sbatch(1)), so with a limit short enough for a test it once arrived 0.1 s into a job,
    before Python had installed submitit's handler, and the job died unrequeued. Sized by checkpoints,
    not by this machine's speed: the run cannot finish before the warning on any CPU."""
    (config,) = grid.expand("beta_vae", "dsprites", betas=(1.0,), seeds=(0,), steps=1000, checkpoint_every=50, **TINY)
    runs_dir = tmp_path / "runs"
    (submitted,) = grid.run_grid([config], runs_dir, (), executor="slurm", progress=False, threads=1,
                                 executor_options={"partition": "debug", "time": 10, "signal_delay_s": 40, "wait": False,
                                                   "max_requeues": 3})
    job_id = submitted.detail.split()[-1]
    script = next((runs_dir / ".slurm").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --signal=USR2@40" in script and "#SBATCH --time=10" in script
    run_dir = runs_dir / config.run_id()

    def reason():
        return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%r"], capture_output=True, text=True).stdout.strip()

    _wait_for(lambda: (run_dir / runs.LOG).is_file() and len(pd.read_csv(run_dir / runs.LOG)) >= 1, 240, "the run's first checkpoint")
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    _wait_for(lambda: reason() == "BeginTime", 120, "the job to be requeued")  # SLURM holds a requeued job for two minutes
    warned_at = int(pd.read_csv(run_dir / runs.LOG)["step"].iloc[-1])
    assert runs.read_status(run_dir) == runs.INTERRUPTED and warned_at < config.steps
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    _wait_for(lambda: not reason() and runs.read_status(run_dir).startswith(("done", "failed")), 300, "the requeued job to finish")
    err = "".join(p.read_text() for p in (runs_dir / ".slurm").rglob("*_log.err"))
    assert runs.read_status(run_dir) == "done", err[-2000:]
    assert "this job is timed-out" in err  # submitit took the warning as the time limit's, not a preemption
    log = pd.read_csv(run_dir / runs.LOG)
    assert log["step"].is_unique and log["step"].is_monotonic_increasing and log["step"].iloc[-1] == config.steps


def test_sigterm_on_a_waiting_grid_interrupts_its_running_jobs_and_cancels_queued_ones(slurm_cluster, tmp_path):
    import signal
    import sys

    from disentangle.cli import GRID_INTERRUPTED_EXIT

    runs_dir = tmp_path / "runs"
    command = [sys.executable, "-m", "disentangle", "grid", "--model", "beta_vae", "--beta", "1,4,16", "--steps", "100000",
               "--batch-size", "8", "--set", "latent_dim=3", "--evaluate", "", "--executor", "slurm", "--partition", "debug",
               "--workers", "3", "--threads", "1", "--runs-dir", str(runs_dir), "--quiet"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def two_training():  # two jobs fill the node's two CPUs, the third waits in the queue
        logs = list(runs_dir.glob("*/log.csv"))
        return len(logs) == 2 and all(len(p.read_text().splitlines()) > 1 for p in logs)

    try:
        _wait_for(two_training, 240, "two jobs training")
    except TimeoutError:
        driver.kill()
        raise
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=180)
    assert driver.returncode == GRID_INTERRUPTED_EXIT, err[-2000:]
    assert not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()  # nothing left queued or running
    statuses = sorted((d / runs.STATUS).read_text().strip() for d in runs_dir.iterdir() if (d / runs.STATUS).is_file())
    assert statuses == [runs.INTERRUPTED] * 2  # written by the jobs themselves on SIGINT; the queued run never started


def test_without_sbatch_the_slurm_executor_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DisentangleError, match="the slurm executor needs sbatch on PATH"):
        grid.run_grid(grid.expand("beta_vae", steps=2), tmp_path / "runs", executor="slurm", executor_options={"partition": "debug"})


def test_a_worker_without_the_shared_folder_fails_with_both_hosts(tmp_path):
    from disentangle.orchestration.executors import RunTask

    (config,) = grid.expand("beta_vae", steps=2)
    task = RunTask(config, str(tmp_path / "runs"), driver_marker=str(tmp_path / "elsewhere" / ".driver-headnode-123"))
    result = task()
    assert result.outcome == "failed"
    assert "cannot see the runs folder" in result.detail and "on headnode" in result.detail and socket.gethostname() in result.detail
