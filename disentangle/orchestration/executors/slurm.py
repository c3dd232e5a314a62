"""SLURM through submitit: job arrays of one task per run (train + evaluate).

A grid larger than the cluster's ``MaxArraySize`` (read from ``scontrol show config``) is
submitted as several arrays, each starting after the one before it ends (``afterany``), so
``slurm_array_parallelism`` holds across all of them.

The driver shows progress as tasks finish, or returns at once with ``wait=False``
(``--no-wait``); each submitted run leaves its job id in ``<slurm_folder>/queued/<run-id>``,
so re-running the grid skips runs whose job is still in the queue and collects the rest
from their folders: nothing is submitted twice. A task that hits its time limit or is
preempted is checkpointed by submitit and requeued; the run resumes from its last
checkpoint (every ``checkpoint_every`` steps), bit for bit, like any resumed run.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import submitit

from disentangle.base.files import atomic_write_text
from disentangle.base.errors import DisentangleError
from disentangle.orchestration.executors.base import EXECUTORS, Executor, GridResult, RunTask
from disentangle.base.validation import check_count


class CheckpointableTask(submitit.helpers.Checkpointable):
    """A run task submitit may requeue: on timeout or preemption it resubmits itself unchanged."""

    def __init__(self, task: RunTask):
        self.task = task

    def __call__(self) -> GridResult:
        return self.task()


DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's own default


def max_array_size() -> int:
    """The cluster's ``MaxArraySize`` (tasks per array: indices 0 .. MaxArraySize - 1), or SLURM's default."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return max(1, int(value.strip()))
    return DEFAULT_MAX_ARRAY_SIZE


def _in_queue(job_id: str) -> bool:
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


@EXECUTORS.register("slurm")
class SlurmExecutor(Executor):
    """A SLURM job array: ``partition`` (required), ``time`` minutes per run, ``cpus_per_task``
    (default: the run's threads), ``gpus_per_task``, ``mem`` (GB), ``slurm_array_parallelism``
    (default: ``workers``), ``slurm_folder`` (default ``<runs_dir>/.slurm``), ``wait``, ``signal_delay_s``
    (how long before the time limit SLURM signals the job, which submitit answers by requeueing it),
    ``max_requeues`` (how often a run may time out and be requeued: submitit's default, 3)."""

    remote = True

    def __init__(self, workers: int = 2, partition: str | None = None, time: int = 60, cpus_per_task: int | None = None,
                 gpus_per_task: int = 0, mem: float | None = None, slurm_array_parallelism: int | None = None,
                 slurm_folder: str | None = None, wait: bool = True, signal_delay_s: int = 90, max_requeues: int = 3):
        super().__init__(workers)
        for command in ("sbatch", "squeue", "scancel"):
            if shutil.which(command) is None:
                raise DisentangleError(f"the slurm executor needs {command} on PATH (a SLURM client): not found")
        if not partition:
            raise DisentangleError("the slurm executor needs a partition (grid --partition NAME)")
        check_count(time, "time (minutes per run)")
        self.partition, self.time, self.cpus_per_task, self.gpus_per_task = partition, time, cpus_per_task, gpus_per_task
        self.mem, self.array_parallelism, self.folder, self.wait = mem, slurm_array_parallelism, slurm_folder, wait
        check_count(max_requeues, "max_requeues", minimum=0)
        self.max_requeues = max_requeues
        self.signal_delay_s = signal_delay_s  # SLURM warns a job this long before its time limit: submitit requeues it
        logging.getLogger("submitit").setLevel(logging.ERROR)  # clusters without accounting make it warn at every poll

    def _folder(self, runs_dir: str) -> Path:
        return Path(self.folder) if self.folder else Path(runs_dir) / ".slurm"

    def pending_reason(self, task: RunTask) -> str | None:
        marker = self._folder(task.runs_dir) / "queued" / task.run_id
        if marker.is_file():
            job_id = marker.read_text().strip()
            if _in_queue(job_id):
                return f"queued as SLURM job {job_id}"
            marker.unlink(missing_ok=True)
        return None

    def run(self, tasks):
        if not tasks:
            return
        folder = self._folder(tasks[0].runs_dir)
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm", slurm_max_num_timeout=self.max_requeues)
        parameters = {"slurm_partition": self.partition, "timeout_min": self.time,
                      "cpus_per_task": self.cpus_per_task or tasks[0].threads or 1,
                      "slurm_array_parallelism": self.array_parallelism or self.workers,
                      "slurm_signal_delay_s": self.signal_delay_s}
        if self.gpus_per_task:
            parameters["slurm_gpus_per_task"] = self.gpus_per_task
        if self.mem:
            parameters["mem_gb"] = self.mem
        size, jobs, previous = max_array_size(), [], None
        for start in range(0, len(tasks), size):  # arrays of at most MaxArraySize tasks, one after another
            chained = {"slurm_additional_parameters": {"dependency": f"afterany:{previous}"}} if previous else {}
            executor.update_parameters(**parameters, **chained)
            try:
                with executor.batch():  # one job array; each element a checkpointable task submitit can requeue
                    array = [executor.submit(CheckpointableTask(task)) for task in tasks[start:start + size]]
            except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as error:
                raise DisentangleError(f"sbatch refused the job array: {str(error).strip().splitlines()[-1]}") from None
            jobs += array
            previous = array[0].job_id.split("_")[0]
        for job, task in zip(jobs, tasks):
            atomic_write_text(folder / "queued" / task.run_id, job.job_id)
        if not self.wait:
            for job, task in zip(jobs, tasks):
                yield GridResult(task.run_id, "submitted", f"SLURM job {job.job_id}")
            return
        pending = dict(zip(jobs, tasks))
        try:
            while pending:
                for job in [j for j in pending if j.done()]:
                    task = pending.pop(job)
                    try:
                        result = job.result()
                    except Exception as error:  # noqa: BLE001 -- a killed or crashed job is a failed run, the grid goes on
                        result = GridResult(task.run_id, "failed", f"SLURM job {job.job_id}: {str(error).strip().splitlines()[0]}")
                    (folder / "queued" / task.run_id).unlink(missing_ok=True)
                    yield result
                if pending:
                    time.sleep(1.0)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM on a waiting grid: stop the jobs it owns, resumable
            stop_jobs([job.job_id for job in pending])
            raise


def stop_jobs(job_ids: list[str], timeout_s: float = 60) -> None:
    """Interrupt SLURM jobs as Ctrl-C would: running ones get SIGINT (their runs checkpoint and are
    marked interrupted; SLURM's own SIGTERM would be taken by submitit as a preemption), pending ones
    are cancelled; then wait up to ``timeout_s`` for them to leave the queue."""
    if not job_ids:
        return
    for extra in (["--signal=INT", "--state=RUNNING"], ["--state=PENDING"]):
        subprocess.run(["scancel", *extra, *job_ids], capture_output=True, timeout=30, check=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_in_queue(job_id) for job_id in job_ids):
        time.sleep(1.0)
