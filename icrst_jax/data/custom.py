"""A researcher's own data through the same study: a table, arrays, an image folder or a TFDS name.

:func:`load_source` reads ``data.source`` with the reader its form asks for
(:mod:`~icrst_jax.data.tables`, :mod:`~icrst_jax.data.image_folder`, TFDS's
``data_source``) and returns the same :class:`~icrst_jax.data.dataset.Dataset`
a built-in set gives, with :class:`DataFacts`: what the registry says about a
built-in set, inferred from the data (kind, shape, classes and their names,
split, preprocessing, model) and shown in one block at the start of the log.
Preprocessing statistics come from the training split only. The data's content
hash joins the run folder's fingerprint, so an edited file makes a new folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from icrst_jax.data import image_folder, tables
from icrst_jax.data.dataset import Dataset, DatasetError, fit_preprocessing, resize_images, validate_arrays
from icrst_jax.data.download import default_data_dir
from icrst_jax.data.registry import MIN_IMAGE_SIZE, STRIDED_MULTIPLE
from icrst_jax.data.sources import stratified_split, tfds_default_dir

TFDS_PREFIX = "tfds:"
# The conv model for images up to this side, the strided one above (Table D1: MNIST vs CIFAR-10 / Caltech101).
CONV_MAX_SIDE = 32
# Table D1's MLP bottleneck; a table with no more features than this gets a narrower one.
MLP_BOTTLENECK = 8


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What a custom source is, inferred from its data (a built-in set's registry row, for own data).

    Attributes:
      name: from the file or folder name (``wine`` for ``wine.csv``).
      source: the absolute path, or ``tfds:NAME``.
      format: ``csv``, ``tsv``, ``npz``, ``npy``, ``image folder`` or ``tfds``.
      kind: ``tabular`` or ``image``.
      shape: one sample's shape as trained.
      hash: SHA-256 of the content (hex).
      class_names: the names of labels 0..K-1 (string labels, folder names), or empty.
      train_counts, test_counts: samples per class in each split.
      split: ``given`` or ``stratified holdout <f>, seed <s>``.
      preprocessing: the scaling, in words.
      model: the model the data asks for (Table D1's), and its bottleneck when narrowed.
      latent_size: that narrower bottleneck, or None.
      notes: what was converted, resized or skipped.
    """

    name: str
    source: str
    format: str
    kind: str
    shape: tuple[int, ...]
    hash: str
    class_names: tuple[str, ...]
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]
    split: str
    preprocessing: str
    model: str
    latent_size: int | None
    notes: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.name} (sha256 {self.hash[:12]})"

    def lines(self) -> list[str]:
        """The block shown at the start of the log."""
        names = self.class_names or tuple(str(i) for i in range(len(self.train_counts)))
        counts = ", ".join(f"{n} {a}+{b}" for n, a, b in zip(names, self.train_counts, self.test_counts))
        model = self.model + (f", bottleneck {self.latent_size} (below the {self.shape[0]} features, so that it "
                              "stays undercomplete)" if self.latent_size else "")
        return [
            f"data: {self.title} from {self.source} ({self.format})",
            f"   kind {self.kind}, sample shape {self.shape}, {len(self.train_counts)} classes (train+test: {counts})",
            f"   split: {self.split}; preprocessing: {self.preprocessing}; model: {model}",
            *(f"   note: {n}" for n in self.notes),
        ]

    def trained_with(self, model) -> "DataFacts":
        """These facts with the model a study trains (a ``ModelConfig``) in place of the suggested one."""
        narrow = model.latent_size if model.name == "mlp" and model.latent_size is not None else None
        return dataclasses.replace(self, model=model.name, latent_size=narrow)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        return d


def is_custom(source) -> bool:
    return isinstance(source, str) and bool(source.strip())


def _form(source: str) -> tuple[str, Path | None]:
    """The source's format and path, refusing an unknown or absent one in one line."""
    if source.startswith(TFDS_PREFIX):
        if not source[len(TFDS_PREFIX):].strip():
            raise DatasetError("--data tfds:NAME needs a TFDS catalog name, e.g. tfds:mnist or tfds:emnist/letters:3.1.0")
        return "tfds", None
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"--data {source}: no such file or folder")
    if path.is_dir():
        return "image folder", path
    suffix = path.suffix.lower()
    if suffix in tables.TABLE_DELIMITERS or suffix in tables.ARRAY_SUFFIXES:
        return suffix[1:], path
    raise DatasetError(f"--data {source}: unknown kind of file {suffix or '(no suffix)'}; use a .csv/.tsv table, an "
                       ".npz/.npy array file, an image folder (root/<class>/*.png) or tfds:NAME")


