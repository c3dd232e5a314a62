"""The ``disentangle`` command line: parses arguments, then calls the library."""

from __future__ import annotations

from disentangle.base.signals import INTERRUPTED_EXIT

from pathlib import Path  # noqa: E402

import click  # noqa: E402

from disentangle.cli.common import (ExecutorOptionsOption, MetricsOption, RegistryOption, chosen_profile,  # noqa: F401, E402
                                    dataset_options_from, executor_options_from, profile_option, reports_errors)
from disentangle.base.errors import DisentangleError  # noqa: E402
from disentangle.base.profiles import DISTRIBUTIONS  # noqa: E402
from disentangle.base.runs import RUN_DEFAULTS, check_precision  # noqa: E402
from disentangle.base.validation import parse_setting  # noqa: E402


GRID_FAILED_EXIT = 3  # `grid` exit status when any run failed (2: bad usage or input, 0: all done or skipped)
GRID_INTERRUPTED_EXIT = INTERRUPTED_EXIT  # every command stopped by Ctrl-C or SIGTERM: one line, exit 130
RUNS_RESUME = "its unfinished runs are marked interrupted and resume when the command is run again"


@click.group()
@click.version_option(package_name="disentangle")
def main():
    """Train VAE-family models, score disentanglement, compare beta grids."""


def run_config_from_options(model, dataset, steps, seed, beta, settings, batch_size, checkpoint_every, log_every, data_root,
                            precision=None, dataset_settings=(), **how):
    """The :class:`RunConfig` that ``train``'s options describe (``--set`` values read as JSON); an option not
    given (None) is RunConfig's default."""
    from disentangle.base.runs import run_config

    model_options = dict(parse_setting(s) for s in settings)
    if beta is not None:
        model_options["beta"] = beta
    return run_config(model, dataset=dataset, steps=steps, seed=seed, batch_size=batch_size, model_options=model_options,
                      dataset_options=dataset_options_from(data_root, dataset_settings), precision=precision,
                      checkpoint_every=checkpoint_every, log_every=log_every, **how)


def _default(name: str) -> str:
    """The help's ``[default: ...]`` of a run setting, from RunConfig (the options themselves default to "not given")."""
    return f"[default: {RUN_DEFAULTS[name]}]"


def warn_if_bf16_emulated(configs) -> None:
    """One stderr line when runs ask for bf16 explicitly on a device that only emulates it (they still train)."""
    from disentangle.base.devices import resolve_device
    from disentangle.lifecycle.hardware import bf16_emulation_warning

    for device in dict.fromkeys(c.device for c in configs if c.precision == "bf16"):
        message = bf16_emulation_warning("bf16", resolve_device(device))
        if message:
            click.echo(message, err=True)


def training_options(command):
    """Decorate a command with the options every training command shares."""
    options = [
        click.option("--model", required=True, cls=RegistryOption, registry="disentangle.models.registry:MODELS",
                     help="The pair models (ada_gvae, ada_ml_vae, group_vae, ml_vae) train on pairs of observations."),
        click.option("--dataset", default=None, help=_default("dataset"), cls=RegistryOption, registry="disentangle.datasets:DATASETS"),
        click.option("--steps", type=int, default=None, help=_default("steps")),
        click.option("--seed", type=int, default=None, help=_default("seed")),
        click.option("--batch-size", type=int, default=None, help=_default("batch_size")),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Any model option, e.g. --set gamma=35."),
        click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints (default min(1000, steps))."),
        click.option("--log-every", type=int, default=None, help=_default("log_every")),
        click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Data set folder."),
        click.option("--dataset-option", "dataset_settings", multiple=True, metavar="KEY=VALUE",
                      help="A data set option, e.g. --dataset-option binarize=dynamic (verify, in_memory: not part of the run id)."),
        click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores)."),
        click.option("--precision", default=None, metavar="auto|fp32|bf16",
                     help="bf16: the networks under bfloat16 autocast (loss terms stay float32); auto: bf16 where the device "
                          "computes it natively (AVX-512 BF16, AMX, recent GPUs), else fp32, decided on the machine that trains "
                          "(config.json's trained_with records it; the run id holds 'auto'). " + _default("precision")),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--device", default=None, help="auto (CUDA when available), cpu, cuda, cuda:N or mps; not part of the run id. " + _default("device")),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def tracker_options(command):
    """``--logger`` (several) and ``--tracking-uri``, shared by ``train`` and ``grid``."""
    command = click.option("--tracking-uri", default=None,
                           help="mlflow: a tracking server or database URI (default: sqlite mlflow.db in the runs folder).")(command)
    return click.option("--logger", "loggers", multiple=True, cls=RegistryOption, registry="disentangle.lifecycle.trackers:TRACKERS",
                        help="An experiment tracker besides log.csv, which every run writes (csv names it and opens nothing; several allowed); not part of the run id.")(command)


