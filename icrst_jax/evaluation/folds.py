"""Feature sets checked and split into stratified folds, and the fits a cross-validation makes of them.

Section 6 of the paper: "10-cross-fold-validation". A feature set
``(features, labels, seed, scaling)`` becomes a :class:`FeatureSet`: its arrays
checked, its folds ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)``
(the same for every classifier), its scaling ``"none"`` (as given) or
``"standardised"`` (with each training fold's statistics). One
:class:`Fit` is one classifier on one fold of one set.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import StratifiedKFold

from icrst_jax.config import SCALINGS, canonical_scaling  # declared once, with the study config
from icrst_jax.evaluation.inputs import features_and_labels


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureSet:
    """One feature set of a cross-validation, checked and split.

    Attributes:
      x: ``(N, D)`` finite features (the caller's array where it was one).
      y: ``(N,)`` labels.
      seed: seed of the fold shuffle and of the classifiers' ``random_state``.
      scaling: ``"none"`` or ``"standardised"`` (with each training fold's statistics; ``"standard"`` is its earlier name).
      n_folds: the folds used (the requested number, capped at the smallest class).
      splits: ``n_folds`` pairs ``(train rows, test rows)`` of ``StratifiedKFold``.
      source: ``id`` of the caller's features object: the scalings of one set share it.
    """

    x: np.ndarray
    y: np.ndarray
    seed: int
    scaling: str
    n_folds: int
    splits: list[tuple[np.ndarray, np.ndarray]]
    source: int

    @property
    def n_train(self) -> int:
        """Training rows of the first fold."""
        return len(self.splits[0][0])


class Fit(NamedTuple):
    """One classifier on one fold of one feature set (indices into a call's sets and folds)."""

    feature_set: int
    classifier: str
    fold: int


def unpack(entry: tuple) -> tuple:
    """``(features, labels, seed, scaling)`` of a ``(features, labels, seed[, scaling])`` entry (default ``"none"``)."""
    return entry if len(entry) == 4 else (*entry, "none")


def prepare(entry: tuple, n_folds: int, progress) -> FeatureSet:
    """The :class:`FeatureSet` of a ``(features, labels, seed[, scaling])`` entry, or a one-line error.

    ``n_folds`` above the smallest class count is capped there, with a
    ``RuntimeWarning`` and a line through ``progress`` (:func:`check_folds`).
    """
    features, labels, seed, scaling = unpack(entry)
    scaling = canonical_scaling(scaling)
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; known: {', '.join(SCALINGS)}")
    x, y = features_and_labels(features, labels)
    if not np.isfinite(x).all():
        # A diverged autoencoder gives NaN latents; say so instead of letting
        # each classifier fail with its own message.
        raise ValueError("features contain NaN or inf")
    folds_used = check_folds(y, n_folds, progress, stacklevel=4)  # at evaluate_many
    splits = list(StratifiedKFold(folds_used, shuffle=True, random_state=seed).split(x, y))
    return FeatureSet(x, y, seed, scaling, folds_used, splits, id(features))


def check_folds(labels: np.ndarray, n_folds: int, progress, stacklevel: int = 3) -> int:
    """Number of folds to use: ``n_folds`` capped at the smallest class count.

    Args:
      labels: ``(N,)`` class labels.
      n_folds: the requested folds (>= 2).
      progress: optional callable receiving a line when the folds are capped.
      stacklevel: of the ``RuntimeWarning`` issued when they are.

    Returns:
      The folds to use.

    Raises:
      ValueError: ``n_folds < 2``, fewer than 2 classes, or a class of one member.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"need at least 2 classes to classify, got {classes.size}")
    smallest = int(counts.min())
    if smallest < 2:
        rare = classes[counts < 2].tolist()
        raise ValueError(
            f"classes {rare} have a single member; stratified cross-validation needs "
            "at least 2 per class (drop those classes or add data)"
        )
    if n_folds > smallest:
        msg = (
            f"n_folds={n_folds} is larger than the smallest class "
            f"(class {classes[counts.argmin()]!r}, {smallest} members); using {smallest} folds"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)
        if progress is not None:
            progress("warning: " + msg)
        return smallest
    return n_folds
