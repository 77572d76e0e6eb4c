"""How the figures and the report read a record (the JSON form of
:class:`icrst_jax.reporting.records.Record`): its label, order, scalings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from icrst_jax.reporting.labels import MODE_LABELS, MODE_ORDER


def p_of(rec: Mapping) -> float:
    """A record's p; a missing or null p means pure ICRST/TRST (p = 1)."""
    p = rec.get("p")
    return 1.0 if p is None else float(p)


def row_label(rec: Mapping) -> str:
    label = plain_row_label(rec)
    return f"{label} — DIVERGED" if rec.get("diverged") else label


def plain_row_label(rec: Mapping) -> str:
    if rec.get("label"):
        return str(rec["label"])
    mode = rec.get("mode", "?")
    if mode == "untrained":
        return "Untrained encoder (epoch 0)"
    name = MODE_LABELS.get(mode, str(mode))
    if mode in ("icrst", "trst") and rec.get("p") is not None:
        return f"{name} (p={float(rec['p']):g})"
    if mode == "dae" and rec.get("dae_sigma") is not None:
        return f"{name} (σ={float(rec['dae_sigma']):g})"
    return name


def sort_key(rec: Mapping):
    mode = rec.get("mode")
    rank = MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)
    return (rank, float(rec.get("p") or 0.0))


def scaled_classifiers(rec: Mapping, scaling: str) -> Mapping | None:
    """A record's (or trajectory entry's) classifier results for one feature scaling, or None."""
    if rec.get("scaling", "none") == scaling:
        return rec.get("classifiers")
    return (rec.get("other_scalings") or {}).get(scaling)


def record_scalings(records: Sequence[Mapping]) -> list[str]:
    """The feature scalings the records hold, main one first."""
    out: list[str] = []
    for r in records:
        for sc in [r.get("scaling", "none"), *(r.get("other_scalings") or {})]:
            if sc not in out:
                out.append(sc)
    return out