@main.command()
@training_options
@tracker_options
@click.option("--beta", type=float, default=None, help="The model's beta (beta_vae, beta_tcvae, the pair models).")
@click.option("--resume", is_flag=True, help="Accepted and ignored: the same command without it resumes an unfinished run too.")
@click.option("--compile", "compile_loss", is_flag=True, help="torch.compile the loss (eager if compiling fails): faster in bf16 after a few seconds of compiling; not part of the run id.")
@reports_errors(interrupted="running the command again resumes the run from its last checkpoint", loads=("disentangle.lifecycle.training",))
def train(model, dataset, steps, seed, batch_size, settings, checkpoint_every, log_every, data_root, dataset_settings, runs_dir, threads, precision, quiet,
          device, loggers, tracking_uri, compile_loss, beta, resume):
    """Train one run into RUNS_DIR/<run-id>/ (resumes when it exists)."""
    from disentangle.base.runs import read_status
    from disentangle.lifecycle.training import TrainingFailed
    from disentangle.lifecycle.training import train as train_run

    config = run_config_from_options(model, dataset, steps, seed, beta, settings, batch_size, checkpoint_every, log_every, data_root,
                                     precision, dataset_settings, device=device, compile=compile_loss, loggers=list(loggers),
                                     tracking_uri=tracking_uri)
    warn_if_bf16_emulated([config])
    try:
        run_dir = train_run(config, runs_dir, progress=not quiet, threads=threads)
    except TrainingFailed as error:
        raise click.ClickException(f"run failed: {error}") from None
    click.echo(f"{run_dir}: {read_status(run_dir)}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--metrics", "metric_names", default=None, cls=MetricsOption)
