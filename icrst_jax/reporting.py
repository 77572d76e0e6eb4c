"""Figures, result files and the markdown report.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?":
Fig. 5 (score vs the Bernoulli probability p), Figs. 6-7 (t-SNE of the latent
space), Tables 1-3 (MLP scores and mutual information, Standard vs ICRST/TRST).

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas,
never through ``pyplot``: nothing here switches the backend of the calling
process (a notebook keeps its own), no global figure list grows, and it works
headless. matplotlib is imported inside the functions so that importing this
module stays cheap.

A *record* is the result of one trained configuration, e.g.::

    {"mode": "icrst", "p": 1.0, "seeds": [0, 1],
     "classifiers": {"mlp": {"accuracy": {"mean", "low", "high", ...},
                             "f1_macro": {...}}, ...},
     "mi": {"mi", "low", "high", "n_samples", "k", "bins", "unit"} or None}

``classifiers`` is the output of ``evaluation.evaluate_classifiers`` (or of
``evaluation.pool_results`` over seeds) and ``mi`` that of
``evaluation.mutual_information``. Optional keys: ``dae_sigma`` (shown in the
DAE row label), ``label`` (overrides the row label), ``scaling`` (the feature
scaling of ``classifiers``, default ``none``) with ``other_scalings``
(``{scaling: classifiers}``), ``purity`` (``evaluation.knn_purity``, pooled),
``latent_spread`` (per seed) and ``trajectory`` (``[{"epoch", "classifiers",
"other_scalings", "mi", "purity", "latent_spread"}, ...]``, the same measures
after chosen epochs). The mode ``untrained`` is the reference row: the encoder
at its initialisation.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from icrst_jax.data.registry import DATASET_SPECS
from icrst_jax.evaluation import CLASSIFIERS
from icrst_jax.jsonable import to_jsonable

MODE_ORDER: tuple[str, ...] = ("untrained", "standard", "icrst", "trst", "dae")
MODE_LABELS = {"untrained": "Untrained", "standard": "Standard", "icrst": "ICRST", "trst": "TRST", "dae": "DAE"}
SCALING_LABELS = {"none": "raw latents (the paper's protocol)", "standard": "latents standardised inside each fold"}
SCALING_SHORT = {"none": "raw", "standard": "scaled"}
CLASSIFIER_LABELS = {"svm": "SVM (RBF)", "rf": "Random Forest", "mlp": "MLP", "nb": "Gaussian NB"}
METRIC_LABELS = {"accuracy": "accuracy", "f1_macro": "macro F1"}
DATASET_LABELS = {name: spec.label for name, spec in DATASET_SPECS.items()}

# The paper's numbers, "mean ± x" as printed ("95% percentile confidence
# intervals ... after 10-cross-fold-validation"). Table 1 and Table 3 are MLP
# scores (accuracy; macro F1 for Caltech101, "given the unbalanced nature of the
# data"); they come from separate runs, hence two different Standard rows.
# Table 2 is the section 7 mutual information. The ICRST / TRST rows are taken
# to be p = 1 (pure ICRS / TRS training): the tables do not state p.
PAPER_RESULTS: dict[str, dict] = {
    "table1": {
        "title": "Table 1: Classification performance for MLP classifier (Standard vs ICRST)",
        "quantity": "mlp",
        "values": {
            "mnist": {"standard": (0.85, 0.02), "icrst": (0.97, 0.01)},
            "fashion_mnist": {"standard": (0.76, 0.02), "icrst": (0.84, 0.01)},
            "cifar10": {"standard": (0.19, 0.01), "icrst": (0.41, 0.02)},
            "caltech101": {"standard": (0.32, 0.01), "icrst": (0.40, 0.01)},
            "breast_cancer": {"standard": (0.96, 0.02), "icrst": (0.97, 0.02)},
        },
    },
    "table2": {
        "title": "Table 2: Mutual information (Standard vs TRST)",
        "quantity": "mi",
        "values": {
            "mnist": {"standard": (0.40, 0.01), "trst": (0.45, 0.01)},
            "fashion_mnist": {"standard": (0.40, 0.01), "trst": (0.44, 0.01)},
            "cifar10": {"standard": (0.25, 0.00), "trst": (0.25, 0.00)},
            "caltech101": {"standard": (0.16, 0.00), "trst": (0.16, 0.00)},
        },
    },
    "table3": {
        "title": "Table 3: Classification performance for MLP classifier (Standard vs TRST)",
        "quantity": "mlp",
        "values": {
            "mnist": {"standard": (0.86, 0.02), "trst": (0.90, 0.02)},
            "fashion_mnist": {"standard": (0.75, 0.02), "trst": (0.89, 0.00)},
            "cifar10": {"standard": (0.17, 0.01), "trst": (0.09, 0.01)},
            "caltech101": {"standard": (0.33, 0.02), "trst": (0.17, 0.01)},
            "breast_cancer": {"standard": (0.96, 0.03), "trst": (0.98, 0.02)},
        },
    },
}
PAPER_DATASETS: tuple[str, ...] = tuple(n for n, spec in DATASET_SPECS.items() if spec.paper_tables)

# Panels up to this many points use t-SNE's exact method (see plot_tsne).
_TSNE_EXACT_MAX = 500


def primary_metric(dataset: str) -> str:
    """The paper's headline metric: macro F1 for Caltech101, accuracy otherwise (section 6)."""
    return DATASET_SPECS[dataset].metric if dataset in DATASET_SPECS else "accuracy"


