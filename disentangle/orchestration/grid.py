"""Beta grids: expand a grid into run configs, then train and evaluate each run on an
executor (local worker processes, Ray tasks, a SLURM job array: :mod:`disentangle.orchestration.executors`).

Every run's folder is derived from its config, so re-running a grid skips finished
runs, resumes partial ones (from their last checkpoint) and retries failed ones
only when asked. A per-run lock keeps two grids on one runs folder from training
the same run twice; a failing run is recorded and the grid goes on.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
from pathlib import Path
from types import MappingProxyType

from tqdm.auto import tqdm

from disentangle.base import runs
from disentangle.base.signals import sigterm_as_interrupt
from disentangle.base.errors import DisentangleError
from disentangle.lifecycle.setup import check_here, prepare_runs
from disentangle.orchestration.tasks import GridResult, RunTask


DEFAULT_MAX_RUNS = 10_000  # a grid larger than this needs --max-runs: a typo in a sweep can ask for millions
RUN_CEILING = 100_000  # the most one grid holds (its run configs are built at once): split a larger study into files


def check_run_count(total: int, max_runs: int = DEFAULT_MAX_RUNS) -> None:
    """A one-line refusal of a grid of ``total`` runs above ``max_runs`` (or above :data:`RUN_CEILING`),
    made from the count alone, before any run is built."""
    if total > RUN_CEILING:
        raise DisentangleError(f"this grid has {total:,} runs, more than the {RUN_CEILING:,} one grid can hold: split it into several study files")
    if total > max_runs:
        raise DisentangleError(f"this grid has {total:,} runs, more than --max-runs {max_runs:,}: raise it to train them all")


def expand(model: str, dataset: str | None = None, betas=(None,), seeds=(0,), steps: int | None = None,
           sweeps: dict | None = None, fixed: dict | None = None, batch_size: int | None = None,
           dataset_options: dict | None = None, checkpoint_every: int | None = None,
           precision: str | None = None, device: str | None = None, compile_loss: bool = False) -> list[runs.RunConfig]:
    """The cartesian product of betas x every swept option x seeds, as run configs; a setting not given (None)
    is RunConfig's default (:func:`disentangle.base.runs.run_config`)."""
    if not betas:
        raise DisentangleError("the beta list is empty: give at least one value")
    if not seeds:
        raise DisentangleError("the seed list is empty: give at least one value")
    sweeps = dict(sweeps or {})
    for key, values in sweeps.items():
        if not values:
            raise DisentangleError(f"the sweep of {key!r} has no values")
    keys = list(sweeps)
    configs = []
    for beta, *values, seed in itertools.product(betas, *(sweeps[k] for k in keys), seeds):
        options = dict(fixed or {})
        options.update(zip(keys, values))
        if beta is not None:
            options["beta"] = beta
        configs.append(runs.run_config(model, dataset=dataset, steps=steps, seed=seed, batch_size=batch_size, model_options=options,
                                       dataset_options=dict(dataset_options or {}), precision=precision,
                                       checkpoint_every=checkpoint_every, device=device, compile=compile_loss))
    return configs


@dataclasses.dataclass(frozen=True)
class PreparedGrid:
    """One grid ready to run (:func:`prepare_grid`, or :func:`disentangle.orchestration.requests.prepare_grids` from
    a command's options or a study file): its configs resolved and checked, their run ids final, and how to score them."""

    configs: tuple[runs.RunConfig, ...]
    metrics: tuple[str, ...] = ()
    profile: str = "published"
    metric_options: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    representations: tuple[str, ...] = ("mean",)


def prepare_grid(grid: PreparedGrid, runs_dir: str | Path) -> PreparedGrid:
    """``grid`` ready to run in ``runs_dir`` (:func:`check_runs_folder`), its configs through
    :func:`disentangle.lifecycle.setup.prepare_runs`: resolved, checked (all before any folder is touched), runs
    stored under an older id renamed, tracker stores made."""
    check_runs_folder(Path(runs_dir))
    return dataclasses.replace(grid, configs=tuple(prepare_runs(grid.configs, runs_dir)))


