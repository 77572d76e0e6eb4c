"""The config's home-made runtime type checks: every field holds a value of its declared type.

A config file writes plain Python (lists, integers, paths); :func:`check_types`
normalises those to the field's type (tuple, float, str) or raises a one-line
``ValueError`` naming the field by its dotted path. The small range checks the
config sections share sit beside it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Literal

# Seeds feed ``jax.random.key`` and numpy generators, which take unsigned 32-bit values.
MAX_SEED = 2**32 - 1


def _type_name(typ) -> str:
    """How a field type reads in a message: ``an integer``, ``a tuple of numbers``, ``one of a, b``."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        return "one of " + ", ".join(typing.get_args(typ))
    if origin is tuple:
        item = typing.get_args(typ)[0]
        if typing.get_origin(item) is Literal:
            return "a tuple of names among " + ", ".join(typing.get_args(item))
        return f"a tuple of {_type_name(item).split(' ', 1)[1]}s"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(typ)).replace("NoneType", "None")
    return {int: "an integer", float: "a number", str: "a string", bool: "a bool (True or False)",
            type(None): "None"}.get(typ, str(typ))


def _conform(value, typ):
    """``value`` as the field type ``typ`` wants it, or ``_WRONG``.

    A list becomes a tuple, an integer a float and a Path a string where the
    field says so (what a config file naturally writes); a bool is not a number, a string
    not a number, a number not a string.
    """
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(typ):
            got = _conform(value, arg)
            if got is not _WRONG:
                return got
        return _WRONG
    if origin is Literal:  # the field's own check names the unknown value and the known ones
        return value if isinstance(value, str) else _WRONG
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return _WRONG
        items = [_conform(v, typing.get_args(typ)[0]) for v in value]
        return _WRONG if any(v is _WRONG for v in items) else tuple(items)
    if typ is type(None):
        return value if value is None else _WRONG
    if typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _WRONG
    if typ is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if typ is str and isinstance(value, os.PathLike):  # a folder field given as a Path
        return os.fspath(value)
    if typ in (str, bool):
        return value if isinstance(value, typ) else _WRONG
    return value  # a nested config: checked by its own __post_init__


_WRONG = object()


def check_types(cfg) -> None:
    """Every field of a config dataclass holds a value of its declared type: a one-line
    ``ValueError`` naming the field (by its dotted path), the type and the value otherwise.
    Lists become tuples and integers floats where the field says so."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        got = _conform(value, hints[f.name])
        if got is _WRONG:
            raise ValueError(f"{cfg._PATH}{f.name} must be {_type_name(hints[f.name])}, got {value!r} "
                            f"({type(value).__name__})")
        if got is not value:
            object.__setattr__(cfg, f.name, got)  # frozen: the one place a field is normalised


def check_finite(name: str, value) -> None:
    """NaN fails every comparison, but inf passes ``> 0``: reject both by name."""
    if isinstance(value, (int, float)) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")


def check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_seed(name: str, value) -> None:
    if isinstance(value, bool) or int(value) != value or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in 0..{MAX_SEED}, got {value!r}")