def _file_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class _Read:
    """A source as read: raw arrays, label names, and what the log should say."""

    raw: tables.RawArrays
    class_names: tuple[str, ...]
    content_hash: str
    notes: tuple[str, ...] = ()
    pending_cache: Callable[[], None] | None = None
    raw_max: float | None = None


def _read(source: str, fmt: str, path: Path | None, label_column, image_size, cache_dir: Path, say) -> _Read:
    if fmt in ("csv", "tsv"):
        return _Read(tables.read_table(path, label_column), (), _file_hash(path))
    if label_column is not None:
        raise DatasetError(f"--label-column is for tables; {source} is {'an' if fmt[0] in 'ai' else 'a'} {fmt}")
    if fmt == "npz":
        return _Read(tables.read_arrays(path), (), _file_hash(path))
    if fmt == "npy":
        return _Read(tables.read_arrays(path), (), _file_hash(path, tables.labels_beside(path)))
    if fmt == "image folder":
        folder, pending = image_folder.load_folder(path, image_size, cache_dir, say)
        test = folder.is_test
        raw = (tables.RawArrays(folder.x[~test], folder.y[~test], folder.x[test], folder.y[test]) if test.any()
               else tables.RawArrays(folder.x, folder.y))
        save = (lambda: image_folder.save_cache(folder, pending)) if pending is not None else None
        return _Read(raw, folder.classes, folder.content_hash, folder.notes, save, 255.0)
    return _read_tfds(source[len(TFDS_PREFIX):].strip(), cache_dir)


# --------------------------------------------------------------------------
# TFDS catalog names
# --------------------------------------------------------------------------


def _tfds_examples(data_source, name: str) -> tuple[np.ndarray, np.ndarray]:
    examples = [data_source[k] for k in range(len(data_source))]
    if not examples:
        raise DatasetError(f"tfds:{name}: a split is empty")
    feature = next((k for k in ("image", "features", "x") if k in examples[0]), None)
    label = next((k for k in ("label", "target", "y") if k in examples[0]), None)
    if feature is None or label is None:
        raise DatasetError(f"tfds:{name}: examples need an image (or features) and a label; they hold "
                           f"{', '.join(sorted(examples[0]))}")
    return np.stack([np.asarray(ex[feature]) for ex in examples]), np.asarray([ex[label] for ex in examples])


def _tfds_splits(tfds, name: str, data_dir: Path) -> dict:
    """The catalog's train and test splits (its train split alone when it has no test split)."""
    kwargs = dict(data_dir=os.fspath(data_dir), download=False)
    try:
        return dict(zip(("train", "test"), tfds.data_source(name, split=["train", "test"], **kwargs)))
    except (KeyError, ValueError) as first:
        try:
            return {"train": tfds.data_source(name, split="train", **kwargs)}
        except (KeyError, ValueError):
            raise first from None


def _read_tfds(name: str, data_dir: Path) -> _Read:
    """A TFDS catalog name (``NAME[/CONFIG][:VERSION]``) prepared as array_record under ``data_dir``."""
    try:  # an optional dependency at run time: needed only to read TFDS data
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DatasetError(f"tfds:{name} needs tensorflow-datasets: pip install tensorflow-datasets ({e})") from e
    command = f"tfds build {name} --data_dir {data_dir} --file_format array_record"
    try:
        splits = _tfds_splits(tfds, name, data_dir)
    except (KeyError, NotImplementedError, ValueError, OSError, AssertionError) as e:
        detail = " ".join(str(e).split())[:160]
        raise DatasetError(f"tfds:{name}: no prepared TFDS data in {data_dir} ({detail}); prepare it with "
                           f"(needs TensorFlow once): pip install tensorflow && {command}") from e
    if "train" not in splits:
        raise DatasetError(f"tfds:{name}: no train split (it has {', '.join(splits)})")
    x, y = _tfds_examples(splits["train"], name)
    raw = tables.RawArrays(x, y)
    if "test" in splits:
        raw = tables.RawArrays(x, y, *_tfds_examples(splits["test"], name))
    names: tuple[str, ...] = ()
    try:
        names = tuple(splits["train"].dataset_info.features["label"].names)
    except (AttributeError, KeyError, TypeError):
        pass  # no class names in the catalog: the labels' numbers are shown
    info = json.dumps(str(getattr(splits["train"], "dataset_info", name)), sort_keys=True)
    digest = hashlib.sha256(info.encode() + x.tobytes() + np.asarray(y).tobytes()).hexdigest()
    return _Read(raw, names, digest, raw_max=255.0 if x.dtype == np.uint8 else None)


