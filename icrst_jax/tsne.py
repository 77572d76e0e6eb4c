"""scikit-learn's exact t-SNE as one compiled program over the panels of a figure.

``TSNE(init="pca", method="exact")`` spends its time in a numpy loop of 1,000
gradient steps, each O(n^2); the study's t-SNE figure runs it once per panel.
Here the affinities ``P`` (a binary search per point) and the PCA start are
scikit-learn's own, computed on the host, and the 1,000 steps run as one jitted
program vmapped over the panels, on whatever device JAX has.

The optimiser is scikit-learn's ``_gradient_descent`` with its ``_kl_divergence``
objective (``sklearn/manifold/_t_sne.py``): Student-t similarities with one
degree of freedom, gradient ``4 sum_j (p_ij - q_ij) w_ij (y_i - y_j)``,
per-coordinate gains (+0.2 where the update and gradient disagree in sign, x0.8
elsewhere, at least 0.01), 250 steps at momentum 0.5 with ``P`` exaggerated 12x,
then momentum 0.8 with fresh gains and update, a KL check every 50 steps (stop
after ``n_iter_without_progress`` steps without improvement) and a stop when the
gradient norm falls to ``min_grad_norm``. The embedding is float32 as in
scikit-learn; under ``jax.enable_x64`` the distances and ``P`` are float64 as
there, and a few hundred steps reproduce scikit-learn's embedding
(``tests/test_tsne.py``); in float32 (the default) the result is the same
algorithm with a rounding that t-SNE's chaotic late steps amplify, so it is
compared by its KL divergence and trustworthiness instead.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

EARLY_EXAGGERATION = 12.0
EXPLORATION_STEPS = 250  # TSNE._EXPLORATION_MAX_ITER
CHECK_EVERY = 50  # TSNE._N_ITER_CHECK
MIN_GAIN = 0.01
MIN_GRAD_NORM = 1e-7
N_ITER_WITHOUT_PROGRESS = 300
MACHINE_EPSILON = float(np.finfo(np.float64).eps)


def affinities(x: np.ndarray, perplexity: float) -> np.ndarray:
    """scikit-learn's joint probabilities ``P`` of ``x (n, D)`` as a square ``(n, n)`` float64 matrix."""
    from scipy.spatial.distance import squareform
    from sklearn.manifold._t_sne import _joint_probabilities
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(x, metric="euclidean", squared=True)
    return squareform(_joint_probabilities(distances, perplexity, 0))


def pca_start(x: np.ndarray, seed: int) -> np.ndarray:
    """``TSNE(init="pca", random_state=seed)``'s start: 2 PCA components scaled so the first has std 1e-4."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=np.random.RandomState(seed))
    pca.set_output(transform="default")
    y0 = pca.fit_transform(x).astype(np.float32, copy=False)
    return y0 / np.std(y0[:, 0]) * 1e-4


def _similarities(y: jax.Array, wide) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(w, q, off)`` of ``y (n, 2)``: Student-t kernel ``1 / (1 + |y_i - y_j|^2)`` (0 on the
    diagonal), ``q = max(w / sum w, eps)`` and the off-diagonal mask; ``|.|^2`` from the
    coordinate differences, as scipy's ``pdist`` (not the norms' expansion, which loses
    near neighbours to cancellation)."""
    yw = y.astype(wide)
    sq = jnp.square(yw[:, 0, None] - yw[None, :, 0]) + jnp.square(yw[:, 1, None] - yw[None, :, 1])
    off = ~jnp.eye(y.shape[0], dtype=bool)
    w = jnp.where(off, 1.0 / (1.0 + sq), 0.0)
    q = jnp.where(off, jnp.maximum(w / jnp.sum(w), MACHINE_EPSILON), 1.0)
    return w, q, off


def kl_divergence(y: jax.Array, p: jax.Array) -> jax.Array:
    """scikit-learn's ``_kl_divergence`` error: ``KL(P || Q)`` of the embedding ``y (n, 2)``, ``p (n, n)``."""
    _, q, off = _similarities(y, p.dtype)
    return jnp.sum(jnp.where(off, p * jnp.log(jnp.maximum(p, MACHINE_EPSILON) / q), 0.0))


def kl_gradient(y: jax.Array, p: jax.Array) -> jax.Array:
    """scikit-learn's ``_kl_divergence`` gradient ``4 sum_j (p_ij - q_ij) w_ij (y_i - y_j)``, ``(n, 2)`` in ``y``'s dtype."""
    w, q, off = _similarities(y, p.dtype)
    pqd = jnp.where(off, p - q, 0.0) * w
    yw = y.astype(p.dtype)
    return (4.0 * (jnp.sum(pqd, axis=1)[:, None] * yw - pqd @ yw)).astype(y.dtype)


