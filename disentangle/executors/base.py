"""The executor interface and the registry of executors (the tasks they run: :mod:`disentangle.tasks`)."""

from __future__ import annotations

import abc
from typing import Iterable, Iterator

from disentangle.registry import Registry
from disentangle.tasks import GridResult, RunTask
from disentangle.validation import check_count

EXECUTORS = Registry("executor", attribute="name")


class Executor(abc.ABC):
    """Runs tasks somewhere; ``workers`` is how many at once (where the executor decides that)."""

    name = "executor"  # set by the registry
    remote = False  # tasks may run on other machines: each checks it sees the driver's runs folder

    def __init__(self, workers: int = 2):
        self.workers = check_count(workers, "workers")

    @abc.abstractmethod
    def run(self, tasks: list[RunTask]) -> Iterator[GridResult]:
        """Yield one result per task, in completion order."""

    @property
    def shows_progress(self) -> bool:
        """Whether a task's own progress bars reach this terminal (one task at a time, in this process)."""
        return False

    def pending_reason(self, task: RunTask) -> str | None:
        """Why a task must not be started again now (e.g. still queued on a cluster), or None."""
        return None


def list_executors() -> list[str]:
    """Names of the registered executors."""
    return EXECUTORS.names()


def get_executor(name: str, **options) -> Executor:
    """Build executor ``name`` with ``options``, checked against what its class takes (its schema)."""
    return EXECUTORS.build(name, **options)


def run_in_order(tasks: Iterable[RunTask]) -> Iterator[GridResult]:
    """Run tasks one after the other in this process."""
    for task in tasks:
        yield task()
