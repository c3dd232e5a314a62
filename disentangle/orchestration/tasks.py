"""One run of a grid as a task: what a worker needs (:class:`RunTask`), what it does (:func:`run_one`)
and what it reports (:class:`GridResult`).

The grid builds tasks and every executor runs them, so both depend on this module and
neither on the other.
"""

from __future__ import annotations

import dataclasses
import os
import socket

from disentangle.base import runs
from disentangle.base.errors import DisentangleError


@dataclasses.dataclass
class GridResult:
    """What happened to one run of a grid: ``outcome`` is done, skipped, failed, locked or submitted."""

    run_id: str
    outcome: str  # done | skipped | failed | locked | submitted
    detail: str = ""


def run_one(config: runs.RunConfig, runs_dir: str, metric_names, profile: str, threads: int | None, progress: bool = False,
            metric_options: dict | None = None, representations: tuple[str, ...] = ("mean",), figures: bool = False) -> GridResult:
    """Train and evaluate one run (once per representation); with ``figures``, draw its figures into
    ``RUN/figures`` unless they are current (a figure that cannot be drawn is told in the result's
    detail, the run is still done). Never raises (the grid goes on)."""
    from disentangle.lifecycle.evaluation import evaluate
    from disentangle.lifecycle.training import TrainingFailed, train_prepared

    run_id = config.run_id()
    try:
        run_dir, trained = train_prepared(config, runs_dir, progress=progress, threads=threads)  # a grid's configs come prepared
        for representation in representations if metric_names else ():
            evaluate(run_dir, metric_names, profile=profile, options=metric_options, representation=representation, progress=progress,
                     device=config.device)
        drawn = _draw_figures(run_dir, config.device) if figures else None
        detail = "" if trained else "training was already done" + (": evaluated" if metric_names else "")
        if drawn is not None:
            detail = "; ".join(part for part in (detail, drawn) if part)
        return GridResult(run_id, "done" if trained or metric_names or drawn else "skipped", detail)
    except runs.RunLocked as error:
        return GridResult(run_id, "locked", str(error))
    except (TrainingFailed, DisentangleError) as error:
        return GridResult(run_id, "failed", str(error))
    except Exception as error:  # one broken run must not stop the grid; train() recorded its status
        return GridResult(run_id, "failed", f"{type(error).__name__}: {error}")


def _draw_figures(run_dir, device: str) -> str | None:
    """The run's figures drawn into ``RUN/figures``: "figures drawn", the problem, or None when they were current."""
    from disentangle.lifecycle.run_figures import draw_run_figures, figures_current

    if figures_current(run_dir):
        return None
    return draw_run_figures(run_dir, device=device) or "figures drawn"


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
    representations: tuple = ("mean",)
    figures: bool = False  # draw the run's figures into RUN/figures when it is done (what the report copies)

    @property
    def run_id(self) -> str:
        return self.config.run_id()

    def __call__(self) -> GridResult:
        """Train (or resume) and evaluate the run; never raises: a failure is a result."""
        if self.driver_marker and not os.path.exists(self.driver_marker):
            driver = os.path.basename(self.driver_marker).removeprefix(".driver-").rsplit("-", 1)[0]
            return GridResult(self.run_id, "failed", f"worker {socket.gethostname()} cannot see the runs folder {self.runs_dir} of the driver "
                                                     f"on {driver}: running on several machines needs a shared file system")
        return run_one(self.config, self.runs_dir, self.metric_names, self.profile, self.threads, self.progress, self.metric_options,
                       self.representations, self.figures)