def paper_values(dataset: str, mode: str, quantity: str = "mlp") -> list[tuple[str, float, float]]:
    """The paper's reported values for one dataset and training mode.

    Args:
      dataset: our dataset name (``mnist``, ``fashion_mnist``, ``cifar10``,
        ``caltech101``, ``breast_cancer``).
      mode: ``standard``, ``icrst`` or ``trst``.
      quantity: ``"mlp"`` (Tables 1 and 3) or ``"mi"`` (Table 2).

    Returns:
      ``[(table, mean, plus_minus), ...]``, empty if the paper has no number.
      Standard has two MLP values (Tables 1 and 3).

    Example:
      >>> paper_values("mnist", "standard")
      [('table1', 0.85, 0.02), ('table3', 0.86, 0.02)]
    """
    out = []
    for table, spec in PAPER_RESULTS.items():
        if spec["quantity"] != quantity:
            continue
        value = spec["values"].get(dataset, {}).get(mode)
        if value is not None:
            out.append((table, float(value[0]), float(value[1])))
    return out


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def _atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and ``os.replace``.

    A reader (or a crash) never sees a half-written file; the replace is atomic
    on POSIX because source and target are on the same filesystem.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode every other output gets (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results_json(path, payload) -> Path:
    """Write ``payload`` as indented, strict JSON, atomically.

    Args:
      path: destination file; parent directories are created.
      payload: nested dicts/lists with numpy arrays and scalars, tuples,
        dataclasses (e.g. ``TrainConfig``) and paths (see ``to_jsonable``).

    Returns:
      The path written.

    Example:
      >>> import tempfile, json
      >>> p = write_results_json(Path(tempfile.mkdtemp()) / "r.json", {"x": np.ones(2)})
      >>> json.loads(p.read_text())
      {'x': [1.0, 1.0]}
    """
    path = Path(path)
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    _atomic_write_text(path, text)
    return path


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def _new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path


def plot_tsne(
    panels: Mapping[str, tuple],
    path,
    *,
    seed: int = 0,
    max_points: int = 2000,
    max_iter: int = 1000,
    title: str | None = None,
) -> Path:
    """t-SNE of latent spaces, one panel per training mode (Figs. 6 and 7).

    Each panel is subsampled to ``max_points`` points (uniformly without
    replacement, ``np.random.default_rng(seed)``), projected to 2-D with
    ``sklearn.manifold.TSNE(init="pca", random_state=seed)`` and coloured by
    class. The perplexity is scikit-learn's default 30, lowered to
    ``(n - 1) / 3`` for panels with fewer than 91 points (it must be below the
    number of points). Panels of at most 500 points use the exact t-SNE
    gradient, larger ones Barnes-Hut (scikit-learn's default). Up to 20 classes get a shared legend; more (Caltech101)
    get a colorbar.

    Args:
      panels: ordered mapping ``label -> (features (N, D), labels (N,))``.
      path: PNG file to write.
      seed: subsampling and t-SNE seed.
      max_points: points per panel after subsampling.
      max_iter: t-SNE optimisation steps (scikit-learn's default 1000; at
        least 250).
      title: figure title.

    Returns:
      ``Path(path)``.

    Example:
      >>> plot_tsne({"Standard": (z0, y), "ICRST p=1": (z1, y)}, "tsne.png")  # doctest: +SKIP
    """
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
    from matplotlib.ticker import MaxNLocator
    from matplotlib.lines import Line2D
    from sklearn.manifold import TSNE

    if not panels:
        raise ValueError("plot_tsne needs at least one panel")
    rng = np.random.default_rng(seed)
    prepared = []
    for label, (feats, labs) in panels.items():
        feats = np.asarray(feats, dtype=np.float64)
        labs = np.asarray(labs)
        if feats.ndim != 2 or labs.shape != (feats.shape[0],):
            raise ValueError(
                f"panel {label!r}: need features (N, D) and labels (N,), "
                f"got {feats.shape} and {labs.shape}"
            )
        if feats.shape[0] < 4:
            raise ValueError(f"panel {label!r}: t-SNE needs at least 4 points, got {feats.shape[0]}")
        if feats.shape[0] > max_points:
            keep = np.sort(rng.choice(feats.shape[0], size=max_points, replace=False))
            feats, labs = feats[keep], labs[keep]
        prepared.append((label, feats, labs))

    classes = np.unique(np.concatenate([labs for _, _, labs in prepared]))
    n_cls = len(classes)
    if n_cls <= 20:
        # Qualitative palette, one discrete colour per class.
        colors = colormaps["tab10" if n_cls <= 10 else "tab20"](np.arange(n_cls))
        cmap = ListedColormap(colors)
        norm = BoundaryNorm(np.arange(n_cls + 1) - 0.5, n_cls)
    else:
        # Too many classes to tell apart by legend: a continuous map and a colorbar.
        cmap = colormaps["turbo"]
        norm = Normalize(vmin=0, vmax=n_cls - 1)

    n_pan = len(prepared)
    fig = _new_figure((4.2 * n_pan + (1.6 if n_cls <= 20 else 0.8), 4.4))
    axes = fig.subplots(1, n_pan, squeeze=False)[0]
    for ax, (label, feats, labs) in zip(axes, prepared):
        n = feats.shape[0]
        perplexity = min(30.0, (n - 1) / 3.0)
        # Exact gradients for small panels: cheaper than building Barnes-Hut
        # trees at that size and free of its approximation.
        method = "exact" if n <= _TSNE_EXACT_MAX else "barnes_hut"
        emb = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            max_iter=max_iter,
            method=method,
            random_state=seed,
        ).fit_transform(feats)
        idx = np.searchsorted(classes, labs)
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=idx, cmap=cmap, norm=norm, s=4, linewidths=0)
        ax.set_title(f"{label} (n={n})")
        ax.set_xticks([])
        ax.set_yticks([])
    if n_cls <= 20:
        handles = [
            Line2D([], [], marker="o", linestyle="", color=colors[i], label=str(c))
            for i, c in enumerate(classes)
        ]
        fig.legend(handles=handles, loc="outside right center", title="class", fontsize="small")
    else:
        cbar = fig.colorbar(sc, ax=list(axes), shrink=0.9)
        cbar.locator = MaxNLocator(integer=True)
        cbar.update_ticks()
        cbar.set_label(f"class index (0-{n_cls - 1}, sorted labels)")
    if title:
        fig.suptitle(title)
    return _save_png(fig, path)


