"""Gaussian NB and the MLP, the paper's scikit-learn classifiers, as compiled JAX programs over many fits.

Section 6 of the paper classifies latents with scikit-learn's defaults. A study
evaluates many feature sets (grid points x seeds x scalings) x 10 folds; here
every fit of one classifier and one shape is a row of a leading "fit" axis of
one jitted program (PureJaxRL style: pure functions over arrays, each fit's
early stop a mask inside ``lax.while_loop`` under ``vmap``), compiled once.

A fit is described by index arrays computed on the host (the folds are
scikit-learn's ``StratifiedKFold``): ``set_idx (G,)`` picks the feature set of
``x_sets (S, N, D)``, ``train_mask (G, N)`` its training rows. Standardisation
(``StandardScaler`` fitted on the training fold) is a per-fit ``(mean, scale)``
applied to the rows a fit reads, so no scaled copy of the data is stored.

The fits run through :func:`~icrst_jax.evaluation.chunks.run_chunked`, a
fixed number per call.

* :func:`gaussian_nb` = ``GaussianNB()``, closed form, in float64: equal to
  scikit-learn to float tolerance.
* :func:`mlp` = ``MLPClassifier(random_state=seed)``: same architecture, loss,
  L2 term, Adam, batches, stopping rule and the same initial weights (numpy's
  draws); the epoch shuffles come from JAX, so a fit of several minibatches is
  a different draw of the same random procedure, while a fit of one batch
  (at most 200 training rows) follows scikit-learn's to float32 rounding
  (``init``/``orders`` inject scikit-learn's draws, for tests).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.evaluation.chunks import fits_within_budget, run_chunked

# MLPClassifier() defaults (scikit-learn 1.x): hidden_layer_sizes=(100,), relu,
# adam, alpha=1e-4, batch_size="auto" = min(200, n), learning_rate_init=1e-3,
# max_iter=200, tol=1e-4, n_iter_no_change=10, beta_1=0.9, beta_2=0.999, epsilon=1e-8.
MLP_HIDDEN = 100
MLP_ALPHA = 1e-4
MLP_BATCH = 200
MLP_LR = 1e-3
MLP_MAX_ITER = 200
MLP_TOL = 1e-4
MLP_NO_CHANGE = 10
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
NB_VAR_SMOOTHING = 1e-9


def fits_per_chunk(n: int, d: int) -> int:
    """:func:`fits_within_budget` for per-fit float64 copies of an (n, d) set (NB, MLP)."""
    return fits_within_budget(8 * n * max(d, MLP_HIDDEN))


# ---------------------------------------------------------------------------
# In-fold standardisation
# ---------------------------------------------------------------------------


def fold_standard_stats(x: jax.Array, train_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``StandardScaler`` fitted on the rows of one training fold.

    Args:
      x: ``(N, D)`` features.
      train_mask: ``(N,)`` bool, the training rows.

    Returns:
      ``(mean (D,), scale (D,))``: the fold mean and population standard
      deviation, with scale 1 for features scikit-learn deems constant
      (``_is_constant_feature``: ``var <= n eps var + (n mean eps)^2``).
    """
    w = train_mask.astype(x.dtype)
    n = w.sum()
    mean = w @ x / n
    var = w @ jnp.square(x - mean) / n
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + jnp.square(n * mean * eps)
    return mean, jnp.where(constant, 1.0, jnp.sqrt(var)).astype(x.dtype)


