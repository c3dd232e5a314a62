"""Where a grid's runs execute: one small class per executor, registered by name.

``get_executor("slurm", partition="debug")`` builds one; ``list_executors()`` names
them. Each takes :class:`RunTask` objects (one picklable description per run) and
yields a :class:`GridResult` per task. Adding an executor is one file here plus its import line below;
its options reach ``grid`` as ``--executor-option KEY=VALUE`` (a shorthand flag like ``--partition`` is a line of the CLI).
"""

from disentangle.orchestration.executors.base import EXECUTORS, Executor, get_executor, list_executors
from disentangle.orchestration.tasks import GridResult, RunTask
from disentangle.orchestration.executors import local, ray_executor, slurm  # noqa: F401 -- registration

__all__ = ["EXECUTORS", "Executor", "GridResult", "RunTask", "get_executor", "list_executors"]
