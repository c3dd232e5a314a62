"""Local worker processes (spawned, one torch thread pool each); one worker runs in this process."""

from __future__ import annotations

import contextlib
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from disentangle.executors.base import EXECUTORS, Executor, run_in_order


def init_worker(threads: int) -> None:
    """Give a worker process its share of the cores, and make it stop on the SIGINT the grid sends
    when it is interrupted: a grid started with SIGINT ignored (``cmd &`` in a script, ``nohup``)
    passes that on to its workers, which would otherwise train on as orphans."""
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=init_worker, initargs=(threads,)) as pool:
            futures = [pool.submit(task) for task in tasks]  # a RunTask is a picklable callable
            try:
                for future in as_completed(futures):
                    yield future.result()
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM on the grid: stop the workers' runs too, resumable
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGINT)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