def fit_stats(x: jax.Array, train_mask: jax.Array, scaled: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ``(mean, scale)`` a fit applies: :func:`fold_standard_stats` if ``scaled``, else ``(0, 1)``.

    ``scaled`` is data (a bool per fit), so both scalings share one program.
    """
    mean, scale = fold_standard_stats(x, train_mask)
    return jnp.where(scaled, mean, 0.0).astype(x.dtype), jnp.where(scaled, scale, 1.0).astype(x.dtype)


# ---------------------------------------------------------------------------
# Gaussian naive Bayes
# ---------------------------------------------------------------------------


class GaussianNBParams(NamedTuple):
    """A fitted ``GaussianNB``: ``theta (K, D)``, ``var (K, D)`` (smoothed), ``log_prior (K,)``."""

    theta: jax.Array
    var: jax.Array
    log_prior: jax.Array


def gaussian_nb_fit(x: jax.Array, y_onehot: jax.Array, train_mask: jax.Array) -> GaussianNBParams:
    """``GaussianNB().fit`` on the training rows of ``x`` (N, D), labels ``y_onehot`` (N, K).

    Per-class mean and population variance, plus ``var_smoothing`` (1e-9) times
    the largest per-feature variance of the training fold; priors are the
    class shares of the fold.
    """
    w = train_mask.astype(x.dtype)
    wk = y_onehot.astype(x.dtype) * w[:, None]  # (N, K)
    count = wk.sum(0)
    theta = (wk.T @ x) / count[:, None]
    # One class at a time (lax.map): the (N, K, D) deviations of a broadcast made a
    # 10,000 x 512 ten-class fit 4x slower on a CPU (BENCHMARKS.md, "Evaluation").
    var = jax.lax.map(lambda a: a[0] @ jnp.square(x - a[1]), (wk.T, theta)) / count[:, None]
    n = w.sum()
    mean_all = w @ x / n
    epsilon = NB_VAR_SMOOTHING * jnp.max(w @ jnp.square(x - mean_all) / n)
    return GaussianNBParams(theta, var + epsilon, jnp.log(count / n))


def gaussian_nb_joint_log_likelihood(params: GaussianNBParams, x: jax.Array) -> jax.Array:
    """``GaussianNB._joint_log_likelihood``: ``(N, K)`` log P(c) + log P(x | c)."""
    n_ij = -0.5 * jnp.sum(jnp.log(2.0 * jnp.pi * params.var), axis=1)
    quad = jax.lax.map(lambda a: jnp.sum(jnp.square(x - a[0]) / a[1], axis=1), (params.theta, params.var)).T
    return params.log_prior + n_ij - 0.5 * quad


@functools.partial(jax.jit, static_argnames=("n_classes",))
def _nb_program(x_sets, y_sets, set_idx, train_mask, scaled, *, n_classes):
    def one(s, mask, sc):
        x, y = x_sets[s], y_sets[s]
        mean, scale = fit_stats(x, mask, sc)
        xs = (x - mean) / scale
        params = gaussian_nb_fit(xs, jax.nn.one_hot(y, n_classes, dtype=xs.dtype), mask)
        jll = gaussian_nb_joint_log_likelihood(params, xs)
        return jnp.argmax(jll, axis=1), jax.nn.log_softmax(jll, axis=1)

    return jax.vmap(one)(set_idx, train_mask, scaled)


def gaussian_nb(x_sets, y_sets, set_idx, train_mask, *, n_classes: int, scaled, chunk: int | None = None):
    """Fit ``GaussianNB()`` per fit and predict every row, in float64.

    Args:
      x_sets: ``(S, N, D)`` feature sets.
      y_sets: ``(S, N)`` class indices in ``[0, n_classes)`` (the sorted labels).
      set_idx: ``(G,)`` the set of each fit.
      train_mask: ``(G, N)`` bool, each fit's training rows.
      n_classes: K.
      scaled: bool, or ``(G,)`` bools: standardise with the fit's training-fold
        statistics first (data, not a compile-time switch: one program for both).
      chunk: fits per program call (bounds memory; default all).

    Returns:
      ``(pred (G, N) int, log_proba (G, N, K))`` on every row (the caller
      scores the test rows).
    """
    with jax.enable_x64(True):
        scaled = np.broadcast_to(np.asarray(scaled, bool), np.shape(set_idx))
        return run_chunked(lambda x, y, s, m, sc: _nb_program(x, y, s, m, sc, n_classes=n_classes),
                        np.asarray(x_sets, np.float64), np.asarray(y_sets, np.int32),
                        np.asarray(set_idx), np.asarray(train_mask), chunk, scaled)


# ---------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------


class MLPParams(NamedTuple):
    """One hidden layer: ``w1 (D, H)``, ``b1 (H,)``, ``w2 (H, O)``, ``b2 (O,)``; O = K, or 1 for two classes."""

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array


class MLPResult(NamedTuple):
    """Per fit: ``pred (N,)``, ``n_iter``, ``loss_curve (max_iter,)`` (0 after the stop), ``converged``."""

    pred: jax.Array
    n_iter: jax.Array
    loss_curve: jax.Array
    converged: jax.Array


def sklearn_initial_weights(seed: int, n_features: int, n_out: int, hidden: int = MLP_HIDDEN) -> MLPParams:
    """The initial weights of ``MLPClassifier(random_state=seed)``, float64, drawn as its
    ``_initialize`` draws them: ``RandomState(seed)``, layer by layer the weights then the
    biases, each uniform in ``+-sqrt(6 / (fan_in + fan_out))`` (factor 6: relu hidden layer)."""
    rs = np.random.RandomState(seed)
    b_in = np.sqrt(6.0 / (n_features + hidden))
    b_out = np.sqrt(6.0 / (hidden + n_out))
    return MLPParams(rs.uniform(-b_in, b_in, (n_features, hidden)), rs.uniform(-b_in, b_in, hidden),
                     rs.uniform(-b_out, b_out, (hidden, n_out)), rs.uniform(-b_out, b_out, n_out))


def mlp_forward(params: MLPParams, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(hidden activations (B, H), output logits (B, O))``."""
    h = jax.nn.relu(x @ params.w1 + params.b1)
    return h, h @ params.w2 + params.b2


def _output_prob(z: jax.Array) -> jax.Array:
    """scikit-learn's output activation: logistic for one unit, softmax otherwise."""
    if z.shape[-1] == 1:
        return jax.nn.sigmoid(z)
    return jax.nn.softmax(z, axis=-1)


def mlp_backprop(params: MLPParams, x: jax.Array, y: jax.Array, valid: jax.Array, alpha: float = MLP_ALPHA):
    """``MLPClassifier._backprop`` on the valid rows of a padded batch.

    Args:
      x: ``(B, D)`` batch rows; y: ``(B, O)`` targets (one-hot, or the
        positive-class indicator for two classes); valid: ``(B,)`` bool.

    Returns:
      ``(loss, grads)``: the batch's log loss (probabilities clipped to
      [eps, 1 - eps]) plus ``alpha / 2 * sum(W^2) / n``, and the gradients
      scikit-learn computes (``(a - y) / n`` at the output, ``alpha * W / n``
      on the weights), n the number of valid rows.
    """
    w = valid.astype(x.dtype)
    n = w.sum()
    h, z = mlp_forward(params, x)
    p = _output_prob(z)
    eps = jnp.finfo(x.dtype).eps
    pc = jnp.clip(p, eps, 1 - eps)
    if p.shape[-1] == 1:
        per_row = -(y * jnp.log(pc) + (1 - y) * jnp.log(1 - pc))[:, 0]
    else:
        per_row = -jnp.sum(jnp.where(y > 0, y * jnp.log(pc), 0.0), axis=1)
    l2 = jnp.sum(jnp.square(params.w1)) + jnp.sum(jnp.square(params.w2))
    loss = jnp.sum(w * per_row) / n + 0.5 * alpha * l2 / n
    d2 = (p - y) * w[:, None]
    d1 = (d2 @ params.w2.T) * (h > 0)
    grads = MLPParams((x.T @ d1 + alpha * params.w1) / n, d1.sum(0) / n,
                      (h.T @ d2 + alpha * params.w2) / n, d2.sum(0) / n)
    return loss, grads


class AdamState(NamedTuple):
    m: MLPParams
    v: MLPParams
    t: jax.Array


def adam_update(params: MLPParams, grads: MLPParams, state: AdamState, lr: float = MLP_LR):
    """scikit-learn's ``AdamOptimizer``: the bias correction folded into the step size,
    ``lr * sqrt(1 - b2^t) / (1 - b1^t)``, and epsilon added to ``sqrt(v)`` uncorrected."""
    t = state.t + 1
    m = jax.tree.map(lambda m, g: ADAM_B1 * m + (1 - ADAM_B1) * g, state.m, grads)
    v = jax.tree.map(lambda v, g: ADAM_B2 * v + (1 - ADAM_B2) * jnp.square(g), state.v, grads)
    tf = t.astype(grads.w1.dtype)
    step = lr * jnp.sqrt(1 - ADAM_B2**tf) / (1 - ADAM_B1**tf)
    params = jax.tree.map(lambda p, m, v: p - step * m / (jnp.sqrt(v) + ADAM_EPS), params, m, v)
    return params, AdamState(m, v, t)


class _EpochState(NamedTuple):
    params: MLPParams
    adam: AdamState
    best_loss: jax.Array
    no_improvement: jax.Array
    n_iter: jax.Array
    stopped: jax.Array
    loss_curve: jax.Array
    key: jax.Array


def mlp_fit_one(x, y_out, train_idx, n_train, mean, scale, params0, key, orders=None, *,
                max_iter: int = MLP_MAX_ITER, alpha: float = MLP_ALPHA, early_stop: bool = True):
    """``MLPClassifier(...).fit`` of one fit (vmap this over fits).

    Args:
      x: ``(N, D)`` the set's features (unscaled); rows are read through ``train_idx``.
      y_out: ``(N, O)`` output targets.
      train_idx: ``(n_max,)`` int, the training rows, the first ``n_train`` valid.
      n_train: number of training rows of this fit.
      mean, scale: ``(D,)`` scaling applied to every row read.
      params0: initial parameters; key: the shuffles' key.
      orders: optional ``(max_iter, n_max)`` permutations of the training
        positions, one per epoch (scikit-learn's shuffles, for tests); by
        default each epoch's order is a uniform random permutation from ``key``.
      max_iter, alpha: epochs and L2 strength; early_stop=False runs all epochs.

    Returns:
      ``(params, n_iter, loss_curve (max_iter,), stopped)``: ``stopped`` when
      the loss did not improve by tol for more than ``n_iter_no_change``
      epochs (scikit-learn's ``_update_no_improvement_count``); a fit that ran
      ``max_iter`` epochs without stopping is scikit-learn's ConvergenceWarning.
    """
    n_max = train_idx.shape[0]
    bs_static = min(MLP_BATCH, n_max)
    n_batches = -(-n_max // bs_static)
    bs = jnp.minimum(MLP_BATCH, n_train)
    dtype = x.dtype
    pos_pad = jnp.arange(bs_static)
    # The training rows, scaled once (not once per epoch): (n_max, D) and (n_max, O).
    x_train = (x[train_idx] - mean) / scale
    y_train = y_out[train_idx]

    def batch_step(carry, b, perm):
        params, adam, acc = carry
        start = b * bs
        pos = start + pos_pad
        valid = (pos_pad < bs) & (pos < n_train)
        if perm is None:
            xb, yb = x_train, y_train
        else:
            rows = perm[jnp.minimum(pos, n_max - 1)]
            xb, yb = x_train[rows], y_train[rows]
        loss, grads = mlp_backprop(params, xb, yb, valid, alpha)
        new_params, new_adam = adam_update(params, grads, adam)
        active = start < n_train
        keep = lambda new, old: jax.tree.map(lambda a, b_: jnp.where(active, a, b_), new, old)  # noqa: E731
        count = valid.sum().astype(dtype)
        return (keep(new_params, params), keep(new_adam, adam), acc + jnp.where(active, loss * count, 0.0)), None

    def epoch(s: _EpochState) -> _EpochState:
        key = s.key
        if orders is None and n_batches == 1:
            # One batch of all training rows: its gradient is a sum over rows, so the
            # epoch's shuffle changes only the order of a float sum; skip it.
            perm = None
        elif orders is None:
            key, sub = jax.random.split(s.key)
            u = jnp.where(jnp.arange(n_max) < n_train, jax.random.uniform(sub, (n_max,)), 2.0)
            perm = jnp.argsort(u)
        else:
            perm = orders[s.n_iter]
        (params, adam, acc), _ = jax.lax.scan(lambda c, b: batch_step(c, b, perm),
                                              (s.params, s.adam, jnp.zeros((), dtype)), jnp.arange(n_batches))
        loss = acc / n_train.astype(dtype)
        worse = loss > s.best_loss - MLP_TOL
        no_improvement = jnp.where(worse, s.no_improvement + 1, 0)
        best = jnp.minimum(loss, s.best_loss)
        stopped = (no_improvement > MLP_NO_CHANGE) & early_stop
        return _EpochState(params, adam, best, no_improvement, s.n_iter + 1, stopped,
                           s.loss_curve.at[s.n_iter].set(loss), key)

    zeros = jax.tree.map(jnp.zeros_like, params0)
    init = _EpochState(params0, AdamState(zeros, zeros, jnp.zeros((), jnp.int32)), jnp.asarray(jnp.inf, dtype),
                       jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), bool),
                       jnp.zeros(max_iter, dtype), key)
    out = jax.lax.while_loop(lambda s: ~s.stopped & (s.n_iter < max_iter), epoch, init)
    return out.params, out.n_iter, out.loss_curve, out.stopped


