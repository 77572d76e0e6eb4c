"""Readers of the data sets' original file formats, numpy and the standard library only.

* IDX (MNIST, Fashion-MNIST): :func:`read_idx`, :func:`read_idx_dataset`;
* the CIFAR-10 python version (pickled batches, read through an unpickler that
  builds nothing but arrays): :func:`read_cifar10`.

Each reader returns raw ``(x_train, y_train, x_test, y_test)`` arrays or raises
a one-line :class:`DatasetError` naming the file; a short read is never
returned as a smaller data set.
"""

from __future__ import annotations

import gzip
import importlib
import io
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

from icrst_jax.data.dataset import DatasetError

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion)"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"

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


def idx_path(folder: Path, base: str) -> Path | None:
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
    paths = {base: idx_path(folder, base) for base in IDX_FILES}
    missing = [base for base, p in paths.items() if p is None]
    if missing:
        raise DatasetError(
            f"{folder}: missing IDX files {', '.join(m + '[.gz]' for m in missing)}; "
            f"get them from {MNIST_URL} (MNIST) or {FASHION_URL}"
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
    names = _CIFAR_TRAIN_BATCHES + (CIFAR_TEST_BATCH,)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: missing CIFAR-10 batch files {', '.join(missing)}; "
            f"re-extract {CIFAR_ARCHIVE} (from {CIFAR_URL})"
        )
    out = {}
    for n in names:
        try:
            out[n] = ((folder / n).read_bytes(), str(folder / n))
        except OSError as e:
            raise DatasetError(f"{folder / n}: cannot read ({e.strerror or e})") from e
    return out


def _cifar_members_from_archive(archive: Path) -> dict[str, tuple[bytes, str]]:
    names = _CIFAR_TRAIN_BATCHES + (CIFAR_TEST_BATCH,)
    out = {}
    try:
        # Members are read into memory, never extracted: no path can escape.
        with tarfile.open(archive, "r:*") as tar:
            for n in names:
                member_name = f"{CIFAR_FOLDER}/{n}"
                try:
                    member = tar.getmember(member_name)
                except KeyError:
                    raise DatasetError(
                        f"{archive}: archive has no member {member_name}; it is not the CIFAR-10 python "
                        f"archive, download {CIFAR_URL} again"
                    ) from None
                f = tar.extractfile(member)
                if f is None:
                    raise DatasetError(f"{archive}: member {member_name} is not a regular file")
                data = f.read()
                if len(data) != member.size:
                    raise DatasetError(f"{archive}: member {member_name} is truncated; download it again")
                out[n] = (data, f"{archive}:{member_name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{archive}: corrupt or truncated tar archive ({e}); download {CIFAR_URL} again") from e
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
        raise DatasetError(f"{path}: no such file or folder; download {CIFAR_URL}")
    train = [_parse_cifar_batch(*members[n]) for n in _CIFAR_TRAIN_BATCHES]
    x_test, y_test = _parse_cifar_batch(*members[CIFAR_TEST_BATCH])
    x_test = np.ascontiguousarray(x_test)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test
