"""Figures: Fig. 5 (score vs the Bernoulli probability p), Figs. 6-7 (t-SNE of the
latent space) and the held-out measures along training.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas,
never through ``pyplot``: nothing here switches the backend of the calling
process (a notebook keeps its own), no global figure list grows, and it works
headless. matplotlib is imported inside the functions so that importing this
module stays cheap. Other scripts draw through :func:`new_figure` and
:func:`save_png` for the same reasons.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from icrst_jax.evaluation import CLASSIFIERS
from icrst_jax.reporting.labels import CLASSIFIER_LABELS, METRIC_LABELS, MODE_LABELS, SCALING_SHORT
from icrst_jax.reporting.records import as_dict
from icrst_jax.reporting.rows import p_of, record_scalings, row_label, scaled_classifiers, sort_key


def new_figure(figsize, layout: str | None = "constrained"):
    """A ``Figure`` on its own Agg canvas (no pyplot); ``layout`` as ``Figure``'s."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path) -> Path:
    """Writes ``fig`` as a 120 dpi PNG (parent folders created); returns ``Path(path)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path


def tsne_embeddings(
    panels: Mapping[str, tuple],
    *,
    seed: int = 0,
    max_points: int = 2000,
    max_iter: int = 1000,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The t-SNE of each panel, as :func:`plot_tsne` draws them (no matplotlib).

    Each panel is subsampled to ``max_points`` points (uniformly without
    replacement, ``np.random.default_rng(seed)``) and projected to 2-D with
    scikit-learn's exact t-SNE, ``TSNE(init="pca", method="exact",
    random_state=seed)``, run for all panels as one compiled program
    (:func:`icrst_jax.tsne.tsne`). The perplexity is scikit-learn's default 30,
    lowered to ``(n - 1) / 3`` for panels with fewer than 91 points (it must be
    below the number of points).

    Args:
      panels: ordered mapping ``label -> (features (N, D), labels (N,))``.
      seed: subsampling and t-SNE seed.
      max_points: points per panel after subsampling.
      max_iter: t-SNE optimisation steps (scikit-learn's default 1000; at least 250).

    Returns:
      ``(label, embedding (n, 2), labels (n,))`` per panel, in order.
    """
    from icrst_jax.tsne import tsne

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
    embeddings = tsne([f for _, f, _ in prepared], seed=seed, max_iter=max_iter,
                      perplexity=[min(30.0, (f.shape[0] - 1) / 3.0) for _, f, _ in prepared])
    return [(label, emb, labs) for (label, _, labs), emb in zip(prepared, embeddings)]


