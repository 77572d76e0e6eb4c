"""Readers of the data sets' original file formats, numpy and the standard library only.

* IDX (MNIST, Fashion-MNIST): :func:`read_idx`, :func:`read_idx_dataset`;
* the CIFAR-10 python version (pickled batches, read through an unpickler that
  builds nothing but arrays): :func:`read_cifar10`;
* Caltech101's archive of JPEGs, split as TFDS's builder: :func:`read_caltech101`.

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
import zipfile
import zlib
from pathlib import Path

import numpy as np

from icrst_jax.data.dataset import DatasetError, resize_images

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
            "copy them there, or remove the folder's IDX files to have them downloaded"
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
            f"re-extract {CIFAR_ARCHIVE}"
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
                        "archive, download it again"
                    ) from None
                f = tar.extractfile(member)
                if f is None:
                    raise DatasetError(f"{archive}: member {member_name} is not a regular file")
                data = f.read()
                if len(data) != member.size:
                    raise DatasetError(f"{archive}: member {member_name} is truncated; download it again")
                out[n] = (data, f"{archive}:{member_name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{archive}: corrupt or truncated tar archive ({e}); download it again") from e
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
        raise DatasetError(f"{path}: no such file or folder")
    train = [_parse_cifar_batch(*members[n]) for n in _CIFAR_TRAIN_BATCHES]
    x_test, y_test = _parse_cifar_batch(*members[CIFAR_TEST_BATCH])
    x_test = np.ascontiguousarray(x_test)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------
# Caltech101: the original archive of JPEGs, split as TFDS's caltech101 builder
# --------------------------------------------------------------------------

CALTECH_ZIP = "caltech-101.zip"  # what data.caltech.edu serves; holds the archive below
CALTECH_ARCHIVE = "101_ObjectCategories.tar.gz"
CALTECH_FOLDER = "101_ObjectCategories"
# TFDS's rule (tensorflow_datasets/datasets/caltech101/caltech101_dataset_builder.py):
# np.random.seed(1234), then per class folder, np.random.choice(file names, 30,
# replace=False) is the training split and the rest the test split; only .jpg
# files are emitted; BACKGROUND_Google is a class like the others.
CALTECH_TRAIN_PER_CLASS = 30
CALTECH_SPLIT_SEED = 1234


def caltech_split(files: dict[str, list[str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """TFDS's caltech101 train/test split of ``{class folder: file names}``.

    Class folders and the file names within each are taken in sorted (byte)
    order: TFDS takes them in ``tf.io.gfile.listdir`` order, which is the
    file system's, so its split is this one wherever that listing is sorted.

    Returns:
      ``(train, test)``: lists of ``(class folder, file name)`` of ``.jpg`` files.

    Raises:
      DatasetError: a class with fewer than 30 files (TFDS raises too).
    """
    rng = np.random.RandomState(CALTECH_SPLIT_SEED)  # the stream of np.random.seed(1234)
    train, test = [], []
    for folder in sorted(files):
        names = sorted(files[folder])
        if len(names) < CALTECH_TRAIN_PER_CLASS:
            raise DatasetError(
                f"Caltech101 class {folder} has {len(names)} files, fewer than the {CALTECH_TRAIN_PER_CLASS} "
                "of the training split; is this the 101_ObjectCategories archive?"
            )
        chosen = [str(n) for n in rng.choice(names, CALTECH_TRAIN_PER_CLASS, replace=False)]
        rest = set(names).difference(chosen)
        train += [(folder, n) for n in chosen if n.endswith(".jpg")]
        test += [(folder, n) for n in names if n in rest and n.endswith(".jpg")]
    return train, test


def _caltech_members(path: Path) -> dict[tuple[str, str], bytes]:
    """``{(class folder, file name): bytes}`` of every file two levels below 101_ObjectCategories."""
    out: dict[tuple[str, str], bytes] = {}

    def add(relative: str, read) -> None:
        parts = relative.strip("/").split("/")
        if len(parts) == 3 and parts[0] == CALTECH_FOLDER:
            out[(parts[1], parts[2])] = read()

    if path.is_dir():
        for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
            for f in sorted(p for p in class_dir.iterdir() if p.is_file()):
                add(f"{CALTECH_FOLDER}/{class_dir.name}/{f.name}", f.read_bytes)
        return out

    def add_tar(fileobj) -> None:
        # Streamed ("r|gz"): members are read into memory, never extracted.
        with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    add(member.name, f.read)

    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            inner = [n for n in z.namelist() if n.endswith("/" + CALTECH_ARCHIVE) or n == CALTECH_ARCHIVE]
            if not inner:
                raise DatasetError(f"{path}: the zip holds no {CALTECH_ARCHIVE}; is it caltech-101.zip?")
            with z.open(inner[0]) as f:
                add_tar(f)
    else:
        with open(path, "rb") as f:
            add_tar(f)
    return out


def _decode_jpeg(data: bytes, size: tuple[int, int], where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # start-up time: only Caltech101's JPEGs need it

    try:
        with Image.open(io.BytesIO(data)) as im:
            # TFDS decodes with three channels: grey images become RGB.
            pixels = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{where}: corrupt JPEG ({e}); download the archive again") from e
    return resize_images(pixels[None], size)[0]


def read_caltech101(path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads Caltech101 from its original archive, split as TFDS's caltech101.

    Args:
      path: ``caltech-101.zip`` (as data.caltech.edu serves it), the
        ``101_ObjectCategories.tar.gz`` inside it, or the extracted folder
        holding ``101_ObjectCategories/<class>/*.jpg``.
      size: ``(H, W)``: every image is resized to it (bilinear, antialiased).

    Returns:
      ``(x_train, y_train, x_test, y_test)``: ``float32 (N, H, W, 3)`` images in
      ``[0, 255]``; labels index the class folders' lower-case names in sorted
      order (TFDS's ``caltech101_labels.txt`` order: 102 classes with
      ``background_google``). The real archive gives 3060 training and 6084
      test images.

    Example:
      >>> x, y, xt, yt = read_caltech101("~/.cache/icrst_jax/data/caltech101/caltech-101.zip", (64, 64))  # doctest: +SKIP
      >>> x.shape, xt.shape  # doctest: +SKIP
      ((3060, 64, 64, 3), (6084, 64, 64, 3))
    """
    path = Path(path).expanduser()
    try:
        members = _caltech_members(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path}: corrupt or truncated archive ({e}); download it again") from e
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e
    if not members:
        raise DatasetError(f"{path}: no {CALTECH_FOLDER}/<class>/<image> files; is this the Caltech101 archive?")
    files: dict[str, list[str]] = {}
    for folder, name in members:
        files.setdefault(folder, []).append(name)
    train, test = caltech_split(files)
    classes = {c: i for i, c in enumerate(sorted({folder.lower() for folder in files}))}
    arrays = []
    for part in (train, test):
        x = np.stack([_decode_jpeg(members[key], size, f"{path}:{CALTECH_FOLDER}/{key[0]}/{key[1]}") for key in part])
        y = np.asarray([classes[folder.lower()] for folder, _ in part], np.int64)
        arrays += [x, y]
    return tuple(arrays)
