"""dSprites (Matthey et al. 2017): 737,280 binary 64x64 sprites on a factor grid.

The grid and index layout follow the published file exactly: shape (square,
ellipse, heart) x scale (6, linspace 0.5..1) x orientation (40, linspace 0..2pi,
both ends included) x posX (32, linspace 0..1) x posY (32); flat index = factor
classes . [245760, 40960, 1024, 32, 1].

Sources behind the one class:
- ``procedural`` (default): rendered by :mod:`disentangle.datasets.sprites`, no
  download. Batches render on the fly; ``in_memory=True`` holds the whole grid as
  a bit-packed cache (377 MB), loaded from the HDF5 file written by
  ``disentangle datasets prepare dsprites`` when present, else rendered.
- ``npz``: the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``,
  checked by md5 unless ``verify=False``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from disentangle.base.files import atomic_path, md5_file, remove_stale_temporaries, sole_writer
from disentangle.datasets import sprites
from disentangle.datasets.base import GroundTruthDataset, grid_factors, grid_index
from disentangle.base.validation import check_count
from disentangle.datasets.files import DataFile, check_md5, content_bound
from disentangle.datasets.registry import register_dataset
from disentangle.base.errors import DisentangleError

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
NUM_IMAGES = 737280
NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
NPZ_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
HDF5_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.h5"
_BLOCK = 32 * 32  # images sharing (shape, scale, orientation): one render block
NUM_BLOCKS = NUM_IMAGES // _BLOCK


def factor_values() -> tuple[np.ndarray, ...]:
    """The value of every class of every factor, as in the official ``latents_values``."""
    return (
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    )


def index_to_factors(index: np.ndarray) -> np.ndarray:
    """Flat grid indices [n] -> factor classes int64 [n, 5] (shape, scale, orientation, posX, posY)."""
    return grid_factors(index, FACTOR_SIZES)


def factors_to_index(factors: np.ndarray) -> np.ndarray:
    """Factor classes [n, 5] -> flat grid indices int64 [n], the official file's row order
    (classes . [245760, 40960, 1024, 32, 1])."""
    return grid_index(factors, FACTOR_SIZES)


def latents_classes() -> np.ndarray:
    """int64 [737280, 6]: (color, shape, scale, orientation, posX, posY) classes."""
    factors = index_to_factors(np.arange(NUM_IMAGES))
    return np.concatenate([np.zeros((NUM_IMAGES, 1), np.int64), factors], axis=1)


def latents_values() -> np.ndarray:
    """float64 [737280, 6]: factor values in the official file's layout (color = 1)."""
    classes = latents_classes()
    columns = [np.ones(NUM_IMAGES)] + [v[classes[:, j + 1]] for j, v in enumerate(factor_values())]
    return np.stack(columns, axis=1)


def render_factors(factors: np.ndarray) -> np.ndarray:
    """Render factor class rows (int [n, 5]) procedurally: bool [n, 64, 64]."""
    values = factor_values()
    return sprites.render(
        factors[:, 0], values[1][factors[:, 1]], values[2][factors[:, 2]],
        values[3][factors[:, 3]], values[4][factors[:, 4]],
    )


def render_grid_block(number: int) -> np.ndarray:
    """Block ``number`` of the grid: the images of flat indices ``number * 1024`` to
    ``number * 1024 + 1023`` (one shape, scale and orientation, every position), bool [1024, 64, 64]."""
    if not 0 <= number < NUM_BLOCKS:
        raise DisentangleError(f"block number must be in [0, {NUM_BLOCKS - 1}], got {number}")
    _, scales, orientations, positions, _ = factor_values()
    shape, scale, orientation = index_to_factors(np.array([number * _BLOCK]))[0, :3]  # the grid's one order
    return sprites.render_position_block(shape, scales[scale], orientations[orientation], positions)


def iter_grid_blocks(progress: bool = False):
    """Yield (first flat index, bool [1024, 64, 64]) for the whole grid, in index order."""
    for number in tqdm(range(NUM_BLOCKS), desc="rendering dSprites", unit="block", disable=not progress):
        yield number * _BLOCK, render_grid_block(number)