def plot_tsne(
    panels: Mapping[str, tuple],
    path,
    *,
    seed: int = 0,
    max_points: int = 2000,
    max_iter: int = 1000,
    title: str | None = None,
    embedded: Sequence[tuple[str, np.ndarray, np.ndarray]] | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """t-SNE of latent spaces, one panel per training mode (Figs. 6 and 7).

    The panels' :func:`tsne_embeddings` (given as ``embedded`` when already
    computed, e.g. on another thread while other figures are drawn), coloured by
    class. Up to 20 classes get a shared legend; more (Caltech101) get a colorbar.

    Args:
      panels: ordered mapping ``label -> (features (N, D), labels (N,))``.
      path: PNG file to write.
      seed, max_points, max_iter: as in :func:`tsne_embeddings`.
      title: figure title.
      embedded: ``tsne_embeddings(panels, seed=..., max_points=..., max_iter=...)``, or None.
      class_names: the legend's name of label i (default: the label itself).

    Returns:
      ``Path(path)``.

    Example:
      >>> plot_tsne({"Standard": (z0, y), "ICRST p=1": (z1, y)}, "tsne.png")  # doctest: +SKIP
    """
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
    from matplotlib.ticker import MaxNLocator
    from matplotlib.lines import Line2D

    if embedded is None:
        embedded = tsne_embeddings(panels, seed=seed, max_points=max_points, max_iter=max_iter)
    classes = np.unique(np.concatenate([labs for _, _, labs in embedded]))
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

    n_pan = len(embedded)
    fig = new_figure((4.2 * n_pan + (1.6 if n_cls <= 20 else 0.8), 4.4))
    axes = fig.subplots(1, n_pan, squeeze=False)[0]
    for ax, (label, emb, labs) in zip(axes, embedded):
        idx = np.searchsorted(classes, labs)
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=idx, cmap=cmap, norm=norm, s=4, linewidths=0)
        ax.set_title(f"{label} (n={emb.shape[0]})")
        ax.set_xticks([])
        ax.set_yticks([])
    if n_cls <= 20:
        handles = [
            Line2D([], [], marker="o", linestyle="", color=colors[i],
                   label=str(class_names[int(c)]) if class_names and 0 <= int(c) < len(class_names) else str(c))
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
    return save_png(fig, path)


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
    records = [as_dict(r) for r in records]
    by_p: dict[float, Mapping] = {}
    for rec in records:
        if rec.get("mode") == "standard" and rec.get("classifiers"):
            by_p.setdefault(0.0, rec)
    for rec in records:
        if rec.get("mode") != mode or not rec.get("classifiers"):
            continue
        p = p_of(rec)
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


# The reference bands of :func:`plot_accuracy_vs_p`: their legend labels and (colour, dash).
STANDARD_BAND, UNTRAINED_BAND = "Standard (p = 0)", "untrained encoder"
REFERENCE_STYLES = {STANDARD_BAND: ("grey", "--"), UNTRAINED_BAND: ("C1", ":")}
OTHER_REFERENCE_STYLE = ("C2", "-.")


def references_from_records(records: Sequence[Mapping], *, metric: str = "accuracy") -> dict[str, dict]:
    """``{classifier: {label: (mean, low, high)}}`` of the Standard and untrained rows: the
    reference bands of :func:`plot_accuracy_vs_p`."""
    refs: dict[str, dict] = {}
    for rec in map(as_dict, records):
        if rec.get("mode") not in ("standard", "untrained") or not rec.get("classifiers"):
            continue
        label = STANDARD_BAND if rec["mode"] == "standard" else UNTRAINED_BAND
        for name, res in rec["classifiers"].items():
            s = res.get(metric)
            if s is not None:
                refs.setdefault(name, {})[label] = (float(s["mean"]), float(s["low"]), float(s["high"]))
    return refs


def plot_accuracy_vs_p(
    curves,
    path,
    *,
    metric: str = "accuracy",
    mode: str = "icrst",
    title: str | None = None,
    references: Mapping[str, Mapping] | None = None,
) -> Path:
    """Score vs the Bernoulli probability p, one panel per classifier (Fig. 5).

    Each panel: the mean at each p with thin caps for its 95% interval; the
    Standard run (p = 0: the same program) and the untrained encoder as
    labelled horizontal reference bands (their means, their intervals light);
    one y range for every panel, from the data.

    Args:
      curves: ``{classifier: [(p, mean, low, high), ...]}``, or a sequence of
        run records, converted with ``curves_from_records(records,
        metric=metric, mode=mode)`` (and their references with
        :func:`references_from_records`).
      path: PNG file to write.
      metric: score name for the y label (and for record selection).
      mode: training mode of the records (ignored for explicit curves).
      title: figure title.
      references: ``{classifier: {label: (mean, low, high)}}``, bands to draw.

    Returns:
      ``Path(path)``.

    Example:
      >>> plot_accuracy_vs_p({"mlp": [(0, .85, .83, .87), (1, .97, .96, .98)]}, "p.png")  # doctest: +SKIP
    """
    if not isinstance(curves, Mapping):
        references = references_from_records(curves, metric=metric) if references is None else references
        curves = curves_from_records(curves, metric=metric, mode=mode)
    if not curves:
        raise ValueError("no points to plot")
    references = references or {}
    n = len(curves)
    ncols = min(n, 2)
    fig = new_figure((4.2 * ncols + 1.8, 2.9 * math.ceil(n / ncols) + 0.5))
    axes = fig.subplots(math.ceil(n / ncols), ncols, squeeze=False, sharex=True, sharey=True).ravel()
    ps = sorted({float(pt[0]) for pts in curves.values() for pt in pts})
    for ax, (name, pts) in zip(axes, curves.items()):
        arr = np.asarray(sorted(pts), dtype=np.float64).reshape(-1, 4)
        _reference_bands(ax, references.get(name, {}), ps)
        ax.errorbar(arr[:, 0], arr[:, 1], yerr=[arr[:, 1] - arr[:, 2], arr[:, 3] - arr[:, 1]], marker="o",
                    color="C0", capsize=3, linewidth=1.6, elinewidth=0.8,
                    label=f"{MODE_LABELS.get(mode, mode)} at p (p = 0: the Standard run)")
        ax.set_title(CLASSIFIER_LABELS.get(name, name), fontsize="medium")
        ax.set_xticks(ps)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    _keep_the_curves_readable(axes[:n], curves, references)
    for ax in axes[:n]:
        if ax.get_subplotspec().is_last_row() or ax is axes[n - 1]:
            ax.set_xlabel("p (probability of a random partner)")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small",
               title="mean; bars and bands:\n95% interval of the mean", title_fontsize="small")
    if title:
        fig.suptitle(title)
    return save_png(fig, path)


