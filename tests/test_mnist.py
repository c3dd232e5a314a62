import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED_DATA, idx_bytes
from disentangle import DisentangleError
from disentangle.cli import main
from disentangle.datasets import get_dataset, mnist


def test_reads_gz_and_plain_files(tiny_mnist):
    train = get_dataset("mnist", root=tiny_mnist, split="train", verify=False)
    test = get_dataset("mnist", root=tiny_mnist, split="test", verify=False)
    assert len(train) == 20 and len(test) == 10
    assert train.factor_names == ("label",) and train.factor_sizes == (10,)
    assert train.observation_shape == (1, 28, 28)
    raw = mnist.parse_idx(gzip.decompress((tiny_mnist / "train-images-idx3-ubyte.gz").read_bytes()))
    obs = train.observations(np.arange(20))
    assert obs.dtype == np.float32 and obs.shape == (20, 1, 28, 28)
    assert np.allclose(obs[:, 0], raw / 255.0)


def test_observations_follow_requested_labels(tiny_mnist):
    data = get_dataset("mnist", root=tiny_mnist, verify=False)
    rng = np.random.default_rng(0)
    labels = np.array([[3], [3], [7]])
    obs = data.sample_observations_from_factors(labels, rng)
    for o, label in zip(obs, labels[:, 0]):
        matches = [i for i in np.flatnonzero(data.labels == label) if np.allclose(data.observations([i])[0], o)]
        assert matches


def test_checksum_mismatch_names_file_and_md5s(tiny_mnist):
    with pytest.raises(DisentangleError, match=r"checksum mismatch for .*train-images-idx3-ubyte\.gz: expected md5 f68b3c2dcbeaaa9fbdd348bbdeb94873, got [0-9a-f]{32}"):
        get_dataset("mnist", root=tiny_mnist)


def test_wrong_magic(tiny_mnist):
    (tiny_mnist / "t10k-labels-idx1-ubyte").write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(DisentangleError, match="bad magic number 01020801"):
        get_dataset("mnist", root=tiny_mnist, split="test", verify=False)


def test_truncated_file(tiny_mnist):
    path = tiny_mnist / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DisentangleError, match="truncated"):
        get_dataset("mnist", root=tiny_mnist, split="test", verify=False)


def test_not_gzip(tiny_mnist):
    (tiny_mnist / "train-labels-idx1-ubyte.gz").write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DisentangleError, match="not a valid gzip file"):
        get_dataset("mnist", root=tiny_mnist, verify=False)


def test_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(DisentangleError, match=r"not found in .*nowhere: put the four official IDX files there .*disentangle datasets prepare mnist"):
        get_dataset("mnist", root=tmp_path / "nowhere")


def test_bad_split_and_unknown_dataset(tiny_mnist):
    with pytest.raises(DisentangleError, match="split must be 'train' or 'test', got 'valid'"):
        get_dataset("mnist", root=tiny_mnist, split="valid")
    with pytest.raises(DisentangleError, match="unknown dataset 'cifar'"):
        get_dataset("cifar")


def test_label_out_of_range(tiny_mnist):
    with pytest.raises(DisentangleError, match=r"factor 'label' must be in \[0, 9\], got 12"):
        get_dataset("mnist", root=tiny_mnist, verify=False).sample_observations_from_factors(np.array([[12]]), np.random.default_rng(0))


def test_idx_parser_hand_made():
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert (mnist.parse_idx(idx_bytes(array)) == array).all()


def test_cli_errors_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["datasets", "verify", "mnist", "--root", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "not found in" in result.output
    result = CliRunner().invoke(main, ["datasets", "verify", "imagenet"])
    assert result.exit_code == 2 and "unknown dataset 'imagenet'" in result.output


def test_cli_list():
    result = CliRunner().invoke(main, ["datasets", "list"])
    assert result.exit_code == 0
    assert all(name in result.output for name in ("dsprites", "mnist", "fashion_mnist"))


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="../shared/data/mnist not present")
@pytest.mark.parametrize(("name", "folder"), [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")])
def test_real_files_verify(name, folder):
    train = get_dataset(name, root=SHARED_DATA / folder, split="train")
    test = get_dataset(name, root=SHARED_DATA / folder, split="test")
    assert (len(train), len(test)) == (60000, 10000)
    assert np.bincount(train.labels, minlength=10).min() > 5000
    obs = test.observations(np.arange(100))
    assert 0.0 <= obs.min() and obs.max() == 1.0
