"""Local worker processes (spawned, one torch thread pool each); one worker runs in this process."""

from __future__ import annotations

import contextlib
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from disentangle.orchestration.executors.base import EXECUTORS, Executor, run_in_order


def init_worker(threads: int, ready=None) -> None:
    """Give a worker process its share of the cores, and make it stop on the SIGINT the grid sends
    when it is interrupted: a grid started with SIGINT ignored (``cmd &`` in a script, ``nohup``)
    passes that on to its workers, which would otherwise train on as orphans. Last, the worker
    records its pid in ``ready``: from then on an interrupt reaches it as SIGINT (its run is
    marked interrupted); a worker still starting is stopped with SIGTERM, silently."""
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if ready is not None:
        with ready.get_lock():
            slot = next((i for i, pid in enumerate(ready) if pid == 0), None)
            if slot is not None:
                ready[slot] = os.getpid()


def stop_workers(processes, ready_pids) -> None:
    """Interrupt a pool's workers: SIGINT to those that finished starting (their runs checkpoint and are
    marked interrupted), SIGTERM to those still importing (nothing to save; SIGINT there would end in
    a traceback on stderr). A worker that becomes ready in between is ended by SIGTERM: its run reads
    as interrupted (no process holds it) and resumes from its last checkpoint."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT if process.pid in ready_pids else signal.SIGTERM)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """``workers`` processes on this machine (``workers=1``: this process, with progress bars)."""

    @property
    def shows_progress(self) -> bool:
        return self.workers == 1

    def run(self, tasks):
        if not tasks:
            return
        threads = tasks[0].threads or 1
        if self.workers == 1:
            init_worker(threads)
            yield from run_in_order(tasks)
            return
        context = get_context("spawn")
        ready = context.Array("q", self.workers * 4)  # pids of started workers (a pool may replace a dead one)
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=init_worker, initargs=(threads, ready)) as pool:
            futures = [pool.submit(task) for task in tasks]  # a RunTask is a picklable callable
            try:
                for future in as_completed(futures):
                    yield future.result()
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM on the grid: stop the workers' runs too, resumable
                with ready.get_lock():
                    ready_pids = set(ready[:]) - {0}
                stop_workers(list((getattr(pool, "_processes", None) or {}).values()), ready_pids)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