def _stage(p, y, it0, max_iter, momentum, n_without_progress, learning_rate):
    """One call of scikit-learn's ``_gradient_descent`` from step ``it0``, for a batch of panels.

    ``p (B, n, n)``, ``y (B, n, 2)``, ``learning_rate (B,)``. The step counter is
    shared, so the KL divergence is computed only on the check steps (a real
    branch, not a select); a panel that stops is frozen while the others go
    on. Returns ``(y, last step)``.
    """
    dtype, wide = y.dtype, p.dtype
    big = jnp.asarray(np.finfo(wide).max, wide)
    lr = learning_rate[:, None, None]

    def cond(s):
        i, *_, stopped = s
        return (i < max_iter) & ~jnp.all(stopped)

    def body(s):
        i, y, update, gains, best_error, best_iter, last, stopped = s
        grad = jax.vmap(kl_gradient)(y, p)
        inc = update * grad < 0.0
        new_gains = jnp.maximum(jnp.where(inc, gains + 0.2, gains * 0.8), MIN_GAIN).astype(dtype)
        grad = grad * new_gains
        # As in numpy there: the update in the wide dtype (the learning rate is a
        # float64 scalar), the embedding rounded to y's dtype after each step.
        new_update = momentum * update - lr * grad.astype(wide)
        new_y = (y.astype(wide) + new_update).astype(dtype)
        check = (i + 1) % CHECK_EVERY == 0
        # The error is evaluated on the embedding before this step's update, as there.
        error = jax.lax.cond(check, lambda: jax.vmap(kl_divergence)(y, p), lambda: jnp.full(y.shape[0], big))
        better = check & (error < best_error)
        stalled = check & ~better & (i - best_iter > n_without_progress)
        flat = jnp.sqrt(jnp.sum(jnp.square(grad.astype(wide)), axis=(1, 2)))
        stop = stalled | (check & (flat <= MIN_GRAD_NORM))
        live = ~stopped
        keep = lambda new, old: jnp.where(live.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
        return (i + 1, keep(new_y, y), keep(new_update, update), keep(new_gains, gains),
                keep(jnp.where(better, error, best_error), best_error), keep(jnp.where(better, i, best_iter), best_iter),
                keep(jnp.full_like(last, i), last), stopped | stop)

    b = y.shape[0]
    it = jnp.full((b,), it0, jnp.int32)
    init = (jnp.asarray(it0, jnp.int32), y, jnp.zeros(y.shape, wide), jnp.ones_like(y), jnp.full((b,), big), it, it,
            jnp.zeros((b,), bool))
    out = jax.lax.while_loop(cond, body, init)
    return out[1], out[6]


class Stage(NamedTuple):
    """One ``_gradient_descent`` call of ``TSNE._tsne``: ``P`` times ``exaggeration``, steps ``it0 .. max_iter - 1``."""

    exaggeration: float
    momentum: float
    it0: int
    max_iter: int
    n_iter_without_progress: int


def stages(max_iter: int) -> tuple[Stage, ...]:
    """scikit-learn's learning schedule: 250 steps at momentum 0.5 with ``P`` exaggerated 12x,
    then momentum 0.8 to ``max_iter`` (``tests/test_tsne.py`` records scikit-learn's own calls)."""
    return (Stage(EARLY_EXAGGERATION, 0.5, 0, EXPLORATION_STEPS, EXPLORATION_STEPS),
            Stage(1.0, 0.8, EXPLORATION_STEPS, max_iter, N_ITER_WITHOUT_PROGRESS))


def learning_rate(n: int) -> float:
    """``learning_rate="auto"``: ``max(n / early_exaggeration / 4, 50)``."""
    return max(n / EARLY_EXAGGERATION / 4, 50.0)


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _program(p, y0, lr, *, max_iter):
    """The stages of :func:`stages` for a batch of panels.

    scikit-learn starts the second stage after the first one's last step, which
    is step 249 unless the gradient vanished earlier (a stop on
    ``min_grad_norm``); with the batch sharing one step counter, the second stage
    starts at step 250 for every panel.
    """
    y = y0
    for st in stages(max_iter):
        y, _ = _stage(p * st.exaggeration, y, st.it0, st.max_iter, st.momentum, st.n_iter_without_progress, lr)
    return y


def tsne(panels: Sequence[np.ndarray], *, seed: int = 0, perplexity: float | Sequence[float] = 30.0,
         max_iter: int = 1000) -> list[np.ndarray]:
    """``TSNE(perplexity=..., init="pca", method="exact", random_state=seed).fit_transform(x)`` of each panel.

    Panels of one size share one call of one compiled program (vmapped); other
    sizes get a program each.

    Args:
      panels: feature arrays ``(n_k, D_k)``, ``n_k >= 4``.
      seed: the PCA start's ``random_state``.
      perplexity: one value, or one per panel (each below ``n_k``).
      max_iter: optimisation steps (scikit-learn's default 1000; at least 250).

    Returns:
      One ``(n_k, 2)`` float32 embedding per panel, in order.
    """
    if max_iter < EXPLORATION_STEPS:
        raise ValueError(f"t-SNE max_iter must be at least {EXPLORATION_STEPS}, got {max_iter}")
    perplexities = [perplexity] * len(panels) if np.ndim(perplexity) == 0 else list(perplexity)
    if len(perplexities) != len(panels):
        raise ValueError(f"{len(perplexities)} perplexities for {len(panels)} panels")
    wide = np.float64 if jax.config.jax_enable_x64 else np.float32
    by_size: dict[int, list[int]] = {}
    for k, x in enumerate(panels):
        by_size.setdefault(np.shape(x)[0], []).append(k)
    out: list[np.ndarray | None] = [None] * len(panels)
    for n, members in by_size.items():
        xs = [np.asarray(panels[k], dtype=np.float64) for k in members]
        p = np.stack([affinities(x, perplexities[k]) for x, k in zip(xs, members)]).astype(wide)
        y0 = np.stack([pca_start(x, seed) for x in xs])
        lr = np.full(len(members), learning_rate(n), wide)
        ys = np.asarray(_program(p, y0, lr, max_iter=max_iter))
        for k, y in zip(members, ys):
            out[k] = y
    return out
