"""report.md's "What this shows": a short paragraph written from the numbers themselves.

It states, for the main table (primary metric, main feature scaling): the best
trained mode per classifier and whether its interval overlaps the next one's,
whether the untrained encoder beats every trained mode, how far the MLP column
is from the paper's Tables 1 and 3, and which of the study's settings differ
from the paper's section 6. Nothing here is chosen by hand: the same records
always give the same sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from icrst_jax.config.paper import PAPER_BATCH_SIZE, PAPER_MODES, PAPER_P_VALUES
from icrst_jax.reporting.labels import CLASSIFIER_LABELS, METRIC_LABELS
from icrst_jax.reporting.paper import PAPER_DATASETS, paper_values, primary_metric
from icrst_jax.reporting.rows import p_of, plain_row_label

# Section 6's training: Adam at 1e-3 for 50 epochs.
PAPER_EPOCHS = 50
PAPER_LEARNING_RATE = 1e-3


def what_this_shows(study, clf_records: Sequence[Mapping]) -> list[str]:
    """The section's markdown lines (empty when there is no classification table)."""
    trained = [r for r in clf_records if r.get("mode") != "untrained" and not r.get("diverged")]
    if not trained:
        return []
    metric = study.metric or primary_metric(study.dataset)
    untrained = next((r for r in clf_records if r.get("mode") == "untrained"), None)
    names = [n for n in trained[0]["classifiers"] if all(n in r["classifiers"] for r in trained)]
    sentences = [_best(n, metric, trained, untrained) for n in names]
    sentences += _paper_gap(study.dataset, metric, trained)
    sentences += _settings(study)
    return ["## What this shows", "", " ".join(s for s in sentences if s), ""]


def _score(rec: Mapping, name: str, metric: str) -> Mapping:
    return rec["classifiers"][name][metric]


def _overlap(a: Mapping, b: Mapping) -> bool:
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def _best(name: str, metric: str, trained: Sequence[Mapping], untrained: Mapping | None) -> str:
    """One sentence per classifier: the best trained row, its margin, and the untrained encoder."""
    ranked = sorted(trained, key=lambda r: -_score(r, name, metric)["mean"])
    best = _score(ranked[0], name, metric)
    clf = CLASSIFIER_LABELS.get(name, name)
    text = f"{clf}: best {plain_row_label(ranked[0])} {best['mean']:.3f}"
    if len(ranked) > 1:
        second = _score(ranked[1], name, metric)
        text += (f", its interval overlaps that of {plain_row_label(ranked[1])} ({second['mean']:.3f}), so the "
                 "ranking is not established" if _overlap(best, second) else
                 f", its interval clear of the next ({plain_row_label(ranked[1])} {second['mean']:.3f})")
    if untrained is not None and name in untrained["classifiers"]:
        u = _score(untrained, name, metric)
        if u["mean"] > best["mean"]:
            text += f"; the untrained encoder is higher still ({u['mean']:.3f}"
            text += ", intervals overlapping)" if _overlap(u, best) else ", intervals apart)"
        else:
            text += f"; the untrained encoder gives {u['mean']:.3f}"
    return text + "."


def _paper_gap(dataset: str, metric: str, trained: Sequence[Mapping]) -> list[str]:
    """How far the MLP column is from the paper's Tables 1 and 3 (their ICRST/TRST rows are p = 1)."""
    if dataset not in PAPER_DATASETS or metric != primary_metric(dataset):
        return []
    gaps = []
    for rec in trained:
        mode = rec.get("mode")
        if mode not in PAPER_MODES or (mode != "standard" and p_of(rec) != 1.0) or "mlp" not in rec["classifiers"]:
            continue
        ours = _score(rec, "mlp", metric)["mean"]
        for table, value, _ in paper_values(dataset, mode, "mlp"):
            gaps.append(f"{plain_row_label(rec)} {ours - value:+.3f} (T{table[-1]} {value:.2f})")
    if not gaps:
        return []
    return [f"MLP {METRIC_LABELS[metric]} minus the paper's: " + ", ".join(gaps) + "."]


def _settings(study) -> list[str]:
    """The study's settings that differ from the paper's section 6 (empty without a config)."""
    cfg = study.config or {}
    train = cfg.get("train") or {}
    if not train:
        return []
    model = (train.get("model") or {}).get("name")
    diffs = []
    paper_batch = PAPER_BATCH_SIZE.get(model)
    if study.batch_size and paper_batch and study.batch_size != paper_batch:
        diffs.append(f"batch {study.batch_size} (paper {paper_batch})")
    if train.get("epochs") not in (None, PAPER_EPOCHS):
        diffs.append(f"{train['epochs']} epochs (paper {PAPER_EPOCHS})")
    if train.get("learning_rate") not in (None, PAPER_LEARNING_RATE):
        diffs.append(f"learning rate {train['learning_rate']:g} (paper {PAPER_LEARNING_RATE:g})")
    p_values = tuple(float(p) for p in cfg.get("p_values") or ())
    if p_values and p_values != PAPER_P_VALUES:
        diffs.append(f"p in {', '.join(f'{p:g}' for p in p_values)} (paper 0, 0.2, ..., 1)")
    seeds = cfg.get("seeds") or ()
    if len(seeds) > 1:
        diffs.append(f"{len(seeds)} seeds pooled (the paper states none)")
    if not diffs:
        return ["Settings: the paper's section 6."]
    return ["Settings that differ from the paper's: " + "; ".join(diffs) + "."]