def mlp_predict(params: MLPParams, x: jax.Array) -> jax.Array:
    """Class indices ``(N,)``: argmax of the softmax, or logistic output > 0.5 for two classes."""
    _, z = mlp_forward(params, x)
    if z.shape[-1] == 1:
        return (z[:, 0] > 0).astype(jnp.int32)
    return jnp.argmax(z, axis=1).astype(jnp.int32)


def mlp_targets(y: jax.Array, n_classes: int, dtype=jnp.float32) -> jax.Array:
    """``(N, O)`` targets as scikit-learn's LabelBinarizer gives them: one column for two classes."""
    if n_classes == 2:
        return y[:, None].astype(dtype)
    return jax.nn.one_hot(y, n_classes, dtype=dtype)


@functools.partial(jax.jit, static_argnames=("n_classes", "n_max", "max_iter", "alpha", "early_stop"))
def _mlp_program(x_sets, y_sets, set_idx, train_mask, scaled, seeds, folds, init, orders=None, *, n_classes, n_max,
                 max_iter=MLP_MAX_ITER, alpha=MLP_ALPHA, early_stop=True):
    def one(s, mask, sc, seed, fold, params0, order):
        x, y = x_sets[s], y_sets[s]
        # The shuffles' key; a fit of one batch never shuffles, and its program has no threefry.
        key = jax.random.fold_in(jax.random.key(seed), fold)
        mean, scale = fit_stats(x, mask, sc)
        # The training rows first, in row order (scikit-learn's X_train), then padding.
        train_idx = jnp.argsort(~mask, stable=True)[:n_max]
        n_train = mask.sum()
        params, n_iter, curve, stopped = mlp_fit_one(
            x, mlp_targets(y, n_classes, x.dtype), train_idx, n_train, mean, scale, params0, key, order,
            max_iter=max_iter, alpha=alpha, early_stop=early_stop)
        return MLPResult(mlp_predict(params, (x - mean) / scale), n_iter, curve, stopped)

    return jax.vmap(one)(set_idx, train_mask, scaled, seeds, folds, init, orders)


