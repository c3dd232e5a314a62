"""The command line's data set and scoring commands: ``datasets list/prepare/verify`` and
``score`` (a representation from anywhere). Registered on :func:`disentangle.cli.main`."""

from __future__ import annotations

from pathlib import Path

import click

from disentangle.cli.common import PROFILE_HELP, MetricsOption, RegistryOption, dataset_options_from, reports_errors
from disentangle.base.profiles import PROFILE_NAMES
from disentangle.base.errors import DisentangleError


@click.group()
def datasets():
    """List, prepare and verify the ground-truth data sets."""


@datasets.command("list")
def datasets_list():
    """Name every data set: factors, observation shape, files."""
    from disentangle.datasets import dataset_class, list_datasets

    for name in list_datasets():
        click.echo(dataset_class(name).describe())


@datasets.command("download")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, help="Data folder (default: the set's folder under datasets/).")
@click.option("--url-base", default=None, help="A mirror: each file is fetched as URL_BASE/<file name>.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="Seconds without data before a transfer counts as stalled.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True, help="Further attempts after a failed or stalled transfer, each resuming.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors
def datasets_download(name, root, url_base, timeout, retries, quiet):
    """Fetch a data set's official files: resumable, retried, md5-checked, renamed into place only when whole."""
    from disentangle.datasets import dataset_class, default_root
    from disentangle.datasets.download import download_dataset

    for path in download_dataset(dataset_class(name), root or default_root(name), url_base, progress=not quiet, timeout=timeout, retries=retries):
        click.echo(str(path))


@datasets.command("prepare")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, help="Data folder (default: the set's folder under datasets/).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors
def datasets_prepare(name, root, quiet):
    """Write a data set's fast cache under its folder (dsprites: the rendered grid; mnist: download)."""
    from disentangle.datasets import dataset_class, default_root

    cls = dataset_class(name)
    click.echo(cls.prepare(root or default_root(name), progress=not quiet))


@datasets.command("verify")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Data folder.")
@reports_errors
def datasets_verify(name, root):
    """Print checksums and shapes of a data set's files."""
    from disentangle.datasets import dataset_class, default_root

    for line in dataset_class(name).verify_files(root or default_root(name)):
        click.echo(line)


@click.command()
@click.option("--codes", "codes_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An .npz of arrays codes [n, d], factors [n, k], optionally codes_test, factors_test.")
@click.option("--encoder", default=None, help="A TorchScript file, a torch.export .pt2 file, or module:function importable from this folder.")
@click.option("--dataset", default=None, help="The data set the encoder is scored on (with --encoder).", cls=RegistryOption,
              registry="disentangle.datasets:DATASETS")
@click.option("--metrics", "metric_names", default=None, cls=MetricsOption)
@click.option("--profile", type=click.Choice(PROFILE_NAMES), default="published", help=PROFILE_HELP)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "metric_settings", multiple=True, metavar="METRIC.KEY=VALUE", help="A metric setting.")
@click.option("--device", default="auto", show_default=True, help="Where a TorchScript encoder runs: auto, cpu, cuda, cuda:N, mps.")
@click.option("--batch-size", type=int, default=256, show_default=True, help="Observations per encoder call (bounds memory).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="The data set's folder.")
@click.option("--dataset-option", "dataset_settings", multiple=True, metavar="KEY=VALUE", help="A data set option.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the result (metrics.json keys) here.")
@click.option("--bootstrap", type=int, default=0, show_default=True, help="Replicates of a 95% bootstrap interval per array-metric value.")
@click.option("--quiet", is_flag=True)
@reports_errors
def score(codes_file, encoder, dataset, metric_names, profile, seed, metric_settings, device, batch_size, data_root,
          dataset_settings, out, bootstrap, quiet):
    """Score a representation from anywhere: arrays of codes, or an encoder on a data set."""
    from disentangle.base.files import atomic_write_json
    from disentangle.scoring.runner import parse_metric_options
    from disentangle.metrics.registry import parse_metric_names
    from disentangle.scoring.representation import evaluate_codes, evaluate_representation, load_encoder, load_codes_file

    if (codes_file is None) == (encoder is None):
        raise DisentangleError("give exactly one of --codes FILE.npz or --encoder FILE --dataset NAME")
    names = parse_metric_names(metric_names, default=()) or None
    options = parse_metric_options(metric_settings)
    if codes_file is not None:
        result = evaluate_codes(**load_codes_file(codes_file), metrics=names, profile=profile, seed=seed, options=options,
                                bootstrap=bootstrap)
    else:
        if dataset is None:
            raise DisentangleError("--encoder needs --dataset NAME (the observations it is scored on)")
        from disentangle.datasets import get_dataset

        data = get_dataset(dataset, **dataset_options_from(data_root, dataset_settings))
        result = evaluate_representation(load_encoder(encoder, device), data, metrics=names, profile=profile, seed=seed,
                                         options=options, batch_size=batch_size, progress=not quiet, bootstrap=bootstrap)
    for key, value in result.items():
        if isinstance(value, float):
            click.echo(f"{key} {value:.6g}")
    for name, settings in result["settings"].items():
        if "skipped" in settings:
            click.echo(f"{name} skipped: {settings['skipped']}", err=True)
    if out is not None:
        atomic_write_json(out, result)
        click.echo(f"wrote {out}")


@click.command("udr", short_help="UDR scores of every group of runs that differ only in the seed.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True)
@click.option("--profile", type=click.Choice(PROFILE_NAMES), default="published", help=PROFILE_HELP)
@click.option("--correlation", type=click.Choice(["lasso", "spearman"]), default=None, help="[default: lasso, the reference's]")
@click.option("--seed", type=int, default=0, show_default=True, help="Draws the observations every run of a group codes.")
@click.option("--force", is_flag=True, help="Recompute groups already scored with these settings.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where the runs' data set files are on this machine.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda, cuda:N or mps.")
@click.option("--quiet", is_flag=True)
@reports_errors
def udr(runs_dir, profile, correlation, seed, force, data_root, device, quiet):
    """UDR (Duan et al. 2020) of every group of runs that differ only in the seed; writes udr.model_score
    into each run's metrics.json and prints its rank correlation with MIG, DCI and the FactorVAE score."""
    from disentangle.lifecycle.model_selection import udr_runs

    result = udr_runs(runs_dir, profile=profile, seed=seed, options={"correlation": correlation} if correlation else None,
                      force=force, data_root=data_root, device=device, progress=not quiet)
    for group in result["groups"]:
        for run_id in group:
            click.echo(f"{run_id}  udr {result['scores'][run_id]:.3f}")
    for column, rho in result["spearman"].items():
        click.echo(f"Spearman rank correlation of UDR with {column}: {rho:.3f} over {len(result['scores'])} runs")
