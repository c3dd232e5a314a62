import numpy as np
import pytest

from disentangle import DisentangleError
from disentangle.datasets import DSprites, dsprites, get_dataset, sprites


@pytest.fixture(scope="module")
def data():
    return get_dataset("dsprites")


def test_grid_matches_published_layout(data):
    assert data.factor_sizes == (3, 6, 40, 32, 32)
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert len(data) == 737280 == int(np.prod(data.factor_sizes))
    values = dsprites.factor_values()
    assert values[1][0] == 0.5 and values[1][-1] == 1.0
    assert values[2][0] == 0.0 and values[2][-1] == pytest.approx(2 * np.pi)
    classes = dsprites.latents_classes()
    assert classes.shape == (737280, 6)
    assert (classes[:, 0] == 0).all()
    # flat index = classes . [245760, 40960, 1024, 32, 1]
    for i in (0, 1, 31, 32, 1024, 40960, 245760, 737279):
        assert (classes[i, 1:] @ np.array([245760, 40960, 1024, 32, 1])) == i
    lv = dsprites.latents_values()
    assert lv[-1].tolist() == pytest.approx([1.0, 3.0, 1.0, 2 * np.pi, 1.0, 1.0])


def test_index_round_trip():
    index = np.array([0, 5, 12345, 737279])
    assert (dsprites.factors_to_index(dsprites.index_to_factors(index)) == index).all()


def test_sample_shapes_dtype_and_binary(data):
    factors, obs = data.sample(16, np.random.default_rng(0))
    assert factors.dtype == np.int64 and factors.shape == (16, 5)
    assert obs.dtype == np.float32 and obs.shape == (16, 1, 64, 64)
    assert set(np.unique(obs)) <= {0.0, 1.0}
    assert (obs.sum((1, 2, 3)) > 30).all()


def test_block_render_equals_per_image_render():
    _, scales, orientations, positions, _ = dsprites.factor_values()
    block = sprites.render_position_block(2, scales[3], orientations[7], positions)
    factors = np.array([[2, 3, 7, x, y] for x in (0, 5, 31) for y in (0, 17, 31)])
    single = dsprites.render_factors(factors)
    expected = block[factors[:, 3] * 32 + factors[:, 4]]
    assert (single == expected).all()


def test_position_moves_sprite_along_its_axis(data):
    rng = np.random.default_rng(0)
    obs = data.sample_observations_from_factors(np.array([[0, 5, 0, 0, 10], [0, 5, 0, 31, 10], [0, 5, 0, 10, 31]]), rng)
    centroid = lambda img: np.argwhere(img[0]).mean(0)  # noqa: E731  (row, col)
    left, right, low = (centroid(o) for o in obs)
    assert right[1] - left[1] == pytest.approx(32, abs=1.0)  # posX moves columns by 32 px
    assert right[0] == pytest.approx(left[0], abs=0.5)
    assert low[0] - left[0] == pytest.approx(32 * 21 / 31, abs=1.0)  # posY moves rows
    assert left[1] == pytest.approx(16, abs=0.5)  # position 0 is centred on pixel 16


def test_orientation_wraps_and_scale_grows(data):
    rng = np.random.default_rng(0)
    ends = data.sample_observations_from_factors(np.array([[2, 5, 0, 16, 16], [2, 5, 39, 16, 16]]), rng)
    assert (ends[0] == ends[1]).all()  # 0 and 2*pi are both on the grid
    areas = [data.sample_observations_from_factors(np.array([[1, s, 0, 16, 16]]), rng).sum() for s in range(6)]
    assert all(a < b for a, b in zip(areas, areas[1:]))
    assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.1)  # area scales with scale**2


def test_every_grid_block_renders_the_images_of_its_flat_indices():
    """The in-memory cache is these blocks stacked: block b must hold flat indices b*1024 ... b*1024+1023."""
    numbers = [0, 239, 240, 719] + np.random.default_rng(1).choice(720, size=16, replace=False).tolist()
    for number in numbers:  # rounding the rotation's parts apart once broke ~0.4% of images
        indices = np.arange(number * 1024, (number + 1) * 1024)
        np.testing.assert_array_equal(dsprites.render_grid_block(number), dsprites.render_factors(dsprites.index_to_factors(indices)))


def test_in_memory_cache_returns_the_grid_row_of_each_factor_row(monkeypatch):
    """Without rendering 737,280 images: a stand-in grid whose row i spells i in its first 64 pixels."""
    stand_in = np.zeros((dsprites.NUM_IMAGES, 64, 8), dtype=np.uint8)
    stand_in[:, 0, :] = np.arange(dsprites.NUM_IMAGES, dtype=">u8").view(np.uint8).reshape(-1, 8)
    monkeypatch.setattr(dsprites, "_RENDERED", [stand_in])
    cached = DSprites(in_memory=True)
    factors = cached.sample_factors(5000, np.random.default_rng(1))
    first_rows = cached.sample_observations_from_factors(factors)[:, 0, 0, :].astype(np.uint8)
    rows = np.packbits(first_rows, axis=-1).view(">u8").ravel()
    np.testing.assert_array_equal(dsprites.latents_classes()[rows, 1:], factors)  # the official file's row order


