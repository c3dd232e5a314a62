"""The ``disentangle`` command line: parses arguments, then calls the library."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from disentangle.errors import DisentangleError


def reports_errors(command):
    """Turn the library's one-line errors into click usage errors (exit status 2)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DisentangleError as error:
            raise click.UsageError(str(error)) from None

    return wrapper


@click.group()
@click.version_option(package_name="disentangle")
def main():
    """Train VAE-family models, score disentanglement, compare beta grids."""


@main.group()
def datasets():
    """List, prepare and verify the ground-truth data sets."""


@datasets.command("list")
def datasets_list():
    """Name every data set."""
    descriptions = {
        "dsprites": "737,280 64x64 sprites; shape, scale, orientation, posX, posY (procedural, no download)",
        "mnist": "70,000 28x28 digits; label (official IDX files under datasets/mnist)",
        "fashion_mnist": "70,000 28x28 garments; label (official IDX files under datasets/fashion_mnist)",
    }
    for name, description in descriptions.items():
        click.echo(f"{name:14s} {description}")


@datasets.command("prepare")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, help="Data folder (default: datasets/).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors
def datasets_prepare(name, root, quiet):
    """Write a data set's files under the data root (dsprites: an HDF5 file of the grid)."""
    from disentangle.datasets import default_root, dsprites, mnist

    root = root or default_root(name)
    if name == "dsprites":
        click.echo(f"wrote {dsprites.prepare_hdf5(root, progress=not quiet)}")
    elif name in mnist.CHECKSUMS:
        mnist.download(name, root)
        click.echo(f"{name} files are in {root}")
    else:
        raise DisentangleError(f"unknown dataset {name!r}, expected one of dsprites, fashion_mnist, mnist")


@datasets.command("verify")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Data folder.")
@reports_errors
def datasets_verify(name, root):
    """Print checksums and shapes of a data set's files."""
    from disentangle.datasets import default_root, get_dataset, list_datasets
    from disentangle.datasets.verify import verify

    if name not in list_datasets():
        raise DisentangleError(f"unknown dataset {name!r}, expected one of {', '.join(list_datasets())}")
    for line in verify(name, root or default_root(name), lambda n, r: get_dataset(n, root=r)):
        click.echo(line)


def parse_setting(text: str) -> tuple[str, object]:
    """``key=value`` with value read as JSON when it parses (numbers, true/false), else a string."""
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise DisentangleError(f"--set expects key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def run_config_from_options(model, dataset, steps, seed, beta, settings, batch_size, checkpoint_every, log_every, data_root):
    from disentangle.runs import RunConfig

    model_options = dict(parse_setting(s) for s in settings)
    if beta is not None:
        model_options["beta"] = beta
    dataset_options = {"root": str(data_root)} if data_root else {}
    return RunConfig(model=model, dataset=dataset, steps=steps, seed=seed, batch_size=batch_size,
                     model_options=model_options, dataset_options=dataset_options,
                     checkpoint_every=checkpoint_every or max(1, min(1000, steps)), log_every=log_every)


def training_options(command):
    options = [
        click.option("--model", required=True, help="vae, beta_vae, annealed_vae, beta_tcvae, factor_vae, dip_vae_i, dip_vae_ii."),
        click.option("--dataset", default="dsprites", show_default=True),
        click.option("--steps", type=int, default=20000, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--batch-size", type=int, default=64, show_default=True),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Any model option, e.g. --set gamma=35."),
        click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints (default min(1000, steps))."),
        click.option("--log-every", type=int, default=50, show_default=True),
        click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Data set folder."),
        click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True),
        click.option("--threads", type=int, default=None, help="torch threads (default: all cores)."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@training_options
@click.option("--beta", type=float, default=None, help="The model's beta (beta_vae, beta_tcvae).")
@click.option("--resume", is_flag=True, help="Continue an unfinished run (re-running the same command does this too).")
@reports_errors
def train(model, dataset, steps, seed, batch_size, settings, checkpoint_every, log_every, data_root, runs_dir, threads, quiet, beta, resume):
    """Train one run into RUNS_DIR/<run-id>/ (resumes when it exists)."""
    from disentangle.runs import read_status
    from disentangle.training import TrainingFailed
    from disentangle.training import train as train_run

    config = run_config_from_options(model, dataset, steps, seed, beta, settings, batch_size, checkpoint_every, log_every, data_root)
    try:
        run_dir = train_run(config, runs_dir, progress=not quiet, threads=threads)
    except TrainingFailed as error:
        raise click.ClickException(f"run failed: {error}") from None
    click.echo(f"{run_dir}: {read_status(run_dir)}")


if __name__ == "__main__":
    main()
