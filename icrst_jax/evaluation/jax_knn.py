"""The weighted kNN classifier (DINO's, solo-learn's) as one compiled JAX program over many fits.

Each fit (a fold of a feature set, under a scaling) finds, for each test row,
the ``k`` training rows of highest cosine similarity (L2-normalised rows, after
the fold's standardisation if any) and sums their votes ``exp(sim / T)`` per
class. Only the test rows are queried: a fold's ``(N_test, N)`` similarities,
not all ``N x N``. Float64, like the reference
(:class:`~icrst_jax.evaluation.weighted_knn.WeightedKNN`), so that the
neighbours are the same ones; the fits run through
:func:`~icrst_jax.evaluation.chunks.run_chunked` as the other classifiers do.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.evaluation.chunks import fits_within_budget, run_chunked
from icrst_jax.evaluation.jax_classifiers import fit_stats
from icrst_jax.evaluation.weighted_knn import KNN_K, KNN_TEMPERATURE


def knn_fits_per_chunk(n: int, d: int, n_test: int) -> int:
    """Fits per call: a fit holds its set (``n x d``) and its similarities (``n_test x n``) in float64."""
    return fits_within_budget(8 * n * (d + 2 * n_test))


def _normalised(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("n_classes", "k", "n_test"))
def _knn_program(x_sets, y_sets, set_idx, train_mask, scaled, temperature, uniform, euclidean, *, n_classes, k,
                 n_test):
    # ``uniform`` and ``euclidean`` are data, not static flags: the vote and scikit-learn's plain kNN share
    # one program; they are the same for every fit (not vmapped), so ``cond`` computes one similarity only.
    def one(s, mask, sc):
        x, y = x_sets[s], y_sets[s]
        mean, scale = fit_stats(x, mask, sc)
        xs = (x - mean) / scale
        # The test rows, padded to the largest fold with row 0: its prediction is
        # written twice with the same value, or (a training row) never scored.
        test = jnp.nonzero(~mask, size=n_test, fill_value=0)[0]

        def by_distance():
            q = xs[test]
            return -(jnp.square(q).sum(1)[:, None] - 2 * q @ xs.T + jnp.square(xs).sum(1)[None])

        def by_cosine():
            xn = _normalised(xs)
            return xn[test] @ xn.T

        sim = jax.lax.cond(euclidean, by_distance, by_cosine)
        top, nearest = jax.lax.top_k(jnp.where(mask[None], sim, -jnp.inf), k)
        w = jnp.where(uniform, jnp.ones_like(top), jnp.exp(top / temperature))
        votes = jnp.einsum("qk,qkc->qc", w, jax.nn.one_hot(y[nearest], n_classes, dtype=w.dtype))
        return jnp.zeros(x.shape[0], jnp.int32).at[test].set(jnp.argmax(votes, axis=1).astype(jnp.int32))

    return jax.vmap(one)(set_idx, train_mask, scaled)


def knn(x_sets, y_sets, set_idx, train_mask, *, n_classes: int, scaled, k: int = KNN_K,
        temperature: float = KNN_TEMPERATURE, uniform: bool = False, euclidean: bool = False,
        chunk: int | None = None) -> np.ndarray:
    """The weighted kNN vote of every fit's test rows.

    Args:
      x_sets: ``(S, N, D)`` feature sets; y_sets: ``(S, N)`` class indices in ``[0, n_classes)``.
      set_idx: ``(G,)`` the set of each fit; train_mask: ``(G, N)`` its training rows (the rest are queried).
      scaled: bool or ``(G,)``: standardise with the training fold's statistics first.
      k: neighbours (cut to the smallest training fold); temperature: T of ``exp(sim / T)``.
      uniform, euclidean: one vote per neighbour, neighbours by euclidean distance
        (scikit-learn's ``KNeighborsClassifier``), for tests.
      chunk: fits per program call (default all).

    Returns:
      ``pred (G, N)``: class indices, meaningful on each fit's test rows.
    """
    train_mask = np.asarray(train_mask, bool)
    k = int(min(k, train_mask.sum(1).min()))
    n_test = int((~train_mask).sum(1).max())
    with jax.enable_x64(True):
        scaled = np.broadcast_to(np.asarray(scaled, bool), np.shape(set_idx))
        program = functools.partial(_knn_program, temperature=np.float64(temperature), uniform=np.bool_(uniform),
                                    euclidean=np.bool_(euclidean), n_classes=n_classes, k=k, n_test=n_test)
        return run_chunked(lambda x, y, s, m, sc: program(x, y, s, m, sc), np.asarray(x_sets, np.float64),
                           np.asarray(y_sets, np.int32), np.asarray(set_idx), train_mask, chunk, scaled)
