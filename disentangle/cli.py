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