def mlp(x_sets, y_sets, set_idx, train_mask, *, n_classes: int, scaled, seeds, folds=None, chunk: int | None = None,
        init: MLPParams | None = None, orders=None, max_iter: int = MLP_MAX_ITER, alpha: float = MLP_ALPHA,
        early_stop: bool = True, dtype=np.float32) -> MLPResult:
    """Fit ``MLPClassifier(random_state=seed)`` per fit and predict every row.

    The algorithm is scikit-learn's (see :func:`mlp_fit_one`) and so are the
    initial weights (:func:`sklearn_initial_weights` of each fit's seed). The
    epoch shuffles are ``jax.random``'s, not numpy's: a fit of more than one
    minibatch (over 200 training rows) equals a scikit-learn fit in
    distribution, not in value. A fit of one batch does not depend on the
    order of its rows beyond float rounding, so it follows scikit-learn's fit
    of the same seed (float32 here, float64 there). ``init`` and ``orders``
    replace the draws (tests feed scikit-learn's to compare loss curves step
    by step).

    Args:
      x_sets, y_sets, set_idx, train_mask, n_classes, scaled, chunk: as in :func:`gaussian_nb`.
      seeds: ``(G,)`` each fit's ``random_state``: its initial weights, and with
        its fold its shuffles (key ``fold_in(key(seed), fold)``).
      folds: ``(G,)`` each fit's fold number (default ``0..G-1``).
      init: optional :class:`MLPParams` with a leading ``(G,)`` axis, in place of
        scikit-learn's initial weights.
      orders: optional ``(G, max_iter, n_max)`` epoch permutations of each
        fit's training positions (n_max = the largest training fold).
      dtype: float32 (default) or float64 (under ``jax.enable_x64``).

    Returns:
      :class:`MLPResult` with a leading ``(G,)`` axis, as numpy arrays.
    """
    train_mask = np.asarray(train_mask)
    n_max = int(train_mask.sum(1).max())
    seeds = np.broadcast_to(np.asarray(seeds), np.shape(set_idx))
    folds = np.arange(len(seeds)) if folds is None else np.asarray(folds)
    extra = [np.broadcast_to(np.asarray(scaled, bool), np.shape(set_idx)), seeds.astype(np.uint32),
             folds.astype(np.uint32)]
    if init is None:
        # One draw per distinct seed (a study's folds share their set's seed, as scikit-learn's
        # do); each chunk takes its fits' rows of this table.
        distinct, which = np.unique(seeds, return_inverse=True)
        n_out = 1 if n_classes == 2 else n_classes
        drawn = [sklearn_initial_weights(int(seed), np.shape(x_sets)[-1], n_out) for seed in distinct]
        table = jax.tree.map(lambda *a: np.stack(a).astype(dtype), *drawn)
        extra.append(which)
    else:
        extra.append(init)
    if orders is not None:
        extra.append(np.asarray(orders))

    def program(x, y, s, m, sc, seed, fold, p0, *rest):
        if init is None:
            p0 = jax.tree.map(lambda t: t[p0], table)
        order = rest[0] if orders is not None else None
        return _mlp_program(x, y, s, m, sc, seed, fold, p0, order, n_classes=n_classes, n_max=n_max,
                            max_iter=max_iter, alpha=alpha, early_stop=early_stop)

    return run_chunked(program, np.asarray(x_sets, dtype), np.asarray(y_sets, np.int32), np.asarray(set_idx),
                    train_mask, chunk, *extra)
