"""The data set record and the paper's preprocessing (section 6).

Every loader returns a :class:`Dataset` whose arrays are ``float32`` in *unit
scale* (``[0, 1]``), plus the :class:`Preprocessing` that produced them and that
turns unit-scale data into the encoder's input. The paper: "All the image
datasets are first normalized in the range [0, 1] and then standardized per
channel. The non-image dataset is just normalized." Statistics always come from
the training split only, and both splits go through the same pipeline
(:func:`assemble`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np

from icrst_jax.data.registry import DATASET_SPECS, INPUT_SCHEMES, KINDS, MIN_IMAGE_SIZE, STRIDED_MULTIPLE


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
      facts: for a researcher's own data, what :mod:`icrst_jax.data.custom` inferred
        (its ``DataFacts``: kind, classes and names, hash, split); None for a built-in set.
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
    facts: Any = None

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
        rows = np.einsum("oh,nhwc->nowc", wh, block, optimize=True)
        out[start : start + chunk] = np.einsum("pw,nowc->nopc", ww, rows, optimize=True)
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


def check_image_size(name: str, image_size) -> tuple[int, int] | None:
    """Validated ``(H, W)`` for ``name`` (None: keep the native size)."""
    spec = DATASET_SPECS[name]
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
# Statistics and assembly
# --------------------------------------------------------------------------


def channel_stats(unit: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
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


def fit_preprocessing(kind: str, x_train, input_scheme: str, *, raw_max: float | None = None
                      ) -> tuple[Preprocessing, np.ndarray]:
    """The paper's preprocessing fitted on the training split, and that split at unit scale.

    Tables: each column's [min, max] to [0, 1] (a constant column maps to 0). Images:
    [0, ``raw_max``] (or, unknown, the split's own range) to [0, 1] for every channel,
    then the per-channel mean and std of the unit-scale images for the encoder input.
    """
    if kind == "tabular":
        lo, hi = x_train.min(axis=0), x_train.max(axis=0)
        span = hi - lo
        # A constant feature maps to 0 rather than dividing by zero.
        scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 1.0)
        d = x_train.shape[1]
        prep = Preprocessing("tabular", lo, scale, np.zeros(d), np.ones(d), input_scheme)
        return prep, prep.to_unit(x_train)
    ones = np.ones(x_train.shape[-1], np.float32)
    lo = 0.0 if raw_max is not None else float(x_train.min())
    span = (raw_max if raw_max is not None else float(x_train.max())) - lo
    prep = Preprocessing("image", lo * ones, ones / np.float32(span if span > 0 else 1.0), 0 * ones, ones,
                         input_scheme)
    unit_train = prep.to_unit(x_train)
    mean, std = channel_stats(unit_train)
    return dataclasses.replace(prep, mean=mean, std=std), unit_train


def assemble(
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
    spec = DATASET_SPECS[name]
    validate_arrays(x_train, y_train, f"{name} train ({source})")
    validate_arrays(x_test, y_test, f"{name} test ({source})")
    y_train = _int32_labels(y_train, name)
    y_test = _int32_labels(y_test, name)
    if spec.kind == "tabular":
        x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    else:
        if x_train.ndim != 4 or x_test.ndim != 4:
            raise DatasetError(f"{name}: images must be (N, H, W, C), got {x_train.shape} and {x_test.shape}")
        # Resize only when needed: a no-op resize would still copy the data set.
        if size is not None and x_train.shape[1:3] != size:
            x_train = resize_images(x_train, size)
        if size is not None and x_test.shape[1:3] != size:
            x_test = resize_images(x_test, size)
    prep, unit_train = fit_preprocessing(spec.kind, x_train, input_scheme, raw_max=spec.raw_max)
    unit_test = prep.to_unit(x_test)
    num_classes = int(np.unique(np.concatenate([y_train, y_test])).size)
    return Dataset(name, unit_train, y_train, unit_test, y_test, prep, num_classes, split, source)


def _int32_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (y.min() < np.iinfo(np.int32).min or y.max() > np.iinfo(np.int32).max):
        raise DatasetError(f"{name}: label values do not fit in int32")
    return y.astype(np.int32)