def _p_of(rec: Mapping) -> float:
    """A record's p; a missing or null p means pure ICRST/TRST (p = 1)."""
    p = rec.get("p")
    return 1.0 if p is None else float(p)


def curves_from_records(
    records: Sequence[Mapping], *, metric: str = "accuracy", mode: str = "icrst"
) -> dict[str, list[tuple[float, float, float, float]]]:
    """Fig. 5 curves from run records: score vs p for one mode.

    Records of ``mode`` contribute at their ``p``; ``standard`` records are
    placed at ``p = 0`` (section 6: "when p = 0.0, the autoencoder is trained
    in the standard way") unless a record of ``mode`` with ``p = 0`` exists.

    Args:
      records: run records (see module docstring).
      metric: ``"accuracy"`` or ``"f1_macro"``.
      mode: ``"icrst"`` or ``"trst"``.

    Returns:
      ``{classifier: [(p, mean, low, high), ...]}`` sorted by p, classifiers
      in ``CLASSIFIERS`` order.

    Example:
      >>> rec = {"mode": "icrst", "p": 0.5,
      ...        "classifiers": {"nb": {"accuracy": {"mean": 0.9, "low": 0.8, "high": 1.0}}}}
      >>> curves_from_records([rec])
      {'nb': [(0.5, 0.9, 0.8, 1.0)]}
    """
    by_p: dict[float, Mapping] = {}
    for rec in records:
        if rec.get("mode") == "standard" and rec.get("classifiers"):
            by_p.setdefault(0.0, rec)
    for rec in records:
        if rec.get("mode") != mode or not rec.get("classifiers"):
            continue
        p = _p_of(rec)
        if p in by_p and by_p[p].get("mode") == mode:
            raise ValueError(f"two {mode} records with p={p}; pool their seeds into one record")
        by_p[p] = rec
    curves: dict[str, list] = {}
    names = {n for rec in by_p.values() for n in rec["classifiers"]}
    for name in [c for c in CLASSIFIERS if c in names] + sorted(names - set(CLASSIFIERS)):
        pts = []
        for p in sorted(by_p):
            s = by_p[p]["classifiers"].get(name, {}).get(metric)
            if s is not None:
                pts.append((p, float(s["mean"]), float(s["low"]), float(s["high"])))
        if pts:
            curves[name] = pts
    return curves


