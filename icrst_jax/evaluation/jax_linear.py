"""The linear probe, scikit-learn's ``LogisticRegression()``, as one compiled JAX program over many fits.

``LogisticRegression()``'s defaults: L2 penalty with ``C = 1``, an unpenalised
intercept, lbfgs, ``max_iter = 100``, ``tol = 1e-4``; multinomial (softmax) for
more than two classes, one logistic output for two. scikit-learn minimises the
mean log loss plus ``||W||^2 / (2 C n)`` and stops when the largest gradient
entry is at most ``tol``; the problem is convex, so a solver run to the same
tolerance reaches the same minimiser, up to the tolerance, and predicts what
scikit-learn predicts (tests/test_jax_knn_linear.py). Here the solver is optax's
L-BFGS (zoom line search, 10 pairs of memory, as scipy's L-BFGS-B), each fit's
stop a mask of a ``lax.while_loop`` under ``vmap``, in float64.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from icrst_jax.evaluation.chunks import fits_within_budget, run_chunked
from icrst_jax.evaluation.jax_classifiers import fit_stats

# LogisticRegression() defaults (scikit-learn 1.x).
LINEAR_C = 1.0
LINEAR_MAX_ITER = 100
LINEAR_TOL = 1e-4


class LinearResult(NamedTuple):
    """Per fit: ``pred (N,)`` class indices, ``n_iter``, ``converged`` (largest gradient entry <= tol)."""

    pred: jax.Array
    n_iter: jax.Array
    converged: jax.Array


def linear_fits_per_chunk(n: int, d: int, n_classes: int) -> int:
    """Fits per call: a fit's scaled set and its logits, in float64, and L-BFGS's memory."""
    return fits_within_budget(8 * (n * (d + 2 * n_classes) + 20 * d * n_classes))


def logistic_loss(w, b, x, y_onehot, weight, penalty):
    """scikit-learn's objective: the mean log loss over ``weight``'s rows plus ``penalty * ||W||^2 / 2``.

    ``W (D, O)`` with ``O = 1`` (two classes: the positive class's logit) or ``K`` (softmax).
    """
    z = x @ w + b
    if w.shape[1] == 1:
        per_row = jnp.logaddexp(0.0, z[:, 0]) - y_onehot[:, 1] * z[:, 0]
    else:
        per_row = jax.nn.logsumexp(z, axis=1) - jnp.sum(y_onehot * z, axis=1)
    return jnp.sum(weight * per_row) / jnp.sum(weight) + 0.5 * penalty * jnp.sum(jnp.square(w))


def linear_fit_one(x, y_onehot, weight, *, c: float = LINEAR_C, max_iter: int = LINEAR_MAX_ITER,
                   tol: float = LINEAR_TOL, intercept=True):
    """``LogisticRegression(C=c, max_iter=max_iter, tol=tol).fit`` on ``weight``'s rows (vmap this over fits).

    Returns ``((W, b), n_iter, converged)``; a false ``intercept`` (a bool or a traced one) fixes ``b`` at 0.
    """
    k = y_onehot.shape[1]
    out = 1 if k == 2 else k
    penalty = 1.0 / (c * jnp.sum(weight))
    params0 = (jnp.zeros((x.shape[1], out), x.dtype), jnp.zeros((out,), x.dtype))
    # Data, not a static flag: fits with and without the intercept share one program.
    use_b = jnp.asarray(intercept, x.dtype)

    def fun(params):
        w, b = params
        return logistic_loss(w, use_b * b, x, y_onehot, weight, penalty)

    solver = optax.lbfgs(memory_size=10, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=50))
    value_and_grad = optax.value_and_grad_from_state(fun)

    def largest(grad):
        return jnp.max(jnp.array([jnp.max(jnp.abs(g)) for g in jax.tree.leaves(grad)]))

    def step(carry):
        params, state, n_iter, _ = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        params = optax.apply_updates(params, updates)
        return params, state, n_iter + 1, largest(optax.tree.get(state, "grad")) <= tol

    def going(carry):
        return (carry[2] < max_iter) & ~carry[3]

    state0 = solver.init(params0)
    done0 = largest(jax.grad(fun)(params0)) <= tol
    (w, b), _, n_iter, converged = jax.lax.while_loop(going, step, (params0, state0, jnp.int32(0), done0))
    return (w, use_b * b), n_iter, converged


@functools.partial(jax.jit, static_argnames=("n_classes",))
def _linear_program(x_sets, y_sets, set_idx, train_mask, scaled, intercept, *, n_classes):
    def one(s, mask, sc, icpt):
        x, y = x_sets[s], y_sets[s]
        mean, scale = fit_stats(x, mask, sc)
        xs = (x - mean) / scale
        (w, b), n_iter, converged = linear_fit_one(xs, jax.nn.one_hot(y, n_classes, dtype=xs.dtype),
                                                   mask.astype(xs.dtype), intercept=icpt)
        z = xs @ w + b
        pred = (z[:, 0] > 0).astype(jnp.int32) if w.shape[1] == 1 else jnp.argmax(z, axis=1).astype(jnp.int32)
        return LinearResult(pred, n_iter, converged)

    return jax.vmap(one)(set_idx, train_mask, scaled, intercept)


def linear(x_sets, y_sets, set_idx, train_mask, *, n_classes: int, scaled, chunk: int | None = None,
           intercept=True) -> LinearResult:
    """``LogisticRegression()`` of every fit, predicting every row, in float64.

    Args:
      x_sets: ``(S, N, D)`` feature sets; y_sets: ``(S, N)`` class indices in ``[0, n_classes)``.
      set_idx: ``(G,)`` the set of each fit; train_mask: ``(G, N)`` its training rows.
      scaled: bool or ``(G,)``: standardise with the training fold's statistics first.
      chunk: fits per program call (default all).
      intercept: bool or ``(G,)``: fit the intercept (scikit-learn's default); False only to show that it matters.

    Returns:
      :class:`LinearResult` with a leading ``(G,)`` axis; a fit not ``converged`` after
      ``max_iter`` iterations is scikit-learn's ConvergenceWarning.
    """
    with jax.enable_x64(True):
        scaled = np.broadcast_to(np.asarray(scaled, bool), np.shape(set_idx))
        intercept = np.broadcast_to(np.asarray(intercept, bool), np.shape(set_idx))
        program = functools.partial(_linear_program, n_classes=n_classes)
        return LinearResult(*run_chunked(lambda x, y, s, m, sc, ic: program(x, y, s, m, sc, ic),
                                         np.asarray(x_sets, np.float64), np.asarray(y_sets, np.int32),
                                         np.asarray(set_idx), np.asarray(train_mask, bool), chunk, scaled,
                                         intercept))
