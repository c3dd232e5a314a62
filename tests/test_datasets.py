"""The data set registry and the loaders of the standard benchmark's sets.

Every loader reads small fixture files written here in the official format (same
keys, dtypes and layouts; a reduced factor grid where the real one is gigabytes),
with ``verify=False`` since md5 sums hold only for the official full files.
"""

import gzip
import tarfile

import h5py
import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner
from PIL import Image

from disentangle.cli import main
from disentangle.datasets import (MPI3D, Cars3D, Shapes3D, SmallNORB, dataset_class, get_dataset, list_datasets,
                                  smallnorb)
from disentangle.datasets.grid_arrays import MPI3DToy
from disentangle.base.errors import DisentangleError

RNG = np.random.default_rng


def grid_images(sizes, channels=3):
    """uint8 [N, 64, 64, C] in grid order; pixel (0, j) of every channel holds factor j's class * 10."""
    factors = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    images = np.zeros((len(factors), 64, 64, channels), dtype=np.uint8)
    images[:, 0, :len(sizes), :] = (factors * 10)[:, :, None]
    return factors, images


def decoded_factors(observations, k):
    """Factor classes read back from pixel (0, j) of the first channel."""
    return np.rint(observations[:, 0, 0, :k] * 255 / 10).astype(np.int64)


# --- registry ------------------------------------------------------------------------------

def test_registry_lists_every_set_and_the_cli_reads_it():
    expected = {"dsprites", "dsprites_noshape", "color_dsprites", "noisy_dsprites", "scream_dsprites", "mnist", "fashion_mnist",
                "shapes3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "smallnorb", "cars3d"}
    assert expected <= set(list_datasets())
    out = CliRunner().invoke(main, ["datasets", "list"]).output
    for name in list_datasets():
        cls = dataset_class(name)
        assert len(cls.factor_names) == len(cls.factor_sizes) and len(cls.observation_shape) == 3
        assert f"{name}: factors " in out
    assert "floor_hue=10, wall_hue=10, object_hue=10, scale=8, shape=4, orientation=15" in out
    assert "elevation=4, azimuth=24, object=183" in out


def test_unknown_dataset_is_one_line_error():
    with pytest.raises(DisentangleError, match="unknown dataset 'imagenet', expected one of cars3d, "):
        get_dataset("imagenet")
    result = CliRunner().invoke(main, ["datasets", "prepare", "imagenet"])
    assert result.exit_code == 2 and "unknown dataset 'imagenet'" in result.output


# --- Shapes3D -------------------------------------------------------------------------------

SMALL_SHAPES = (2, 2, 2, 2, 2, 3)


def write_shapes3d(folder, sizes=SMALL_SHAPES, rows=None, channels=3, shuffle=False):
    factors, images = grid_images(sizes, channels)
    if channels == 3:
        images[:, 1:, :, 0] = 200  # a red room below the factor-code row, as colour as the real set
    if shuffle:
        factors = factors[RNG(0).permutation(len(factors))]
    values = [np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
              np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15)]
    labels = np.stack([values[j][factors[:, j]] for j in range(6)], axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "3dshapes.h5", "w") as f:
        f.create_dataset("images", data=images[:rows])
        f.create_dataset("labels", data=labels[:rows])
    return factors


@pytest.fixture
def small_shapes3d(tmp_path, monkeypatch):
    monkeypatch.setattr(Shapes3D, "factor_sizes", SMALL_SHAPES)
    write_shapes3d(tmp_path / "shapes3d")
    return tmp_path / "shapes3d"


@pytest.mark.parametrize("in_memory", [False, True])
def test_shapes3d_observation_is_the_grid_row_of_its_factors(small_shapes3d, in_memory):
    data = get_dataset("shapes3d", root=small_shapes3d, verify=False, in_memory=in_memory)
    assert len(data) == 96 and data.observation_shape == (3, 64, 64)
    factors = data.sample_factors(50, RNG(0))
    observations = data.sample_observations_from_factors(factors, RNG(1))
    assert observations.shape == (50, 3, 64, 64) and observations.dtype == np.float32
    np.testing.assert_array_equal(decoded_factors(observations, 6), factors)