@click.option("--seed", type=int, default=0, show_default=True)
@profile_option("--fast")
@click.option("--force", is_flag=True, help="Recompute metrics already in metrics.json.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="The data set split to score (test: MNIST's 10,000 test images; stored as <metric>_test).")
@click.option("--representation", type=click.Choice(["mean", "sampled"]), default="mean", show_default=True,
              help="Code with the posterior mean, or one seeded draw from the posterior (stored as <metric>_sampled).")
@click.option("--distribution", type=click.Choice(DISTRIBUTIONS), default=DISTRIBUTIONS[0], show_default=True,
              help="For runs trained with correlations or a holdout: score on the whole independent factor grid, or on the training joint.")
@click.option("--set", "metric_settings", multiple=True, metavar="METRIC.KEY=VALUE", help="A metric setting, e.g. --set iwae.k=5000 --set iwae.num_points=all.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where the run's data set files are on this machine.")
@click.option("--bootstrap", type=int, default=0, show_default=True,
              help="Replicates of a 95% bootstrap interval per array-metric value (stored as <key>.ci_low/.ci_high; 0: none).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda, cuda:N or mps; not part of the run id.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--quiet", is_flag=True)
@reports_errors(interrupted="metrics already written are kept; running the command again computes the others",
                 loads=("disentangle.lifecycle.evaluation",))
def evaluate(run_dirs, metric_names, seed, profile, old_fast_flag, force, split, representation, distribution, metric_settings, data_root,
             bootstrap, device, threads, quiet):
    """Score trained runs; writes RUN_DIR/metrics.json."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from disentangle.lifecycle.evaluation import evaluate as evaluate_run
    from disentangle.metrics.registry import parse_metric_names
    from disentangle.metrics.registry import result_key
    from disentangle.scoring.runner import parse_metric_options

    names = parse_metric_names(metric_names)
    options = parse_metric_options(metric_settings)
    profile = chosen_profile(profile, old_fast_flag) or "published"
    keys = [result_key(n, split, representation) for n in names]
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise DisentangleError(f"{run_dir} is not a run folder")
        result = evaluate_run(run_dir, names, profile=profile, seed=seed, options=options, bootstrap=bootstrap, split=split,
                              representation=representation, force=force, progress=not quiet, data_root=data_root, device=device,
                              distribution=distribution)
        shown = ", ".join(f"{k}={v:.3f}" for k, v in result.items() if isinstance(v, float) and k.partition(".")[0] in keys)
        skipped = [f"{k} ({result['settings'][k]['skipped']})" for k in keys if "skipped" in result["settings"].get(k, {})]
        if skipped:
            click.echo(f"{run_dir}: skipped " + "; ".join(skipped), err=True)
        click.echo(f"{run_dir}: {shown}")


@main.command()
@click.option("--spec", "spec_file", type=click.Path(path_type=Path), default=None,
              help="A study TOML file of [[grid]] tables (replaces --model, --beta, --set, --seeds, ...).")
@click.option("--model", default=None, cls=RegistryOption, registry="disentangle.models.registry:MODELS")
@click.option("--beta", "betas", default=None, help="Comma-separated betas, e.g. 1,2,4,8,16.")
@click.option("--seeds", default=None, help="Comma-separated seeds or ranges, e.g. 0-4 [default: 0].")
@click.option("--dataset", default=None, help="[default: dsprites]", cls=RegistryOption, registry="disentangle.datasets:DATASETS")
@click.option("--steps", type=int, default=None, help=f"[default: {RUN_DEFAULTS['steps']}, as study files]")
@click.option("--batch-size", type=int, default=None, help=f"[default: {RUN_DEFAULTS['batch_size']}]")
@click.option("--set", "settings", multiple=True, metavar="KEY=V1,V2", help="Sweep (or fix) any model option.")
@click.option("--evaluate", "metric_names", default=None, help="Metrics after training, comma-separated ('' for none) [default: evaluate's default set]; names as in 'evaluate --help'.")
@click.option("--representation", "representations", multiple=True, type=click.Choice(["mean", "sampled"]),
              help="Codes scored after training: mean (default), sampled, or both (give it twice).")
@profile_option("--fast-eval")
@click.option("--precision", default=None, metavar="auto|fp32|bf16", help="auto: bf16 where the device computes it natively, else fp32 [default: fp32].")
@click.option("--executor", default="local", show_default=True, cls=RegistryOption, registry="disentangle.orchestration.executors:EXECUTORS")
@click.option("--workers", type=int, default=2, show_default=True, help="Runs at once (slurm: the default array parallelism).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads per run (default: cores / workers).")
@click.option("--executor-option", "executor_settings", multiple=True, metavar="KEY=VALUE", cls=ExecutorOptionsOption)
@click.option("--address", default=None, help="Ray cluster address (ray executor).")
@click.option("--partition", default=None, help="SLURM partition (slurm executor).")
@click.option("--time", "time_min", type=int, default=None, help="SLURM time limit per run, minutes [default: 60].")
@click.option("--cpus-per-task", type=int, default=None, help="SLURM CPUs per run [default: --threads].")
@click.option("--gpus-per-task", type=int, default=None, help="SLURM GPUs per run.")
@click.option("--mem", type=float, default=None, help="SLURM memory per run, GB.")
@click.option("--slurm-array-parallelism", type=int, default=None, help="SLURM array tasks at once [default: --workers].")
@click.option("--slurm-folder", type=click.Path(path_type=Path), default=None, help="submitit's logs and job files [default: RUNS_DIR/.slurm].")
@click.option("--max-requeues", type=int, default=None, help="SLURM: times a run may hit its time limit and be requeued [default: 3].")
@click.option("--no-wait", is_flag=True, help="slurm: submit and return; re-running the command collects what finished.")
@click.option("--device", default=None, help="auto (CUDA when available), cpu, cuda, cuda:N or mps; not part of the run id.")
@click.option("--compile", "compile_loss", is_flag=True, help="torch.compile each run's loss (eager if compiling fails); not part of the run id.")
@click.option("--retry-failed", is_flag=True, help="Train failed runs again.")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="Draw each run's figures into RUN/figures as it finishes (~0.7 s a run in its worker; report --html then only copies them).")
@click.option("--max-runs", type=click.IntRange(min=1), default=None, help="Refuse a grid of more runs than this, counted before any is built [default: 10,000].")
@click.option("--dry-run", is_flag=True, help="Print what the grid would do (new, resumable, finished, failed, running runs; the training budget) and stop.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@click.option("--dataset-option", "dataset_settings", multiple=True, metavar="KEY=VALUE", help="A data set option for every run.")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@tracker_options
@click.option("--quiet", is_flag=True)
@reports_errors(interrupted=RUNS_RESUME, loads=("disentangle.orchestration.grid", "disentangle.lifecycle.training"))
def grid(spec_file, model, betas, seeds, dataset, steps, batch_size, settings, metric_names, profile, old_fast_flag, precision, executor, workers,
         threads, executor_settings, address, partition, time_min, cpus_per_task, gpus_per_task, mem, slurm_array_parallelism, slurm_folder, max_requeues,
         no_wait, device, compile_loss, retry_failed, figures, max_runs, dry_run, data_root, dataset_settings, runs_dir, loggers, tracking_uri, quiet,
         representations=()):
    """Train (and evaluate) the cartesian product of betas, swept options and seeds, or a study file."""
    from disentangle.orchestration import grid as grid_lib
    from disentangle.orchestration.executors import EXECUTORS
    from disentangle.orchestration.requests import GridRequest, plan_grids, prepare_grids

    executor_options = executor_options_from(executor_settings, {
        "address": address, "partition": partition, "time": time_min, "cpus_per_task": cpus_per_task, "gpus_per_task": gpus_per_task,
        "mem": mem, "slurm_array_parallelism": slurm_array_parallelism, "slurm_folder": str(slurm_folder) if slurm_folder else None,
        "wait": False if no_wait else None, "max_requeues": max_requeues})
    EXECUTORS.check_options(executor, {**executor_options, "workers": workers}, hidden=("workers",))  # before a big sweep is expanded
    request = GridRequest(spec_file, model, betas, seeds, dataset, steps, batch_size, tuple(settings), metric_names,
                          chosen_profile(profile, old_fast_flag), precision, tuple(representations), device, compile_loss, tuple(loggers),
                          tracking_uri, dataset_options_from(data_root, dataset_settings), max_runs)
    if dry_run:  # resolved and checked like a real grid, but nothing migrated, created or trained
        grids = plan_grids(request)
        for line in grid_lib.plan_grid([config for g in grids for config in g.configs], runs_dir).lines(threads or 1):
            click.echo(line)
        return
    grids = prepare_grids(request, runs_dir)  # every table of a study checked before the first trains
    if not EXECUTORS.get(executor).remote:  # elsewhere each node knows its own hardware
        warn_if_bf16_emulated([config for g in grids for config in g.configs])
    results = [result for g in grids for result in grid_lib.run_prepared(
        g, runs_dir, executor=executor, workers=workers, retry_failed=retry_failed, progress=not quiet, threads=threads,
        executor_options=executor_options, figures=figures)]
    for result in results:
        click.echo(f"{result.outcome:8s} {result.run_id} {result.detail}")
    click.echo(f"grid: {grid_lib.summary_line(results)}")
    if any(r.outcome == "failed" for r in results):
        raise SystemExit(GRID_FAILED_EXIT)


@main.command()
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("metrics"), show_default=True)
@click.option("--html", "as_html", is_flag=True, help="Also write a static site: OUT/report/index.html and a page per run.")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]), default="png", show_default=True, help="Format of the grid figures.")
@click.option("--no-run-figures", is_flag=True, help="--html without drawing the run figures a grid did not draw (grid --no-figures, older runs: 1-3 s a run); those drawn as runs finished are still copied.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where the runs' data set files are on this machine (--html figures).")
@click.option("--quiet", is_flag=True)
@reports_errors
def report(runs_dir, out, as_html, fmt, no_run_figures, data_root, quiet):
    """Write OUT/runs.csv, OUT/summary.csv, OUT/summary_long.csv and the grid figures; print the summary."""
    from disentangle.reports import viz
    from disentangle.reports.table import summary_text, write_report

    notes: list[str] = []
    table, summary, problems = write_report(runs_dir, out, notes)
    if as_html:
        from disentangle.reports.site import write_html_report

        site = write_html_report(runs_dir, out, progress=not quiet, collected=(table, problems), data_root=data_root,
                                 run_figures=not no_run_figures)
        if not quiet:
            click.echo(f"wrote {site}")
    for problem in problems:
        click.echo(f"unreadable: {problem}", err=True)
    for note in notes:
        click.echo(f"left out: {note}", err=True)
    if table.empty:
        if not quiet:
            click.echo(f"no runs in {runs_dir}")
        return
    figures = viz.sweep_figures(table, out, fmt)
    if not quiet:
        click.echo(summary_text(summary))
        tables = [name for name in ("runs.csv", "summary.csv", "summary_long.csv", "variance_explained.csv", "rank_correlation.csv")
                  if (out / name).is_file()]
        click.echo(f"wrote {out}: {', '.join(tables)}" + (f" and {len(figures)} figures" if figures else ""))


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default: RUN_DIR/figures.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where the run's data set files are on this machine.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda, cuda:N or mps; not part of the run id.")
@reports_errors
def traverse(run_dir, out, seed, data_root, device):
    """Latent traversals (PNG, GIF), reconstructions, prior samples and KL per latent of a run."""
    from disentangle.base.runs import CHECKPOINT, read_status
    from disentangle.reports.viz import render_run_figures

    status = read_status(run_dir)
    if status != "done" and (run_dir / CHECKPOINT).exists():  # a running or stopped run: say which model is drawn
        from disentangle.lifecycle.training.checkpoint import load_checkpoint

        step = load_checkpoint(run_dir / CHECKPOINT).get("step", "?")
        click.echo(f"{run_dir} is {status}: drawing its checkpoint at step {step}, not a finished model", err=True)
    for path in render_run_figures(run_dir, out, seed, data_root, device=device):
        click.echo(str(path))


@main.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@reports_errors
def export(run_dir, out_dir):
    """Copy a finished run with its model weights only (small, for sharing or committing)."""
    from disentangle.lifecycle.training.export import export_run

    click.echo(f"wrote {export_run(run_dir, out_dir)}")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("quickstart"), show_default=True)
@click.option("--fast", is_flag=True, help="The same path in under 2 minutes (tiny step and sample budgets).")
@click.option("--workers", type=int, default=3, show_default=True, help="Parallel runs (each gets cores / workers threads, at least 1).")
@click.option("--precision", default="auto", show_default=True, metavar="auto|fp32|bf16",
              help="auto: bf16 where this machine computes it natively, else fp32.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Steps per run [default: the budget that trains in about 5 minutes here, from a measured probe].")
@click.option("--quiet", is_flag=True)
@reports_errors(interrupted=RUNS_RESUME, loads=("disentangle.quickstart", "disentangle.lifecycle.training"))
def quickstart(out, fast, workers, precision, steps, quiet):
    """Train a beta grid on procedural dSprites, score it, write tables and figures."""
    from disentangle.quickstart import run_quickstart

    check_precision(precision)
    run_quickstart(out, fast=fast, workers=workers, progress=not quiet, precision=precision, steps=steps)


from disentangle.cli import data as cli_data  # noqa: E402  -- the data set and scoring commands, registered on main

main.add_command(cli_data.datasets)
main.add_command(cli_data.score)
main.add_command(cli_data.udr)
