"""The two evaluation backends side by side on the offline sets: the report of
``python -m benchmarks.bench_evaluation --offline``.

Written from the benchmark's ``bench_evaluation.json`` alone, so that the quoted
table of docs/evaluation.md (:mod:`icrst_jax.reporting.quoted`) is what the
file says, not a copy typed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from icrst_jax.reporting.labels import SCALING_SHORT
from icrst_jax.reporting.markdown import markdown_table

SECTION = "Both backends on the offline sets"


def is_backend_comparison(payload: Mapping) -> bool:
    """Whether ``payload`` is the ``bench_evaluation.json`` of an ``--offline`` run."""
    return bool(payload.get("args", {}).get("offline")) and "results" in payload


def _cell(s: Mapping) -> str:
    return f"{s['accuracy']:.4f} [{s['low']:.4f}, {s['high']:.4f}]"


def render_backends(payload: Mapping) -> str:
    """A row per data set x scaling x classifier: each backend's mean accuracy [95% interval of
    the mean], the scaling the ``auto`` fit ran on (``fitted_on``) and the fits that stopped at
    ``max_iter``; then each backend's wall time per data set."""
    meta, args, results = payload["meta"], payload["args"], payload["results"]
    backends = list(args["backends"])
    classifiers = list(args["classifiers"])
    rows, walls = [], []
    for name, by_backend in results.items():
        first = by_backend[backends[0]]
        for sc in ("none", "standardised"):
            for c in classifiers:
                cells = [by_backend[b][sc][c] for b in backends]
                rows.append([name, SCALING_SHORT.get(sc, sc), c, *(_cell(s) for s in cells),
                             cells[0]["fitted_on"], " / ".join(str(s["convergence_warnings"]) for s in cells)])
        walls.append([name, str(first["rows"]), *(f"{by_backend[b]['wall_s']:.1f}" for b in backends)])
    where = "on a CPU as JAX programs wherever it can" if args.get("jax_on_cpu") else "its default choice per device"
    return "\n".join([
        "# Evaluation backends side by side", "",
        f"`{' '.join(meta['argv'])}`, {meta['date']}, commit `{meta['source']['commit']}`, "
        f"{meta['cpu_count']}-core {meta['backend'].upper()} ({meta['cpu']}), jax {meta['jax']}.", "",
        f"## {SECTION}", "",
        f"Raw features as scikit-learn loads them, {first['folds']} folds, seed 0; cells: mean accuracy "
        f"[95% interval of the mean]. `auto` ran {where}.", "",
        *markdown_table(["data", "scaling", "classifier", *backends, "auto fitted_on",
                         "fits at max_iter (" + " / ".join(backends) + ")"], rows), "",
        "## Wall time", "",
        *markdown_table(["data", "rows", *(f"{b} s" for b in backends)], walls), "",
    ])
