"""The one conversion of results, checkpoint metadata and fingerprints to plain JSON."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

import numpy as np


def to_jsonable(obj):
    """Convert numpy arrays/scalars, tuples, paths and dataclasses to plain JSON types.

    Non-finite floats become ``None`` so that the file is strict JSON that any
    parser reads. Mapping keys become strings.

    Example:
      >>> to_jsonable({"a": np.arange(2), 1: np.float32(0.5), "b": float("nan")})
      {'a': [0, 1], '1': 0.5, 'b': None}
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")
