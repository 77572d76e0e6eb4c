"""Changing a config by dotted paths: ``--set key=value``, parsed by the field's type.

:func:`config_paths` lists every settable path of a config and its type;
:func:`apply_overrides` parses ``key=value`` strings against it (with a
did-you-mean for unknown keys) and rebuilds the config once, so its checks see
the final values.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Sequence

from icrst_jax.config.schema import GRID_DECIDED


def config_paths(cfg) -> dict[str, type]:
    """Every settable dotted path of a config dataclass and its field type.

    Example:
      >>> config_paths(StudyConfig())["train.model.width"]
      float
    """
    out: dict[str, Any] = {}

    def walk(obj, prefix):
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            path = prefix + f.name
            if dataclasses.is_dataclass(value):
                walk(value, path + ".")
            elif path not in GRID_DECIDED:
                out[path] = hints[f.name]

    walk(cfg, "")
    return out


def _parse_value(text: str, typ, path: str):
    """Parses ``text`` as a value of the field type ``typ`` (from the annotation)."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.strip().lower() in ("none", "null") and len(args) < len(typing.get_args(typ)):
            return None
        if len(args) == 1:
            return _parse_value(text, args[0], path)
    if origin is tuple:
        (item, _) = typing.get_args(typ)
        return tuple(_parse_value(v, item, path) for v in text.split(",") if v.strip())
    if typ is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{path} takes true or false, got {text!r}")
    if typing.get_origin(typ) is Literal:
        return text.strip()  # the field's own check names the known values
    if typ in (int, float, str):
        try:
            return typ(text.strip())
        except ValueError:
            raise ValueError(f"{path} takes {'an integer' if typ is int else 'a number'}, got {text!r}") from None
    raise ValueError(f"{path} has a type ({typ}) that --set cannot parse")


def _with_changes(cfg, changes: dict):
    """``cfg`` rebuilt with ``changes`` (``{field: value or nested dict}``), each dataclass constructed once."""
    kwargs = {}
    for name, value in changes.items():
        kwargs[name] = _with_changes(getattr(cfg, name), value) if isinstance(value, dict) else value
    return dataclasses.replace(cfg, **kwargs)


def _near_keys(key: str, paths) -> list[str]:
    """Up to three known paths that ``key`` was probably meant to be.

    Matched on the last component first (``lr`` -> ``learning_rate`` by its
    initials, ``epoch`` -> ``epochs`` as a prefix, a bare ``epochs`` ->
    ``train.epochs``), candidates in the key's own section before the others;
    else the closest whole paths.
    """
    section, _, last = key.rpartition(".")
    lasts = {p: p.rpartition(".")[2] for p in paths}
    initials = {p: "".join(w[0] for w in name.split("_") if w) for p, name in lasts.items()}
    close = set(difflib.get_close_matches(last, set(lasts.values()), n=5, cutoff=0.75))
    hits = [p for p in paths if lasts[p] == last or initials[p] == last
            or (len(last) >= 3 and lasts[p].startswith(last)) or lasts[p] in close]
    hits.sort(key=lambda p: p.rpartition(".")[0] != section)  # stable: field order within each group
    return (hits or difflib.get_close_matches(key, list(paths), n=3, cutoff=0.6))[:3]


def did_you_mean(key: str, paths) -> str:
    """``"; did you mean train.epochs?"`` for an unknown ``key`` (else the known keys), for an error line."""
    near = _near_keys(key, paths)
    return f"; did you mean {' or '.join(near)}?" if near else f"; known keys: {', '.join(paths)}"


def _parse_assignment(assignment: str, paths: dict) -> tuple[str, Any]:
    """``key=value`` -> ``(key, typed value)``, or a one-line ``ValueError``."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set takes key=value, got {assignment!r}")
    if key in GRID_DECIDED:
        raise ValueError(f"{key} is decided by the study's grid; set {GRID_DECIDED[key]} instead")
    if key not in paths:
        raise ValueError(f"unknown config key {key!r}{did_you_mean(key, paths)}")
    return key, _parse_value(text, paths[key], key)


def apply_overrides(cfg, assignments: Sequence[str], *, labels: Sequence[str] | None = None):
    """``cfg`` with every ``key=value`` applied at once; the key is a dotted field path.

    Values are parsed by the field's declared type (tuples: comma-separated;
    ``none`` for an optional field); a later assignment of a key wins. The
    changes are merged into one nested set and each config constructed once,
    so its checks (``__post_init__``, across sections too) see the final
    values, never a half-changed config.

    Args:
      cfg: the base config (a config file's, or the defaults).
      assignments: ``key=value`` strings, in order.
      labels: what to call each assignment in an error (the command line's
        flag); an error then starts with the label of the assignment that
        caused it.

    Raises:
      ValueError: one line: an unknown key (with the near matches), a value
        of the wrong type, or a config its checks refuse.

    Example:
      >>> apply_overrides(StudyConfig(), ["train.epochs=20", "eval.at_epochs=0,10"]).train.epochs
      20
    """
    labels = list(labels) if labels is not None else [None] * len(assignments)

    def labelled(i, message):
        return message if labels[i] is None else f"{labels[i]}: {message}"

    paths = config_paths(cfg)
    parsed = []
    for i, assignment in enumerate(assignments):
        try:
            parsed.append(_parse_assignment(assignment, paths))
        except ValueError as e:
            raise ValueError(labelled(i, str(e))) from None

    def build(upto):
        changes: dict = {}
        for key, value in parsed[:upto]:
            *parents, name = key.split(".")
            node = changes
            for part in parents:
                node = node.setdefault(part, {})
            node[name] = value
        return _with_changes(cfg, changes)

    try:
        return build(len(parsed))
    except ValueError as e:
        # Name the assignment that made the config invalid: the first after which it fails the same way.
        for i in range(len(parsed)):
            try:
                build(i + 1)
            except ValueError as partial:
                if str(partial) == str(e):
                    raise ValueError(labelled(i, str(e))) from None
        raise ValueError(str(e)) from None


def apply_override(cfg, assignment: str):
    """``cfg`` with one ``key=value`` applied (:func:`apply_overrides`).

    Example:
      >>> apply_override(StudyConfig(), "train.epochs=20").train.epochs
      20
    """
    return apply_overrides(cfg, [assignment])