# A reference band farther from the curves than this many times their own y extent is named at
# the panel's edge instead of stretching the shared y range (it would flatten the differences
# between p values into a sliver of the panel).
FAR_REFERENCE = 1.0


def _keep_the_curves_readable(axes, curves: Mapping, references: Mapping) -> None:
    """The y range of the curves and the Standard band; a reference band far outside it is named at
    the edge of its panel (an arrow, its mean and interval), not drawn into the range."""
    near = [v for pts in curves.values() for pt in pts for v in pt[1:]]
    near += [v for refs in references.values() for v in refs.get(STANDARD_BAND, ())]
    lo, hi = min(near), max(near)
    span = max(hi - lo, 0.02)
    far = {name: {label: band for label, band in refs.items()
                  if band[2] < lo - FAR_REFERENCE * span or band[1] > hi + FAR_REFERENCE * span}
           for name, refs in references.items()}
    if not any(far.values()):
        return
    axes[0].set_ylim(lo - 0.1 * span, hi + 0.1 * span)  # shared by every panel
    for ax, name in zip(axes, curves):
        for label, (mean, low, high) in far.get(name, {}).items():
            below = high < lo
            ax.annotate(f"{'↓' if below else '↑'} {label} {mean:.3f} [{low:.3f}, {high:.3f}]",
                        xy=(0.5, 0.0 if below else 1.0), xycoords="axes fraction", xytext=(0, 3 if below else -3),
                        textcoords="offset points", ha="center", va="bottom" if below else "top",
                        fontsize="small", color=REFERENCE_STYLES.get(label, OTHER_REFERENCE_STYLE)[0])


