"""The toy run's report (``python -m experiments.toy``): how far each model's reconstructions lie from the class means.

Written from the run's ``summary.json`` alone, by the run itself (``report.md``)
and by the quoted tables of docs/toy.md (:mod:`icrst_jax.reporting.quoted`), so
the two cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping

from icrst_jax.reporting.markdown import markdown_table

# The toy models by name, in the report's table and the vector-field figure's panel titles.
MODEL_LABELS = {"dae": "DAE", "icrst": "ICRST p=1", "standard": "standard AE"}


def is_toy_summary(payload: Mapping) -> bool:
    """Whether ``payload`` is a toy run's ``summary.json``."""
    return "per_model" in payload and "dist_to_mean_points" in payload


def render_toy(summary: Mapping) -> str:
    """``report.md`` of a toy run: one row per model (and the points themselves), one column per class."""
    classes = range(len(summary["dist_to_mean_points"]))
    rows = [["mean ‖x − μ_c‖ of the points themselves"] + [f"{v:.3f}" for v in summary["dist_to_mean_points"]]]
    rows += [[f"{MODEL_LABELS.get(m, m)}: mean ‖f(g(x)) − μ_c‖"]
             + [f"{v:.3f}" for v in summary["per_model"][m]["dist_to_mean"]] for m in summary["models"]]
    return "\n".join([
        f"# The toy set of section 5 (seed {summary['config']['seed']})", "",
        "## Distance to the class mean", "",
        "Mean Euclidean distance of each class's training points, and of their reconstructions "
        "f(g(x)), from the class mean μ_c.", "",
        *markdown_table([""] + [f"class {c}" for c in classes], rows), "",
    ])
