"""The executor interface: a picklable task per run, and the registry of executors."""

from __future__ import annotations

import abc
import dataclasses
import inspect
from typing import Iterable, Iterator

from disentangle import runs
from disentangle.errors import DisentangleError
from disentangle.registry import Registry

EXECUTORS = Registry("executor", attribute="name")


@dataclasses.dataclass
class GridResult:
    """What happened to one run of a grid: ``outcome`` is done, skipped, failed, locked or submitted."""

    run_id: str
    outcome: str  # done | skipped | failed | locked | submitted
    detail: str = ""


@dataclasses.dataclass
class RunTask:
    """Everything one worker needs to train and evaluate one run (picklable, no open handles)."""

    config: runs.RunConfig
    runs_dir: str
    metric_names: tuple = ()
    profile: str = "published"
    threads: int | None = None
    metric_options: dict = dataclasses.field(default_factory=dict)
    progress: bool = False
    driver_marker: str | None = None  # a file the driver wrote in runs_dir: a worker must see it

    @property
    def run_id(self) -> str:
        return self.config.run_id()

    def __call__(self) -> GridResult:
        """Train (or resume) and evaluate the run; never raises: a failure is a result."""
        import os
        import socket

        from disentangle.grid import run_one

        if self.driver_marker and not os.path.exists(self.driver_marker):
            driver = os.path.basename(self.driver_marker).removeprefix(".driver-").rsplit("-", 1)[0]
            return GridResult(self.run_id, "failed", f"worker {socket.gethostname()} cannot see the runs folder {self.runs_dir} of the driver "
                                                     f"on {driver}: running on several machines needs a shared file system")
        return run_one(self.config, self.runs_dir, self.metric_names, self.profile, self.threads, self.progress, self.metric_options)


class Executor(abc.ABC):
    """Runs tasks somewhere; ``workers`` is how many at once (where the executor decides that)."""

    name = "executor"  # set by the registry

    def __init__(self, workers: int = 2):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise DisentangleError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers

    @abc.abstractmethod
    def run(self, tasks: list[RunTask]) -> Iterator[GridResult]:
        """Yield one result per task, in completion order."""

    def pending_reason(self, task: RunTask) -> str | None:
        """Why a task must not be started again now (e.g. still queued on a cluster), or None."""
        return None


def list_executors() -> list[str]:
    """Names of the registered executors."""
    return EXECUTORS.names()


def get_executor(name: str, **options) -> Executor:
    """Build executor ``name`` with the options its class takes; options it does not take are ignored
    when None (unset on the command line) and an error otherwise."""
    cls = EXECUTORS.get(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(k for k, v in options.items() if k not in accepted and v not in (None, False))
    if unknown:
        raise DisentangleError(f"option {unknown[0]!r} does not apply to the {name} executor (it takes: {', '.join(sorted(accepted))})")
    return cls(**{k: v for k, v in options.items() if k in accepted})


def run_in_order(tasks: Iterable[RunTask]) -> Iterator[GridResult]:
    """Run tasks one after the other in this process."""
    for task in tasks:
        yield task()