def _reference_bands(ax, refs: Mapping[str, tuple], ps: Sequence[float]) -> None:
    """The Standard and untrained rows as horizontal lines with light interval bands across the p range."""
    for label, (mean, low, high) in refs.items():
        color, dash = REFERENCE_STYLES.get(label, OTHER_REFERENCE_STYLE)
        ax.axhspan(low, high, color=color, alpha=0.15, linewidth=0)
        ax.axhline(mean, color=color, linestyle=dash, linewidth=1.2, label=label)


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
    records have it (band: 95% interval of the mean over samples) and the latent spread
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
    from matplotlib.ticker import MaxNLocator

    recs = _one_per_program(sorted((r for r in map(as_dict, records) if r.get("trajectory")), key=sort_key))
    if not recs:
        raise ValueError("no record has a trajectory (set eval.at_epochs)")
    entries = [t for r in recs for t in r["trajectory"]]
    panels = _epoch_panels(entries, metric, classifier)
    # Every panel filled: 4 as 2 x 2, up to 5 in one row, more in rows of 3.
    ncols = 2 if len(panels) == 4 else len(panels) if len(panels) <= 5 else 3
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure((3.6 * ncols, 3.0 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = colormaps["tab10"](np.arange(10))
    span = max((float(t["epoch"]) for t in entries), default=1.0) or 1.0
    shift = (np.arange(len(recs)) - (len(recs) - 1) / 2) * 0.01 * span
    for ax, (label, value, log) in zip(axes, panels):
        _draw_epoch_panel(ax, recs, value, shift, colors)
        if label.startswith("kNN"):
            chance = next(t["purity"]["chance"] for t in entries if t.get("purity"))
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance (random neighbours)")
        if log:
            ax.set_yscale("log")
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a few epochs: no 0.5-epoch ticks
        ax.set_ylabel(label.split(",")[0].split(" (")[0])
        ax.grid(alpha=0.3)
    _share_score_range([ax for ax, (label, _, _) in zip(axes, panels) if label.startswith(_score_name(
        classifier, metric))])
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles, labels = {}, {}
    for ax in axes[:len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 3),
               fontsize="small", title="bars: 95% interval of the mean (scores, MI), lowest to highest seed "
               "(purity, spread); epoch 0: the untrained encoder", title_fontsize="small")
    if title:
        fig.suptitle(title)
    return save_png(fig, path)


def _score_name(classifier: str, metric: str) -> str:
    return f"{CLASSIFIER_LABELS.get(classifier, classifier)} {METRIC_LABELS[metric]}"


def _share_score_range(axes) -> None:
    """One y range for the score panels (raw and standardised latents read against each other)."""
    if len(axes) < 2:
        return
    low = min(ax.get_ylim()[0] for ax in axes)
    high = max(ax.get_ylim()[1] for ax in axes)
    for ax in axes:
        ax.set_ylim(low, high)


def _one_per_program(recs: Sequence[Mapping]) -> list[Mapping]:
    """Records that are one program drawn once: Standard, ICRST p=0 and TRST p=0 train the same
    autoencoders (no partner is ever swapped), so they are one line carrying all their names."""
    same = [r for r in recs if r.get("mode") == "standard" or (r.get("mode") in ("icrst", "trst")
                                                                and r.get("p") is not None and p_of(r) == 0.0)]
    if len(same) < 2 or not any(r.get("mode") == "standard" for r in same):
        return list(recs)
    merged = dict(same[0], label=" = ".join(row_label(r) for r in same))
    return [merged] + [r for r in recs if all(r is not s for s in same)]


def _epoch_panels(entries: Sequence[Mapping], metric: str, classifier: str) -> list[tuple]:
    """:func:`plot_vs_epochs`'s panels as ``(title, value, log scale)``, ``value(entry)``
    giving (mean, low, high) or None: a score per scaling, then what the entries have
    of purity, corrected MI and latent spread."""
    score = _score_name(classifier, metric)
    panels = [
        (f"{score}, {SCALING_SHORT.get(sc, sc)} latents",
         functools.partial(_score_at, scaling=sc, classifier=classifier, metric=metric), False)
        for sc in record_scalings(entries)
    ]
    if any(t.get("purity") for t in entries):
        k = next(t["purity"]["k"] for t in entries if t.get("purity"))
        panels.append((f"kNN label purity (k = {k})", _purity_at, False))
    if any((t.get("mi") or {}).get("corrected") for t in entries):
        panels.append(("MI, corrected (nats)", _mi_at, False))
    if any(t.get("latent_spread") for t in entries):
        panels.append(("latent spread (mean std per dim)", _spread_at, True))
    return panels


def _score_at(t: Mapping, *, scaling: str, classifier: str, metric: str):
    s = (scaled_classifiers(t, scaling) or {}).get(classifier, {}).get(metric)
    return None if s is None else (s["mean"], s["low"], s["high"])


def _purity_at(t: Mapping):
    p = t.get("purity")
    if not p:
        return None
    seeds = p.get("per_seed") or [p["purity"]]
    return p["purity"], min(seeds), max(seeds)


def _mi_at(t: Mapping):
    c = (t.get("mi") or {}).get("corrected")
    return None if c is None else (c["mi"], c["low"], c["high"])


def _spread_at(t: Mapping):
    v = t.get("latent_spread")
    return None if not v else (float(np.mean(v)), min(v), max(v))


def _draw_epoch_panel(ax, recs: Sequence[Mapping], value, shift, colors) -> None:
    """One line per record of ``value`` against the epochs, each with its own colour, marker,
    dash and sideways ``shift``, and thin error bars."""
    markers, dashes = "osD^v<>Ph*", ("-", "--", "-.", ":")
    for j, r in enumerate(recs):
        arr = _trajectory_series(r, value)
        if not len(arr):
            continue
        c = colors[j % 10]
        arr[:, 0] += shift[j]
        ax.plot(arr[:, 0], arr[:, 1], marker=markers[j % len(markers)], ms=4, color=c,
                linestyle=dashes[j % len(dashes)], label=row_label(r))
        # Thin error bars, not bands: seven overlapping bands blend into one block.
        ax.errorbar(arr[:, 0], arr[:, 1], yerr=[arr[:, 1] - arr[:, 2], arr[:, 3] - arr[:, 1]], fmt="none",
                    ecolor=c, elinewidth=0.8, capsize=2, alpha=0.7)
