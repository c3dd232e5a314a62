"""Ray tasks, on a local instance or a cluster (``address``); each task asks for its threads in CPUs.

Every worker writes to the runs folder on its own file system, so across machines the
folder must be shared (NFS or similar); the per-run lock then needs a file system with
working ``flock`` (see README).
"""

from __future__ import annotations

import os

from disentangle.errors import DisentangleError
from disentangle.executors.base import EXECUTORS, Executor


def _call(task):
    return task()


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Ray tasks; ``address`` joins a running cluster, else a local instance is started and stopped."""

    def __init__(self, workers: int = 2, address: str | None = None):
        super().__init__(workers)
        self.address = address

    def run(self, tasks):
        try:
            import ray
        except ImportError:
            raise DisentangleError("the ray executor needs Ray: pip install 'disentangle[ray]'") from None
        if not tasks:
            return
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=tasks[0].threads or 1)(_call)
        try:
            pending = [remote.remote(task) for task in tasks]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            if started:
                ray.shutdown()
