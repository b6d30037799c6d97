"""MNIST for the benchmarks: IDX files from a directory, or OpenML when asked.

The directory comes from ``data_dir``, else the ``SKVAE_MNIST_DIR`` environment
variable, else ``../shared/data/mnist`` beside the repository. It must hold the four
canonical files (``train-images-idx3-ubyte.gz`` and so on, gzipped or not). Without
them nothing else is used silently: scikit-learn's digits stand in only when asked
for (:func:`load_digits_stand_in`), under their own name.
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "SKVAE_MNIST_DIR"
DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IDXError(ValueError):
    """An IDX file that is corrupt, truncated or not the file expected."""


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped when its name ends in ``.gz``) into an array.

    Checks the magic number (two zero bytes, a known type code, the number of
    dimensions, and ``magic`` when given) and that the data fill exactly the shape the
    header announces; raises :class:`IDXError` naming the file and the problem.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # BadGzipFile is an OSError
        raise IDXError(f"{path}: cannot be read: {exc}") from exc
    if len(data) < 4:
        raise IDXError(f"{path}: {len(data)} bytes, too short for an IDX header.")
    zeros, type_code, ndim = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code not in _DTYPES or ndim == 0:
        raise IDXError(
            f"{path}: bad magic number {data[:4].hex()} (expected 0000 then a type "
            "code and the number of dimensions): not an IDX file."
        )
    found_magic = struct.unpack(">I", data[:4])[0]
    if magic is not None and found_magic != magic:
        raise IDXError(f"{path}: magic number {found_magic}, expected {magic}.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated inside its header.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise IDXError(
            f"{path}: the header announces shape {shape} ({expected} bytes of data) "
            f"but {len(data) - header} bytes follow: truncated or corrupt."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory}: no {stem}.gz or {stem}.")


def read_mnist_dir(
    directory: str | os.PathLike,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the train and test splits from the four IDX files in ``directory``.

    Returns ``{"train": (images, labels), "test": (images, labels)}`` with images as
    uint8 arrays of shape (n, 28, 28).
    """
    directory = Path(directory)
    splits = {}
    for split, (image_stem, label_stem) in FILES.items():
        images = read_idx(_find(directory, image_stem), IMAGE_MAGIC)
        labels = read_idx(_find(directory, label_stem), LABEL_MAGIC)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IDXError(
                f"{directory}: {split} images of shape {images.shape} do not match "
                f"labels of shape {labels.shape}."
            )
        splits[split] = (images, labels)
    return splits


@dataclass
class Dataset:
    """Images flattened to rows of intensities in [0, 1] (float32), with labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    source: str
    #: What reports call the data, and the prefix of their files.
    name: str = "MNIST"
    prefix: str = "mnist"


class MNISTNotFoundError(FileNotFoundError):
    """MNIST's files are not where the benchmarks look, and were not downloaded."""


def mnist_directory(data_dir: str | os.PathLike | None = None) -> Path:
    """Where MNIST's IDX files are looked for: ``data_dir``, else ``$SKVAE_MNIST_DIR``,
    else ``../shared/data/mnist`` beside the repository. The one place that decides.
    """
    return Path(data_dir or os.environ.get(ENV_VAR) or DEFAULT_DIR)


def load_mnist(
    data_dir: str | os.PathLike | None = None, download: bool = False
) -> Dataset:
    """MNIST from its IDX files in :func:`mnist_directory`, else (``download``) OpenML.

    Raises :class:`MNISTNotFoundError`, saying where the files go and what the
    options are, rather than train on anything else.
    """
    directory = mnist_directory(data_dir)
    if directory.is_dir():
        splits = read_mnist_dir(directory)
        (Xtr, ytr), (Xte, yte) = splits["train"], splits["test"]
        return Dataset(
            Xtr.reshape(len(Xtr), -1).astype(np.float32) / 255,
            ytr.astype(np.int64),
            Xte.reshape(len(Xte), -1).astype(np.float32) / 255,
            yte.astype(np.int64),
            (28, 28),
            # No path: reports are committed, and name no directory of the machine.
            f"MNIST's IDX files ({len(Xtr):,} training and {len(Xte):,} test images)",
        )
    files = ", ".join(f"{stem}.gz" for stems in FILES.values() for stem in stems)
    where = (
        f"MNIST's IDX files are not in {directory} (no such directory). Put the four "
        f"files ({files}; gzipped or not) there, or name their folder with "
        f"--data-dir DIR or ${ENV_VAR}."
    )
    if not download:
        raise MNISTNotFoundError(
            f"{where} Where a network exists, --download fetches MNIST from OpenML. "
            "To try the job without MNIST, --stand-in digits runs it on scikit-learn's "
            "8x8 digits and writes digits_standin_* files, never MNIST's."
        )
    print(f"MNIST: no directory {directory}; downloading from OpenML.", file=sys.stderr)
    try:
        from sklearn.datasets import fetch_openml

        X, y = fetch_openml("mnist_784", return_X_y=True, as_frame=False)
    except Exception as exc:  # no network, or OpenML down
        raise MNISTNotFoundError(
            f"{where} Downloading from OpenML failed ({type(exc).__name__}: {exc})."
        ) from exc
    X = X.astype(np.float32) / 255
    y = y.astype(np.int64)
    return Dataset(X[:60000], y[:60000], X[60000:], y[60000:], (28, 28), "OpenML")


def load_digits_stand_in() -> Dataset:
    """scikit-learn's 8x8 digits as intensities, named as the stand-in they are."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        (X / 16).astype(np.float32), y, test_size=0.25, random_state=0, stratify=y
    )
    return Dataset(
        Xtr,
        ytr,
        Xte,
        yte,
        (8, 8),
        f"scikit-learn's 8x8 digits ({len(Xtr):,} training and {len(Xte):,} test "
        "images), standing in for MNIST",
        name="Digits stand-in (NOT MNIST)",
        prefix="digits_standin",
    )
