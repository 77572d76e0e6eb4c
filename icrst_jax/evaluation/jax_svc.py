"""``SVC()`` (RBF kernel, libsvm's C-SVC, one-vs-one) as one compiled JAX program over many fits.

Section 6 of the paper classifies latents with scikit-learn's ``SVC()``: C=1,
``gamma="scale"``, tol=1e-3, one binary C-SVC per class pair and a vote. Its dual
is a convex problem with a unique optimum, so a solver that stops where libsvm
stops (maximal violating pair gap below ``tol``) predicts what libsvm predicts,
up to test points whose decision value is within the solver's tolerance of 0.

The solver is libsvm's ``Solver::Solve`` (``sklearn/svm/src/libsvm/svm.cpp``)
without shrinking: SMO with the second-order working-set selection (WSS3 of Fan,
Chen and Lin 2005, ties to the last index as libsvm's ``>=`` / ``<=``), its
two-variable update with the same clipping, the kernel entries stored in float32
as libsvm's ``Qfloat`` cache and the gradient in float64, ``rho`` from
``calculate_rho`` and the dual objective as libsvm reports it. One difference in
precision: the kernel's dot products are float32 (on features centred on the
training mean), libsvm's float64, so a kernel entry can sit a few float32 ulps
from libsvm's; decision values and intercepts then differ by about 1e-7, except
where such a difference flips a tie in the working-set selection (a different path
to the same tolerance: decision values within ~1e-3). Shrinking only
skips variables to save work in a sequential solver (its stopping test runs on
the whole set after un-shrinking), so without it the iterates differ from
``SVC()``'s but satisfy the same stopping test; ``SVC(shrinking=False)`` follows
the same steps as this solver (tested).

Every (fit, class pair) problem is a row of one batched ``lax.while_loop``
(``vmap`` over pairs inside ``vmap`` over fits, each problem's own stop a mask),
so a study's SVC fits of one shape are one program. A fit's training rows are
grouped by class (each class in row order, as libsvm's ``svm_group_classes``) in
segments of ``c`` slots, ``c`` = the largest class count of any fit's training rows;
a pair's problem is class i's segment then class j's (``m = 2 c`` rows, padding
masked), its float32 kernel block ``(m, m)`` sliced once from the fit's Gram matrix.

Memory per fit (bytes; N rows, D features, K classes, P = K (K - 1) / 2 pairs):
``8 N K c`` (every row against the grouped training rows, float64, for the decision
values) + ``8 (K c)^2`` (their training block) + ``16 P c^2`` (the pairs' float32
blocks) + ``8 N (D + P)``: about 66 MB for a digits fold (N = 1797, K = 10, c = 164),
2.4 GB for a 10,000-row ten-class fold (c = 1000). :func:`svc_fits_per_chunk` bounds a chunk by it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.evaluation.chunks import fits_within_budget, run_chunked
from icrst_jax.evaluation.jax_classifiers import fit_stats

# SVC() defaults (scikit-learn 1.x): C=1.0, kernel="rbf", gamma="scale", tol=1e-3,
# shrinking=True (not needed here, see the module docstring), max_iter=-1 (no limit).
SVC_C = 1.0
SVC_TOL = 1e-3
# libsvm's TAU: the curvature used where a pair's is not positive (duplicate rows).
SVC_TAU = 1e-12
# libsvm has no limit; this one only guards a batched loop against a problem that
# never stops (each fit reports whether it converged).
SVC_MAX_ITER = 1_000_000


class SVCResult(NamedTuple):
    """Per fit (leading ``G`` axis when batched), P = K (K - 1) / 2 class pairs (i < j, in order).

    ``pred (N,)`` class indices by libsvm's vote; ``decision (N, P)`` libsvm's
    pair decision values (> 0 votes for class i; scikit-learn's
    ``decision_function`` with ``decision_function_shape="ovo"``, negated for two
    classes); ``rho (P,)``, ``dual_obj (P,)``, ``n_iter (P,)`` SMO iterations,
    ``converged (P,)``, ``gamma ()`` the ``"scale"`` gamma of the fit.
    """

    pred: jax.Array
    decision: jax.Array
    rho: jax.Array
    dual_obj: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    gamma: jax.Array


def class_pairs(n_classes: int) -> np.ndarray:
    """``(P, 2)`` the class pairs ``(i, j)``, ``i < j``, in libsvm's order."""
    return np.array([(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)], np.int32).reshape(-1, 2)


