"""Ray tasks, on a local instance or a cluster (``address``); each task asks for its threads in CPUs.

Every worker writes to the runs folder on its own file system, so across machines the
folder must be shared (NFS or similar); the per-run lock then needs a file system with
working ``flock`` (see README).
"""

from __future__ import annotations

import os
import signal

from disentangle.base.signals import in_main_thread, stops_recorded
from disentangle.base.errors import DisentangleError
from disentangle.orchestration.executors.base import EXECUTORS, Executor, bounded_submission
from disentangle.base.validation import check_count


STOP_TIMEOUT_S = 60  # how long an interrupted grid waits for its tasks to mark their runs interrupted


def _call(task):
    return task()


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Ray tasks; ``address`` joins a running cluster, else a private local instance is started and stopped.

    Without ``address``, ``ray.init`` would join whatever instance was last started on the machine
    (``RAY_ADDRESS`` or ``ray start``); ``address="local"`` keeps two grids (or two test workers) apart.
    The private instance's workers run at ``niceness`` (default 0, as the local executor's workers do;
    Ray's own default, 15, starves them beside any other busy process: a grid of 23 s alone took 5 min
    beside two busy loops on the 2-core Zen 3, 44 s at 0). A cluster's workers keep the niceness the cluster was started with
    (``RAY_worker_niceness=0 ray start ...`` to change it).
    """

    remote = True

    def __init__(self, workers: int = 2, address: str | None = None, niceness: int = 0, max_pending: int | None = None):
        super().__init__(workers)
        self.address, self.niceness = address, niceness
        self.max_pending = None if max_pending is None else check_count(max_pending, "max_pending")

    def run(self, tasks):
        try:
            import ray
        except ImportError:
            raise DisentangleError("the ray executor needs Ray: pip install 'disentangle[ray]'") from None
        if not tasks:
            return
        started = not ray.is_initialized()
        if started:
            handler = signal.getsignal(signal.SIGTERM)
            stopped = False
            with stops_recorded() as stop_arrived:
                try:
                    if self.address:
                        ray.init(address=self.address, log_to_driver=False)
                    else:
                        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                                 _system_config={"worker_niceness": self.niceness})
                except (SystemExit, KeyboardInterrupt) as stop:  # while it starts, Ray answers SIGTERM with sys.exit(15)
                    if isinstance(stop, SystemExit) and stop.code != signal.SIGTERM:
                        raise
                    stopped = True
            if stopped or stop_arrived():  # raised above, or swallowed where Ray's handler ran (see stops_recorded): the grid's stop
                ray.shutdown()
                raise KeyboardInterrupt
            if callable(handler) and in_main_thread():
                signal.signal(signal.SIGTERM, handler)  # Ray's C++ failure handler aborts on SIGTERM: the grid's stops runs cleanly
        threads = tasks[0].threads or 1
        remote = ray.remote(num_cpus=threads)(_call)
        # tasks in flight: enough to keep every CPU of the cluster busy twice over, never the whole grid
        window = self.max_pending or max(4, 2 * int(ray.cluster_resources().get("CPU", 1)) // threads)

        def first_ready(handles):
            ready, rest = ray.wait(handles, num_returns=1)
            return ready[0], rest

        pending = []
        try:
            for ready in bounded_submission(tasks, remote.remote, first_ready, window, in_flight=pending):
                yield ray.get(ready)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM on the grid: interrupt the running tasks, drop the queued ones
            for ref in pending:
                ray.cancel(ref)  # a running task gets a KeyboardInterrupt: its run checkpoints and is marked interrupted
            ray.wait(pending, num_returns=len(pending), timeout=STOP_TIMEOUT_S)
            raise
        finally:
            if started:
                ray.shutdown()
