"""Nearest neighbours in latent space: the exact kNN search, kNN label purity, the latents' spread.

Sections 3 and 7 of the paper: training with in-class random sampling should
bring "similar data closer" in latent space. :func:`knn_purity` measures it
directly (the share of each observation's latent neighbours with its label);
the section-7 mutual information
(:func:`~icrst_jax.evaluation.information.mutual_information`) uses the same
search. Neighbours are Euclidean, the query itself excluded by index, ties
broken by index; the search runs with numpy on a CPU and as a compiled
program with ``lax.top_k`` on an accelerator, with the same indices.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.evaluation.inputs import features_and_labels

# Queries per call of the kNN search: bounds its (queries, N) float64 distances
# (1024 x 70,000 rows: 0.6 GB), and every call of a search has this one shape.
_KNN_QUERIES = 1024


def knn_excluding_self(x: np.ndarray, queries: np.ndarray, k: int, on_device: bool | None = None) -> np.ndarray:
    """Indices (len(queries), k) of the k nearest rows of x to x[queries], self excluded.

    Sorted by Euclidean distance, ties broken by index. The query point itself
    is excluded by index, so exact duplicates of it still count as neighbours.
    Squared distances in float64 from the norms' expansion, ``_KNN_QUERIES``
    queries at a time. ``on_device`` (default: when JAX's default backend is
    not the CPU): a compiled program with ``lax.top_k``; otherwise numpy's
    BLAS and a partial sort (XLA's float64 products on a CPU are slower than
    numpy's). Both give the same indices (tested).

    Args:
      x: ``(N, D)`` features.
      queries: ``(Q,)`` row indices of the query points.
      k: neighbours per query, at most ``N - 1``.
      on_device: the compiled search (True) or numpy's (False); default by backend.

    Returns:
      ``(Q, k)`` int64 row indices, nearest first.
    """
    queries = np.asarray(queries, dtype=np.int64)
    if on_device is None:
        on_device = jax.default_backend() != "cpu"
    blocks = [queries[s:s + _KNN_QUERIES] for s in range(0, len(queries), _KNN_QUERIES)]
    if not blocks:
        return np.zeros((0, k), np.int64)
    if not on_device:
        # The float64 features and their squared norms once, not once per block of queries.
        xf = np.asarray(x, dtype=np.float64)
        x_sq = np.einsum("ij,ij->i", xf, xf)
        return np.concatenate([_knn_host(xf, x_sq, q, k) for q in blocks])
    with jax.enable_x64(True):
        xd = jax.device_put(np.asarray(x, dtype=np.float64))
        out = []
        for q in blocks:
            pad = _KNN_QUERIES - len(q) if len(blocks) > 1 else 0
            out.append(np.asarray(_knn_device(xd, np.concatenate([q, np.repeat(q[-1:], pad)]), k))[: len(q)])
    return np.concatenate(out)


def _knn_host(xf: np.ndarray, x_sq: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """:func:`knn_excluding_self` of a block of queries with numpy (``xf`` float64, ``x_sq`` its squared norms)."""
    q = xf[queries]
    d2 = x_sq[queries][:, None] - 2.0 * q @ xf.T + x_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    d2[np.arange(len(queries)), queries] = np.inf
    part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    part_d = np.take_along_axis(d2, part, axis=1)
    # The k smallest by (distance, index); a row whose k-th distance is shared with an
    # unselected point (a tie at the cut) is sorted whole.
    kth = part_d.max(axis=1)
    tied = (d2 <= kth[:, None]).sum(axis=1) > k
    order = np.lexsort((part, part_d), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    for r in np.flatnonzero(tied):
        best[r] = np.lexsort((np.arange(d2.shape[1]), d2[r]))[:k]
    return best


@functools.partial(jax.jit, static_argnums=2)
def _knn_device(x: jax.Array, queries: jax.Array, k: int) -> jax.Array:
    """The compiled search of one block of queries: ``(Q, k)`` indices (one program per shape)."""
    x_sq = jnp.einsum("ij,ij->i", x, x)
    d2 = jnp.maximum(x_sq[queries][:, None] - 2.0 * x[queries] @ x.T + x_sq[None, :], 0.0)
    d2 = jnp.where(jnp.arange(x.shape[0])[None, :] == queries[:, None], jnp.inf, d2)
    return jax.lax.top_k(-d2, k)[1]


def knn_purity(features, labels, *, k: int = 20) -> dict:
    """Share of each observation's ``k`` nearest latent neighbours that carry its label.

    The direct measure of the paper's "similar data end up closer" (sections 3
    and 7): 1 when every class is its own tight cluster, about ``chance`` when
    the latents ignore the labels. Neighbours are Euclidean, the observation
    itself excluded by index, ties by index (as in the section-7 mutual information);
    every observation is a query. Unlike the classifiers, it does not change
    when all latents are scaled by one factor.

    Args:
      features: ``(N, D)`` latent features.
      labels: ``(N,)`` class labels.
      k: neighbours per observation.

    Returns:
      ``{"purity": mean over observations, "chance": the expected purity of k
      random other observations, sum_c n_c (n_c - 1) / (N (N - 1)), "k", "n"}``.

    Example:
      >>> z = np.r_[np.zeros((5, 2)), np.full((5, 2), 9.0)]; y = np.r_[[0] * 5, [1] * 5]
      >>> knn_purity(z, y, k=4)["purity"]
      1.0
    """
    x, y = features_and_labels(features, labels)
    n = x.shape[0]
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, N - 1] = [1, {n - 1}], got {k}")
    nb = knn_excluding_self(x, np.arange(n), k)
    same = (y[nb] == y[:, None]).mean(axis=1)
    _, counts = np.unique(y, return_counts=True)
    chance = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    return {"purity": float(same.mean()), "chance": chance, "k": int(k), "n": int(n)}


def pool_purity(per_seed: Sequence[Mapping]) -> dict:
    """Purity over seeds: the mean of the seeds' values, with each seed's value kept."""
    if not per_seed:
        raise ValueError("pool_purity needs at least one result")
    values = [float(r["purity"]) for r in per_seed]
    return {**per_seed[0], "purity": float(np.mean(values)), "per_seed": values}


def latent_spread(features) -> float:
    """Mean over latent dimensions of the standard deviation across observations.

    The scale the classifiers see: an encoder whose latents shrink toward one
    point has a small spread even where their arrangement (purity) is kept.
    """
    x, _ = features_and_labels(features, dtype=np.float64)
    return float(x.std(axis=0).mean())