def test_shapes3d_bad_files(tmp_path, monkeypatch):
    monkeypatch.setattr(Shapes3D, "factor_sizes", SMALL_SHAPES)
    with pytest.raises(DisentangleError, match=r"shapes3d files not found in .*: put 3dshapes.h5 there \(published at https://github.com/deepmind/3d-shapes\)"):
        get_dataset("shapes3d", root=tmp_path / "none")
    write_shapes3d(tmp_path / "short", rows=50)
    with pytest.raises(DisentangleError, match=r"expected 96 images \(factor grid 2x2x2x2x2x3\), got 50"):
        get_dataset("shapes3d", root=tmp_path / "short", verify=False)
    write_shapes3d(tmp_path / "grey", channels=1)
    with pytest.raises(DisentangleError, match=r"images must have shape \[n, 64, 64, 3\], got \[96, 64, 64, 1\]"):
        get_dataset("shapes3d", root=tmp_path / "grey", verify=False)
    write_shapes3d(tmp_path / "shuffled", shuffle=True)
    with pytest.raises(DisentangleError, match="rows are not in factor-grid order"):
        get_dataset("shapes3d", root=tmp_path / "shuffled", verify=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "3dshapes.h5").write_bytes(b"not hdf5")
    with pytest.raises(DisentangleError, match="is not a readable HDF5 file"):
        get_dataset("shapes3d", root=tmp_path / "junk", verify=False)
    with pytest.raises(DisentangleError, match="checksum mismatch for .*3dshapes.h5: expected md5 099a2078d58cec4daad0702c55d06868"):
        get_dataset("shapes3d", root=tmp_path / "junk")


# --- MPI3D ----------------------------------------------------------------------------------

SMALL_MPI3D = (2, 2, 1, 2, 1, 3, 2)


def write_mpi3d(path, compressed=False, rows=None):
    factors, images = grid_images(SMALL_MPI3D)
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, images=images[:rows])


@pytest.mark.parametrize("in_memory", [False, True])
def test_mpi3d_reads_the_grid_memory_mapped_or_loaded(tmp_path, monkeypatch, in_memory):
    monkeypatch.setattr(MPI3D, "factor_sizes", SMALL_MPI3D)
    write_mpi3d(tmp_path / "mpi3d_toy" / "mpi3d_toy.npz")
    data = get_dataset("mpi3d_toy", root=tmp_path / "mpi3d_toy", verify=False, in_memory=in_memory)
    assert isinstance(data, MPI3DToy) and isinstance(data.images, np.memmap) != in_memory
    factors = data.sample_factors(40, RNG(0))
    observations = data.sample_observations_from_factors(factors, RNG(0))
    np.testing.assert_array_equal(decoded_factors(observations, 7), factors)


def test_mpi3d_bad_files(tmp_path, monkeypatch):
    monkeypatch.setattr(MPI3D, "factor_sizes", SMALL_MPI3D)
    write_mpi3d(tmp_path / "packed" / "mpi3d_real.npz", compressed=True)
    with pytest.raises(DisentangleError, match="array 'images' is compressed and cannot be memory-mapped; pass in_memory=True"):
        get_dataset("mpi3d_real", root=tmp_path / "packed", verify=False)
    assert len(get_dataset("mpi3d_real", root=tmp_path / "packed", verify=False, in_memory=True)) == 48
    write_mpi3d(tmp_path / "short" / "mpi3d_toy.npz", rows=47)
    with pytest.raises(DisentangleError, match="expected 48 images .* got 47"):
        get_dataset("mpi3d_toy", root=tmp_path / "short", verify=False)
    np.savez(tmp_path / "short" / "mpi3d_toy.npz", pictures=np.zeros((48, 64, 64, 3), np.uint8))
    with pytest.raises(DisentangleError, match="has no array 'images'"):
        get_dataset("mpi3d_toy", root=tmp_path / "short", verify=False)
    with pytest.raises(DisentangleError, match=r"put mpi3d_realistic.npz there"):
        get_dataset("mpi3d_realistic", root=tmp_path / "none")


# --- SmallNORB ------------------------------------------------------------------------------

def binary_matrix(array):
    """The NORB binary-matrix format: magic, rank, max(3, rank) dims (padded with 1), data."""
    magic = {np.uint8: 0x1E3D4C55, np.int32: 0x1E3D4C54}[array.dtype.type]
    dims = list(array.shape) + [1] * (3 - array.ndim)
    return np.array([magic, array.ndim, *dims], "<i4").tobytes() + array.astype(array.dtype.newbyteorder("<")).tobytes()