def scale_gamma(x: jax.Array, train_mask: jax.Array) -> jax.Array:
    """``gamma="scale"``: ``1 / (D * X_train.var())``, the variance over every entry of the
    training rows (1 if it is 0)."""
    w = train_mask.astype(x.dtype)
    count = w.sum() * x.shape[1]
    mean = jnp.sum(w @ x) / count
    var = jnp.sum(w @ jnp.square(x - mean)) / count
    return jnp.where(var != 0, 1.0 / (x.shape[1] * jnp.where(var != 0, var, 1.0)), 1.0)


def rbf_kernel(a: jax.Array, b: jax.Array, gamma: jax.Array, dot_dtype=None) -> jax.Array:
    """``(Na, Nb)`` ``exp(-gamma |a - b|^2)``, the distance by libsvm's ``|a|^2 + |b|^2 - 2 a.b``.

    ``dot_dtype=float32`` computes the ``a.b`` products in float32 (at full precision:
    no TF32/bfloat16 passes on accelerators) and the rest in the inputs' dtype; centre
    ``a`` and ``b`` first (the distance does not change) to keep the products small.
    """
    dot = a @ b.T if dot_dtype is None else jnp.matmul(
        a.astype(dot_dtype), b.astype(dot_dtype).T, precision=jax.lax.Precision.HIGHEST).astype(a.dtype)
    d2 = jnp.sum(jnp.square(a), 1)[:, None] + jnp.sum(jnp.square(b), 1)[None, :] - 2.0 * dot
    return jnp.exp(-gamma * jnp.maximum(d2, 0.0))


class _SMOState(NamedTuple):
    alpha: jax.Array
    grad: jax.Array
    n_iter: jax.Array
    stopped: jax.Array


def _last_argmax(v: jax.Array, iota: jax.Array) -> jax.Array:
    """The last index of the maximum (libsvm's ``>=`` scan), as two plain max reductions:
    on XLA's CPU backend twice as fast per SMO step as ``argmax``'s (value, index) reduction."""
    return jnp.max(jnp.where(v == jnp.max(v), iota, -1))


