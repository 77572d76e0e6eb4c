"""Figures, result files and the markdown report of a study.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?":
Fig. 5 (score vs the Bernoulli probability p), Figs. 6-7 (t-SNE of the latent
space), Tables 1-3 (MLP scores and mutual information, Standard vs ICRST/TRST).

One module per idea:

* :mod:`~icrst_jax.reporting.records`: the typed results (``Record``,
  ``StudyResult``, ...) and their results.json form;
* :mod:`~icrst_jax.reporting.rows`: how figures and report read a record (labels, order);
* :mod:`~icrst_jax.reporting.labels`: display names;
* :mod:`~icrst_jax.reporting.paper`: the paper's numbers and headline metrics;
* :mod:`~icrst_jax.reporting.figures`: the PNG figures (never through pyplot);
* :mod:`~icrst_jax.reporting.markdown`: report.md, pure (:func:`render_report`);
* :mod:`~icrst_jax.reporting.results_json`: strict JSON, written atomically.
"""

from icrst_jax.jsonable import to_jsonable
from icrst_jax.reporting.figures import (
    curves_from_records,
    new_figure,
    plot_accuracy_vs_p,
    plot_tsne,
    plot_vs_epochs,
    save_png,
    tsne_embeddings,
)
from icrst_jax.reporting.labels import (
    CLASSIFIER_LABELS,
    METRIC_LABELS,
    MODE_LABELS,
    MODE_ORDER,
    SCALING_LABELS,
    SCALING_SHORT,
)
from icrst_jax.reporting.markdown import render_report
from icrst_jax.reporting.paper import DATASET_LABELS, PAPER_DATASETS, PAPER_RESULTS, paper_values, primary_metric
from icrst_jax.reporting.records import EpochScores, PointRecord, Record, Scores, StudyResult, Timing
from icrst_jax.reporting.results_json import atomic_write_text, write_results_json
from icrst_jax.reporting.rows import record_scalings, scaled_classifiers

__all__ = [
    "CLASSIFIER_LABELS", "DATASET_LABELS", "METRIC_LABELS", "MODE_LABELS", "MODE_ORDER", "PAPER_DATASETS",
    "PAPER_RESULTS", "SCALING_LABELS", "SCALING_SHORT", "EpochScores", "PointRecord", "Record", "Scores",
    "StudyResult", "Timing", "atomic_write_text", "curves_from_records", "new_figure", "paper_values",
    "plot_accuracy_vs_p", "plot_tsne", "plot_vs_epochs", "primary_metric", "record_scalings", "render_report",
    "save_png", "scaled_classifiers", "to_jsonable", "tsne_embeddings", "write_results_json",
]
