"""A researcher's table (``.csv``, ``.tsv``) or arrays (``.npz``, ``.npy``), read with numpy.

Tables have a header; the label column is named by ``label_column``, else it is
the column called ``label``, ``target``, ``class`` or ``y``. Every other column
is a numeric feature. Arrays: an ``.npz`` with ``x`` and ``y`` (and optionally
``x_test`` and ``y_test``, a given split), or ``NAME.npy`` features with their
labels beside them in ``NAME_labels.npy``. Each problem is one
:class:`~icrst_jax.data.dataset.DatasetError` line.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from icrst_jax.data.dataset import DatasetError

TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}
ARRAY_SUFFIXES = (".npz", ".npy")
LABEL_NAMES = ("label", "target", "class", "y")
_MISSING = ("", "na", "nan", "null", "none", "?")


@dataclasses.dataclass(frozen=True)
class RawArrays:
    """Features and labels as read, before any split or scaling.

    ``x_test``/``y_test`` are None unless the source gives its own test split.
    Labels are as stored (integers or strings).
    """

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    columns: tuple[str, ...] = ()


def _header(path: Path, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        try:
            row = next(csv.reader(f, delimiter=delimiter))
        except StopIteration:
            raise DatasetError(f"{path}: the file is empty; a table needs a header row and data rows") from None
    return [c.strip() for c in row]


def label_index(path: Path, columns: list[str], label_column: str | None) -> int:
    """Which column holds the labels: the named one, else the first of :data:`LABEL_NAMES`."""
    if label_column is not None:
        if label_column not in columns:
            raise DatasetError(f"{path}: no column {label_column!r} (--label-column); columns: {', '.join(columns)}")
        return columns.index(label_column)
    for name in LABEL_NAMES:
        for i, c in enumerate(columns):
            if c.lower() == name:
                return i
    raise DatasetError(f"{path}: no label column (none is called {', '.join(LABEL_NAMES)}); name it with "
                       f"--label-column (data.label_column); columns: {', '.join(columns)}")


def _diagnose(path: Path, delimiter: str, columns: list[str], features: list[int]) -> DatasetError:
    """The first problem of a table numpy could not read as numbers: a text column or missing values."""
    try:
        cells = np.loadtxt(path, delimiter=delimiter, skiprows=1, dtype=str, quotechar='"', ndmin=2)
    except ValueError as e:  # rows of different lengths
        return DatasetError(f"{path}: {e}".split("; use `usecols`")[0])
    if cells.shape[1] != len(columns):
        return DatasetError(f"{path}: rows have {cells.shape[1]} fields, the header {len(columns)}")
    missing = np.zeros(cells.shape[0], bool)
    for j in features:
        col = np.char.strip(cells[:, j])
        empty = np.isin(np.char.lower(col), _MISSING)
        missing |= empty
        try:
            missing |= ~np.isfinite(np.where(empty, "nan", col).astype(np.float64))
        except ValueError:
            bad = next(v for v in col[~empty] if not _is_number(v))
            return DatasetError(f"{path}: column {columns[j]!r} is text (e.g. {bad!r}); features must be numeric: "
                                "drop or encode it, or name it with --label-column if it is the label")
    if missing.any():
        return DatasetError(f"{path}: {int(missing.sum())} row(s) with missing or infinite values (first: data row "
                            f"{int(np.argmax(missing)) + 1}); fill or drop them")
    return DatasetError(f"{path}: cannot read the table as numbers")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _label_texts(path: Path, delimiter: str, li: int, columns: int, rows: int) -> np.ndarray:
    """The label column as text. Parsing it with ``np.loadtxt`` costs as much again as the
    numbers (every field is parsed); a table without quotes or comments whose rows all have
    the header's field count is split here instead."""
    text = path.read_text(encoding="utf-8")
    if '"' not in text and "#" not in text:
        lines = [line for line in text.splitlines()[1:] if line.strip()]
        if len(lines) == rows and all(line.count(delimiter) == columns - 1 for line in lines):
            if li == columns - 1:  # the usual place: no field but the last is split off
                return np.array([line.rpartition(delimiter)[2] for line in lines], dtype=str)
            return np.array([line.split(delimiter, li + 1)[li] for line in lines], dtype=str)
    return np.loadtxt(path, delimiter=delimiter, skiprows=1, usecols=[li], dtype=str, quotechar='"', ndmin=1)


