"""latent_sizes.md: a latent-size study's tables, written from its combined results.json.

The study (:mod:`icrst_jax.latent_size_study`) runs one grid per bottleneck
width; its combined ``results.json`` holds every width's records, each with its
``latent_size``. :func:`render_latent_sizes` is pure (that payload in, markdown
out), so the study and the docs' quoted tables (:mod:`icrst_jax.reporting.quoted`)
write the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from icrst_jax.evaluation.intervals import bootstrap_mean_interval
from icrst_jax.reporting.labels import CLASSIFIER_LABELS, METRIC_LABELS
from icrst_jax.reporting.markdown import format_score, markdown_table
from icrst_jax.reporting.rows import plain_row_label


def rows_by_size(records: Sequence[Mapping]) -> dict:
    """``{(mode, p): {latent size: record}}`` in the records' order (records carry their ``latent_size``)."""
    rows: dict[tuple, dict[int, Mapping]] = {}
    for rec in records:
        rows.setdefault((rec["mode"], rec.get("p")), {})[int(rec["latent_size"])] = rec
    return rows


def render_latent_sizes(combined: Mapping) -> str:
    """The markdown of ``latent_sizes.md`` from the study's combined results.json payload.

    Per classifier: score mean [95% interval of the mean] per mode and p
    against latent size; then each mode's score minus Standard's paired over
    seeds and folds, the final training loss (mean ± standard deviation over
    seeds), the section 7 MI and the kNN purity, and the figures.
    """
    sizes, metric, dataset = [int(s) for s in combined["latent_sizes"]], combined["metric"], combined["dataset"]
    rows = rows_by_size(combined["records"])
    classifiers = list(combined["records"][0]["classifiers"])
    head = ["method"] + [f"latent {s}" for s in sizes]
    lines = [f"# {dataset}: the bottleneck as a study axis", "",
             f"Each column is the same study with `train.model.latent_size` = L (folder `latent_size<L>/`, "
             f"its own report there). Held-out {METRIC_LABELS.get(metric, metric)}: mean [low, high], "
             f"the 95% interval of the mean (percentile bootstrap over seeds and folds).", ""]
    for name in classifiers:
        lines += [f"## {CLASSIFIER_LABELS.get(name, name)}", ""]
        lines += markdown_table(head, [
            [_label(by)] + [format_score(by[s]["classifiers"].get(name, {}).get(metric)) if s in by else "—"
                            for s in sizes]
            for by in rows.values()
        ])
        lines.append("")
    lines += _differences(rows, sizes, head, classifiers, metric)
    trained = {k: by for k, by in rows.items() if k[0] != "untrained"}
    lines += ["## Final training loss", "",
              "MSE against the training targets in the last epoch, mean ± standard deviation over seeds "
              "(ICRST and TRST: against their swapped targets, so compare a mode with itself across widths).", ""]
    lines += markdown_table(head, [[_label(by)] + [_loss_cell(by.get(s)) for s in sizes] for by in trained.values()])
    lines.append("")
    lines += _measure_tables(rows, sizes, head)
    for figure in combined.get("figures", ()):
        lines += [f"![{metric} against latent size]({figure})", ""]
    return "\n".join(lines)


def _differences(rows: Mapping, sizes: Sequence[int], head: list[str], classifiers: Sequence[str],
                 metric: str) -> list[str]:
    if ("standard", 0.0) not in rows:
        return []
    standard = rows[("standard", 0.0)]
    lines = ["## Difference to Standard, paired", "",
             "Score minus Standard's at the same latent size, over the same seeds' cross-validation folds "
             "(a seed's folds are the same for every mode): mean [95% interval of the mean] of the "
             "seed x fold differences (percentile bootstrap: seeds resampled, then their folds).", ""]
    for name in classifiers:
        cells = [[f"{CLASSIFIER_LABELS.get(name, name)}: {_label(by)}"]
                 + [_difference_cell(by.get(s), standard.get(s), name, metric) for s in sizes]
                 for k, by in rows.items() if k[0] != "untrained" and k != ("standard", 0.0)]
        lines += markdown_table(head, cells) + [""]
    return lines


def _label(by_size: Mapping) -> str:
    """The row label (mode, p) of one row of :func:`rows_by_size`."""
    return plain_row_label(next(iter(by_size.values())))


def _difference_cell(rec: Mapping | None, standard: Mapping | None, classifier: str, metric: str) -> str:
    """Paired ``rec - standard`` over their seed x fold scores (the same seeds, in order)."""
    if rec is None or standard is None or rec.get("seeds") != standard.get("seeds"):
        return "—"
    a = rec["classifiers"][classifier][metric]["folds"]
    b = standard["classifiers"][classifier][metric]["folds"]
    if len(a) != len(b):
        return "—"
    diffs = np.subtract(a, b)
    seeds = len(rec.get("seeds") or [0])
    low, high = bootstrap_mean_interval(np.split(diffs, seeds) if diffs.size % seeds == 0 else [diffs])
    return f"{diffs.mean():+.3f} [{low:+.3f}, {high:+.3f}]"


def _loss_cell(rec: Mapping | None) -> str:
    losses = [x for x in (rec or {}).get("final_loss") or [] if x is not None]
    if not losses:
        return "—"
    if len(losses) == 1:
        return f"{losses[0]:.4f}"
    return f"{np.mean(losses):.4f} ± {np.std(losses, ddof=1):.4f}"


def _measure_tables(rows: Mapping, sizes: Sequence[int], head: list[str]) -> list[str]:
    """The MI and kNN purity tables (where the study computed them), one row per mode and p."""
    lines = []
    for title, field, value in (("Mutual information (section 7)", "mi", "mi"), ("kNN purity", "purity", "purity")):
        if any((r or {}).get(field) for by in rows.values() for r in by.values()):
            lines += [f"## {title}", ""]
            lines += markdown_table(head, [
                [_label(by)] + [f"{by[s][field][value]:.3f}" if s in by and by[s].get(field) else "—" for s in sizes]
                for k, by in rows.items()
            ])
            lines.append("")
    return lines


