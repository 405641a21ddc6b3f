"""Image data sets: scikit-learn's 8x8 digits (always available) and MNIST from IDX files.

Images are flattened row-major to one feature per pixel and scaled to [-1, 1]
(x = 2 * p / p_max - 1), which is also the schema's box: bounds [-1, 1], every pixel
mutable. They are never standardised (:func:`cfx.data.train_test` leaves them alone):
per-pixel z-scores would blow up the near-constant border pixels and break the [-1, 1] box
that generative models and plots rely on.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from cfx.data.dataset import Dataset, FeatureSchema
from cfx.data.tabular import find_data_file

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_SOURCE = "http://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or raw.

    Layout: two zero bytes, a type code (0x08 ubyte ... 0x0E float64), the number of
    dimensions k, then k big-endian int32 sizes and the data in C order.

    Errors name the file: missing (FileNotFoundError), a truncated or corrupt gzip stream, a
    bad magic number (expected ``00 00 <type> <ndim>``, e.g. ``00000803`` for MNIST images and
    ``00000801`` for labels), a header cut short, or a data size other than the header's
    (the message gives both byte counts; the MNIST test images hold 7,840,000 data bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: IDX file {path} does not exist")
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(
                f"path: {path} is a truncated or corrupt gzip file ({len(raw)} bytes on disk: {e}); download it again"
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"path: {path} is not an IDX file (magic number {raw[:4].hex() or 'missing'}; expected "
            f"00 00 <type code in {sorted(hex(k) for k in _IDX_DTYPES)}> <ndim>, e.g. 00000803)"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(
            f"path: {path} is truncated: {len(raw)} bytes, shorter than its {offset}-byte header "
            f"(magic {raw[:4].hex()}, {ndim} dimensions)"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        state = "truncated" if len(raw) - offset < expected else "longer than its header says"
        raise ValueError(
            f"path: {path} is {state}: it holds {len(raw) - offset} data bytes; its header {shape} "
            f"says {expected} (expected file size {offset + expected} bytes uncompressed)"
        )
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _pixel_schema(height: int, width: int) -> FeatureSchema:
    d = height * width
    names = tuple(f"px_{r}_{c}" for r in range(height) for c in range(width))
    return FeatureSchema(names, ("both",) * d, (-1.0,) * d, (1.0,) * d, ())


def images_to_dataset(images: np.ndarray, labels: np.ndarray, *, max_value: float, name: str) -> Dataset:
    """(n, h, w) images with values in [0, max_value] -> flattened Dataset in [-1, 1]."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width); got {images.shape}")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},); got {labels.shape}")
    n, h, w = images.shape
    X = images.reshape(n, h * w).astype(np.float32) * np.float32(2.0 / max_value) - np.float32(1.0)
    return Dataset(X, labels.astype(np.int32), _pixel_schema(h, w), name=name)


def digits() -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 64 features, classes 0..9; pixels 0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return images_to_dataset(bunch.images, bunch.target, max_value=16.0, name="digits")


def mnist_from_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, name: str = "mnist") -> Dataset:
    """Any IDX image/label pair (e.g. the full MNIST or Fashion-MNIST files) as a Dataset."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"expected (n, h, w) images and (n,) labels; got {images.shape} from {images_path} "
            f"and {labels.shape} from {labels_path}"
        )
    return images_to_dataset(images, labels, max_value=255.0, name=name)


def mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """The MNIST test split (10,000 images, 784 features) from ``<data dir>/mnist/``.

    Reads ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``; for the full
    training files or another IDX pair use :func:`mnist_from_idx`.
    """
    found = []
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        rel = f"mnist/{stem}.gz"
        found.append(find_data_file(rel, data_dir, source=MNIST_SOURCE, alternatives=(f"mnist/{stem}",)))
    return mnist_from_idx(*found)