def read_tfds(source: str, data_dir=None) -> _Read:
    """``tfds:NAME`` read as the study reads it (train split, then test split if any), under
    ``data_dir`` or TFDS's default data dir."""
    cache_dir = Path(data_dir).expanduser() if data_dir is not None else tfds_default_dir()
    return _read_tfds(source[len(TFDS_PREFIX):].strip(), cache_dir)


# --------------------------------------------------------------------------
# Labels, split, preprocessing: the same pipeline as a built-in set
# --------------------------------------------------------------------------


def _label_codes(raw: tables.RawArrays, names: tuple[str, ...]):
    """Labels as int32; string labels become 0..K-1 in sorted order, their names kept."""
    ys = [raw.y] + ([raw.y_test] if raw.y_test is not None else [])
    if any(y.dtype.kind in "USO" for y in ys):
        ys = [y.astype(str) for y in ys]
        names = tuple(str(n) for n in np.unique(np.concatenate(ys)))
        ys = [np.searchsorted(np.array(names), y).astype(np.int32) for y in ys]
    else:
        ys = [y.astype(np.int64) for y in ys]
        if any(y.min() < np.iinfo(np.int32).min or y.max() > np.iinfo(np.int32).max for y in ys):
            raise DatasetError("label values do not fit in int32")
        ys = [y.astype(np.int32) for y in ys]
    return ys[0], (ys[1] if len(ys) > 1 else None), names


def _image_size(x: np.ndarray, image_size: int | None, what: str) -> tuple[tuple[int, int], list[str]]:
    """The side to train at: ``image_size``, else the data's, a multiple of 8 for the strided model."""
    h, w = x.shape[1:3]
    if image_size is not None:
        size = (image_size, image_size)
    elif max(h, w) > CONV_MAX_SIDE and (h % STRIDED_MULTIPLE or w % STRIDED_MULTIPLE):
        size = (h - h % STRIDED_MULTIPLE, w - w % STRIDED_MULTIPLE)
        return size, [f"images resized to {size[0]}x{size[1]}, a multiple of {STRIDED_MULTIPLE} for the strided model"]
    else:
        size = (h, w)
    if min(size) < MIN_IMAGE_SIZE:
        raise DatasetError(f"{what}: images of {size[0]}x{size[1]} are too small for the conv models (sides >= "
                           f"{MIN_IMAGE_SIZE}); pass --image-size 16 (data.image_size) to enlarge them")
    if max(size) > CONV_MAX_SIDE and (size[0] % STRIDED_MULTIPLE or size[1] % STRIDED_MULTIPLE):
        raise DatasetError(f"{what}: image_size {image_size} must be a multiple of {STRIDED_MULTIPLE} above "
                           f"{CONV_MAX_SIDE} (the strided model), e.g. 64")
    return size, []


def _preprocess(x_train, x_test, kind: str, raw_max, input_scheme: str):
    """Unit scale from the training split (per column for tables, one range for images), then
    the paper's encoder input; returns the unit-scale splits and the :class:`Preprocessing`."""
    prep, unit_train = fit_preprocessing(kind, x_train, input_scheme, raw_max=raw_max)
    return unit_train, prep.to_unit(x_test), prep


