"""The executor interface and the registry of executors (the tasks they run: :mod:`disentangle.orchestration.tasks`)."""

from __future__ import annotations

import abc
from typing import Callable, Iterable, Iterator

from disentangle.base.registry import Registry
from disentangle.orchestration.tasks import GridResult, RunTask
from disentangle.base.validation import check_count

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


def bounded_submission(items: Iterable, submit: Callable, wait_first: Callable, window: int, in_flight: list | None = None) -> Iterator:
    """Submit ``items`` (``submit(item) -> handle``) keeping at most ``window`` handles in flight, and yield
    each finished handle (``wait_first(handles) -> (done handle, the rest)``) as the next is submitted:
    a 12,800-task grid holds ``window`` pending tasks in the driver, not 12,800. ``in_flight`` (a list,
    kept current) lets the caller cancel what is in flight when it is stopped.

    Examples
    --------
    >>> from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    >>> def first(handles):
    ...     done, rest = wait(handles, return_when=FIRST_COMPLETED)
    ...     finished = next(iter(done))
    ...     return finished, [h for h in handles if h is not finished]
    >>> with ThreadPoolExecutor(2) as pool:
    ...     sorted(f.result() for f in bounded_submission(range(5), lambda n: pool.submit(pow, n, 2), first, window=2))
    [0, 1, 4, 9, 16]
    """
    window = check_count(window, "window")
    pending = in_flight if in_flight is not None else []
    queue = iter(items)
    for item in queue:
        pending.append(submit(item))
        if len(pending) >= window:
            break
    while pending:
        finished, rest = wait_first(list(pending))
        pending[:] = rest
        for item in queue:  # one in, one out: the window stays full
            pending.append(submit(item))
            break
        yield finished


def run_in_order(tasks: Iterable[RunTask]) -> Iterator[GridResult]:
    """Run tasks one after the other in this process."""
    for task in tasks:
        yield task()
