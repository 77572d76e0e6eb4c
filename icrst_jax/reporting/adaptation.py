"""report.md of an adaptation study, written from its results.json payload.

The study (:mod:`icrst_jax.adaptation`) writes its ``results.json`` and then
this report from the same payload; :func:`render_adaptation` is pure (that
payload in, markdown out), so the study and the docs' quoted tables
(:mod:`icrst_jax.reporting.quoted`) write the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from icrst_jax.config import CROSS_ICRST
from icrst_jax.reporting.markdown import markdown_table

#: The sections of the report, in order (the quoted tables name them).
TRANSFER_SECTION = "Transfer to the target domain"
LAST_REFRESH_SECTION = "Pseudo-labels at the last refresh (cross_icrst)"
REFRESHES_SECTION = "Pseudo-label refreshes (cross_icrst)"


def _cell(s: Mapping) -> str:
    return f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"


def _label(mode: str, p) -> str:
    return mode + (f" p={p:g}" if mode in ("icrst", CROSS_ICRST) else "")


def adaptation_table(payload: Mapping) -> str:
    """The results as markdown: one row per mode (mean [interval of the mean] over seeds)."""
    a = payload["adaptation"]
    cls = payload["classifiers"]
    header = ["mode"] + [f"{a['source']}->{a['target']} {c}" for c in cls] + [f"target-only {c}" for c in cls] + [
        "domain acc (0.5 = invariant)", "target kNN purity"]
    rows = []
    for row in payload["rows"]:
        pooled = row["pooled"]
        cells = [_cell(pooled[f"transfer/{c}"]) for c in cls] + [_cell(pooled[f"target_only/{c}"]) for c in cls]
        cells += [_cell(pooled["domain_accuracy"]), _cell(pooled["target_purity"])]
        rows.append([_label(row["mode"], row["p"])] + cells)
    return "\n".join(markdown_table(header, rows))


def _spread(values) -> str:
    """``mean [min, max]`` of the seeds' values; ``-`` when there are none."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    return f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]" if v.size else "-"


def last_refresh_rows(payload: Mapping) -> list[list[str]]:
    """Per cross_icrst mode and p: its seeds, the epoch of the last refresh, and over the seeds the
    share of the target domain paired and the accuracy of the paired pseudo-labels (mean [min, max])."""
    groups: dict[tuple, list] = {}
    for rec in payload["records"]:
        if rec.get("refreshes"):
            groups.setdefault((rec["mode"], rec["p"]), []).append(rec)
    rows = []
    for (mode, p), recs in groups.items():
        last = [rec["refreshes"][-1] for rec in recs]
        rows.append([_label(mode, p), ", ".join(str(rec["seed"]) for rec in recs),
                     ", ".join(sorted({str(f["epoch"]) for f in last})),
                     _spread(f["paired_share"] for f in last), _spread(f["pseudo_label_accuracy"] for f in last)])
    return rows


def render_adaptation(payload: Mapping) -> str:
    """The markdown of an adaptation study's ``report.md`` from its results.json payload."""
    a = payload["adaptation"]
    seeds = payload["config"]["seeds"]
    out = [f"# Unsupervised domain adaptation: {a['source']} -> {a['target']}", "",
           f"Images {a['image_size']}, seeds {seeds}; mean [low, high] over seeds, with the 95% bootstrap "
           "interval of the mean. "
           "Transfer: classifier fitted on all source latents, scored on the target's test latents. "
           "Target-only: cross-validated on the target's test latents (a reference, uses target labels). "
           "Domain acc: cross-validated source-vs-target accuracy on balanced latents (chance 0.5).", "",
           f"## {TRANSFER_SECTION}", "", adaptation_table(payload), ""]
    last = last_refresh_rows(payload)
    if last:
        out += [f"## {LAST_REFRESH_SECTION}", "",
                "Over the seeds, mean [min, max]: the share of the target domain's training samples paired, "
                "and the accuracy of their pseudo-labels (scored after training; the labels never reached it).", ""]
        out += markdown_table(["mode", "seeds", "epoch", "share paired", "accuracy of the paired pseudo-labels"],
                              last)
        out += [""]
    refreshes = [
        [f"{_label(rec['mode'], rec['p'])} seed {rec['seed']}", str(f["epoch"]), f"{f['threshold']:g}",
         f"{f['paired_share']:.3f}", "-" if f["pseudo_label_accuracy"] is None else f"{f['pseudo_label_accuracy']:.3f}"]
        for rec in payload["records"] for f in rec.get("refreshes", [])
    ]
    out += [f"## {REFRESHES_SECTION}", ""]
    out += markdown_table(["run", "epoch", "threshold", "share paired", "accuracy of the paired pseudo-labels"],
                          refreshes)
    out += ["", f"The epoch compiled {payload['compile_count']} time(s); training took {payload['train_seconds']:.0f}s."]
    return "\n".join(out) + "\n"