def _needs_work(config: runs.RunConfig, runs_dir: Path, metric_names, retry_failed: bool, profile: str = "published",
                metric_options: dict | None = None, representations: tuple[str, ...] = ("mean",), figures: bool = False,
                scored_here: bool = True) -> str | None:
    """Why a run is skipped, or None if it has work left (training, a metric missing or run with other
    settings, or with ``figures`` its figures missing or older than the run). ``scored_here``: the run would be
    scored on this machine (else on a node this one knows nothing about)."""
    from disentangle.metrics.registry import result_key
    from disentangle.scoring.runner import metric_settings, same_settings

    run_dir = runs_dir / config.run_id()
    status = runs.read_status(run_dir)
    if status.startswith("failed") and not retry_failed:
        return f"previously {status} (use --retry-failed)"
    if status == "done":
        from disentangle.lifecycle.training.loading import check_checkpoint_loads

        try:
            check_checkpoint_loads(run_dir)
            settings = runs.read_metrics(run_dir).get("settings", {})
            trained_in = runs.trained_precision(runs.read_config_data(run_dir), config)
        except DisentangleError:
            return None
        if figures:
            from disentangle.lifecycle.run_figures import figures_current

            if not figures_current(run_dir):
                return None
        options = metric_options or {}
        if scored_here:  # as this machine would score it: a bf16 run's encoder runs in fp32 where bf16 is emulated
            from disentangle.lifecycle.evaluation import encode_note

            notes = (encode_note(trained_in, config.device),)
        else:  # its node decides, unknown here: a score in either encoder precision stands
            notes = (None, "fp32") if trained_in == "bf16" else (None,)
        if all(any(same_settings(settings.get(result_key(m, "train", r)),
                                 metric_settings(m, profile, options=options.get(m), encoded_in=note, representation=r)) for note in notes)
               for m in metric_names for r in representations):
            return "already done"
    return None


def run_grid(configs: list[runs.RunConfig], runs_dir: str | Path = "runs", metric_names=(), executor: str = "local",
             workers: int = 2, profile: str = "published", retry_failed: bool = False, progress: bool = True,
             metric_options: dict | None = None, threads: int | None = None, executor_options: dict | None = None,
             representations: tuple[str, ...] = ("mean",), figures: bool = True) -> list[GridResult]:
    """Prepare ``configs`` (:func:`prepare_grid`) and train and evaluate every one on ``executor``
    (:func:`run_prepared`, which says what each option does); one result per config, in the order given."""
    grid = PreparedGrid(tuple(configs), tuple(metric_names), profile, MappingProxyType(dict(metric_options or {})), tuple(representations))
    return run_prepared(prepare_grid(grid, runs_dir), runs_dir, executor=executor, workers=workers, retry_failed=retry_failed,
                        progress=progress, threads=threads, executor_options=executor_options, figures=figures)


def run_prepared(grid: PreparedGrid, runs_dir: str | Path = "runs", executor: str = "local", workers: int = 2, retry_failed: bool = False,
                 progress: bool = True, threads: int | None = None, executor_options: dict | None = None,
                 figures: bool = True) -> list[GridResult]:
    """Train and evaluate every run of ``grid``, prepared for ``runs_dir`` (its folder checked there), on ``executor`` (see :mod:`disentangle.orchestration.executors`,
    with its own ``executor_options``), scoring codes of each of its representations ("mean", "sampled"), and with
    ``figures`` (the default) draw each run's figures into ``RUN/figures`` as it finishes (in the worker: ~0.7 s a run
    once it has trained, 2 s of imports once a worker; the HTML report then copies them rather than draw them all
    at the end); return one result per config, in the grid's order.
    ``threads`` not given: cores / workers on this machine for a local grid; a remote task's node decides its own.

    Runs start seed by seed (every setting at the first seed before any at the
    second), so a study stopped half way already covers its whole sweep.
    """
    from disentangle.orchestration.executors import get_executor

    runner = get_executor(executor, workers=workers, **(executor_options or {}))
    runs_dir = Path(runs_dir)
    configs = list({config.run_id(): config for config in grid.configs}.values())  # beta = [4, 4.0] is one run
    if not runner.remote:  # the runs train on this machine: a device it lacks is one error before any worker starts
        check_here(configs)
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
    # else threads stay as given: each task resolves what it was not told on its node (lifecycle.setup.resolve_here)
    metric_options = dict(grid.metric_options)
    marker = _driver_marker(runs_dir) if runner.remote else None
    results: dict[str, GridResult] = {}
    todo = []
    for config in sorted(configs, key=lambda c: c.seed):  # stable: the sweep order within a seed is kept
        task = RunTask(config, str(runs_dir), grid.metrics, grid.profile, threads, metric_options, driver_marker=marker,
                       representations=grid.representations, figures=figures)
        reason = runner.pending_reason(task) or _needs_work(config, runs_dir, grid.metrics, retry_failed, grid.profile, metric_options,
                                                            grid.representations, figures, scored_here=not runner.remote)
        if reason:
            results[config.run_id()] = GridResult(config.run_id(), "skipped", reason)
        else:
            task.progress = progress and runner.shows_progress
            todo.append(task)
    bar = tqdm(total=len(todo), desc="grid", unit="run", disable=not progress)
    with sigterm_as_interrupt():  # SIGTERM stops local workers too, not left training as orphans
        for result in runner.run(todo):
            results[result.run_id] = result
            bar.update(1)
            bar.set_postfix_str(f"{result.run_id}: {result.outcome}")
    bar.close()
    if marker and not any(r.outcome == "submitted" for r in results.values()):
        Path(marker).unlink(missing_ok=True)  # queued jobs still need it; they find it by name
    return [results[c.run_id()] for c in grid.configs]


