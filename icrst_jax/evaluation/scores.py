"""One cross-validation fold's outcome: its scores (:func:`fold_scores`) and what its fit reported.

Section 6 of the paper reports accuracy, and for Caltech101 the macro F1 (the
unweighted mean of per-class F1); both come from the fold's class counts.
Every backend's fit of one (feature set, classifier, fold) gives a
:class:`FoldOutcome`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

METRICS: tuple[str, ...] = ("accuracy", "f1_macro")


class FoldOutcome(NamedTuple):
    """One fit of one fold.

    ``scores``: :func:`fold_scores` of its test rows; ``seconds``: its wall
    time (a JAX program's share of its call); ``convergence_warnings``: 1 if
    the fit stopped at its iteration limit (scikit-learn's
    ``ConvergenceWarning``), else 0; ``other_warnings``: ``(category,
    message)`` of any other warning the fit raised.
    """

    scores: dict[str, float]
    seconds: float
    convergence_warnings: int
    other_warnings: list


def fold_scores(y_test, pred) -> dict[str, float]:
    """``accuracy_score`` and ``f1_score(average="macro", zero_division=0)`` of one fold.

    Computed from the per-class counts as scikit-learn computes them (the labels
    are those present in ``y_test`` or ``pred``; per class ``F1 = 2 TP / (2 TP +
    FP + FN)``), without its input validation: 4 ms a call, which a study pays
    once per fit (thousands) and which outweighed the compiled fits themselves.
    ``tests/test_evaluation.py`` checks equality with scikit-learn.

    Args:
      y_test: ``(m,)`` true labels of the fold's test rows.
      pred: ``(m,)`` predicted labels.

    Returns:
      ``{"accuracy": float, "f1_macro": float}`` (the keys of :data:`METRICS`).
    """
    y_test, pred = np.asarray(y_test), np.asarray(pred)
    labels, inverse = np.unique(np.concatenate([y_test, pred]), return_inverse=True)
    t, p = inverse[: len(y_test)], inverse[len(y_test):]
    k = len(labels)
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    fp = np.bincount(p, minlength=k) - tp
    fn = np.bincount(t, minlength=k) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return {"accuracy": float(np.mean(t == p)), "f1_macro": float(f1.mean())}