def suggest_model(kind: str, shape: tuple[int, ...], width: float = 1.0) -> tuple[str, int | None]:
    """Table D1's model for samples of ``shape``: the MLP for tables (with a bottleneck below the
    feature count when it has no more than 8 features), the conv model up to 32 px, the strided one above."""
    if kind == "tabular":
        d = shape[0]
        return "mlp", (max(1, d // 2) if d <= max(1, round(MLP_BOTTLENECK * width)) else None)
    return ("conv" if max(shape[:2]) <= CONV_MAX_SIDE else "conv_strided"), None


def _words(kind: str, raw_max, input_scheme: str) -> str:
    if kind == "tabular":
        return ("features scaled to [0, 1] per column by the training split's min and max (autoencoder targets); "
                "encoder input: the same, as the paper's tabular set")
    unit = f"pixels / {raw_max:g}" if raw_max is not None else "values scaled by the training split's range"
    enc = ("standardised per channel by the training split's mean and std" if input_scheme == "standardized"
           else "the [0, 1] values")
    return f"{unit} to [0, 1] (autoencoder targets); encoder input {enc}"


def _assemble(name: str, where: str, fmt: str, read: _Read, image_size, test_fraction, split_seed,
              input_scheme) -> Dataset:
    """Raw arrays -> a validated unit-scale :class:`Dataset` with its :class:`DataFacts`."""
    raw = read.raw
    y, y_test, names = _label_codes(raw, read.class_names)
    x, x_test = raw.x, raw.x_test
    kind = "tabular" if x.ndim == 2 else "image"
    if x.ndim == 3:  # grayscale images without a channel axis
        x, x_test = x[..., None], (None if x_test is None else x_test[..., None])
    validate_arrays(x, y, name)
    if x_test is None:
        x, y, x_test, y_test = stratified_split(x, y, name, float(test_fraction), int(split_seed))
        split = f"stratified holdout {float(test_fraction):g}, seed {int(split_seed)}"
    else:
        split = "given"
        validate_arrays(x_test, y_test, f"{name} test")
    notes = list(read.notes)
    if kind == "image":
        size, more = _image_size(x, image_size, name)
        notes += more
        if x.shape[1:3] != size:
            x, x_test = resize_images(x, size), resize_images(x_test, size)
    elif image_size is not None:
        raise DatasetError(f"{name} is a table: image_size (--image-size) must be none, got {image_size}")
    unit_train, unit_test, prep = _preprocess(x, x_test, kind, read.raw_max, input_scheme)
    classes = np.unique(np.concatenate([y, y_test]))
    model, latent = suggest_model(kind, unit_train.shape[1:])
    facts = DataFacts(name=name, source=where, format=fmt, kind=kind, shape=tuple(unit_train.shape[1:]),
                      hash=read.content_hash, class_names=names, train_counts=tuple(int((y == c).sum()) for c in classes),
                      test_counts=tuple(int((y_test == c).sum()) for c in classes),
                      split=split, preprocessing=_words(kind, read.raw_max, input_scheme), model=model,
                      latent_size=latent, notes=tuple(notes))
    return Dataset(name, unit_train, y, unit_test, y_test, prep, int(classes.size), split, f"{fmt}:{where}", facts=facts)


_LOADED: dict = {}


def load_source(source: str, *, label_column: str | None = None, data_dir=None, image_size: int | None = None,
                test_fraction: float = 0.2, split_seed: int = 0, input_scheme: str = "standardized",
                say: Callable[[str], None] = lambda line: None) -> Dataset:
    """A researcher's own data as a :class:`Dataset` (``dataset.facts`` says what it is).

    Args:
      source: a ``.csv``/``.tsv`` table, an ``.npz``/``.npy`` array file, an image folder
        (``root/<class>/*.png``, or ``root/train/<class>`` and ``root/test/<class>``) or ``tfds:NAME``.
      label_column: a table's label column (default: ``label``, ``target``, ``class`` or ``y``).
      data_dir: where decoded image folders are cached and TFDS data is prepared
        (default ``~/.cache/icrst_jax/data``; TFDS's own default for ``tfds:``).
      image_size, test_fraction, split_seed, input_scheme: as for :func:`~icrst_jax.data.load_dataset`.
      say: progress lines (decoding a large folder).

    Raises:
      DatasetError: one line naming the file and what to do.

    Read once per process for the same arguments (the fingerprint and the study share it).
    """
    key = (source, label_column, str(data_dir), image_size, float(test_fraction), int(split_seed), input_scheme)
    if key in _LOADED:
        return _LOADED[key]
    fmt, path = _form(source)
    if fmt == "tfds":
        cache_dir = Path(data_dir).expanduser() if data_dir is not None else tfds_default_dir()
    else:
        cache_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    where = source if fmt == "tfds" else str(path.resolve())
    name = source[len(TFDS_PREFIX):].strip() if fmt == "tfds" else (path.resolve().name if fmt == "image folder"
                                                                     else path.stem)
    read = _read(source, fmt, path, label_column, image_size, cache_dir, say)
    dataset = _assemble(name, where, fmt, read, image_size, test_fraction, split_seed, input_scheme)
    if read.pending_cache is not None:  # only data that passed every check is cached
        read.pending_cache()
    _LOADED.clear()  # one source per process is the rule; do not hold two large ones
    _LOADED[key] = dataset
    return dataset


def load_for(data, say: Callable[[str], None] = lambda line: None) -> Dataset:
    """:func:`load_source` with the fields of a ``DataConfig`` (``data.source`` and the options beside it)."""
    return load_source(data.source, label_column=data.label_column, data_dir=data.data_dir,
                       image_size=data.image_size, test_fraction=data.test_fraction, split_seed=data.split_seed,
                       input_scheme=data.input_scheme, say=say)
