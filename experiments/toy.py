"""The paper's manifold pictures (section 5, Figs. 1-4) on a 2-D toy set.

    python -m experiments.toy --out runs/toy            # three models, a few CPU seconds each
    python -m experiments.toy --out runs/toy --no-standard --epochs 100

Section 5 argues with pictures: a denoising autoencoder's vector field
``f(g(x)) - x`` pulls a point to the nearest point of the data manifold
(Figs. 1 and 3), while an ICRST-trained one drags each class's manifold toward
its class mean near the data (eq. 8: ``E_{x~p_j}[f(g(x))] = mu_j``; eq. 12: a
penalty on ``f(g(x))`` times the distance of ``x`` from ``mu_j``) and acts like
the DAE from afar (Fig. 4).

The toy set: ``classes`` arcs of one circle (centre (0.5, 0.5), radius 0.38, so
the points lie in about [0.1, 0.9]^2: the decoder ends in a sigmoid and the
targets must lie in [0, 1]), each arc spanning 100 degrees with 20-degree gaps
between arcs, plus a little Gaussian noise. A class mean lies inside the circle,
off its own arc: a model that maps the arc onto the mean is visibly not
reconstructing the manifold.

The model: the project's ``mlp`` (Table D1 layout, LeakyReLU, sigmoid output)
at ``width`` (hidden layers of ``round(64 * width)`` units) with a **1-unit
bottleneck** (``ModelConfig.latent_size=1``). Each class lies on a curve, a
1-D manifold, in a 2-D space: a 1-unit code is the undercomplete choice that
matches the manifold's dimension, so the standard autoencoder cannot learn the
identity and the DAE has to learn the curve. (Table D1's 8-unit bottleneck is
wider than the 2-D input, and ``width`` alone cannot give 1 unit without also
shrinking the hidden layers to 8 units, too few to fit the arcs.) The ``mlp``
has neither BatchNorm nor dropout (only the conv models do), so the toy model
is a deterministic function of its parameters: the fields show what was
learned, not dropout noise, and ``dropout=0`` is set to say so.

All models train with the project's engine (:func:`icrst_jax.train.fit`, with
its on-device pairing): ``dae`` (Gaussian noise of ``dae_sigma`` on the
standardised encoder input, clean target), ``icrst`` with p = 1 (target a
uniform sample of the same class) and ``standard`` (target = input). The
encoder sees the standardised points, as the library does for every data set;
the fields are ``reconstruct(x) - x`` in the unit-scale plane of the targets.

Outputs in ``--out``: ``vector_field.png`` (one row per model, far and close
panels), ``vector_field.npz`` (see :func:`run_toy`) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

# The package's modules, scipy, matplotlib and PIL are imported where they are used
# (start-up time): --help and a bad flag answer without loading jax.

#: The models drawn, top to bottom; ``standard`` is optional.
MODEL_ORDER = ("dae", "icrst", "standard")

CIRCLE_CENTRE = (0.5, 0.5)
CIRCLE_RADIUS = 0.38
ARC_SPAN_DEG = 100.0
ARC_GAP_DEG = 20.0
FIRST_ARC_DEG = -60.0


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """Everything ``experiments.toy`` decides.

    Attributes:
      classes: number of arcs (2 or 3; three 100-degree arcs with 20-degree
        gaps fill the circle but one gap, so a 1-D code can trace them all).
      per_class: training points per class.
      noise: standard deviation of the Gaussian noise added to the points.
      width: ``mlp`` width multiplier (hidden layers ``round(64 * width)``).
      latent_size: bottleneck units (1: undercomplete for 2-D data).
      epochs, batch_size, learning_rate: training (Adam, as the library).
      dae_sigma: DAE noise in standardised encoder-input units.
      standard: also train and draw the standard autoencoder.
      far: the far grid spans the data centre +- ``far`` times the data's
        half-extent (``far`` > 1 reaches well beyond the data).
      far_steps, close_steps: grid points per side of the far / close grid.
      seed: data and training seed.
    """

    classes: int = 3
    per_class: int = 1000
    noise: float = 0.01
    width: float = 0.5
    latent_size: int = 1
    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 3e-3
    dae_sigma: float = 0.3
    standard: bool = True
    far: float = 3.0
    far_steps: int = 15
    close_steps: int = 15
    seed: int = 0

    def __post_init__(self):
        if self.classes not in (2, 3):
            raise ValueError(f"classes must be 2 or 3, got {self.classes}")
        if self.per_class < 2:
            raise ValueError(f"per_class must be >= 2, got {self.per_class}")
        if not self.noise >= 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not self.far > 1:
            raise ValueError(f"far must be > 1 (beyond the data), got {self.far}")
        if self.far_steps < 3 or self.close_steps < 3:
            raise ValueError("far_steps and close_steps must be >= 3")
        # epochs, batch size, learning rate, width, dae_sigma, latent_size are
        # checked by TrainConfig / ModelConfig.
        self.train_config("standard")

    def train_config(self, mode: str):
        from icrst_jax.config import ModelConfig, TrainConfig

        model = ModelConfig(name="mlp", width=self.width, latent_size=self.latent_size, dropout=0.0, batch_norm=False)
        # One device: the toy batch is tiny and splitting it over devices only adds work.
        return TrainConfig(
            mode=mode, p=1.0, epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            dae_sigma=self.dae_sigma, num_devices=1, seed=self.seed, model=model,
        )

    @property
    def modes(self) -> tuple[str, ...]:
        return MODEL_ORDER if self.standard else MODEL_ORDER[:2]


def make_toy_data(classes: int = 3, per_class: int = 1000, noise: float = 0.01, seed: int = 0):
    """Points on ``classes`` arcs of one circle, labelled by arc.

    Returns:
      points (N, 2) float32 in about [0.1, 0.9]^2 (clipped to [0, 1], the
      sigmoid's range), labels (N,) int32 in 0..classes-1, N = classes * per_class.
    """
    rng = np.random.default_rng(seed)
    pts, labels = [], []
    for c in range(classes):
        start = np.deg2rad(FIRST_ARC_DEG + c * (ARC_SPAN_DEG + ARC_GAP_DEG))
        angle = start + rng.uniform(0.0, np.deg2rad(ARC_SPAN_DEG), per_class)
        p = np.asarray(CIRCLE_CENTRE) + CIRCLE_RADIUS * np.c_[np.cos(angle), np.sin(angle)]
        pts.append(p + noise * rng.normal(size=p.shape))
        labels.append(np.full(per_class, c, np.int32))
    return np.clip(np.concatenate(pts), 0.0, 1.0).astype(np.float32), np.concatenate(labels)


def class_means(points, labels) -> np.ndarray:
    """(C, 2) mean of each class, in the order of ``np.unique(labels)``."""
    return np.stack([points[labels == c].mean(0) for c in np.unique(labels)]).astype(np.float32)


def distance_to_class_mean(recon, labels, means) -> np.ndarray:
    """(C,) mean Euclidean distance of each class's reconstructions from its class mean (Fig. 2)."""
    return np.array(
        [np.linalg.norm(recon[labels == c] - means[i], axis=1).mean() for i, c in enumerate(np.unique(labels))],
        np.float64,
    )


def grids(points, far: float, far_steps: int, close_steps: int):
    """The far grid (centre +- ``far`` half-extents) and the close grid (the data's bounding box).

    Returns:
      (far_grid (Gf, 2), close_grid (Gc, 2), centre (2,), half (2,)) where
      ``half`` is the bounding box's half-extent.
    """
    lo, hi = points.min(0), points.max(0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2

    def square(h, n):
        axes = [np.linspace(centre[d] - h[d], centre[d] + h[d], n) for d in range(2)]
        xx, yy = np.meshgrid(*axes)
        return np.c_[xx.ravel(), yy.ravel()].astype(np.float32)

    return square(far * half, far_steps), square(half, close_steps), centre.astype(np.float32), half.astype(np.float32)


def outer_ring(grid, centre, tol: float = 1e-6) -> np.ndarray:
    """Boolean mask of the points on the border of a square grid around ``centre``."""
    d = np.abs(grid - centre)
    return np.any(d >= d.max(0) - tol, axis=1)


def mean_cosine(field, grid, target) -> float:
    """Mean cosine between ``field`` and the direction from each grid point to ``target``."""
    inward = target - grid
    num = np.sum(field * inward, axis=1)
    den = np.linalg.norm(field, axis=1) * np.linalg.norm(inward, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


def sigmoid_cosine_bound(grid, target) -> float:
    """The mean cosine :func:`mean_cosine` gives for *any* model whose outputs
    lie in [0, 1]^2 (the sigmoid's range), at its worst: per grid point the
    least cosine over the square's corners (the widest angle to a convex set
    from outside is reached at a vertex). A far field pointing inward is
    evidence of learning only above this bound."""
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    inward = target - grid
    worst = []
    for c in corners:
        v = c - grid
        norms = np.linalg.norm(v, axis=1) * np.linalg.norm(inward, axis=1)
        worst.append(np.sum(v * inward, axis=1) / np.maximum(norms, 1e-12))
    return float(np.mean(np.min(worst, axis=0)))


def nearest_distance(queries, points) -> np.ndarray:
    """Distance from each query to its nearest point."""
    from scipy.spatial import cKDTree

    return cKDTree(points).query(queries)[0]


def unit_square_landing(points, steps: int = 41) -> float:
    """Mean distance from a uniform grid over [0, 1]^2 to the nearest training
    point: where a model that merely stays inside the sigmoid's range, with no
    knowledge of the data, would put a far point on average."""
    axis = np.linspace(0.0, 1.0, steps)
    xx, yy = np.meshgrid(axis, axis)
    return float(nearest_distance(np.c_[xx.ravel(), yy.ravel()], points).mean())


def pairwise_cosine(a, b) -> float:
    """Mean cosine between two fields on the same points."""
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


def _sparse_progress(say: Callable[[str], None], mode: str, epochs: int, lines: int = 4) -> Callable[[str], None]:
    """Forwards ``fit``'s progress lines tagged with the mode: the compile line
    and every (epochs / lines)-th epoch line (hundreds of tiny epochs would
    bury the results)."""
    every = max(1, epochs // lines)
    seen = [0]

    def progress(line: str) -> None:
        if "samples/s" in line:  # an epoch line
            seen[0] += 1
            if seen[0] % every and seen[0] != epochs:
                return
        say(f"[{mode}] {line.strip()}")

    return progress


@dataclasses.dataclass(frozen=True)
class _Scene:
    """The toy data and the grids the fields are drawn on (see :func:`run_toy`'s arrays)."""

    points: np.ndarray
    labels: np.ndarray
    means: np.ndarray  # class means, in the order of np.unique(labels)
    far_grid: np.ndarray
    close_grid: np.ndarray
    grid: np.ndarray  # the far grid then the close grid
    grid_far: np.ndarray  # marks the far grid's points in grid
    ring: np.ndarray  # the far grid's outer ring
    data_centre: np.ndarray

    @property
    def mean_std(self):
        """The encoder-input statistics: the points' mean and std per axis."""
        return self.points.mean(0), self.points.std(0)


def _scene(cfg: ToyConfig) -> _Scene:
    points, labels = make_toy_data(cfg.classes, cfg.per_class, cfg.noise, cfg.seed)
    far_grid, close_grid, centre, half = grids(points, cfg.far, cfg.far_steps, cfg.close_steps)
    return _Scene(
        points=points, labels=labels, means=class_means(points, labels), far_grid=far_grid, close_grid=close_grid,
        grid=np.concatenate([far_grid, close_grid]),
        grid_far=np.r_[np.ones(len(far_grid), bool), np.zeros(len(close_grid), bool)],
        ring=outer_ring(far_grid, centre), data_centre=points.mean(0),
    )


def _train_model(cfg: ToyConfig, scene: _Scene, mode: str, say: Callable[[str], None], engine=None):
    """Trains one model; returns its statistics, its reconstructions of the
    points, its field on the grid, its per-class distances from the class means
    and its engine. ``engine``: an earlier model's, whose compiled programs this
    one reuses (mode is data to the epoch: DAE's noise engine gives the other
    modes exact inputs, sigma 0), so the toy compiles once, not once per model."""
    from icrst_jax.train import fit, reconstruct

    t0 = time.perf_counter()
    mean, std = scene.mean_std
    points, grid = scene.points, scene.grid
    result = fit(cfg.train_config(mode), points, scene.labels, mean=mean, std=std,
                 progress=_sparse_progress(say, mode, cfg.epochs), engine=engine)
    # One call (one compiled shape) for the training points and the grid.
    out_all = reconstruct(result.engine, result.state, np.concatenate([points, grid]), mean=mean, std=std)[0]
    recon, field = out_all[: len(points)], out_all[len(points):] - grid
    dist = distance_to_class_mean(recon, scene.labels, scene.means)
    far_ring = scene.far_grid[scene.ring]
    stats = {
        "final_loss": float(result.final_loss[0]),
        "dist_to_mean": dist.tolist(),
        "dist_to_point": float(np.linalg.norm(recon - points, axis=1).mean()),
        "far_ring_cosine": mean_cosine(field[scene.grid_far][scene.ring], far_ring, scene.data_centre),
        # Where the far points land: on the data (a sink, Fig. 3a) or just
        # somewhere in the sigmoid's square.
        "far_ring_landing": float(nearest_distance(field[scene.grid_far][scene.ring] + far_ring, points).mean()),
        "seconds": time.perf_counter() - t0,
    }
    say(
        f"[{mode}] loss {stats['final_loss']:.5f}  |f(g(x)) - mu_c| per class "
        + " ".join(f"{d:.3f}" for d in dist)
        + f"  |f(g(x)) - x| {stats['dist_to_point']:.3f}  far ring: cosine {stats['far_ring_cosine']:.3f},"
        + f" lands {stats['far_ring_landing']:.3f} from the data"
        + f"  ({stats['seconds']:.1f}s)"
    )
    return stats, recon, field, dist, result.engine


def _say_comparison(say: Callable[[str], None], arrays: dict, summary: dict) -> None:
    """The Fig. 2 distances of every model, and how the DAE's and ICRST's far fields compare."""
    say(
        "Fig. 2: distance of the reconstructions from their class mean, per class: points "
        + " ".join(f"{d:.3f}" for d in arrays["dist_to_mean_points"])
        + " | DAE " + " ".join(f"{d:.3f}" for d in arrays["dist_to_mean_dae"])
        + " | ICRST " + " ".join(f"{d:.3f}" for d in arrays["dist_to_mean_icrst"])
    )
    say(
        f"far ring ({summary['far_ring_points']} points): cosine between the DAE and ICRST fields "
        f"{summary['far_ring_cosine_dae_vs_icrst']:.3f}; any sigmoid-bounded model gives a cosine with the "
        f"inward direction >= {summary['far_ring_cosine_sigmoid_bound']:.3f} and lands on average "
        f"{summary['unit_square_landing']:.3f} from the data"
    )


def run_toy(cfg: ToyConfig, out: str | Path | None = None, *, progress: Callable[[str], None] | None = None) -> dict:
    """Trains the toy models, computes the fields, writes the figure and arrays.

    ``vector_field.npz`` holds ``points`` (N, 2), ``labels`` (N,),
    ``class_means`` (C, 2) in the order of ``np.unique(labels)``, ``grid``
    (G, 2) (the far grid then the close grid; ``grid_far`` (G,) marks the far
    points), and per model m in ``models``: ``recon_m`` (N, 2) f(g(x)) on the
    training points, ``field_m`` (G, 2) f(g(x)) - x on the grid and
    ``dist_to_mean_m`` (C,) the mean distance of each class's reconstructions
    from its class mean; ``dist_to_mean_points`` (C,) is the same for the
    points themselves (what a perfect reconstruction gives).

    Returns:
      The summary (also ``summary.json``): per-class distances, outer-ring
      cosines, losses and seconds.
    """
    say = progress or (lambda line: None)
    t_start = time.perf_counter()
    s = _scene(cfg)
    say(
        f"toy data: {len(s.points)} points on {cfg.classes} arcs (noise {cfg.noise:g}), "
        f"far grid {len(s.far_grid)} points (+-{cfg.far:g} half-extents), close grid {len(s.close_grid)} points"
    )
    arrays = {"points": s.points, "labels": s.labels, "class_means": s.means, "grid": s.grid, "grid_far": s.grid_far,
              "dist_to_mean_points": distance_to_class_mean(s.points, s.labels, s.means)}
    summary = {
        "config": dataclasses.asdict(cfg), "models": list(cfg.modes),
        "dist_to_mean_points": arrays["dist_to_mean_points"].tolist(),
        "far_ring_points": int(s.ring.sum()),
        "far_ring_cosine_sigmoid_bound": sigmoid_cosine_bound(s.far_grid[s.ring], s.data_centre),
        "unit_square_landing": unit_square_landing(s.points),
        "per_model": {},
    }
    engine = None  # the first model's (dae: it draws the input noise), shared by the others
    for mode in cfg.modes:
        stats, arrays[f"recon_{mode}"], arrays[f"field_{mode}"], arrays[f"dist_to_mean_{mode}"], engine = \
            _train_model(cfg, s, mode, say, engine)
        summary["per_model"][mode] = stats
    summary["far_ring_cosine_dae_vs_icrst"] = pairwise_cosine(
        arrays["field_dae"][s.grid_far][s.ring], arrays["field_icrst"][s.grid_far][s.ring]
    )
    _say_comparison(say, arrays, summary)
    summary["seconds"] = time.perf_counter() - t_start

    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "vector_field.npz", **arrays)
        plot_vector_field(arrays, cfg.modes, s.far_grid, s.close_grid, out / "vector_field.png")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        from icrst_jax.reporting.toy import render_toy

        (out / "report.md").write_text(render_toy(summary))
        say(f"wrote {out / 'vector_field.png'}, {out / 'vector_field.npz'}, {out / 'summary.json'}, "
            f"{out / 'report.md'}")
    summary["arrays"] = arrays
    return summary


def plot_vector_field(arrays: dict, modes, far_grid, close_grid, path) -> None:
    """One row per model: the field from far and from close (arrows give the
    direction of f(g(x)) - x, their colour its length), with the training
    points by class, the class means and, from close, the reconstructions
    f(g(x)) of the training points and their mean distance from the class mean."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    from icrst_jax.reporting import new_figure
    from icrst_jax.reporting.toy import MODEL_LABELS

    points, labels, means = arrays["points"], arrays["labels"], arrays["class_means"]
    # At most 400 drawn points per class: as readable, and a much smaller PNG.
    rng = np.random.default_rng(0)
    shown = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:400] for c in np.unique(labels)])
    classes = np.unique(labels)
    colours = colormaps["tab10"](np.arange(len(classes)))
    far_mask = arrays["grid_far"]
    nf = int(far_mask.sum())
    fig = new_figure((9.0, 4.1 * len(modes)), layout=None)  # tight_layout below leaves room for the legend
    axes = fig.subplots(len(modes), 2, squeeze=False)
    for row, mode in zip(axes, modes):
        field = arrays[f"field_{mode}"]
        dist = arrays[f"dist_to_mean_{mode}"]
        for ax, where in zip(row, ("far", "close")):
            g, f = (far_grid, field[:nf]) if where == "far" else (close_grid, field[nf:])
            for i, c in enumerate(classes):
                sel = shown[labels[shown] == c]
                ax.scatter(*points[sel].T, s=4, color=colours[i], alpha=0.5, linewidths=0, zorder=1)
            # Directions only, coloured by length: the lengths span an order of
            # magnitude (a few long arrows would dwarf the rest), and the
            # reconstructions drawn on the close panel show where points land.
            step = float(np.min(np.diff(np.unique(g[:, 0]))))
            length = np.linalg.norm(f, axis=1)
            unit = f / np.maximum(length, 1e-12)[:, None]
            q = ax.quiver(*g.T, *unit.T, length, cmap="viridis", angles="xy", scale_units="xy",
                          scale=1 / (0.75 * step), pivot="tail", width=0.006, zorder=2)
            cb = fig.colorbar(q, ax=ax, fraction=0.046, pad=0.03)
            cb.set_label("|f(g(x)) - x|")
            if where == "close":
                ax.scatter(*arrays[f"recon_{mode}"][shown].T, s=4, color="k", zorder=5)  # above the means
                ax.text(
                    0.02, 0.02, "mean |f(g(x)) - $\\mu_c$|: " + ", ".join(f"{d:.3f}" for d in dist),
                    transform=ax.transAxes, fontsize=8, va="bottom",
                    bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9), zorder=6,
                )
            title = "from far" if where == "far" else "from close (the data's bounding box)"
            ax.scatter(*means.T, marker="X", s=130, c=colours, edgecolors="k", linewidths=1.2, zorder=4)
            ax.set_title(f"{MODEL_LABELS[mode]}: {title}", fontsize=10)
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
            ax.set_aspect("equal")
            lo, hi = g.min(0), g.max(0)
            pad = 0.06 * (hi - lo)
            ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
            ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    handles = [Line2D([], [], ls="", marker="o", color=colours[i], label=f"class {c}") for i, c in enumerate(classes)]
    handles += [
        Line2D([], [], ls="", marker="X", markersize=10, markerfacecolor="w", markeredgecolor="k",
               label="class mean $\\mu_c$"),
        Line2D([], [], ls="", marker="o", markersize=4, color="k", label="f(g(x)) of the training points"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle("Vector field f(g(x)) - x of a 1-unit-bottleneck autoencoder on a 2-D toy set (paper Figs. 3-4)\n"
                 "arrows: direction; colour: length", fontsize=11)
    fig.tight_layout(rect=(0, 0.035, 1, 0.97))
    # A 256-colour palette PNG: a third of the RGBA file's size with no visible
    # change (a plot has few distinct colours), small enough to ship in docs/.
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(256).save(path, optimize=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    d = ToyConfig()
    ap = _Parser(
        prog="python -m experiments.toy",
        description=(
            "Train a 1-unit-bottleneck MLP autoencoder on 2-D arcs as a DAE, with ICRST (p = 1) and as a "
            "standard autoencoder, and draw the vector field f(g(x)) - x from far and from close (the paper's "
            "Figs. 3-4). Writes vector_field.png, vector_field.npz and summary.json into --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--classes", type=int, default=d.classes, choices=(2, 3), help="number of arcs (classes)")
    ap.add_argument("--per-class", type=int, default=d.per_class, help="training points per class")
    ap.add_argument("--noise", type=float, default=d.noise, help="Gaussian noise std of the points (unit scale)")
    ap.add_argument("--width", type=float, default=d.width, help="mlp width (hidden layers round(64 * width))")
    ap.add_argument("--latent-size", type=int, default=d.latent_size, help="bottleneck units")
    ap.add_argument("--epochs", type=int, default=d.epochs, help="training epochs")
    ap.add_argument("--batch-size", type=int, default=d.batch_size, help="batch size")
    ap.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate")
    ap.add_argument("--dae-sigma", type=float, default=d.dae_sigma, help="DAE noise std, standardised input units")
    ap.add_argument("--no-standard", action="store_true", help="train and draw only the DAE and ICRST")
    ap.add_argument("--far", type=float, default=d.far, help="far grid: data centre +- FAR bounding-box half-extents")
    ap.add_argument("--seed", type=int, default=d.seed, help="data and training seed")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        cfg = ToyConfig(
            classes=args.classes, per_class=args.per_class, noise=args.noise, width=args.width,
            latent_size=args.latent_size, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.lr, dae_sigma=args.dae_sigma, standard=not args.no_standard,
            far=args.far, seed=args.seed,
        )
        summary = run_toy(cfg, args.out, progress=say)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = summary["per_model"]
    print(
        "distance of f(g(x)) from its class mean, per class: DAE "
        + " ".join(f"{v:.3f}" for v in d["dae"]["dist_to_mean"])
        + ", ICRST " + " ".join(f"{v:.3f}" for v in d["icrst"]["dist_to_mean"])
        + f"; far-ring cosine DAE {d['dae']['far_ring_cosine']:.3f}, ICRST {d['icrst']['far_ring_cosine']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
