"""Checksums and shapes of a data set's files, for ``disentangle datasets verify``."""

from __future__ import annotations

from pathlib import Path

import h5py

from disentangle._io import md5_file
from disentangle.datasets import dsprites, mnist


def verify(name: str, root: Path) -> list[str]:
    """One line per file: path, md5, shape. Raises DisentangleError on a bad file."""
    if name == "dsprites":
        return _verify_dsprites(root)
    lines = []
    for split, (images, labels) in mnist.SPLIT_FILES.items():
        for stem in (images, labels):
            path, expected = mnist.locate(name, root, stem)
            array = mnist.read_idx_file(path, expected)
            lines.append(f"{path}  md5 {expected} OK  shape {list(array.shape)}")
    from disentangle.datasets import get_dataset

    lines.append(repr(get_dataset(name, root=root)))
    return lines


def _verify_dsprites(root: Path) -> list[str]:
    lines = [f"procedural renderer: {dsprites.NUM_IMAGES} images of shape [64, 64], factors "
             + ", ".join(f"{n}={s}" for n, s in zip(dsprites.FACTOR_NAMES, dsprites.FACTOR_SIZES))]
    hdf5 = root / dsprites.HDF5_NAME
    if hdf5.is_file():
        with h5py.File(hdf5, "r") as f:
            shapes = {key: list(f[key].shape) for key in ("imgs", "latents_values", "latents_classes")}
        lines.append(f"{hdf5}  md5 {md5_file(hdf5)}  " + "  ".join(f"{k} {v}" for k, v in shapes.items()))
    else:
        lines.append(f"no prepared file {hdf5} (run 'disentangle datasets prepare dsprites')")
    npz = root / dsprites.NPZ_NAME
    if npz.is_file():
        actual = md5_file(npz)
        status = "OK" if actual == dsprites.NPZ_MD5 else f"MISMATCH, expected {dsprites.NPZ_MD5}"
        lines.append(f"{npz}  md5 {actual} {status}")
    return lines