def render_grid_packed(progress: bool = False) -> np.ndarray:
    """The whole procedural grid, bit-packed along rows: uint8 [737280, 64, 8], read-only.

    Rendered once per process and shared (the renderer is deterministic): evaluating many runs,
    or opening the data set twice, costs one render (~11-25 s on 2 cores) and 377 MB once."""
    if _RENDERED:
        return _RENDERED[0]
    packed = np.empty((NUM_IMAGES, 64, 8), dtype=np.uint8)
    for start, block in iter_grid_blocks(progress):
        packed[start:start + _BLOCK] = np.packbits(block, axis=-1)
    packed.flags.writeable = False
    _RENDERED.append(packed)
    return packed


_RENDERED: list[np.ndarray] = []  # the process's one rendered grid


def unpack_observations(packed_rows: np.ndarray) -> np.ndarray:
    """uint8 [n, 64, 8] bit-packed images -> float32 [n, 1, 64, 64] in {0, 1}."""
    n = packed_rows.shape[0]
    # unpackbits + one cast is 4x faster than a byte -> 8 floats lookup table
    return np.unpackbits(packed_rows, axis=-1).astype(np.float32).reshape(n, 1, 64, 64)


def prepare_hdf5(root: str | Path, progress: bool = True) -> Path:
    """Write the procedural grid to ``root/HDF5_NAME`` (official array names), atomically."""
    target = Path(root) / HDF5_NAME
    with sole_writer(target, "'datasets prepare dsprites'"):
        remove_stale_temporaries(target)  # a killed earlier prepare's leftovers (never a live one's: we hold the lock)
        with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
            imgs = f.create_dataset("imgs", shape=(NUM_IMAGES, 64, 64), dtype=np.uint8,
                                    chunks=(_BLOCK, 64, 64), compression="gzip", compression_opts=1)
            for start, block in iter_grid_blocks(progress):
                imgs[start:start + _BLOCK] = block
            f.create_dataset("latents_values", data=latents_values(), compression="gzip")
            f.create_dataset("latents_classes", data=latents_classes(), compression="gzip")
            f.attrs["source"] = "disentangle procedural renderer"
    return target


def _packed_from_hdf5(path: Path, progress: bool) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            imgs = f["imgs"]
            if imgs.shape != (NUM_IMAGES, 64, 64):
                raise DisentangleError(f"{path}: 'imgs' must have shape [{NUM_IMAGES}, 64, 64], got {list(imgs.shape)}")
            packed = np.empty((NUM_IMAGES, 64, 8), dtype=np.uint8)
            for start in tqdm(range(0, NUM_IMAGES, _BLOCK), desc="loading dSprites", disable=not progress):
                packed[start:start + _BLOCK] = np.packbits(imgs[start:start + _BLOCK] > 0, axis=-1)
            return packed
    except OSError as error:
        raise DisentangleError(f"{path} is not a readable HDF5 file ({error}); delete it and run 'disentangle datasets prepare dsprites'") from None


