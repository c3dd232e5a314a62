"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017) from IDX files.

Reads the four official files from a folder, either ``.gz`` as downloaded or
decompressed, checks each file's md5 against the published values, and exposes
images as float32 [N, 1, 28, 28] in [0, 1] with the class label as the single
ground-truth factor.

Binarised MNIST, as likelihood papers use it (Burda et al. 2016): ``binarize="dynamic"``
draws every pixel as Bernoulli(intensity) each time an image is drawn (training);
``binarize="fixed"`` draws one binarisation per image, once, from ``binarize_seed``
(the test set whose NLL is reported).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentangle.base.files import md5_file
from disentangle.datasets.base import GroundTruthDataset
from disentangle.base.validation import check_count
from disentangle.datasets.files import DataFile, content_bound, read_bytes
from disentangle.datasets.registry import register_dataset
from disentangle.base.errors import DisentangleError

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# file name -> (md5 of the decompressed file, md5 of the official .gz)
IDX_BYTES = {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,  # decompressed (both sets)
             "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008}
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte": ("9018921c3c673c538a1fc5bad174d6f9", "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte": ("8181f5470baa50b63fa0f6fddb340f0a", "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte": ("15d484375f8d13e6eb1aabb0c3f46965", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
}

MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}

_IDX_DTYPES = {0x08: np.uint8}
BINARIZATIONS = ("none", "dynamic", "fixed")


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX file's bytes: two zero bytes, a type byte, a rank byte, big-endian dims."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DisentangleError(f"{source} is not an IDX file: bad magic number {data[:4].hex() or 'empty'}, expected 0x0000 then type and rank")
    dtype, rank = data[2], data[3]
    if dtype not in _IDX_DTYPES:
        raise DisentangleError(f"{source}: IDX type byte 0x{dtype:02x} is not supported, expected 0x08 (uint8)")
    header = 4 + 4 * rank
    if len(data) < header:
        raise DisentangleError(f"{source} is truncated: {len(data)} bytes, shorter than its {header}-byte header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=rank, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise DisentangleError(f"{source} is truncated or padded: {len(data)} bytes, expected {expected} for shape {list(shape)}")
    return np.frombuffer(data, dtype=_IDX_DTYPES[dtype], offset=header).reshape(shape)


def _missing_message(name: str, folder: Path, stem: str) -> str:
    return (f"{name} file {stem}[.gz] not found in {folder}: put the four official IDX files there "
            f"(from {MIRRORS[name]}), or fetch them with 'disentangle datasets prepare {name}' (needs network)")


def locate(name: str, folder: Path, stem: str) -> tuple[Path, str]:
    """The path of ``stem`` or ``stem.gz`` in ``folder`` and its expected md5."""
    plain_md5, gz_md5 = CHECKSUMS[name][stem]
    for path, md5 in ((folder / stem, plain_md5), (folder / f"{stem}.gz", gz_md5)):
        if path.is_file():
            return path, md5
    raise DisentangleError(_missing_message(name, folder, stem))


def read_idx_file(path: Path, expected_md5: str | None) -> np.ndarray:
    """Verify ``path`` against ``expected_md5`` (if given) and parse it (``.gz`` or plain)."""
    if expected_md5 is not None:
        actual = md5_file(path)
        if actual != expected_md5:
            raise DisentangleError(f"checksum mismatch for {path}: expected md5 {expected_md5}, got {actual}")
    return parse_idx(read_bytes(path), str(path))


def download_files(name: str, folder: Path, progress: bool = True) -> None:
    """Fetch the four official ``.gz`` files into ``folder`` (resumable, md5-checked:
    :func:`disentangle.datasets.download.download_file`); a file present, packed or not, is kept."""
    from disentangle.datasets.download import download_file

    folder.mkdir(parents=True, exist_ok=True)
    for stem, (_, gz_md5) in CHECKSUMS[name].items():
        target = folder / f"{stem}.gz"
        if target.is_file() or (folder / stem).is_file():
            continue
        download_file(MIRRORS[name] + f"{stem}.gz", target, gz_md5, progress=progress)


class IdxClassification(GroundTruthDataset):
    """A labelled image set read from IDX files; the label is the one factor."""

    factor_names = ("label",)
    factor_sizes = (10,)
    observation_shape = (1, 28, 28)

    @classmethod
    def check_option_values(cls, options: dict) -> None:
        """The split, the binarisation and its seed; the correlations; no holdout."""
        if options.get("holdout"):
            raise DisentangleError(f"{cls.name} draws its images' own label frequencies, not a factor grid: holdout is for the ground-truth grids")
        super().check_option_values(options)
        if options.get("split", "train") not in SPLIT_FILES:
            raise DisentangleError(f"split must be 'train' or 'test', got {options['split']!r}")
        if options.get("binarize", "none") not in BINARIZATIONS:
            raise DisentangleError(f"binarize must be one of {', '.join(BINARIZATIONS)}, got {options['binarize']!r}")
        check_count(options.get("binarize_seed", 0), "binarize_seed", minimum=0)

    def __init__(self, root: str | Path | None = None, split: str = "train",
                 download: bool = False, verify: bool = True, binarize: str = "none", binarize_seed: int = 0, **options):
        super().__init__(**options)
        self.check_option_values({"split": split, "binarize": binarize, "binarize_seed": binarize_seed})
        name = self.name
        folder = Path(root) if root is not None else Path("datasets") / name
        if download:
            download_files(name, folder)
        if not folder.is_dir():
            raise DisentangleError(_missing_message(name, folder, SPLIT_FILES[split][0]))
        images_stem, labels_stem = SPLIT_FILES[split]
        images = read_idx_file(*self._checked(folder, images_stem, verify))
        labels = read_idx_file(*self._checked(folder, labels_stem, verify))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DisentangleError(f"{folder}: expected images [n, 28, 28] and labels [n], got {list(images.shape)} and {list(labels.shape)}")
        if len(labels) and labels.max() >= 10:
            raise DisentangleError(f"{folder}: labels must be in [0, 9], got {int(labels.max())}")
        self.split, self.binarize, self.binarize_seed = split, binarize, binarize_seed
        if binarize == "fixed":  # one draw per pixel, the same on every machine for a given seed
            draws = np.random.default_rng(binarize_seed).random(images.shape, dtype=np.float32)
            images = np.where(draws * 255.0 < images, 255, 0).astype(np.uint8)
        self.images = images  # uint8 [n, 28, 28], kept compact; scaled on access
        self.labels = labels.astype(np.int64)
        self.observation_shape = (1, *images.shape[1:])
        self._by_label = [np.flatnonzero(self.labels == c) for c in range(10)]

    @classmethod
    def prepare(cls, root: Path, progress: bool = True) -> str:
        """Fetch the four official ``.gz`` files into ``root`` (needs network)."""
        download_files(cls.name, Path(root), progress)
        return f"{cls.name} files are in {root}"

    @classmethod
    def verify_files(cls, root: Path) -> list[str]:
        """Path, md5 and shape of each of the four IDX files, then the loaded set."""
        lines = []
        for images, labels in SPLIT_FILES.values():
            for stem in (images, labels):
                path, expected = locate(cls.name, Path(root), stem)
                array = read_idx_file(path, expected)
                lines.append(f"{path}  md5 {expected} OK  shape {list(array.shape)}")
        lines.append(repr(cls(root=root)))
        return lines

    def _checked(self, folder: Path, stem: str, verify: bool) -> tuple[Path, str | None]:
        path, md5 = locate(self.name, folder, stem)
        return path, md5 if verify else None

    def __len__(self) -> int:
        return len(self.labels)

    def observations(self, indices: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Images ``indices`` as float32 [n, 1, 28, 28]; ``rng`` draws the dynamic binarisation."""
        images = (self.images[indices].astype(np.float32) / 255.0)[:, None]
        if self.binarize == "dynamic":
            if rng is None:
                raise DisentangleError("dynamically binarised observations need an rng")
            images = (rng.random(images.shape, dtype=np.float32) < images).astype(np.float32)
        return images

    def evaluation_observations(self, num_points: int | None, rng: np.random.Generator) -> np.ndarray:
        """``num_points`` distinct images of this split (``None``: all of them, in file order)."""
        if num_points is None:
            return self.observations(np.arange(len(self)), rng)
        num_points = check_count(num_points, "num_points")
        if num_points > len(self):
            raise DisentangleError(f"num_points must be at most {len(self)} (the {self.split} split), got {num_points}")
        return self.observations(np.sort(rng.choice(len(self), num_points, replace=False)), rng)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Labels of ``n`` random images (the empirical label distribution)."""
        n = check_count(n)
        return self.labels[rng.integers(0, len(self), n)][:, None]

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        labels = self.check_factors(factors)[:, 0]
        indices = np.empty(len(labels), dtype=np.int64)
        for label in np.unique(labels):
            pool = self._by_label[label]
            if len(pool) == 0:
                raise DisentangleError(f"factor 'label' = {label} has no images in this split")
            rows = labels == label
            indices[rows] = pool[rng.integers(0, len(pool), rows.sum())]
        return self.observations(indices, rng)


def _official_files(name: str) -> tuple[DataFile, ...]:
    return tuple(DataFile(f"{stem}.gz", gz_md5, MIRRORS[name] + f"{stem}.gz", content_bound(IDX_BYTES[stem]))
                 for stem, (_, gz_md5) in CHECKSUMS[name].items())


@register_dataset("mnist")
class MNIST(IdxClassification):
    """MNIST digits (LeCun et al. 1998): 60,000 + 10,000 grey 28x28 images, the digit as the factor."""

    files = _official_files("mnist")
    url = MIRRORS["mnist"]


@register_dataset("fashion_mnist")
class FashionMNIST(IdxClassification):
    """Fashion-MNIST (Xiao et al. 2017): MNIST's format and sizes, ten clothing classes."""

    files = _official_files("fashion_mnist")
    url = MIRRORS["fashion_mnist"]