def plot_accuracy_vs_p(
    curves,
    path,
    *,
    metric: str = "accuracy",
    mode: str = "icrst",
    title: str | None = None,
) -> Path:
    """Score vs the Bernoulli probability p, one line per classifier (Fig. 5).

    The shaded band is the percentile interval ``[low, high]`` of each point.

    Args:
      curves: ``{classifier: [(p, mean, low, high), ...]}``, or a sequence of
        run records, converted with ``curves_from_records(records,
        metric=metric, mode=mode)``.
      path: PNG file to write.
      metric: score name for the y label (and for record selection).
      mode: training mode of the records (ignored for explicit curves).
      title: axes title.

    Returns:
      ``Path(path)``.

    Example:
      >>> plot_accuracy_vs_p({"mlp": [(0, .85, .83, .87), (1, .97, .96, .98)]}, "p.png")  # doctest: +SKIP
    """
    if not isinstance(curves, Mapping):
        curves = curves_from_records(curves, metric=metric, mode=mode)
    if not curves:
        raise ValueError("no points to plot")
    fig = _new_figure((6.0, 4.2))
    ax = fig.subplots()
    for name, pts in curves.items():
        arr = np.asarray(sorted(pts), dtype=np.float64).reshape(-1, 4)
        line = ax.plot(arr[:, 0], arr[:, 1], marker="o", label=CLASSIFIER_LABELS.get(name, name))[0]
        ax.fill_between(arr[:, 0], arr[:, 2], arr[:, 3], color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("p (probability of a random target)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return _save_png(fig, path)


def _trajectory_series(rec: Mapping, value) -> np.ndarray:
    """(epoch, mean, low, high) rows of one record's trajectory where ``value(entry)`` gives a triple."""
    rows = []
    for t in rec.get("trajectory") or []:
        v = value(t)
        if v is not None:
            rows.append((float(t["epoch"]), *map(float, v)))
    return np.asarray(sorted(rows), dtype=np.float64).reshape(-1, 4)


def plot_vs_epochs(
    records: Sequence[Mapping],
    path,
    *,
    metric: str = "accuracy",
    classifier: str = "mlp",
    title: str | None = None,
) -> Path:
    """Held-out measures against training epochs, one line per trained configuration.

    Panels: the classifier's score for each feature scaling (band: the 95%
    percentile interval over folds and seeds), the kNN label purity (band:
    lowest to highest seed; dotted: chance), the corrected MI where the
    records have it (band: percentiles over samples) and the latent spread
    (log scale; band: lowest to highest seed). Epoch 0 is the untrained
    encoder, the same for every mode of a seed.

    Args:
      records: run records with a ``trajectory`` (see module docstring).
      path: PNG file to write.
      metric: ``accuracy`` or ``f1_macro``.
      classifier: which classifier's score to draw.
      title: figure title.

    Returns:
      ``Path(path)``.
    """
    from matplotlib import colormaps

    recs = sorted((r for r in records if r.get("trajectory")), key=_sort_key)
    if not recs:
        raise ValueError("no record has a trajectory (set eval.at_epochs)")
    entries = [t for r in recs for t in r["trajectory"]]
    panels = []
    for sc in record_scalings(entries):
        def acc(t, sc=sc):
            s = (scaled_classifiers(t, sc) or {}).get(classifier, {}).get(metric)
            return None if s is None else (s["mean"], s["low"], s["high"])
        panels.append((f"{CLASSIFIER_LABELS.get(classifier, classifier)} {METRIC_LABELS[metric]}, "
                       f"{SCALING_SHORT.get(sc, sc)} latents", acc, False))
    if any(t.get("purity") for t in entries):
        def pur(t):
            p = t.get("purity")
            if not p:
                return None
            seeds = p.get("per_seed") or [p["purity"]]
            return p["purity"], min(seeds), max(seeds)
        panels.append((f"kNN label purity (k = {next(t['purity']['k'] for t in entries if t.get('purity'))})", pur, False))
    if any((t.get("mi") or {}).get("corrected") for t in entries):
        def mi(t):
            c = (t.get("mi") or {}).get("corrected")
            return None if c is None else (c["mi"], c["low"], c["high"])
        panels.append(("MI, corrected (nats)", mi, False))
    if any(t.get("latent_spread") for t in entries):
        def spread(t):
            v = t.get("latent_spread")
            return None if not v else (float(np.mean(v)), min(v), max(v))
        panels.append(("latent spread (mean std per dim)", spread, True))

    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure((4.0 * ncols, 3.2 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = colormaps["tab10"](np.arange(10))
    for ax, (label, value, log) in zip(axes, panels):
        for j, r in enumerate(recs):
            arr = _trajectory_series(r, value)
            if not len(arr):
                continue
            c = colors[j % 10]
            ax.plot(arr[:, 0], arr[:, 1], marker="o", ms=3, color=c, label=_row_label(r))
            ax.fill_between(arr[:, 0], arr[:, 2], arr[:, 3], color=c, alpha=0.15, linewidth=0)
        if label.startswith("kNN"):
            chance = next(t["purity"]["chance"] for t in entries if t.get("purity"))
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1)
        if log:
            ax.set_yscale("log")
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize="small")
    if title:
        fig.suptitle(title)
    return _save_png(fig, path)


# ---------------------------------------------------------------------------
# Markdown report
# ---------------------------------------------------------------------------


def _row_label(rec: Mapping) -> str:
    label = _plain_row_label(rec)
    return f"{label} — DIVERGED" if rec.get("diverged") else label


def _plain_row_label(rec: Mapping) -> str:
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


def _sort_key(rec: Mapping):
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


def _fmt(s: Mapping | None) -> str:
    """'mean ± half-width [low, high]' of a summary dict."""
    if not s or s.get("mean") is None:
        return "—"
    mean, low, high = s["mean"], s.get("low"), s.get("high")
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {(high - low) / 2:.3f} [{low:.3f}, {high:.3f}]"


def _paper_cell(dataset: str, rec: Mapping, quantity: str) -> str:
    mode = rec.get("mode")
    # The paper's ICRST/TRST rows are p = 1; a partial-p run has no paper value.
    if mode in ("icrst", "trst") and _p_of(rec) != 1.0:
        return "—"
    vals = paper_values(dataset, mode, quantity)
    if not vals:
        return "—"
    return " / ".join(f"{m:.2f} ± {pm:.2f} (T{t[-1]})" for t, m, pm in vals)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _seeds_cell(rec: Mapping) -> str:
    seeds = rec.get("seeds")
    if seeds is None:
        return "—"
    return ", ".join(str(s) for s in seeds) if isinstance(seeds, (list, tuple)) else str(seeds)


def render_report(
    records: Sequence[Mapping],
    *,
    dataset: str,
    out_path,
    metric: str | None = None,
    figures: Sequence | None = None,
    title: str | None = None,
    warnings: Sequence[str] = (),
) -> Path:
    """Write ``report.md``: classification and MI tables laid out like Tables 1-3.

    Rows are training configurations (Standard, ICRST/TRST with p, DAE), sorted
    by mode then p. Cells are ``mean ± h [low, high]`` where ``[low, high]`` is
    the 95% percentile interval and ``h = (high - low) / 2`` its half-width
    (the paper prints "mean ± x" without saying more). For a dataset the paper
    reports, a "paper" column gives its MLP value (Tables 1 and 3; Standard has
    one of each, marked T1/T3) beside ours, and the MI table its Table 2 value;
    ICRST/TRST runs with p != 1 get "—" there.

    Args:
      records: run records (see module docstring). Records without
        ``classifiers`` are left out of the classification tables; records
        without ``mi`` out of the MI table.
      dataset: our dataset name; decides the paper column and default metric.
      out_path: markdown file to write (atomically).
      metric: primary metric; default ``primary_metric(dataset)`` (macro F1 for
        Caltech101, accuracy otherwise). The other metric gets a second table.
      figures: optional image paths to embed (relative to the report's folder
        when possible).
      title: heading; default "Results: <dataset>".
      warnings: lines shown in a "Warning" section above the tables (e.g.
        diverged grid points, whose records carry ``diverged`` and whose rows
        are marked DIVERGED).

    Returns:
      ``Path(out_path)``.

    Example:
      >>> render_report(records, dataset="mnist", out_path="runs/mnist/report.md")  # doctest: +SKIP
    """
    out_path = Path(out_path)
    metric = metric or primary_metric(dataset)
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_LABELS)}")
    records = sorted(records, key=_sort_key)
    is_paper = dataset in PAPER_DATASETS
    ds_label = DATASET_LABELS.get(dataset, dataset)

    clf_records = [r for r in records if r.get("classifiers")]
    names = {n for r in clf_records for n in r["classifiers"]}
    clf_names = [c for c in CLASSIFIERS if c in names] + sorted(names - set(CLASSIFIERS))

    lines = [f"# {title or f'Results: {ds_label}'}", ""]
    if warnings:
        lines += ["## Warning", ""] + [f"- {w}" for w in warnings] + [""]
    lines += [
        "Cells: mean ± half-width [low, high] of the 95% percentile interval over "
        "cross-validation folds (pooled over seeds where a run has several). "
        "Classifiers use scikit-learn defaults (paper, section 6).",
        "",
    ]
    if not is_paper:
        lines += [f"The paper reports no numbers for `{dataset}`; no paper column.", ""]

    if any(r.get("mode") == "untrained" for r in clf_records):
        lines += [
            "The untrained encoder row is each seed's initial parameters, before the first step: "
            "the reference a trained mode has to beat.",
            "",
        ]
    other = "f1_macro" if metric == "accuracy" else "accuracy"
    scalings = record_scalings(clf_records)
    tables = [(metric, sc) for sc in scalings] + [(other, scalings[0])] if clf_records else []
    for i, (m, sc) in enumerate(tables):
        heading = "Classification" if m == metric else "Secondary metric"
        scaled = f", {SCALING_LABELS.get(sc, sc)}" if len(scalings) > 1 or sc != "none" else ""
        lines += [f"## {heading}: {METRIC_LABELS[m]}{scaled}", ""]
        header = ["method", "seeds"] + [CLASSIFIER_LABELS.get(n, n) for n in clf_names]
        # The paper's protocol is unscaled: its column sits beside the raw table only.
        show_paper = is_paper and i == 0 and m == primary_metric(dataset) and sc == "none"
        if show_paper:
            header.append(f"paper MLP ({METRIC_LABELS[m]})")
        rows = []
        for r in clf_records:
            res = scaled_classifiers(r, sc) or {}
            row = [_row_label(r), _seeds_cell(r)]
            row += [_fmt(res.get(n, {}).get(m)) for n in clf_names]
            if show_paper:
                row.append(_paper_cell(dataset, r, "mlp"))
            rows.append(row)
        lines += _table(header, rows) + [""]
        if is_paper and i == 0 and m != primary_metric(dataset):
            lines += [
                f"(Paper column omitted: the paper reports {METRIC_LABELS[primary_metric(dataset)]} "
                f"for {ds_label}.)",
                "",
            ]

    if len(scalings) > 1:
        lines += [f"## Side by side: {METRIC_LABELS[metric]}, " + " / ".join(SCALING_SHORT.get(sc, sc) for sc in scalings), ""]
        rows = []
        for r in clf_records:
            row = [_row_label(r)]
            for n in clf_names:
                cells = [(scaled_classifiers(r, sc) or {}).get(n, {}).get(metric) for sc in scalings]
                row.append(" / ".join("—" if c is None else f"{c['mean']:.3f}" for c in cells))
            rows.append(row)
        lines += _table(["method"] + [CLASSIFIER_LABELS.get(n, n) for n in clf_names], rows) + [""]
        lines += [
            "Means over folds (and seeds). Scaled: a StandardScaler fitted on each training fold only "
            "(scikit-learn Pipeline); the paper mentions no scaling.",
            "",
        ]

    notes = []
    for r in clf_records:
        for n in clf_names:
            c = r["classifiers"].get(n, {}).get("convergence_warnings", 0)
            if c:
                notes.append(f"{_row_label(r)} / {CLASSIFIER_LABELS.get(n, n)}: {c} fits hit max_iter")
    if notes:
        lines += ["Convergence warnings (silenced during fitting): " + "; ".join(notes) + ".", ""]

    mi_records = [r for r in records if r.get("mi")]
    if mi_records:
        show_paper_mi = dataset in PAPER_RESULTS["table2"]["values"]
        lines += ["## Mutual information (section 7)", ""]
        baselines = all(r["mi"].get("corrected") for r in mi_records)
        header = ["method", "seeds", "MI (plug-in)"]
        if baselines:
            header += ["corrected", "pixel-permuted", "random neighbours"]
        header += ["unit", "samples", "k", "bins"]
        if show_paper_mi:
            header.append("paper MI (Table 2)")
        rows = []

        def cell(m):
            return _fmt({"mean": m.get("mi"), "low": m.get("low"), "high": m.get("high")})

        for r in mi_records:
            mi = r["mi"]
            row = [_row_label(r), _seeds_cell(r), cell(mi)]
            if baselines:
                row += [cell(mi["corrected"]), cell(mi["permuted"]), cell(mi["random_neighbours"])]
            row += [str(mi.get("unit", "nats")), str(mi.get("n_samples", "—")), str(mi.get("k", "—")),
                    str(mi.get("bins", "—"))]
            if show_paper_mi:
                row.append(_paper_cell(dataset, r, "mi"))
            rows.append(row)
        lines += _table(header, rows) + [""]
        lines += [
            "MI interval: percentiles over the sampled observations. The paper does not "
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

    purity_records = [r for r in records if r.get("purity")]
    if purity_records:
        k = purity_records[0]["purity"].get("k")
        lines += [f"## kNN label purity (k = {k})", ""]
        rows = []
        for r in purity_records:
            pur = r["purity"]
            per_seed = pur.get("per_seed")
            spread = r.get("latent_spread") or []
            rows.append([
                _row_label(r),
                _seeds_cell(r),
                f"{pur['purity']:.3f}" + (f" [{min(per_seed):.3f}, {max(per_seed):.3f}]" if per_seed else ""),
                f"{pur['chance']:.3f}",
                f"{np.mean(spread):.3g}" if spread else "—",
            ])
        lines += _table(["method", "seeds", "purity [seed min, max]", "chance", "latent spread"], rows) + [""]
        lines += [
            "Purity: share of each held-out observation's k nearest latent neighbours with its label "
            "(Euclidean, self excluded); chance: its value for random neighbours. Latent spread: mean "
            "over latent dimensions of the standard deviation across observations (purity ignores "
            "a common scale; unscaled classifiers do not).",
            "",
        ]

    traj_records = [r for r in records if r.get("trajectory")]
    if traj_records:
        epochs = sorted({t["epoch"] for r in traj_records for t in r["trajectory"]})
        t_scalings = record_scalings([t for r in traj_records for t in r["trajectory"]])
        t_names = [n for n in CLASSIFIERS if any(n in (t.get("classifiers") or {}) for r in traj_records
                                                  for t in r["trajectory"])]
        name = t_names[0] if t_names else None
        if name is not None:
            shown = " / ".join(SCALING_SHORT.get(sc, sc) for sc in t_scalings)
            lines += [f"## Along training: {CLASSIFIER_LABELS.get(name, name)} {METRIC_LABELS[metric]} "
                      f"({shown}), kNN purity", ""]
            rows = []
            for r in traj_records:
                by_epoch = {t["epoch"]: t for t in r["trajectory"]}
                row = [_row_label(r)]
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
            lines += _table(["method"] + [f"epoch {e}" for e in epochs], rows) + [""]
            lines += [
                "Each cell: the held-out latents after that epoch of the same run (epoch 0: the "
                "untrained encoder), mean over folds and seeds; after the semicolon, the kNN purity.",
                "",
            ]

    if figures:
        lines += ["## Figures", ""]
        for fpath in figures:
            fpath = Path(fpath)
            try:
                rel = fpath.resolve().relative_to(out_path.parent.resolve())
            except ValueError:
                rel = fpath
            lines += [f"![{fpath.stem}]({rel.as_posix()})", ""]

    _atomic_write_text(out_path, "\n".join(lines).rstrip() + "\n")
    return out_path