def write_smallnorb(folder, gz=False, drop_last=False):
    """Two chunks: categories 0-1, two instances each, elevations 0-1, azimuths 0 and 2, lightings 0-1."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = RNG(7)
    everything = []
    for chunk, instances in zip(smallnorb.CHUNKS, ((4, 6), (0, 1))):
        rows = np.array([(c, i, e, a, l) for c in range(2) for i in instances for e in range(2) for a in (0, 2) for l in range(2)], np.int32)
        rows = rows[rng.permutation(len(rows))]  # the files are not in grid order
        dat = rng.integers(0, 256, (len(rows), 2, 96, 96)).astype(np.uint8)
        if drop_last:
            dat = dat[:-1]
        for kind, array in (("dat", dat), ("cat", rows[:, 0].copy()), ("info", rows[:, 1:].copy())):
            raw = binary_matrix(array)
            name = f"smallnorb-{chunk}-{kind}.mat"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        everything.append((rows, dat))
    return everything


def test_binary_matrix_hand_case():
    raw = np.array([0x1E3D4C54, 1, 3, 1, 1, 5, 6, 7], "<i4").tobytes()  # rank 1 still stores three dims
    np.testing.assert_array_equal(smallnorb.parse_binary_matrix(raw), [5, 6, 7])
    with pytest.raises(DisentangleError, match=r"truncated or padded: 28 bytes, expected 32 for shape \[3\]"):
        smallnorb.parse_binary_matrix(raw[:-4])
    with pytest.raises(DisentangleError, match="magic 0x00000000"):
        smallnorb.parse_binary_matrix(bytes(32))


@pytest.mark.parametrize("gz", [False, True])
def test_smallnorb_draws_an_instance_for_each_factor_row(tmp_path, gz):
    chunks = write_smallnorb(tmp_path / "smallnorb", gz=gz)
    data = get_dataset("smallnorb", root=tmp_path / "smallnorb", verify=False)
    assert data.factor_names == ("category", "elevation", "azimuth", "lighting") and len(data) == 64
    factors = data.sample_factors(200, RNG(0))
    assert set(factors[:, 0]) == {0, 1} and set(factors[:, 2]) == {0, 1}  # azimuth 2 -> class 1
    row = np.array([[1, 1, 1, 0]])  # category 1, elevation 1, azimuth 2/2, lighting 0
    seen = set()
    for seed in range(40):
        image = data.sample_observations_from_factors(row, RNG(seed))[0, 0]
        matches = [(c, i) for c, (rows, dat) in enumerate(chunks) for i in range(len(rows))
                   if tuple(rows[i]) in {(1, inst, 1, 2, 0) for inst in (4, 6, 0, 1)}
                   and np.array_equal(image, np.asarray(Image.fromarray(dat[i, 0]).resize((64, 64), Image.LANCZOS)) / np.float32(255))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 4  # every instance of that combination is drawn
    with pytest.raises(DisentangleError, match=r"factor classes \[3, 0, 0, 0\] have no image"):
        data.sample_observations_from_factors(np.array([[3, 0, 0, 0]]), RNG(0))


def test_smallnorb_cache_and_bad_files(tmp_path):
    write_smallnorb(tmp_path / "norb")
    assert "wrote" in SmallNORB.prepare(tmp_path / "norb", progress=False)
    cached = SmallNORB(root=tmp_path / "norb")
    for path in (tmp_path / "norb").glob("*.mat"):
        path.unlink()
    assert (tmp_path / "norb" / smallnorb.CACHE_NAME).is_file()
    fresh_copy = SmallNORB(root=tmp_path / "norb")
    rows = np.array([[0, 0, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(cached.sample_observations_from_factors(rows, RNG(3)), fresh_copy.sample_observations_from_factors(rows, RNG(3)))
    write_smallnorb(tmp_path / "short", drop_last=True)
    with pytest.raises(DisentangleError, match=r"must hold dat \[n, 2, H, W\], cat \[n\], info \[n, 4\]; got \[31, 2, 96, 96\], \[32\], \[32, 4\]"):
        SmallNORB(root=tmp_path / "short", verify=False)
    with pytest.raises(DisentangleError, match=r"smallnorb files not found in .*none: put smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat\[.gz\] there \(published at https://cs.nyu.edu"):
        SmallNORB(root=tmp_path / "none")
    verified = CliRunner().invoke(main, ["datasets", "verify", "smallnorb", "--root", str(tmp_path / "short")])
    assert verified.exit_code == 2 and "truncated or padded" not in verified.output and "must hold dat" in verified.output
    write_smallnorb(tmp_path / "gz", gz=True)
    with pytest.raises(DisentangleError, match="checksum mismatch for .*training-dat.mat.gz: expected md5 66054832f9accfe74a0f4c36a75bc0a2"):
        SmallNORB(root=tmp_path / "gz")


# --- Cars3D ---------------------------------------------------------------------------------

def write_car(path, number):
    """One car: every view a flat colour (elevation * 40, azimuth * 10, object * 50)."""
    im = np.zeros((128, 128, 3, 24, 4), np.uint8)
    im[:, :, 0] = (np.arange(4) * 40)[None, None, None, :]
    im[:, :, 1] = (np.arange(24) * 10)[None, None, :, None]
    im[:, :, 2] = number * 50
    scipy.io.savemat(path, {"im": im, "mask": np.zeros((128, 128, 24, 4), np.uint8)})


def test_cars3d_from_mat_files_archive_and_cache(tmp_path):
    cars = tmp_path / "cars3d" / "data" / "cars"
    cars.mkdir(parents=True)
    for number in (1, 2):
        write_car(cars / f"car_{number:03d}_mesh.mat", number)
    data = get_dataset("cars3d", root=tmp_path / "cars3d", verify=False)
    assert data.factor_sizes == (4, 24, 2) and len(data) == 192
    factors = data.sample_factors(100, RNG(0))
    observations = data.sample_observations_from_factors(factors, RNG(0))
    assert observations.shape == (100, 3, 64, 64)
    colours = np.rint(observations[:, :, 32, 32] * 255)
    np.testing.assert_array_equal(colours, np.stack([factors[:, 0] * 40, factors[:, 1] * 10, (factors[:, 2] + 1) * 50], 1))
    with pytest.raises(DisentangleError, match="expected 183 car_\\*_mesh.mat files, found 2"):
        get_dataset("cars3d", root=tmp_path / "cars3d")
    archive_root = tmp_path / "archived"
    archive_root.mkdir()
    with tarfile.open(archive_root / "nips2015-analogy-data.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "cars3d" / "data", arcname="data")
    from_archive = get_dataset("cars3d", root=archive_root, verify=False)
    np.testing.assert_array_equal(from_archive.images, data.images)
    with pytest.raises(DisentangleError, match="checksum mismatch for .*nips2015-analogy-data.tar.gz"):
        get_dataset("cars3d", root=archive_root)


def test_cars3d_bad_files(tmp_path):
    with pytest.raises(DisentangleError, match=r"cars3d files not found in .*: put car_\*_mesh.mat \(183 files\) or nips2015-analogy-data.tar.gz there"):
        get_dataset("cars3d", root=tmp_path)
    scipy.io.savemat(tmp_path / "car_001_mesh.mat", {"im": np.zeros((64, 64, 3, 24, 4), np.uint8)})
    with pytest.raises(DisentangleError, match=r"'im' must be uint8 with shape \[128, 128, 3, 24, 4\], got uint8 \[64, 64, 3, 24, 4\]"):
        get_dataset("cars3d", root=tmp_path, verify=False)
    (tmp_path / "car_001_mesh.mat").write_bytes(b"MATLAB 5.0 truncated")
    with pytest.raises(DisentangleError, match="is not a Cars3D .mat file"):
        get_dataset("cars3d", root=tmp_path, verify=False)


# --- dSprites variants ----------------------------------------------------------------------

def sprites_and(name, factors, seed, **options):
    plain = get_dataset("dsprites").sample_observations_from_factors(factors)
    return plain, get_dataset(name, **options).sample_observations_from_factors(factors, RNG(seed))


FACTORS = np.array([[0, 5, 0, 16, 16], [1, 3, 10, 5, 20], [2, 0, 30, 28, 3]])


def test_dsprites_noshape_draws_the_shape_as_noise_over_four_factors():
    noshape = get_dataset("dsprites_noshape")
    assert noshape.factor_names == ("scale", "orientation", "posX", "posY") and noshape.num_factors == 4
    rows = np.repeat(FACTORS[:1, 1:], 60, axis=0)  # one factor row, many draws
    images = noshape.sample_observations_from_factors(rows, RNG(0))
    plain = get_dataset("dsprites").sample_observations_from_factors(np.column_stack([np.arange(3), rows[:3]]))
    shape_of = [next(s for s in range(3) if np.array_equal(image, plain[s])) for image in images]  # each is one of the 3
    assert set(shape_of) == {0, 1, 2}
    np.testing.assert_array_equal(images, noshape.sample_observations_from_factors(rows, RNG(0)))  # seeded
    with pytest.raises(DisentangleError, match=r"factors must have shape \[n, 4\]"):
        noshape.sample_observations_from_factors(FACTORS, RNG(0))


def test_color_dsprites_paints_each_sprite_one_colour_in_half_to_one():
    plain, colour = sprites_and("color_dsprites", FACTORS, 0)
    assert colour.shape == (3, 3, 64, 64) and colour.dtype == np.float32
    for sprite, painted in zip(plain[:, 0], colour):
        assert np.all(painted[:, sprite == 0] == 0)
        tint = painted[:, sprite == 1]
        assert np.all(tint == tint[:, :1]) and np.all((tint >= 0.5) & (tint <= 1.0))
    np.testing.assert_array_equal(colour, sprites_and("color_dsprites", FACTORS, 0)[1])  # seeded
    assert not np.array_equal(colour, sprites_and("color_dsprites", FACTORS, 1)[1])


def test_noisy_dsprites_keeps_white_sprites_on_uniform_noise():
    plain, noisy = sprites_and("noisy_dsprites", FACTORS, 0)
    sprite = np.repeat(plain, 3, axis=1) == 1
    assert np.all(noisy[sprite] == 1.0)
    background = noisy[~sprite]
    assert background.min() >= 0 and background.max() < 1 and abs(background.mean() - 0.5) < 0.01


def test_scream_dsprites_inverts_a_tinted_patch(tmp_path):
    with pytest.raises(DisentangleError, match=r"scream_dsprites needs the Scream image: put scream.jpg in .* \(published at https://upload.wikimedia.org"):
        get_dataset("scream_dsprites", root=tmp_path)
    Image.new("RGB", (500, 400), (51, 102, 204)).save(tmp_path / "scream.jpg", quality=100)
    plain, scream = sprites_and("scream_dsprites", FACTORS, 0, root=tmp_path)
    scream_pixel = np.array([51, 102, 204]) / 255  # a flat image: every patch is this colour
    for sprite, observation in zip(plain[:, 0], scream):
        background = observation[:, sprite == 0]
        assert np.allclose(background, background[:, :1], atol=0.02)  # one tint per observation
        tint = 2 * background[:, 0] - scream_pixel  # background = (patch + u) / 2, u ~ U[0, 1]^3
        assert np.all((tint > -0.03) & (tint < 1.03))
        inside = observation[:, sprite == 1]
        np.testing.assert_allclose(inside, np.broadcast_to(1 - background[:, :1], inside.shape), atol=0.02)


# --- colour images end to end ---------------------------------------------------------------

def test_train_and_traverse_on_a_colour_fixture(small_shapes3d, tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(main, ["train", "--model", "beta_vae", "--dataset", "shapes3d", "--data-root", str(small_shapes3d),
                                       "--dataset-option", "verify=false", "--steps", "3", "--batch-size", "8", "--runs-dir", str(runs), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = runs.iterdir()
    result = CliRunner().invoke(main, ["traverse", str(run), "--data-root", str(small_shapes3d), "--out", str(tmp_path / "figures")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "figures" / "reconstructions.png") as picture:  # the inputs row is the fixture's colours
        pixels = np.asarray(picture.convert("RGB"), dtype=np.int64)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() > 0  # colour survived, not greyscale


def test_prepare_removes_a_killed_prepares_temporary(tmp_path, monkeypatch):
    from disentangle.datasets import cars3d

    cars = tmp_path / "cars3d"
    cars.mkdir()
    write_car(cars / "car_001_mesh.mat", 1)
    stale = cars / ".cars3d_64x64.npz.k1ll3d.tmp"  # what atomic_path leaves when killed before its rename
    stale.write_bytes(b"half a file")
    monkeypatch.setattr(cars3d, "NUM_OBJECTS", 1)  # a one-car fixture passes the count check
    assert "wrote" in Cars3D.prepare(cars, progress=False)
    assert not stale.exists() and (cars / "cars3d_64x64.npz").is_file()


def test_a_second_prepare_of_the_same_file_waits_its_turn_and_spares_the_firsts_temporary(tmp_path):
    from disentangle.base.files import sole_writer
    from disentangle.datasets.dsprites import HDF5_NAME, prepare_hdf5

    target = tmp_path / HDF5_NAME
    live = tmp_path / f".{HDF5_NAME}.f1rst.tmp"  # the first prepare's file, being written
    with sole_writer(target, "'datasets prepare dsprites'"):
        live.write_bytes(b"being written")
        with pytest.raises(DisentangleError, match=f"another 'datasets prepare dsprites' is writing {target}: wait"):
            prepare_hdf5(tmp_path, progress=False)
        assert live.read_bytes() == b"being written"
