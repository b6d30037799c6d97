"""The IDX reader behind the MNIST benchmarks, on small files written here."""

import gzip
import struct

import numpy as np
import pytest

from benchmarks.mnist_data import IDXError, read_idx, read_mnist_dir


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
LABELS = np.array([7, 1], dtype=np.uint8)


def write(path, payload, gz=True):
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_reads_what_was_written(tmp_path, gz):
    name = "x.idx.gz" if gz else "x.idx"
    path = write(tmp_path / name, idx_bytes(IMAGES), gz=gz)
    np.testing.assert_array_equal(read_idx(path, magic=2051), IMAGES)


@pytest.mark.parametrize(
    "dtype, code", [(np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D)]
)
def test_reads_big_endian_types(tmp_path, dtype, code):
    data = np.array([[1, -2, 3], [4, 5, -6]], dtype=dtype)
    path = write(tmp_path / "t.gz", idx_bytes(data, type_code=code))
    np.testing.assert_array_equal(read_idx(path), data)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x02\x08\x03" + b"\x00" * 40, "bad magic number"),
        (b"\x00\x00\x42\x01" + b"\x00" * 8, "bad magic number"),
        (idx_bytes(IMAGES)[:10], "truncated inside its header"),
        (idx_bytes(IMAGES)[:-1], "truncated or corrupt"),
        (idx_bytes(IMAGES) + b"\x00", "truncated or corrupt"),
    ],
)
def test_corrupt_files_fail_clearly(tmp_path, payload, message):
    path = write(tmp_path / "bad.gz", payload)
    with pytest.raises(IDXError, match=message):
        read_idx(path)


def test_wrong_magic_for_the_file_kind(tmp_path):
    path = write(tmp_path / "labels.gz", idx_bytes(LABELS))
    with pytest.raises(IDXError, match="magic number 2049, expected 2051"):
        read_idx(path, magic=2051)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(IMAGES))[:-12])
    with pytest.raises(IDXError, match="cannot be read"):
        read_idx(path)


def test_reads_a_directory_and_checks_splits_agree(tmp_path):
    for split in ("train", "t10k"):
        write(tmp_path / f"{split}-images-idx3-ubyte.gz", idx_bytes(IMAGES))
        write(tmp_path / f"{split}-labels-idx1-ubyte.gz", idx_bytes(LABELS))
    splits = read_mnist_dir(tmp_path)
    np.testing.assert_array_equal(splits["test"][0], IMAGES)
    np.testing.assert_array_equal(splits["train"][1], LABELS)
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(LABELS[:1]))
    with pytest.raises(IDXError, match="do not match"):
        read_mnist_dir(tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        read_mnist_dir(tmp_path)