def smo_solve(q: jax.Array, y: jax.Array, valid: jax.Array, *, c: float = SVC_C, tol: float = SVC_TOL,
              max_iter: int = SVC_MAX_ITER) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """libsvm's C-SVC dual, ``min 1/2 a'Qa - e'a, y'a = 0, 0 <= a <= c``, by SMO with WSS3 (vmap this).

    Args:
      q: ``(m, m)`` kernel block of the problem's rows (float32 as libsvm's cache;
        ``Q = y y' * q``); its diagonal must be the kernel's ``K(x, x)`` (1 for RBF).
      y: ``(m,)`` +1 / -1 (float64); valid: ``(m,)`` bool, the problem's rows
        (padding rows stay at alpha 0 and are never selected).
      c, tol, max_iter: the box bound, libsvm's ``eps`` and an iteration limit.

    Returns:
      ``(alpha (m,), grad (m,), n_iter, converged)``: grad is ``Q a - e``.
    """
    dtype = y.dtype
    m = y.shape[0]
    qd = jnp.diagonal(q).astype(dtype)
    iota = jnp.arange(m)

    def step(s: _SMOState) -> _SMOState:
        alpha, g = s.alpha, s.grad
        yg = y * g
        up = valid & jnp.where(y > 0, alpha < c, alpha > 0)
        low = valid & jnp.where(y > 0, alpha > 0, alpha < c)
        score = jnp.where(up, -yg, -jnp.inf)
        i = _last_argmax(score, iota)
        oi = iota == i
        gmax = jnp.max(score)
        ki = q[i].astype(dtype)
        qd_i = qd[i]
        gmax2 = jnp.max(jnp.where(low, yg, -jnp.inf))
        grad_diff = gmax + yg
        # QD[i] + QD[j] - 2 y_i Q_ij for y_j = +1 and + 2 y_i Q_ij for y_j = -1: both QD_i + QD_j - 2 K_ij.
        quad = qd_i + qd - 2.0 * ki
        cand = low & (grad_diff > 0)
        obj_diff = jnp.where(cand, -jnp.square(grad_diff) / jnp.where(quad > 0, quad, SVC_TAU), jnp.inf)
        j = _last_argmax(-obj_diff, iota)
        oj = iota == j
        done = (gmax + gmax2 < tol) | ~cand.any()

        kj = q[j].astype(dtype)
        yi, yj, ai, aj, gi, gj = y[i], y[j], alpha[i], alpha[j], g[i], g[j]
        c_i = c_j = c
        quad_ij = quad[j]
        quad_ij = jnp.where(quad_ij > 0, quad_ij, SVC_TAU)
        # y_i != y_j: move both by the same delta, then clip (svm.cpp, in its order).
        delta = (-gi - gj) / quad_ij
        diff = ai - aj
        ai1, aj1 = ai + delta, aj + delta
        clip = jnp.where(diff > 0, aj1 < 0, ai1 < 0)
        ai1, aj1 = (jnp.where(clip, jnp.where(diff > 0, diff, 0.0), ai1),
                    jnp.where(clip, jnp.where(diff > 0, 0.0, -diff), aj1))
        over_i = diff > c_i - c_j
        clip = jnp.where(over_i, ai1 > c_i, aj1 > c_j)
        ai1, aj1 = (jnp.where(clip, jnp.where(over_i, c_i, c_j + diff), ai1),
                    jnp.where(clip, jnp.where(over_i, c_i - diff, c_j), aj1))
        # y_i == y_j: move in opposite directions, keep the sum, then clip.
        delta = (gi - gj) / quad_ij
        total = ai + aj
        ai2, aj2 = ai - delta, aj + delta
        over_i = total > c_i
        clip = jnp.where(over_i, ai2 > c_i, aj2 < 0)
        ai2, aj2 = (jnp.where(clip, jnp.where(over_i, c_i, total), ai2),
                    jnp.where(clip, jnp.where(over_i, total - c_i, 0.0), aj2))
        over_j = total > c_j
        clip = jnp.where(over_j, aj2 > c_j, ai2 < 0)
        ai2, aj2 = (jnp.where(clip, jnp.where(over_j, total - c_j, 0.0), ai2),
                    jnp.where(clip, jnp.where(over_j, c_j, total), aj2))
        same = yi == yj
        new_ai, new_aj = jnp.where(same, ai2, ai1), jnp.where(same, aj2, aj1)
        # G += Q_i dai + Q_j daj, Q_i = y_i y * K_i (float32 entries times a float64 step), summed as libsvm.
        g_new = g + (yi * y * ki * (new_ai - ai) + yj * y * kj * (new_aj - aj))
        a_new = jnp.where(oi, new_ai, jnp.where(oj, new_aj, alpha))
        return _SMOState(jnp.where(done, alpha, a_new), jnp.where(done, g, g_new),
                         s.n_iter + jnp.where(done, 0, 1), done)

    init = _SMOState(jnp.zeros(m, dtype), jnp.full(m, -1.0, dtype), jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    out = jax.lax.while_loop(lambda s: ~s.stopped & (s.n_iter < max_iter), step, init)
    return out.alpha, out.grad, out.n_iter, out.stopped


def smo_rho(alpha: jax.Array, grad: jax.Array, y: jax.Array, valid: jax.Array, c: float = SVC_C) -> jax.Array:
    """libsvm's ``calculate_rho``: the mean of ``y G`` over free variables, else the
    midpoint of the bounds the bounded ones give."""
    yg = y * grad
    upper = valid & (alpha >= c)
    lower = valid & (alpha <= 0)
    free = valid & ~upper & ~lower
    to_ub = (upper & (y < 0)) | (lower & (y > 0))
    to_lb = (upper & (y > 0)) | (lower & (y < 0))
    ub = jnp.min(jnp.where(to_ub, yg, jnp.inf))
    lb = jnp.max(jnp.where(to_lb, yg, -jnp.inf))
    n_free = free.sum()
    return jnp.where(n_free > 0, jnp.sum(jnp.where(free, yg, 0.0)) / jnp.maximum(n_free, 1), (ub + lb) / 2)


def ovo_vote(decision: jax.Array, n_classes: int) -> jax.Array:
    """libsvm's vote: ``decision (N, P)`` > 0 is a vote for the pair's class i, else j;
    the class with the most votes, ties to the lowest index. Returns ``(N,)`` int32."""
    pairs = class_pairs(n_classes)
    winner = jnp.where(decision > 0, pairs[:, 0], pairs[:, 1])
    votes = jax.nn.one_hot(winner, n_classes, dtype=jnp.int32).sum(axis=-2)
    return jnp.argmax(votes, axis=-1).astype(jnp.int32)


def _fit_one(x, y, mask, scaled, *, n_classes, c_max, tol, max_iter) -> SVCResult:
    """One fit: scale, kernel, every pair's SMO, decision values of every row, vote."""
    dtype = x.dtype
    k, c = n_classes, c_max
    mean, scale = fit_stats(x, mask, scaled)
    xs = (x - mean) / scale
    gamma = scale_gamma(xs, mask)
    # The training rows grouped by class, each class in row order (libsvm's
    # svm_group_classes) in a segment of c_max slots: slot k c + r holds class k's r-th row.
    onehot = jax.nn.one_hot(y, k, dtype=jnp.int32) * mask[:, None]
    rank = jnp.take_along_axis(jnp.cumsum(onehot, axis=0), y[:, None], axis=1)[:, 0] - 1
    slot = jnp.where(mask, y * c + rank, k * c)
    rows = jnp.zeros(k * c, jnp.int32).at[slot].set(jnp.arange(x.shape[0], dtype=jnp.int32), mode="drop")
    slot_valid = jnp.zeros(k * c, bool).at[slot].set(True, mode="drop").reshape(k, c)
    # (N, K c): every row against the grouped training rows. The products in float32 (4x
    # faster than float64 on a CPU, and what accelerators do fast) on features centred on
    # the training mean: kernel entries within a few float32 ulps of libsvm's (docstring).
    xc = xs - jnp.where(mask[:, None], xs, 0.0).sum(0) / mask.sum()
    k_rows = rbf_kernel(xc, xc[rows], gamma, dot_dtype=jnp.float32)
    gram = jnp.where(jnp.eye(k * c, dtype=bool), 1.0, k_rows[rows]).astype(jnp.float32).reshape(k, c, k, c)
    pa, pb = class_pairs(k).T
    # Each pair's problem: class i's segment (+1) then class j's (-1), as libsvm's sub-problem.
    blocks = jnp.concatenate([jnp.concatenate([gram[pa, :, pa, :], gram[pa, :, pb, :]], axis=2),
                              jnp.concatenate([gram[pb, :, pa, :], gram[pb, :, pb, :]], axis=2)], axis=1)
    valid = jnp.concatenate([slot_valid[pa], slot_valid[pb]], axis=1)  # (P, 2c)
    yp = jnp.concatenate([jnp.ones(c, dtype), -jnp.ones(c, dtype)])

    def solve_pair(block, valid):
        alpha, grad, n_iter, converged = smo_solve(block, yp, valid, tol=tol, max_iter=max_iter)
        rho = smo_rho(alpha, grad, yp, valid)
        dual_obj = jnp.sum(jnp.where(valid, alpha * (grad - 1.0), 0.0)) / 2
        return jnp.where(valid, alpha * yp, 0.0), rho, dual_obj, n_iter, converged

    coef, rho, dual_obj, n_iter, converged = jax.vmap(solve_pair)(blocks, valid)
    # Back to the grouped layout: (P, K, c), each pair's coefficients in its two segments.
    onehot_a, onehot_b = jax.nn.one_hot(pa, k, dtype=dtype), jax.nn.one_hot(pb, k, dtype=dtype)
    coef_slots = onehot_a[:, :, None] * coef[:, None, :c] + onehot_b[:, :, None] * coef[:, None, c:]
    decision = k_rows @ coef_slots.reshape(len(pa), k * c).T - rho
    return SVCResult(ovo_vote(decision, n_classes), decision, rho, dual_obj, n_iter, converged, gamma)


@functools.partial(jax.jit, static_argnames=("n_classes", "c_max", "tol", "max_iter"))
def _svc_program(x_sets, y_sets, set_idx, train_mask, scaled, *, n_classes, c_max, tol, max_iter):
    one = functools.partial(_fit_one, n_classes=n_classes, c_max=c_max, tol=tol, max_iter=max_iter)
    return jax.vmap(lambda s, mask, sc: one(x_sets[s], y_sets[s], mask, sc))(set_idx, train_mask, scaled)


def class_size(y_sets, set_idx, train_mask, n_classes: int) -> int:
    """The largest class count of any fit's training rows (a class segment's padded
    size), or a one-line error if a fit's training rows miss a class (libsvm would
    then fit fewer classes)."""
    y = np.asarray(y_sets)[np.asarray(set_idx)]
    mask = np.asarray(train_mask, bool)
    counts = np.stack([((y == k) & mask).sum(1) for k in range(n_classes)], 1)  # (G, K)
    if (counts == 0).any():
        g, k = np.argwhere(counts == 0)[0]
        raise ValueError(f"fit {g} has no training row of class {k}; every fit's training rows need every class")
    return int(counts.max())


def svc_fits_per_chunk(n: int, d: int, n_classes: int, c_max: int) -> int:
    """:func:`~icrst_jax.evaluation.chunks.fits_within_budget` for a fit's arrays (the module docstring's bound)."""
    p = n_classes * (n_classes - 1) // 2
    kc = n_classes * c_max
    return fits_within_budget(8 * n * kc + 8 * kc**2 + 16 * p * c_max**2 + 8 * n * (d + p))


def svc(x_sets, y_sets, set_idx, train_mask, *, n_classes: int, scaled, chunk: int | None = None,
        tol: float = SVC_TOL, max_iter: int = SVC_MAX_ITER) -> SVCResult:
    """Fit ``SVC()`` per fit and predict every row, in float64 (kernel blocks float32, as libsvm).

    Args:
      x_sets: ``(S, N, D)`` feature sets.
      y_sets: ``(S, N)`` class indices in ``[0, n_classes)`` (the sorted labels).
      set_idx: ``(G,)`` the set of each fit.
      train_mask: ``(G, N)`` bool, each fit's training rows (each with every class).
      n_classes: K (>= 2).
      scaled: bool, or ``(G,)`` bools: standardise with the fit's training-fold
        statistics first (data, not a compile-time switch).
      chunk: fits per program call (default all; :func:`svc_fits_per_chunk` bounds memory).
      tol, max_iter: libsvm's stopping tolerance and an iteration limit per pair.

    Returns:
      :class:`SVCResult` with a leading ``(G,)`` axis, as numpy arrays; ``pred``
      on every row (the caller scores the test rows).
    """
    if n_classes < 2:
        raise ValueError(f"SVC needs at least 2 classes, got {n_classes}")
    with jax.enable_x64(True):
        scaled = np.broadcast_to(np.asarray(scaled, bool), np.shape(set_idx))
        train_mask = np.asarray(train_mask, bool)
        c_max = class_size(y_sets, set_idx, train_mask, n_classes)
        return run_chunked(lambda x, y, s, msk, sc: _svc_program(x, y, s, msk, sc, n_classes=n_classes, c_max=c_max,
                                                                 tol=tol, max_iter=max_iter),
                           np.asarray(x_sets, np.float64), np.asarray(y_sets, np.int32), np.asarray(set_idx),
                           train_mask, chunk, scaled)