def read_table(path: Path, label_column: str | None) -> RawArrays:
    """A ``.csv``/``.tsv`` with a header: numeric features and the label column."""
    delimiter = TABLE_DELIMITERS[path.suffix.lower()]
    columns = _header(path, delimiter)
    li = label_index(path, columns, label_column)
    features = [j for j in range(len(columns)) if j != li]
    if not features:
        raise DatasetError(f"{path}: the table has no feature column beside the label {columns[li]!r}")
    try:
        x = np.loadtxt(path, delimiter=delimiter, skiprows=1, usecols=features, dtype=np.float64, quotechar='"',
                       ndmin=2)
        y = _label_texts(path, delimiter, li, len(columns), x.shape[0])
    except ValueError:
        raise _diagnose(path, delimiter, columns, features) from None
    if x.shape[0] == 0:
        raise DatasetError(f"{path}: the table has a header but no data rows")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = bad.any(axis=1)
        raise DatasetError(f"{path}: {int(rows.sum())} row(s) with missing or infinite values (first: data row "
                           f"{int(np.argmax(rows)) + 1}); fill or drop them")
    y = np.char.strip(y)
    if np.isin(np.char.lower(y), _MISSING).any():
        rows = np.isin(np.char.lower(y), _MISSING)
        raise DatasetError(f"{path}: {int(rows.sum())} row(s) without a label in {columns[li]!r} (first: data row "
                           f"{int(np.argmax(rows)) + 1}); fill or drop them")
    return RawArrays(x, _numeric_labels(y), columns=tuple(columns[j] for j in features))


def _numeric_labels(y: np.ndarray) -> np.ndarray:
    """String labels that are all integers become integers; the others stay names."""
    try:
        as_int = y.astype(np.int64)
        return as_int if np.array_equal(as_int.astype(str), y) else y
    except ValueError:
        return y


def _check_array(path: Path, key: str, a: np.ndarray, labels: bool = False) -> np.ndarray:
    if labels:
        if a.ndim != 1:
            raise DatasetError(f"{path}: {key} must be 1-D labels, got shape {a.shape}")
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a) & (a == np.round(a))):
            raise DatasetError(f"{path}: {key} must hold integer or string labels, got non-integer floats")
        return a
    if a.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {key} must be numeric, got dtype {a.dtype}")
    if a.ndim not in (2, 3, 4):
        raise DatasetError(f"{path}: {key} must be (N, features) or images (N, H, W[, C]), got shape {a.shape}")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
        if bad.any():
            raise DatasetError(f"{path}: {key} has {int(bad.sum())} sample(s) with missing or infinite values "
                               f"(first: sample {int(np.argmax(bad))}); fill or drop them")
    return a


def labels_beside(path: Path) -> Path:
    """Where the labels of ``NAME.npy`` features are: ``NAME_labels.npy``."""
    return path.with_name(path.stem + "_labels.npy")


def read_arrays(path: Path) -> RawArrays:
    """An ``.npz`` (``x``, ``y``, optional ``x_test``, ``y_test``) or a ``.npy`` with ``NAME_labels.npy``."""
    try:
        if path.suffix.lower() == ".npy":
            beside = labels_beside(path)
            if not beside.is_file():
                raise DatasetError(f"{path}: its labels are missing; save them beside it as {beside.name}")
            arrays = {"x": np.load(path, allow_pickle=False), "y": np.load(beside, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise DatasetError(f"{path}: cannot read it as numpy arrays ({type(e).__name__}: {e})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: no {' or '.join(missing)} array (it holds {', '.join(sorted(arrays)) or 'none'}); "
                           "an .npz needs x (features or images) and y (labels), optionally x_test and y_test")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: x_test and y_test go together; it holds only one of them")
    out = {k: _check_array(path, k, arrays[k], labels=k.startswith("y")) for k in ("x", "y", "x_test", "y_test")
           if k in arrays}
    for xk, yk in (("x", "y"), ("x_test", "y_test")):
        if xk in out and out[xk].shape[0] != out[yk].shape[0]:
            raise DatasetError(f"{path}: {out[xk].shape[0]} samples in {xk} but {out[yk].shape[0]} labels in {yk}")
    if "x_test" in out and out["x_test"].shape[1:] != out["x"].shape[1:]:
        raise DatasetError(f"{path}: x_test samples {out['x_test'].shape[1:]} differ from x's {out['x'].shape[1:]}")
    return RawArrays(out["x"], out["y"], out.get("x_test"), out.get("y_test"))
