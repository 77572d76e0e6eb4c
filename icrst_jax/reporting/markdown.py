"""report.md: classification and MI tables laid out like the paper's Tables 1-3.

:func:`render_report` is pure (a :class:`StudyResult` in, markdown out) and
reads like the report it makes: one function per section, in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

import numpy as np

from icrst_jax.evaluation import CLASSIFIERS
from icrst_jax.reporting.console import headline_classifier
from icrst_jax.reporting.findings import what_this_shows
from icrst_jax.reporting.labels import CLASSIFIER_LABELS, METRIC_LABELS, SCALING_LABELS, SCALING_SHORT
from icrst_jax.reporting.paper import DATASET_LABELS, PAPER_DATASETS, PAPER_RESULTS, paper_values, primary_metric
from icrst_jax.reporting.records import StudyResult
from icrst_jax.reporting.rows import p_of, record_scalings, row_label, scaled_classifiers, sort_key


def render_report(study: StudyResult, *, title: str | None = None) -> str:
    """The markdown of ``report.md`` (the caller writes it).

    Rows are training configurations (Standard, ICRST/TRST with p, DAE), sorted
    by mode then p. Cells are ``mean [low, high]`` where ``[low, high]`` is
    the 95% interval of the mean (a percentile bootstrap over folds and seeds,
    :func:`icrst_jax.evaluation.intervals.bootstrap_mean_interval`; the paper
    prints "mean ± x", kept in its own column as the paper's). For a dataset the paper
    reports, a "paper" column gives its MLP value (Tables 1 and 3; Standard has
    one of each, marked T1/T3) beside ours, and the MI table its Table 2 value;
    ICRST/TRST runs with p != 1 get "—" there.

    Reads ``study.dataset`` (the paper column, the default metric),
    ``study.metric`` (the primary metric: macro F1 for Caltech101, accuracy
    otherwise; the other one gets a second table), ``study.records`` (records
    without ``classifiers`` are left out of the classification tables, without
    ``mi`` out of the MI table), ``study.warnings`` (a "Warning" section above
    the tables: diverged points, missing results) and ``study.figures`` (file
    names relative to the report's folder).

    Example:
      >>> text = render_report(StudyResult(dataset="mnist", metric="accuracy", records=records))  # doctest: +SKIP
    """
    dataset = study.dataset
    metric = study.metric or primary_metric(dataset)
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_LABELS)}")
    records = sorted(study.record_dicts(), key=sort_key)
    clf_records = [r for r in records if r.get("classifiers")]
    if study.data and title is None:
        title = f"Results: {study.data['name']} (sha256 {study.data['hash'][:12]})"
    lines = _heading(dataset, title, study.warnings, clf_records)
    lines += own_data_table(study.data)
    lines += what_this_shows(study, clf_records)
    lines += _classification(dataset, metric, clf_records)
    lines += _side_by_side(metric, clf_records)
    lines += _convergence_notes(clf_records)
    lines += _interval_widths(dataset, metric, clf_records)
    lines += _mutual_information(dataset, records)
    lines += _purity(records)
    lines += _along_training(metric, records)
    lines += _figures(study.figures)
    return "\n".join(lines).rstrip() + "\n"


def own_data_table(data: Mapping) -> list[str]:
    """A researcher's own data, in a table: where it is from, rows, classes and counts, split, preprocessing."""
    if not data:
        return []
    names = data["class_names"] or [str(i) for i in range(len(data["train_counts"]))]
    rows = [["source", f"`{data['source']}` ({data['format']})"], ["sha256", f"`{data['hash']}`"],
            ["kind, sample shape", f"{data['kind']}, {tuple(data['shape'])}"],
            ["samples", f"{sum(data['train_counts'])} train, {sum(data['test_counts'])} test"],
            ["classes (train / test)", ", ".join(f"{n} {a} / {b}" for n, a, b in
                                                 zip(names, data["train_counts"], data["test_counts"]))],
            ["split", data["split"]], ["preprocessing", data["preprocessing"]],
            ["model", data["model"] + (f", bottleneck {data['latent_size']}" if data.get("latent_size") else "")]]
    rows += [["note", n] for n in data.get("notes", ())]
    return ["## Data", ""] + markdown_table(["", ""], rows) + [""]


def _heading(dataset: str, title: str | None, warnings: Sequence[str], clf_records) -> list[str]:
    lines = [f"# {title or f'Results: {DATASET_LABELS.get(dataset, dataset)}'}", ""]
    if warnings:
        lines += ["## Warning", ""] + [f"- {w}" for w in warnings] + [""]
    lines += [
        "Cells: mean [low, high], the mean over cross-validation folds (pooled over seeds where a "
        "run has several) and its 95% interval (percentile bootstrap of the mean: seeds, then folds "
        "within them, resampled; results.json's `fold_low`/`fold_high` hold the single folds' spread). "
        "Classifiers use scikit-learn defaults (paper, section 6).",
        "",
    ]
    if dataset not in PAPER_DATASETS:
        lines += [f"The paper reports no numbers for `{dataset}`; no paper column.", ""]
    if any(r.get("mode") == "untrained" for r in clf_records):
        lines += [
            "The untrained encoder row is each seed's initial parameters, before the first step: "
            "the reference a trained mode has to beat.",
            "",
        ]
    return lines


def _classifier_names(clf_records) -> list[str]:
    names = {n for r in clf_records for n in r["classifiers"]}
    return [c for c in CLASSIFIERS if c in names] + sorted(names - set(CLASSIFIERS))


def _classification(dataset: str, metric: str, clf_records) -> list[str]:
    """One table per scaling of the primary metric, then the other metric (main scaling)."""
    if not clf_records:
        return []
    is_paper = dataset in PAPER_DATASETS
    clf_names = _classifier_names(clf_records)
    other = "f1_macro" if metric == "accuracy" else "accuracy"
    scalings = record_scalings(clf_records)
    lines = []
    for i, (m, sc) in enumerate([(metric, sc) for sc in scalings] + [(other, scalings[0])]):
        heading = "Classification" if m == metric else "Secondary metric"
        scaled = f", {SCALING_LABELS.get(sc, sc)}" if len(scalings) > 1 or sc != "none" else ""
        lines += [f"## {heading}: {METRIC_LABELS[m]}{scaled}", ""]
        header = ["method", "seeds"] + [CLASSIFIER_LABELS.get(n, n) for n in clf_names]
        # The paper's protocol is unscaled: its column sits beside the raw table only.
        show_paper = is_paper and i == 0 and m == primary_metric(dataset) and sc == "none"
        if show_paper:
            header.append(f"paper MLP ({METRIC_LABELS[m]}, the paper's ±)")
        rows = []
        for r in clf_records:
            res = scaled_classifiers(r, sc) or {}
            row = [row_label(r), _seeds_cell(r)]
            row += [format_score(res.get(n, {}).get(m)) for n in clf_names]
            if show_paper:
                row.append(_paper_cell(dataset, r, "mlp"))
            rows.append(row)
        lines += markdown_table(header, rows) + [""]
        if is_paper and i == 0 and m != primary_metric(dataset):
            lines += [
                f"(Paper column omitted: the paper reports {METRIC_LABELS[primary_metric(dataset)]} "
                f"for {DATASET_LABELS.get(dataset, dataset)}.)",
                "",
            ]
    return lines


def _side_by_side(metric: str, clf_records) -> list[str]:
    scalings = record_scalings(clf_records)
    if len(scalings) <= 1:
        return []
    clf_names = _classifier_names(clf_records)
    lines = [f"## Side by side: {METRIC_LABELS[metric]}, " + " / ".join(SCALING_SHORT.get(sc, sc) for sc in scalings), ""]
    rows = []
    for r in clf_records:
        row = [row_label(r)]
        for n in clf_names:
            cells = [(scaled_classifiers(r, sc) or {}).get(n, {}).get(metric) for sc in scalings]
            row.append(" / ".join("—" if c is None else f"{c['mean']:.3f}" for c in cells))
        rows.append(row)
    lines += markdown_table(["method"] + [CLASSIFIER_LABELS.get(n, n) for n in clf_names], rows) + [""]
    notes = ["Means over folds (and seeds). Scaled: a StandardScaler fitted on each training fold only "
             "(scikit-learn Pipeline); the paper mentions no scaling."]
    for n in clf_names:
        reused = sorted({res[n]["fitted_on"] for r in clf_records for sc in scalings
                         for res in [scaled_classifiers(r, sc) or {}]
                         if n in res and res[n].get("fitted_on") not in (None, res[n].get("scaling", sc))})
        if reused:
            notes.append(f"{CLASSIFIER_LABELS.get(n, n)}: fitted once per latent set, on the "
                         f"{' and '.join(SCALING_SHORT.get(f, f) for f in reused)} latents, and reported under "
                         "each scaling (its splits do not depend on feature scale; `fitted_on` in results.json).")
    return lines + [" ".join(notes), ""]


def _interval_widths(dataset: str, metric: str, clf_records) -> list[str]:
    """The headline classifier's interval of the mean beside the single folds' spread, on the
    paper's protocol (raw latents): how wide each is, against the paper's ``±`` where it has one."""
    name = headline_classifier(_classifier_names(clf_records))
    raw = [(r, (scaled_classifiers(r, "none") or {}).get(name, {}).get(metric)) for r in clf_records]
    raw = [(r, s) for r, s in raw if s and s.get("low") is not None and s.get("fold_low") is not None]
    if not raw:
        return []
    show_paper = dataset in PAPER_DATASETS and metric == primary_metric(dataset) and name == "mlp"
    header = ["method", "mean", "95% interval of the mean", "its half-width", "single folds (2.5-97.5%)"]
    rows = []
    for r, s in raw:
        row = [row_label(r), f"{s['mean']:.3f}", f"[{s['low']:.3f}, {s['high']:.3f}]",
               f"{(s['high'] - s['low']) / 2:.3f}", f"[{s['fold_low']:.3f}, {s['fold_high']:.3f}]"]
        rows.append(row + [_paper_cell(dataset, r, name)] if show_paper else row)
    label = CLASSIFIER_LABELS.get(name, name)
    return [f"## How wide: the interval of the mean and the single folds ({label}, raw latents)", "",
            *markdown_table(header + (["paper (its ±)"] if show_paper else []), rows), "",
            "The interval of the mean is what every cell above carries; the single folds' spread "
            "(results.json's `fold_low`/`fold_high`) is what one fold's score may be.", ""]


def _convergence_notes(clf_records) -> list[str]:
    notes = []
    for r in clf_records:
        for n in _classifier_names(clf_records):
            c = r["classifiers"].get(n, {}).get("convergence_warnings", 0)
            if c:
                notes.append(f"{row_label(r)} / {CLASSIFIER_LABELS.get(n, n)}: {c} fits hit max_iter")
    return ["Convergence warnings (silenced during fitting): " + "; ".join(notes) + ".", ""] if notes else []


def _mutual_information(dataset: str, records) -> list[str]:
    mi_records = [r for r in records if r.get("mi")]
    if not mi_records:
        return []
    show_paper_mi = dataset in PAPER_RESULTS["table2"]["values"]
    lines = ["## Mutual information (section 7)", ""]
    baselines = all(r["mi"].get("corrected") for r in mi_records)
    header = ["method", "seeds", "MI (plug-in)"]
    if baselines:
        header += ["corrected", "pixel-permuted", "random neighbours"]
    header += ["unit", "samples", "k", "bins"]
    if show_paper_mi:
        header.append("paper MI (Table 2)")

    def cell(m):
        return format_score({"mean": m.get("mi"), "low": m.get("low"), "high": m.get("high")})

    rows = []
    for r in mi_records:
        mi = r["mi"]
        row = [row_label(r), _seeds_cell(r), cell(mi)]
        if baselines:
            row += [cell(mi["corrected"]), cell(mi["permuted"]), cell(mi["random_neighbours"])]
        row += [str(mi.get("unit", "nats")), str(mi.get("n_samples", "—")), str(mi.get("k", "—")),
                str(mi.get("bins", "—"))]
        if show_paper_mi:
            row.append(_paper_cell(dataset, r, "mi"))
        rows.append(row)
    lines += markdown_table(header, rows) + [""]
    lines += [
        "MI cells: mean [95% interval of the mean] over the sampled observations (percentile "
        "bootstrap; pooled seeds resampled, then their samples); results.json's "
        "`sample_low`/`sample_high` hold the spread of single samples. The paper does not "
        "state its pixel discretisation, so absolute values are comparable across "
        "our rows, not necessarily with the paper's.",
        "",
    ]
    if baselines:
        lines += [
            "Pixel-permuted: the same pairs with each neighbour's pixels shuffled, i.e. the "
            "plug-in estimator's bias for those pixel histograms; corrected = plug-in minus it, "
            "per sample. Random neighbours: k random observations instead of the latent "
            "neighbours; a latent space adds only the margin above it.",
            "",
        ]
    return lines


def _purity(records) -> list[str]:
    purity_records = [r for r in records if r.get("purity")]
    if not purity_records:
        return []
    k = purity_records[0]["purity"].get("k")
    lines = [f"## kNN label purity (k = {k})", ""]
    rows = []
    for r in purity_records:
        pur = r["purity"]
        per_seed = pur.get("per_seed")
        spread = r.get("latent_spread") or []
        rows.append([
            row_label(r),
            _seeds_cell(r),
            f"{pur['purity']:.3f}" + (f" [{min(per_seed):.3f}, {max(per_seed):.3f}]" if per_seed else ""),
            f"{pur['chance']:.3f}",
            f"{np.mean(spread):.3g}" if spread else "—",
        ])
    lines += markdown_table(["method", "seeds", "purity [seed min, max]", "chance", "latent spread"], rows) + [""]
    return lines + [
        "Purity: share of each held-out observation's k nearest latent neighbours with its label "
        "(Euclidean, self excluded); chance: its value for random neighbours. Latent spread: mean "
        "over latent dimensions of the standard deviation across observations (purity ignores "
        "a common scale; unscaled classifiers do not).",
        "",
    ]


def _along_training(metric: str, records) -> list[str]:
    traj_records = [r for r in records if r.get("trajectory")]
    if not traj_records:
        return []
    epochs = sorted({t["epoch"] for r in traj_records for t in r["trajectory"]})
    t_scalings = record_scalings([t for r in traj_records for t in r["trajectory"]])
    t_names = [n for n in CLASSIFIERS if any(n in (t.get("classifiers") or {}) for r in traj_records
                                              for t in r["trajectory"])]
    if not t_names:
        return []
    name = t_names[0]
    shown = " / ".join(SCALING_SHORT.get(sc, sc) for sc in t_scalings)
    lines = [f"## Along training: {CLASSIFIER_LABELS.get(name, name)} {METRIC_LABELS[metric]} ({shown}), kNN purity", ""]
    rows = []
    for r in traj_records:
        by_epoch = {t["epoch"]: t for t in r["trajectory"]}
        row = [row_label(r)]
        for e in epochs:
            t = by_epoch.get(e)
            if t is None:
                row.append("—")
                continue
            accs = [(scaled_classifiers(t, sc) or {}).get(name, {}).get(metric) for sc in t_scalings]
            text = " / ".join("—" if a is None else f"{a['mean']:.3f}" for a in accs)
            if t.get("purity"):
                text += f"; {t['purity']['purity']:.2f}"
            row.append(text)
        rows.append(row)
    lines += markdown_table(["method"] + [f"epoch {e}" for e in epochs], rows) + [""]
    return lines + [
        "Each cell: the held-out latents after that epoch of the same run (epoch 0: the "
        "untrained encoder), mean over folds and seeds; after the semicolon, the kNN purity.",
        "",
    ]


def _figures(figures: Sequence[str]) -> list[str]:
    if not figures:
        return []
    lines = ["## Figures", ""]
    for name in figures:
        name = PurePosixPath(name)
        lines += [f"![{name.stem}]({name.as_posix()})", ""]
    return lines


def format_score(s: Mapping | None) -> str:
    """'mean [low, high]' of a summary dict."""
    if not s or s.get("mean") is None:
        return "—"
    mean, low, high = s["mean"], s.get("low"), s.get("high")
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _paper_cell(dataset: str, rec: Mapping, quantity: str) -> str:
    mode = rec.get("mode")
    # The paper's ICRST/TRST rows are p = 1; a partial-p run has no paper value.
    if mode in ("icrst", "trst") and p_of(rec) != 1.0:
        return "—"
    vals = paper_values(dataset, mode, quantity)
    if not vals:
        return "—"
    return " / ".join(f"{m:.2f} ± {pm:.2f} (T{t[-1]})" for t, m, pm in vals)


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _seeds_cell(rec: Mapping) -> str:
    seeds = rec.get("seeds")
    if seeds is None:
        return "—"
    return ", ".join(str(s) for s in seeds) if isinstance(seeds, (list, tuple)) else str(seeds)