@pytest.mark.parametrize(("factors", "message"), [
    (np.array([[3, 0, 0, 0, 0]]), "factor 'shape' must be in [0, 2], got 3"),
    (np.array([[0, 0, 40, 0, 0]]), "factor 'orientation' must be in [0, 39], got 40"),
    (np.array([[0, 0, 0, 0, -1]]), "factor 'posY' must be in [0, 31], got -1"),
    (np.array([[0, 0, 0, 0]]), "factors must have shape [n, 5]"),
])
def test_bad_factors_are_named(data, factors, message):
    with pytest.raises(DisentangleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        data.sample_observations_from_factors(factors, np.random.default_rng(0))


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_sample_count(data, n):
    with pytest.raises(DisentangleError, match="n must be a positive integer"):
        data.sample(n, np.random.default_rng(0))


def _write_small_npz(path, indices):
    classes = dsprites.latents_classes()[indices]
    imgs = dsprites.render_factors(classes[:, 1:]).astype(np.uint8)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes, latents_values=dsprites.latents_values()[indices],
                        metadata=np.array({"description": "test"}, dtype=object))
    return imgs


def test_npz_source_reads_official_layout(tmp_path):
    indices = np.arange(2048, 4096)
    imgs = _write_small_npz(tmp_path / "small.npz", indices)
    data = get_dataset("dsprites", source="npz", path=tmp_path / "small.npz", verify=False)
    assert len(data) == 2048
    rng = np.random.default_rng(0)
    factors = data.sample_factors(50, rng)
    rows = dsprites.factors_to_index(factors) - 2048
    assert ((rows >= 0) & (rows < 2048)).all()
    assert (data.sample_observations_from_factors(factors, rng)[:, 0] == imgs[rows]).all()
    with pytest.raises(DisentangleError, match="not in this dSprites file"):
        data.sample_observations_from_factors(np.zeros((1, 5), np.int64), rng)


def test_npz_checksum_mismatch_names_file_and_both_md5s(tmp_path):
    _write_small_npz(tmp_path / "small.npz", np.arange(10))
    with pytest.raises(DisentangleError, match=r"small\.npz: expected md5 7da33b31b13a06f4b04a70402ce90c2e, got [0-9a-f]{32}"):
        get_dataset("dsprites", source="npz", path=tmp_path / "small.npz")


def test_npz_missing_file(tmp_path):
    with pytest.raises(DisentangleError, match="npz file not found"):
        get_dataset("dsprites", source="npz", path=tmp_path / "nope.npz")


def test_prepare_hdf5_round_trip_and_atomicity(tmp_path, monkeypatch):
    real_blocks = dsprites.iter_grid_blocks

    def first_blocks(progress=False):
        for number, item in enumerate(real_blocks(progress)):
            if number == 3:
                return
            yield item

    monkeypatch.setattr(dsprites, "iter_grid_blocks", first_blocks)
    path = dsprites.prepare_hdf5(tmp_path, progress=False)
    assert path.name == dsprites.HDF5_NAME
    loaded = DSprites(root=tmp_path, in_memory=True)
    factors = dsprites.index_to_factors(np.array([0, 100, 3000]))
    assert (loaded.sample_observations_from_factors(factors) == DSprites().sample_observations_from_factors(factors)).all()

    def broken(progress=False):
        yield from first_blocks(progress)
        raise RuntimeError("killed")

    path.unlink()
    monkeypatch.setattr(dsprites, "iter_grid_blocks", broken)
    with pytest.raises(RuntimeError):
        dsprites.prepare_hdf5(tmp_path, progress=False)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []  # nothing half-written left behind (the lock file stays)


def test_corrupt_hdf5_is_reported(tmp_path):
    (tmp_path / dsprites.HDF5_NAME).write_bytes(b"not hdf5")
    with pytest.raises(DisentangleError, match="not a readable HDF5 file"):
        DSprites(root=tmp_path, in_memory=True)


def test_a_run_loaded_with_the_in_memory_cache_uses_the_rendered_grid(tmp_path, monkeypatch):
    """evaluate asks for the cache when published sampling scores will draw millions of images."""
    from disentangle.orchestration import grid
    from disentangle.lifecycle.training import load_trained, train

    stand_in = np.zeros((dsprites.NUM_IMAGES, 64, 8), dtype=np.uint8)
    monkeypatch.setattr(dsprites, "_RENDERED", [stand_in])
    (config,) = grid.expand("beta_vae", steps=2, batch_size=8, fixed={"latent_dim": 3})
    run_dir = train(config, tmp_path / "runs", progress=False)
    _, drawn, _ = load_trained(run_dir)
    _, cached, _ = load_trained(run_dir, in_memory=True)
    assert drawn._packed is None and cached._packed is stand_in