def check_runs_folder(runs_dir: Path) -> None:
    """A one-line error unless ``runs_dir`` can be made and written and its file system's locks work."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=runs_dir):  # a private probe: safe with concurrent grids
            pass
    except OSError as error:
        raise DisentangleError(f"runs folder {runs_dir} is not writable ({error.strerror})") from None
    runs.check_locks_work(runs_dir)  # the per-run lock is what keeps two workers off one run


def _driver_marker(runs_dir: Path) -> str:
    """A file only a worker sharing the driver's file system can see (named after the driver's host,
    one per grid invocation, kept while jobs it submitted may still start)."""
    import socket
    import uuid

    marker = runs_dir.resolve() / ".drivers" / f".driver-{socket.gethostname()}-{uuid.uuid4().hex[:12]}"
    marker.parent.mkdir(exist_ok=True)
    marker.touch()
    return str(marker)


PLAN_KINDS = ("new", "resumable", "finished", "failed", "running", "unreadable")


@dataclasses.dataclass
class GridPlan:
    """What a grid would do, read from each run's status alone (nothing trains, nothing is written)."""

    runs: dict[str, list[str]]  # kind (PLAN_KINDS) -> run ids
    steps_to_train: dict[str, int]  # precision -> training steps left over the runs to train
    images_to_train: dict[str, int]  # precision -> images (steps x batch size)

    def lines(self, threads: int, shown: int = 5) -> list[str]:
        """The plan as the command prints it: counts, the first run ids to train, the budget and its estimate."""
        total = sum(len(ids) for ids in self.runs.values())
        counts = ", ".join(f"{len(self.runs[k]):,} {k}" for k in PLAN_KINDS if self.runs[k])
        lines = [f"{total:,} runs: {counts}"]
        todo = self.runs["new"] + self.runs["resumable"]
        if todo:
            more = f" (and {len(todo) - shown:,} more)" if len(todo) > shown else ""
            lines.append("to train: " + ", ".join(todo[:shown]) + more)
        from disentangle.lifecycle.hardware import cached_training_rate

        for precision, steps in sorted(self.steps_to_train.items()):
            if not steps:
                continue
            rate = cached_training_rate(precision, threads)
            estimate = (f"~{self.images_to_train[precision] / rate / 3600:,.1f} h at {rate:,.0f} images/s, one run at a time on {threads} "
                        "thread(s) here (the cached speed probe)") if rate else "no speed probe cached on this machine yet (the quickstart measures one)"
            lines.append(f"budget ({precision}): {steps:,} steps, {self.images_to_train[precision]:,} images; {estimate}")
        return lines


def plan_grid(configs: list[runs.RunConfig], runs_dir: str | Path) -> GridPlan:
    """Classify every run of ``configs`` (resolved, as :func:`disentangle.lifecycle.setup.resolve_config` makes them) by its
    folder under ``runs_dir``: new, resumable (from the steps its log.csv holds), finished, failed, running, unreadable."""
    plan = GridPlan({kind: [] for kind in PLAN_KINDS}, {}, {})
    for config in {c.run_id(): c for c in configs}.values():
        run_dir = Path(runs_dir) / config.run_id()
        status = runs.read_status(run_dir)
        kind = ("new" if status == "new" else "finished" if status == "done" else "failed" if status.startswith("failed")
                else "running" if status == runs.RUNNING else "resumable" if status == runs.INTERRUPTED else "unreadable")
        plan.runs[kind].append(config.run_id())
        if kind in ("new", "resumable"):
            left = config.steps - (_logged_steps(run_dir) if kind == "resumable" else 0)
            plan.steps_to_train[config.precision] = plan.steps_to_train.get(config.precision, 0) + max(left, 0)
            plan.images_to_train[config.precision] = plan.images_to_train.get(config.precision, 0) + max(left, 0) * config.batch_size
    return plan


def _logged_steps(run_dir: Path) -> int:
    """The last step a run's log.csv holds (0 without one): what a resume starts near."""
    row = runs.read_log_tail(run_dir)
    return int(row["step"]) if row else 0


def summary_line(results: list[GridResult]) -> str:
    """``"3 done, 0 failed, 1 skipped, 0 locked"`` (and ``, 2 submitted`` when any) for a grid's results."""
    counts = {k: sum(r.outcome == k for r in results) for k in ("done", "failed", "skipped", "locked")}
    if any(r.outcome == "submitted" for r in results):
        counts["submitted"] = sum(r.outcome == "submitted" for r in results)
    return ", ".join(f"{v} {k}" for k, v in counts.items())
