"""Cars3D (Reed et al. 2015, "Deep Visual Analogy-Making") as disentanglement_lib uses it.

183 car models, each rendered at 24 azimuths x 4 elevations: the ``car_*_mesh.mat``
files of ``nips2015-analogy-data.tar.gz`` (key ``im``: uint8 [128, 128, 3, 24, 4]),
read from the data folder (or its ``cars/`` or ``data/cars/`` sub-folder), or
straight from the archive. Images are resized to 64x64 RGB (Pillow, Lanczos);
factors elevation 4, azimuth 24, object 183, the object index being the file's
position in name order (the reference uses directory-listing order, which is not
fixed). ``disentangle datasets prepare cars3d`` writes ``cars3d_64x64.npz``, which
later loads read instead.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from tqdm.auto import tqdm

from disentangle.base.files import atomic_path, remove_stale_temporaries
from disentangle.datasets.base import GroundTruthDataset, grid_index
from disentangle.datasets.files import DataFile, check_md5, content_bound, missing_message
from disentangle.datasets.grid_arrays import to_observations
from disentangle.datasets.registry import register_dataset
from disentangle.base.errors import DisentangleError

URL = "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"
# Reed et al.'s archive (cars, sprites, shapes) publishes no size: 4 GB bounds it generously (its cars alone
# are 0.86 GB of raw pixels), so a mirror sending without end is still stopped
ARCHIVE = DataFile("nips2015-analogy-data.tar.gz", "4e866a7919c1beedf53964e6f7a23686", URL, 4 << 30)
NUM_OBJECTS = 183
MESH_SHAPE = (128, 128, 3, 24, 4)  # H, W, RGB, azimuth, elevation
CACHE_NAME = "cars3d_64x64.npz"


def mesh_images(mesh: np.ndarray, source: str) -> np.ndarray:
    """One car's ``im`` array [128, 128, 3, 24, 4] -> uint8 [4, 24, 64, 64, 3] (elevation, azimuth)."""
    if mesh.shape != MESH_SHAPE or mesh.dtype != np.uint8:
        raise DisentangleError(f"{source}: 'im' must be uint8 with shape {list(MESH_SHAPE)}, got {mesh.dtype} {list(mesh.shape)}")
    views = mesh.transpose(4, 3, 0, 1, 2)  # elevation, azimuth, H, W, RGB
    out = np.empty((4, 24, 64, 64, 3), dtype=np.uint8)
    for e in range(4):
        for a in range(24):
            out[e, a] = np.asarray(Image.fromarray(np.ascontiguousarray(views[e, a])).resize((64, 64), Image.LANCZOS))
    return out


def _read_mesh(source: str, handle) -> np.ndarray:
    try:
        return scipy.io.loadmat(handle)["im"]
    except Exception as error:  # noqa: BLE001 -- scipy raises anything from MatReadError to IndexError on a corrupt file
        raise DisentangleError(f"{source} is not a Cars3D .mat file with an 'im' array ({error})") from None


def _mesh_files(root: Path) -> list[Path]:
    for folder in (root, root / "cars", root / "data" / "cars"):
        files = sorted(folder.glob("car_*_mesh.mat"))
        if files:
            return files
    return []


def load_meshes(root: Path, verify: bool = True, progress: bool = False) -> np.ndarray:
    """All cars as uint8 [4, 24, n_objects, 64, 64, 3], from the .mat files or the archive."""
    files = _mesh_files(root)
    if files:
        if verify and len(files) != NUM_OBJECTS:
            raise DisentangleError(f"{root}: expected {NUM_OBJECTS} car_*_mesh.mat files, found {len(files)} (verify=False reads a subset)")
        meshes = [mesh_images(_read_mesh(str(f), f), str(f)) for f in tqdm(files, desc="reading Cars3D", disable=not progress)]
    elif (root / ARCHIVE.name).is_file():
        archive = root / ARCHIVE.name
        if verify:
            check_md5(archive, ARCHIVE.md5)
        with tarfile.open(archive) as tar:
            members = sorted((m for m in tar.getmembers() if m.name.endswith("_mesh.mat") and "/cars/" in f"/{m.name}"), key=lambda m: Path(m.name).name)
            meshes = [mesh_images(_read_mesh(m.name, io.BytesIO(tar.extractfile(m).read())), m.name)
                      for m in tqdm(members, desc="reading Cars3D", disable=not progress)]
        if not meshes:
            raise DisentangleError(f"{archive} holds no data/cars/car_*_mesh.mat files")
    else:
        raise DisentangleError(missing_message("cars3d", root, [DataFile("car_*_mesh.mat (183 files) or " + ARCHIVE.name, None)], URL))
    return np.stack(meshes, axis=2)


@register_dataset("cars3d")
class Cars3D(GroundTruthDataset):
    """Cars3D: RGB 64x64, factors elevation 4, azimuth 24, object 183."""

    factor_names = ("elevation", "azimuth", "object")
    factor_sizes = (4, 24, NUM_OBJECTS)
    observation_shape = (3, 64, 64)
    url = URL
    files = (ARCHIVE,)

    def __init__(self, root: str | Path | None = None, verify: bool = True, progress: bool = False, **options):
        super().__init__(**options)
        self.root = Path(root) if root is not None else Path("cars3d")
        cache = self.root / CACHE_NAME
        if cache.is_file():
            with np.load(cache) as data:
                grid = data["images"]
        else:
            grid = load_meshes(self.root, verify, progress)
        self.factor_sizes = (4, 24, grid.shape[2])  # a subset of the cars with verify=False
        self.images = grid.reshape(-1, 64, 64, 3)  # row = flat index on (elevation, azimuth, object)

    @classmethod
    def prepare(cls, root: Path, progress: bool = True) -> str:
        """Read and resize every car once; write ``cars3d_64x64.npz`` beside the files."""
        grid = load_meshes(Path(root), verify=True, progress=progress)
        target = Path(root) / CACHE_NAME
        remove_stale_temporaries(target)  # a killed earlier prepare's leftovers
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, images=grid)
        return f"wrote {target}"

    @classmethod
    def verify_files(cls, root: Path) -> list[str]:
        """The archive's md5 (when present), the number of .mat files found, then the loaded set."""
        root = Path(root)
        lines = []
        if (root / ARCHIVE.name).is_file():
            lines.append(f"{root / ARCHIVE.name}  md5 {check_md5(root / ARCHIVE.name, ARCHIVE.md5)} OK")
        files = _mesh_files(root)
        if files:
            lines.append(f"{len(files)} car_*_mesh.mat files in {files[0].parent} (no published md5 per file)")
        lines.append(repr(cls(root=root)))
        return lines

    def __len__(self) -> int:
        return len(self.images)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The render for each (elevation, azimuth, object) row: float32 [n, 3, 64, 64]."""
        factors = self.check_factors(factors)
        return to_observations(self.images[grid_index(factors, self.factor_sizes)])