def _load_npz(path: Path, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """(packed images, flat index of each row) from an official-format npz file."""
    if not path.is_file():
        raise DisentangleError(f"dSprites npz file not found: {path} (get {NPZ_NAME} from https://github.com/deepmind/dsprites-dataset)")
    if verify:
        check_md5(path, NPZ_MD5)
    try:
        with np.load(path, allow_pickle=False) as data:  # only the two arrays: the file's pickled metadata is never read
            imgs, classes = data["imgs"], data["latents_classes"]
    except (OSError, ValueError, KeyError) as error:
        raise DisentangleError(f"{path} is not a dSprites npz file with 'imgs' and 'latents_classes' ({error})") from None
    if imgs.ndim != 3 or imgs.shape[1:] != (64, 64) or classes.shape != (imgs.shape[0], 6):
        raise DisentangleError(f"{path}: expected imgs [n, 64, 64] and latents_classes [n, 6], got {list(imgs.shape)} and {list(classes.shape)}")
    return np.packbits(imgs > 0, axis=-1), factors_to_index(classes[:, 1:])


@register_dataset("dsprites")
class DSprites(GroundTruthDataset):
    """dSprites with the five varying factors (colour is constant and left out)."""

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (1, 64, 64)
    files = (DataFile(NPZ_NAME, NPZ_MD5, f"https://github.com/deepmind/dsprites-dataset/raw/master/{NPZ_NAME}",  # optional
                      content_bound(NUM_IMAGES * 64 * 64, 2 * NUM_IMAGES * 6 * 8)),)  # imgs uint8, latents float64 + int64
    url = "https://github.com/deepmind/dsprites-dataset"
    folder = ""  # the data root itself; the colour variants share its prepared grid

    @classmethod
    def describe(cls) -> str:
        """One line: factors, observation shape, sources."""
        return super().describe().replace(NPZ_NAME, f"procedural (optional: {NPZ_NAME})")

    @classmethod
    def prepare(cls, root: Path, progress: bool = True) -> str:
        """Render the grid once into ``root/HDF5_NAME`` (the in-memory cache's source)."""
        return f"wrote {prepare_hdf5(root, progress=progress)}"

    @classmethod
    def verify_files(cls, root: Path) -> list[str]:
        """The renderer's grid, the prepared HDF5 file and the official npz, where present."""
        root = Path(root)
        lines = [f"procedural renderer: {NUM_IMAGES} images of shape [64, 64], factors "
                 + ", ".join(f"{n}={s}" for n, s in zip(FACTOR_NAMES, FACTOR_SIZES))]
        hdf5 = root / HDF5_NAME
        if hdf5.is_file():
            with h5py.File(hdf5, "r") as f:
                shapes = {key: list(f[key].shape) for key in ("imgs", "latents_values", "latents_classes")}
            lines.append(f"{hdf5}  md5 {md5_file(hdf5)}  " + "  ".join(f"{k} {v}" for k, v in shapes.items()))
        else:
            lines.append(f"no prepared file {hdf5} (run 'disentangle datasets prepare {cls.name}')")
        npz = root / NPZ_NAME
        if npz.is_file():
            actual = md5_file(npz)
            status = "OK" if actual == NPZ_MD5 else f"MISMATCH, expected {NPZ_MD5}"
            lines.append(f"{npz}  md5 {actual} {status}")
        return lines

    @classmethod
    def check_option_values(cls, options: dict) -> None:
        """The source: procedural or the official npz; the correlations."""
        super().check_option_values(options)
        if options.get("source", "procedural") not in ("procedural", "npz"):
            raise DisentangleError(f"dSprites source must be 'procedural' or 'npz', got {options['source']!r}")

    def __init__(self, root: str | Path | None = None, source: str = "procedural", path: str | Path | None = None,
                 in_memory: bool = False, verify: bool = True, progress: bool = False, **options):
        super().__init__(**options)
        self.check_option_values({"source": source})
        self.root = Path(root) if root is not None else None
        self.source = source
        self._packed: np.ndarray | None = None
        self._row_of_index: np.ndarray | None = None  # flat index -> row of _packed (npz subsets)
        if source == "npz":
            path = Path(path) if path is not None else (self.root / NPZ_NAME if self.root else Path(NPZ_NAME))
            self._packed, indices = _load_npz(path, verify)
            self._row_of_index = np.full(NUM_IMAGES, -1, dtype=np.int64)
            self._row_of_index[indices] = np.arange(len(indices))
            self._present = np.sort(indices)
        elif in_memory:
            hdf5 = self.root / HDF5_NAME if self.root else None
            self._packed = _packed_from_hdf5(hdf5, progress) if hdf5 and hdf5.is_file() else render_grid_packed(progress)

    def __len__(self) -> int:
        return NUM_IMAGES if self._row_of_index is None else len(self._present)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._row_of_index is None:
            return super().sample_factors(n, rng)
        self.complete_grid_needed(f"this dSprites file holds {len(self._present)} of {NUM_IMAGES} images")
        return index_to_factors(rng.choice(self._present, size=check_count(n)))

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.sprites(self.check_factors(factors))

    def sprites(self, factors: np.ndarray) -> np.ndarray:
        """The sprites of checked rows of all five factor classes: float32 [n, 1, 64, 64] in {0, 1}."""
        if self._packed is None:
            return render_factors(factors)[:, None].astype(np.float32)
        rows = factors_to_index(factors)
        if self._row_of_index is not None:
            rows = self._row_of_index[rows]
            if (rows < 0).any():
                missing = factors[np.flatnonzero(rows < 0)[0]].tolist()
                raise DisentangleError(f"factor classes {missing} are not in this dSprites file")
        return unpack_observations(self._packed[rows])
