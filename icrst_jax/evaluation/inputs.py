"""The checks every entry point of the evaluation applies to its features and labels."""

from __future__ import annotations

import numpy as np


def features_and_labels(features, labels=None, dtype=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``features`` as an ``(N, D)`` array and ``labels`` as ``(N,)``, or a one-line error.

    Args:
      features: array-like of shape ``(N, D)``.
      labels: optional array-like of shape ``(N,)``.
      dtype: optional dtype of the features (``np.asarray``'s).

    Returns:
      ``(x (N, D), y (N,) or None)``; arrays given as such are not copied.
    """
    x = np.asarray(features, dtype=dtype)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    if labels is None:
        return x, None
    y = np.asarray(labels)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must be ({x.shape[0]},), got shape {y.shape}")
    return x, y
