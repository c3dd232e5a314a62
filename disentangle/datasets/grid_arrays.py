"""Data sets stored as one image array in factor-grid order: Shapes3D and MPI3D.

Row ``r`` of the array holds the image whose factor classes are
``np.unravel_index(r, factor_sizes)`` (last factor fastest), the layout of both
official files. :class:`ArrayGridDataset` does the work (find, check, open, index,
convert); a new set of this kind declares its factors and file and says how to
open it, in ~20 lines.

``in_memory=False`` (the default) reads rows from disk as batches are drawn
(HDF5 chunks, or a memory map of the uncompressed ``.npz`` member); ``in_memory=True``
loads the whole array (Shapes3D 5.9 GB, MPI3D 12.7 GB).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np

from disentangle.datasets.base import GroundTruthDataset, grid_index
from disentangle.datasets.files import DataFile, check_md5, content_bound, missing_message
from disentangle.datasets.registry import register_dataset
from disentangle.base.errors import DisentangleError


def to_observations(images: np.ndarray) -> np.ndarray:
    """uint8 images [n, H, W] or [n, H, W, C] -> float32 [n, C, H, W] in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def read_rows(array, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` for numpy arrays, memory maps and h5py data sets (which need increasing indices)."""
    if isinstance(array, np.ndarray):
        return array[rows]
    unique, inverse = np.unique(rows, return_inverse=True)
    return array[unique][inverse]


def memmap_npz_member(path: Path, key: str) -> np.memmap:
    """A read-only memory map of array ``key`` inside an uncompressed ``.npz`` file (no copy)."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{key}.npy")
        except KeyError:
            raise DisentangleError(f"{path} has no array {key!r}, expected one (arrays: {', '.join(n[:-4] for n in archive.namelist())})") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise DisentangleError(f"{path}: array {key!r} is compressed and cannot be memory-mapped; pass in_memory=True")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local_header = f.read(30)  # the member's local header: name and extra-field lengths at bytes 26..30
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = reader(f)
        offset = f.tell()
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran_order else "C")


class ArrayGridDataset(GroundTruthDataset):
    """Images in one array (one official file), row = flat index on the factor grid.

    Subclasses set ``factor_names``, ``factor_sizes``, ``observation_shape``, ``files``
    (one file), ``url`` and implement :meth:`open_images`.
    """

    def __init__(self, root: str | Path | None = None, in_memory: bool = False, verify: bool = True, **options):
        super().__init__(**options)
        self.root = Path(root) if root is not None else Path(self.name)
        file = self.files[0]
        self.path = self.root / file.name
        if not self.path.is_file():
            raise DisentangleError(missing_message(self.name, self.root, [file], self.url))
        if verify:
            check_md5(self.path, file.md5)
        self.in_memory = in_memory
        self.images = self.open_images(self.path, in_memory)
        height, width, channels = self.images.shape[1:] if len(self.images.shape) == 4 else (*self.images.shape[1:], 1)
        if (channels, height, width) != tuple(self.observation_shape):
            c, h, w = self.observation_shape
            raise DisentangleError(f"{self.path}: images must have shape [n, {h}, {w}, {c}], got {list(self.images.shape)}")
        expected = int(np.prod(self.factor_sizes))
        if self.images.shape[0] != expected:
            raise DisentangleError(f"{self.path}: expected {expected} images (factor grid {'x'.join(map(str, self.factor_sizes))}), got {self.images.shape[0]}")

    def open_images(self, path: Path, in_memory: bool):
        """The image array [N, H, W, C] uint8 (numpy, memory map or h5py data set)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The grid's image for each factor row: float32 [n, C, H, W] in [0, 1]."""
        factors = self.check_factors(factors)
        rows = grid_index(factors, self.factor_sizes)
        return to_observations(read_rows(self.images, rows))


@register_dataset("shapes3d")
class Shapes3D(ArrayGridDataset):
    """3D Shapes (Burgess & Kim 2018; Kim & Mnih 2018): 480,000 RGB 64x64 renders of an object in a room.

    File ``3dshapes.h5``: ``images`` uint8 [480000, 64, 64, 3], ``labels`` float64 [480000, 6],
    rows ordered floor hue, wall hue, object hue, scale, shape, orientation (last fastest).
    """

    factor_names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    factor_sizes = (10, 10, 10, 8, 4, 15)
    observation_shape = (3, 64, 64)
    url = "https://github.com/deepmind/3d-shapes"
    files = (DataFile("3dshapes.h5", "099a2078d58cec4daad0702c55d06868", "https://storage.googleapis.com/3d-shapes/3dshapes.h5",
                      content_bound(480000 * 64 * 64 * 3, 480000 * 6 * 8)),)

    def open_images(self, path: Path, in_memory: bool):
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise DisentangleError(f"{path} is not a readable HDF5 file ({error})") from None
        if "images" not in handle or "labels" not in handle:
            raise DisentangleError(f"{path} must hold data sets 'images' and 'labels', got {', '.join(handle) or 'none'}")
        images, labels = handle["images"], handle["labels"]
        if labels.shape != (images.shape[0], len(self.factor_sizes)):
            raise DisentangleError(f"{path}: 'labels' must have shape [{images.shape[0]}, 6], got {list(labels.shape)}")
        strides = grid_index(np.eye(len(self.factor_sizes), dtype=np.int64), self.factor_sizes)  # rows between classes of each factor
        if images.shape[0] == int(np.prod(self.factor_sizes)):
            first = labels[0]
            for j, stride in enumerate(strides):  # stepping one class of factor j changes label j only
                changed = np.flatnonzero(labels[int(stride)] != first)
                if changed.tolist() != [j]:
                    raise DisentangleError(f"{path}: rows are not in factor-grid order ({self.factor_names[j]} should change at row {stride})")
        if in_memory:
            images = images[()]
        return images


_MPI3D_GRIDS = {  # number of images -> factor sizes: the published files, and the 2019 challenge's 4x4 subset
    1036800: (6, 6, 2, 3, 3, 40, 40),
    460800: (4, 4, 2, 3, 3, 40, 40),
}


class MPI3D(ArrayGridDataset):
    """MPI3D (Gondal et al. 2019): a robot arm holding an object, 64x64 RGB, seven factors.

    File ``mpi3d_<variant>.npz``: ``images`` uint8 [1036800, 64, 64, 3] (colour 6, shape 6,
    size 2, camera height 3, background colour 3, horizontal axis 40, vertical axis 40;
    last fastest). The 2019 challenge's 460,800-image files (colour 4, shape 4, as in
    disentanglement_lib) are recognised by their length.
    """

    factor_names = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                    "horizontal_axis", "vertical_axis")
    factor_sizes = _MPI3D_GRIDS[1036800]
    observation_shape = (3, 64, 64)
    url = "https://github.com/rr-learning/disentanglement_dataset"

    def open_images(self, path: Path, in_memory: bool):
        try:
            if in_memory:
                with np.load(path) as data:
                    images = data["images"]
            else:
                images = memmap_npz_member(path, "images")
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as error:
            raise DisentangleError(f"{path} is not an npz file with an 'images' array ({error})") from None
        self.factor_sizes = _MPI3D_GRIDS.get(images.shape[0], self.factor_sizes)
        return images


def _mpi3d(variant: str, md5: str) -> type:
    name = f"mpi3d_{variant}"
    file = DataFile(f"{name}.npz", md5, f"https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/{name}.npz",
                    content_bound(1036800 * 64 * 64 * 3))  # the 6x6 grid's images, uint8
    cls = type(f"MPI3D{variant.capitalize()}", (MPI3D,), {"files": (file,), "__doc__": f"MPI3D, the {variant} renders ({name}.npz)."})
    return register_dataset(name)(cls)


MPI3DToy = _mpi3d("toy", "55889cb7c7dfc655d6e0277beee88868")
MPI3DRealistic = _mpi3d("realistic", "59a6225b88b635365f70c91b3e52f70f")
MPI3DReal = _mpi3d("real", "0f33f609918fb5c97996692f91129802")
