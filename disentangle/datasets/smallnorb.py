"""SmallNORB (LeCun et al. 2004) as disentanglement_lib uses it.

The six official files (``smallnorb-<chunk>-{dat,cat,info}.mat``, as published ``.gz``
or decompressed) in the NYU binary-matrix format; both chunks (training: instances
4, 6, 7, 8, 9; testing: 0, 1, 2, 3, 5) together give 48,600 images. As in the
reference: the first image of each stereo pair, resized from 96x96 to 64x64
(Pillow, Lanczos), factors category 5, elevation 9, azimuth 18 (file value / 2),
lighting 6, and the instance (10) drawn at random for each observation, not a factor.
``disentangle datasets prepare smallnorb`` writes the resized images to
``smallnorb_64x64.npz`` beside the files, which later loads read instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from disentangle.base.files import atomic_path, remove_stale_temporaries
from disentangle.datasets.base import GroundTruthDataset
from disentangle.base.validation import check_count
from disentangle.datasets.files import DataFile, check_md5, content_bound, missing_message, read_bytes
from disentangle.datasets.grid_arrays import to_observations
from disentangle.datasets.registry import register_dataset
from disentangle.base.errors import DisentangleError

URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
CHUNKS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
GZ_MD5 = {  # md5 of the published .gz files
    "5x46789x9x18x6x2x96x96-training-dat": "66054832f9accfe74a0f4c36a75bc0a2",
    "5x46789x9x18x6x2x96x96-training-cat": "23c8b86101fbf0904a000b43d3ed2fd9",
    "5x46789x9x18x6x2x96x96-training-info": "51dee1210a742582ff607dfd94e332e3",
    "5x01235x9x18x6x2x96x96-testing-dat": "e4ad715691ed5a3a5f138751a4ceb071",
    "5x01235x9x18x6x2x96x96-testing-cat": "5aa791cd7e6016cf957ce9bdb93b8603",
    "5x01235x9x18x6x2x96x96-testing-info": "a9454f3864d7fd4bb3ea7fc3eb84924e",
}
ALL_SIZES = (5, 10, 9, 18, 6)  # category, instance, elevation, azimuth, lighting
_MAT_BYTES = {"dat": 24 + 24300 * 2 * 96 * 96, "cat": 20 + 24300 * 4, "info": 24 + 24300 * 4 * 4}  # each file, uncompressed
INSTANCE = 1  # the column drawn as noise
CACHE_NAME = "smallnorb_64x64.npz"
_MATRIX_TYPES = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32, 0x1E3D4C56: np.int16,
                 0x1E3D4C51: np.float32, 0x1E3D4C53: np.float64}


def parse_binary_matrix(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the NORB binary-matrix format: int32 magic (type), int32 rank, max(3, rank)
    int32 dimensions, then little-endian data, last dimension fastest."""
    if len(data) < 20:
        raise DisentangleError(f"{source} is not a NORB binary matrix: {len(data)} bytes, shorter than a header")
    magic, rank = (int(v) for v in np.frombuffer(data, "<i4", 2))
    if magic not in _MATRIX_TYPES:
        raise DisentangleError(f"{source} is not a NORB binary matrix: magic 0x{magic & 0xFFFFFFFF:08X}, expected 0x1E3D4C5x")
    stored = max(3, rank)
    header = 8 + 4 * stored
    dims = tuple(int(d) for d in np.frombuffer(data, "<i4", stored, 8)[:rank])
    dtype = np.dtype(_MATRIX_TYPES[magic]).newbyteorder("<")
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DisentangleError(f"{source} is truncated or padded: {len(data)} bytes, expected {expected} for shape {list(dims)}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims)


def _locate(folder: Path, stem: str, verify: bool) -> Path:
    for path, md5 in ((folder / f"smallnorb-{stem}.mat", None), (folder / f"smallnorb-{stem}.mat.gz", GZ_MD5[stem])):
        if path.is_file():
            if verify and md5 is not None:
                check_md5(path, md5)
            return path
    raise DisentangleError(missing_message("smallnorb", folder, [DataFile(f"smallnorb-{stem}.mat[.gz]", None)], URL))


def read_matrix_file(path: Path) -> np.ndarray:
    """Read one ``.mat`` or ``.mat.gz`` binary-matrix file."""
    return parse_binary_matrix(read_bytes(path), str(path))


def resize_images(images: np.ndarray, size: int = 64, progress: bool = False) -> np.ndarray:
    """uint8 [n, H, W] -> uint8 [n, size, size], Pillow's Lanczos filter (the reference's ANTIALIAS)."""
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i in tqdm(range(len(images)), desc="resizing smallNORB", disable=not progress):
        out[i] = np.asarray(Image.fromarray(images[i]).resize((size, size), Image.LANCZOS))
    return out


def load_chunks(folder: Path, verify: bool = True, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, 64, 64], features int64 [n, 5]: category, instance, elevation, azimuth, lighting)."""
    images, features = [], []
    for chunk in CHUNKS:
        dat = read_matrix_file(_locate(folder, f"{chunk}-dat", verify))
        cat = read_matrix_file(_locate(folder, f"{chunk}-cat", verify))
        info = read_matrix_file(_locate(folder, f"{chunk}-info", verify))
        if dat.ndim != 4 or dat.shape[1] != 2 or cat.shape != (dat.shape[0],) or info.shape != (dat.shape[0], 4):
            raise DisentangleError(f"{folder}: {chunk} must hold dat [n, 2, H, W], cat [n], info [n, 4]; "
                                   f"got {list(dat.shape)}, {list(cat.shape)}, {list(info.shape)}")
        images.append(resize_images(dat[:, 0], progress=progress))
        rows = np.column_stack([cat, info]).astype(np.int64)
        rows[:, 3] //= 2  # azimuth is stored as 0, 2, ..., 34
        features.append(rows)
    return np.concatenate(images), np.concatenate(features)


@register_dataset("smallnorb")
class SmallNORB(GroundTruthDataset):
    """SmallNORB toys: grey 64x64, factors category, elevation, azimuth, lighting (instance is noise)."""

    factor_names = ("category", "elevation", "azimuth", "lighting")
    factor_sizes = (5, 9, 18, 6)
    observation_shape = (1, 64, 64)
    url = URL
    files = tuple(DataFile(f"smallnorb-{stem}.mat.gz", md5, f"{URL}smallnorb-{stem}.mat.gz", content_bound(_MAT_BYTES[stem.rsplit("-", 1)[1]]))
                  for stem, md5 in GZ_MD5.items())

    def __init__(self, root: str | Path | None = None, verify: bool = True, progress: bool = False, **options):
        super().__init__(**options)
        self.root = Path(root) if root is not None else Path("smallnorb")
        cache = self.root / CACHE_NAME
        if cache.is_file():
            with np.load(cache) as data:
                images, features = data["images"], data["features"]
        else:
            images, features = load_chunks(self.root, verify, progress)
        bad = (features < 0) | (features >= np.array(ALL_SIZES))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise DisentangleError(f"{self.root}: smallNORB factor column {column} must be in [0, {ALL_SIZES[column] - 1}], got {features[row, column]}")
        self.images = images
        index = np.ravel_multi_index(tuple(features.T), ALL_SIZES)
        if len(np.unique(index)) != len(index):
            raise DisentangleError(f"{self.root}: two smallNORB images share one factor combination")
        self._row_of = np.full(ALL_SIZES, -1, dtype=np.int64)  # factor grid (with instance) -> image row
        self._row_of[tuple(features.T)] = np.arange(len(features))
        latent = np.delete(features, INSTANCE, axis=1)
        self._present = np.unique(latent, axis=0)  # latent combinations with at least one instance
        self.complete = len(features) == int(np.prod(ALL_SIZES))

    @classmethod
    def prepare(cls, root: Path, progress: bool = True) -> str:
        """Resize once and write ``smallnorb_64x64.npz`` (images, features) beside the files."""
        images, features = load_chunks(Path(root), verify=True, progress=progress)
        target = Path(root) / CACHE_NAME
        remove_stale_temporaries(target)  # a killed earlier prepare's leftovers
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, images=images, features=features)
        return f"wrote {target}"

    @classmethod
    def verify_files(cls, root: Path) -> list[str]:
        """Path, md5 and shape of each of the six files (``.gz`` checked against the published md5)."""
        lines = []
        for stem, md5 in GZ_MD5.items():
            path = _locate(Path(root), stem, verify=True)
            status = "OK" if path.suffix == ".gz" else "(decompressed: no published md5)"
            lines.append(f"{path}  md5 {check_md5(path, None) if path.suffix != '.gz' else md5} {status}  shape {list(read_matrix_file(path).shape)}")
        lines.append(repr(cls(root=root)))
        return lines

    def __len__(self) -> int:
        return len(self.images)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform over the factor grid (over the combinations present, for a partial file)."""
        if self.complete:
            return super().sample_factors(n, rng)
        self.complete_grid_needed(f"these smallNORB files hold {len(self._present)} of {int(np.prod(self.factor_sizes))} factor combinations")
        return self._present[rng.integers(0, len(self._present), check_count(n))]

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One image per factor row, its instance drawn uniformly: float32 [n, 1, 64, 64]."""
        factors = self.check_factors(factors)
        if rng is None:
            raise DisentangleError("smallNORB observations need an rng (the instance is drawn at random)")
        candidates = self._row_of[factors[:, 0], :, factors[:, 1], factors[:, 2], factors[:, 3]]  # [n, 10]
        present = candidates >= 0
        counts = present.sum(axis=1)
        if (counts == 0).any():
            raise DisentangleError(f"factor classes {factors[np.flatnonzero(counts == 0)[0]].tolist()} have no image in these smallNORB files")
        pick = (rng.random(len(factors)) * counts).astype(np.int64)  # the pick-th present instance
        chosen = present & (np.cumsum(present, axis=1) - 1 == pick[:, None])
        rows = candidates[np.arange(len(factors)), chosen.argmax(axis=1)]
        return to_observations(self.images[rows])
