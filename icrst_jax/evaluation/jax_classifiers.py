"""Gaussian NB and the MLP, the paper's scikit-learn classifiers, as compiled JAX programs over many fits.

Section 6 of the paper classifies latents with scikit-learn's defaults. A study
evaluates many feature sets (grid points x seeds x scalings) x 10 folds; here
every fit of one classifier and one shape runs through one jitted program
(PureJaxRL style: pure functions over arrays), compiled once.

A fit is described by index arrays computed on the host (the folds are
scikit-learn's ``StratifiedKFold``): ``set_idx (G,)`` picks the feature set of
``x_sets (S, N, D)``, ``train_mask (G, N)`` its training rows. Standardisation
(``StandardScaler`` fitted on the training fold) is a per-fit ``(mean, scale)``
applied to the rows a fit reads, so no scaled copy of the data is stored.

Gaussian NB's fits run through :func:`~icrst_jax.evaluation.chunks.run_chunked`,
a fixed number per call; the MLP's, which stop at different epochs, through the
rows of a slot program (:func:`~icrst_jax.evaluation.chunks.run_in_slots`), a
finished fit's row refilled with the next fit.

* :func:`gaussian_nb` = ``GaussianNB()``, closed form, in float64: equal to
  scikit-learn to float tolerance.
* :func:`mlp` = ``MLPClassifier(random_state=seed)``: same architecture, loss,
  L2 term, Adam, batches, stopping rule and the same random draws (numpy's:
  the initial weights and the epoch orders of the fit's seed), so a fit
  follows scikit-learn's fit of the same seed to float32 rounding
  (``init``/``orders`` inject other draws, for tests).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.evaluation.chunks import fits_within_budget, run_chunked, run_in_slots

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


# Rows of the MLP's slot program on a CPU: one fit per call (two loops side by side on two
# cores), each step its own small matmuls, ran a fit's epochs ~2x faster than rows of 32
# fits' batched matmuls, whose working set leaves the cache (BENCHMARKS.md, "Evaluation").
MLP_CPU_SLOTS = 1


def fits_per_chunk(n: int, d: int) -> int:
    """:func:`fits_within_budget` for per-fit float64 copies of an (n, d) set (NB, MLP)."""
    return fits_within_budget(8 * n * max(d, MLP_HIDDEN))


def mlp_slots(n: int, d: int) -> int:
    """Rows of the MLP's slot program: :data:`MLP_CPU_SLOTS` on a CPU, :func:`fits_per_chunk` elsewhere."""
    return MLP_CPU_SLOTS if jax.default_backend() == "cpu" else fits_per_chunk(n, d)


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


class MLPSlots(NamedTuple):
    """The fits in the rows of a slot program (leading ``(C,)`` axis on every field).

    ``x_train (n_max, D)`` a fit's training rows in row order (scikit-learn's
    ``X_train``) then padding, scaled, ``n_train`` of them valid, ``y_train
    (n_max, O)`` their targets; ``mean``, ``scale`` ``(D,)`` its scaling;
    ``orders`` optional ``(max_iter, n_max)`` epoch permutations (tests); the
    optimiser's state, the stopping rule's counters and the loss curve.
    """

    x_train: jax.Array
    y_train: jax.Array
    n_train: jax.Array
    mean: jax.Array
    scale: jax.Array
    orders: jax.Array | None
    params: MLPParams
    adam: AdamState
    best_loss: jax.Array
    no_improvement: jax.Array
    n_iter: jax.Array
    stopped: jax.Array
    loss_curve: jax.Array


def mlp_start(x, y, mask, scaled, params0, orders, *, n_classes: int, n_max: int, max_iter: int
              ) -> MLPSlots:
    """One fit's row before its first epoch (vmap this over rows).

    ``x (N, D)``, ``y (N,)`` the set; ``mask (N,)`` its training rows; ``scaled``
    standardise by the fold's statistics; ``params0`` its initial weights;
    ``orders`` its epoch orders (``None`` for a single batch).
    """
    mean, scale = fit_stats(x, mask, scaled)
    train_idx = jnp.argsort(~mask, stable=True)[:n_max]
    zeros = jax.tree.map(jnp.zeros_like, params0)
    return MLPSlots(
        x_train=(x[train_idx] - mean) / scale, y_train=mlp_targets(y, n_classes, x.dtype)[train_idx],
        n_train=mask.sum().astype(jnp.int32), mean=mean, scale=scale, orders=orders, params=params0,
        adam=AdamState(zeros, zeros, jnp.zeros((), jnp.int32)), best_loss=jnp.asarray(jnp.inf, x.dtype),
        no_improvement=jnp.zeros((), jnp.int32), n_iter=jnp.zeros((), jnp.int32), stopped=jnp.zeros((), bool),
        loss_curve=jnp.zeros(max_iter, x.dtype))


def _rows_backprop(params: MLPParams, x, x_t, y, valid, alpha: float):
    """:func:`mlp_backprop` of every row at once (leading ``(C,)``), each matmul in the layout
    the CPU's batched kernels take (contraction over the left operand's last axis): the
    gradient of ``W1`` from ``x_t (C, D, B)``, that of ``W2`` transposed from ``(O, B) @ (B, H)``."""
    w = valid.astype(x.dtype)
    n = w.sum(1)[:, None, None]
    h = jax.nn.relu(jnp.einsum("cbd,cdh->cbh", x, params.w1) + params.b1[:, None])
    z = jnp.einsum("cbh,cho->cbo", h, params.w2) + params.b2[:, None]
    p = _output_prob(z)
    eps = jnp.finfo(x.dtype).eps
    pc = jnp.clip(p, eps, 1 - eps)
    if p.shape[-1] == 1:
        per_row = -(y * jnp.log(pc) + (1 - y) * jnp.log(1 - pc))[..., 0]
    else:
        per_row = -jnp.sum(jnp.where(y > 0, y * jnp.log(pc), 0.0), axis=2)
    l2 = jnp.sum(jnp.square(params.w1), (1, 2)) + jnp.sum(jnp.square(params.w2), (1, 2))
    loss = jnp.sum(w * per_row, 1) / n[:, 0, 0] + 0.5 * alpha * l2 / n[:, 0, 0]
    d2 = (p - y) * w[..., None]
    d1 = jnp.einsum("cbo,coh->cbh", d2, jnp.swapaxes(params.w2, 1, 2)) * (h > 0)
    g_w2 = jnp.swapaxes(jnp.einsum("cob,cbh->coh", jnp.swapaxes(d2, 1, 2), h), 1, 2)
    grads = MLPParams((jnp.einsum("cdb,cbh->cdh", x_t, d1) + alpha * params.w1) / n, d1.sum(1) / n[:, 0],
                      (g_w2 + alpha * params.w2) / n, d2.sum(1) / n[:, 0])
    return loss, grads


def _epoch_order(s: MLPSlots):
    """``(C, n_max)`` the epoch's order of each row's training positions, or ``None`` for a single
    batch of all training rows (its gradient is a sum over rows: the shuffle changes only the
    order of a float sum, so it is skipped)."""
    if s.orders is None:
        return None
    return jnp.take_along_axis(s.orders, jnp.minimum(s.n_iter, s.orders.shape[1] - 1)[:, None, None], 1)[:, 0]


def mlp_epoch(s: MLPSlots, *, alpha: float = MLP_ALPHA, early_stop: bool = True) -> MLPSlots:
    """One epoch of ``MLPClassifier.fit`` for every row (leading ``(C,)``), the rows' stops as data.

    The training positions in a new order (:func:`_epoch_order`), batches of
    ``min(200, n_train)``, the last one partial, each an Adam step of
    :func:`mlp_backprop`'s gradients; the epoch loss the batch-size-weighted
    mean, and scikit-learn's ``_update_no_improvement_count``. Batch ``b``
    starts at position ``200 b`` in every row: a row with fewer than 200
    training rows has one batch, and its later ones are empty. The rows are
    gathered in the epoch's order once, so each batch is a slice, the last one
    of the ``n_max % 200`` remaining positions (no padding to 200).
    """
    c, n_max, _ = s.x_train.shape
    bs = min(MLP_BATCH, n_max)
    dtype = s.x_train.dtype
    perm = _epoch_order(s)
    x, y = s.x_train, s.y_train
    if perm is not None:
        # Whole rows per index (a gather of D-wide slices, not of single elements).
        x, y = jax.vmap(lambda a, b, i: (a[i], b[i]))(x, y, perm)
    x_t = jnp.swapaxes(x, 1, 2)

    def batch_step(carry, start, size):
        params, adam, acc = carry
        valid = start + jnp.arange(size) < s.n_train[:, None]
        sl = lambda a, axis: jax.lax.dynamic_slice_in_dim(a, start, size, axis)  # noqa: E731
        loss, grads = _rows_backprop(params, sl(x, 1), sl(x_t, 2), sl(y, 1), valid, alpha)
        new_params, new_adam = jax.vmap(adam_update)(params, grads, adam)
        active = start < s.n_train
        count = valid.sum(1).astype(dtype)
        return (_where_rows(active, new_params, params), _where_rows(active, new_adam, adam),
                acc + jnp.where(active, loss * count, 0.0))

    carry = (s.params, s.adam, jnp.zeros((c,), dtype))
    carry, _ = jax.lax.scan(lambda cr, b: (batch_step(cr, b * bs, bs), None), carry, jnp.arange(n_max // bs))
    if n_max % bs:
        carry = batch_step(carry, n_max - n_max % bs, n_max % bs)
    params, adam, acc = carry
    loss = acc / s.n_train.astype(dtype)
    worse = loss > s.best_loss - MLP_TOL
    no_improvement = jnp.where(worse, s.no_improvement + 1, 0)
    max_iter = s.loss_curve.shape[1]
    curve = s.loss_curve.at[jnp.arange(c), jnp.minimum(s.n_iter, max_iter - 1)].set(loss)
    new = s._replace(params=params, adam=adam, best_loss=jnp.minimum(loss, s.best_loss),
                     no_improvement=no_improvement, n_iter=s.n_iter + 1,
                     stopped=(no_improvement > MLP_NO_CHANGE) & early_stop, loss_curve=curve)
    return _where_rows(~mlp_finished(s), new, s)


def mlp_finished(s: MLPSlots) -> jax.Array:
    """``(C,)``: the rows whose fit stopped early or ran ``max_iter`` epochs."""
    return s.stopped | (s.n_iter >= s.loss_curve.shape[1])


def _where_rows(rows, new, old):
    """``new`` in the rows ``rows (C,)`` of every leaf, ``old`` elsewhere."""
    return jax.tree.map(lambda a, b: jnp.where(rows.reshape(rows.shape + (1,) * (a.ndim - 1)), a, b), new, old)


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


def sklearn_epoch_orders(seed: int, n_features: int, n_out: int, n_train: int, n_max: int,
                         max_iter: int = MLP_MAX_ITER, hidden: int = MLP_HIDDEN) -> np.ndarray:
    """The epoch orders of ``MLPClassifier(random_state=seed)``'s fit on ``n_train`` rows, ``(max_iter, n_max)``.

    Its ``RandomState(seed)`` after the initial weights' draws
    (:func:`sklearn_initial_weights`), then per epoch ``shuffle(sample_idx)``, which
    reorders the previous epoch's order by ``permutation(n_train)``; positions
    from ``n_train`` on pad each row in order.
    """
    rs = np.random.RandomState(seed)
    rs.uniform(size=n_features * hidden + hidden + hidden * n_out + n_out)
    out = np.tile(np.arange(n_max, dtype=np.int32), (max_iter, 1))
    idx = np.arange(n_train, dtype=np.int32)
    for e in range(max_iter):
        idx = idx[rs.permutation(n_train)]
        out[e, :n_train] = idx
    return out


@functools.partial(jax.jit, static_argnames=("n_classes", "n_max", "max_iter", "alpha", "early_stop"))
def _mlp_program(state, refill, live, need, x, y, train_mask, scaled, init, orders=None, *,
                 n_classes, n_max, max_iter=MLP_MAX_ITER, alpha=MLP_ALPHA, early_stop=True):
    """One call of :func:`~icrst_jax.evaluation.chunks.run_in_slots`: start the ``refill`` rows' fits, run
    epochs until ``need`` live rows have finished, predict every row of their sets."""
    start = functools.partial(mlp_start, n_classes=n_classes, n_max=n_max, max_iter=max_iter)
    state = _where_rows(refill, jax.vmap(start)(x, y, train_mask, scaled, init, orders), state)

    def going(s):
        finished = mlp_finished(s) & live
        return (finished.sum() < need) & (live & ~mlp_finished(s)).any()

    state = jax.lax.while_loop(going, functools.partial(mlp_epoch, alpha=alpha, early_stop=early_stop), state)
    done = mlp_finished(state)
    pred = jax.vmap(lambda p, x, m, sc: mlp_predict(p, (x - m) / sc))(state.params, x, state.mean, state.scale)
    return state, done, MLPResult(pred, state.n_iter, state.loss_curve, state.stopped)


def mlp(x_sets, y_sets, set_idx, train_mask, *, n_classes: int, scaled, seeds, folds=None, chunk: int | None = None,
        init: MLPParams | None = None, orders=None, max_iter: int = MLP_MAX_ITER, alpha: float = MLP_ALPHA,
        early_stop: bool = True, dtype=np.float32) -> MLPResult:
    """Fit ``MLPClassifier(random_state=seed)`` per fit and predict every row.

    The algorithm is scikit-learn's (see :func:`mlp_epoch`) and so are the
    random draws: the initial weights (:func:`sklearn_initial_weights`) and
    the epoch orders (:func:`sklearn_epoch_orders`) of each fit's seed, as
    scikit-learn draws them for every fold. A fit then follows scikit-learn's
    fit of the same seed to float rounding (float32 here, float64 there),
    which over 200 epochs can still part their last digits and, rarely, a
    prediction. A fit of one batch (at most 200 training rows) is not shuffled
    (the order of a float sum). ``init`` and ``orders`` replace the draws.

    Args:
      x_sets, y_sets, set_idx, train_mask, n_classes, scaled: as in :func:`gaussian_nb`.
      seeds: ``(G,)`` each fit's ``random_state``.
      folds: each fit's fold number; unused (scikit-learn's draws do not depend on it), kept for callers.
      chunk: rows of the slot program (fits at once; default all).
      init: optional :class:`MLPParams` with a leading ``(G,)`` axis, in place of
        scikit-learn's initial weights.
      orders: optional ``(G, max_iter, n_max)`` epoch permutations of each
        fit's training positions (n_max = the largest training fold).
      dtype: float32 (default) or float64 (under ``jax.enable_x64``).

    Returns:
      :class:`MLPResult` with a leading ``(G,)`` axis, as numpy arrays.
    """
    del folds
    train_mask = np.asarray(train_mask)
    n_max = int(train_mask.sum(1).max())
    seeds = np.broadcast_to(np.asarray(seeds), np.shape(set_idx))
    n_out = 1 if n_classes == 2 else n_classes
    d = np.shape(x_sets)[-1]
    # Tables of the draws, one row per distinct seed (and training-fold size), and each fit's row.
    if init is None:
        init, init_row = _table_of(seeds[:, None], lambda seed: sklearn_initial_weights(seed, d, n_out), dtype)
    else:
        init_row = np.arange(len(seeds))
    if orders is None and n_max > MLP_BATCH:
        n_train = train_mask.sum(1)
        orders, order_row = _table_of(np.column_stack([seeds, n_train]), lambda seed, rows: sklearn_epoch_orders(
            seed, d, n_out, rows, n_max, max_iter), np.int32)
    elif orders is not None:
        order_row = np.arange(len(seeds))
    extra = [np.broadcast_to(np.asarray(scaled, bool), np.shape(set_idx)), init_row]
    if orders is not None:
        extra.append(order_row)
    start = functools.partial(mlp_start, n_classes=n_classes, n_max=n_max, max_iter=max_iter)
    statics = dict(n_classes=n_classes, n_max=n_max, max_iter=max_iter, alpha=alpha, early_stop=early_stop)

    def rows_of(p0, rest):
        """The fits' initial weights and orders from their table rows (host arrays, or traced for shapes)."""
        take = (lambda t, i: np.asarray(t)[i]) if isinstance(p0, np.ndarray) else (lambda t, i: jnp.asarray(t)[i])
        return jax.tree.map(lambda t: take(t, p0), init), take(orders, rest[0]) if rest else None

    def program(state, refill, live, need, x, y, m, sc, p0, *rest):
        return _mlp_program(state, refill, live, need, x, y, m, sc, *rows_of(p0, rest), **statics)

    x_sets, y_sets = np.asarray(x_sets, dtype), np.asarray(y_sets, np.int32)

    def empty(rows: int) -> MLPSlots:
        """The slots' state before the first call, shaped as the program's (every row is refilled by it)."""
        first = jax.tree.map(lambda a: np.repeat(np.asarray(a)[:1], rows, 0),
                             (x_sets[np.asarray(set_idx)[:1]], y_sets[np.asarray(set_idx)[:1]], train_mask, *extra))
        shapes = jax.eval_shape(lambda x, y, m, sc, p0, *rest: jax.vmap(start)(x, y, m, sc, *rows_of(p0, rest)),
                                *first)
        return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)

    return MLPResult(*run_in_slots(program, empty, x_sets, y_sets, np.asarray(set_idx), train_mask, chunk, *extra))


def _table_of(keys: np.ndarray, draw, dtype):
    """``(table, row)``: ``draw(*key)`` for each distinct row of ``keys (G, K)``, stacked (a pytree with a
    leading axis), and each fit's row of it (a study's folds share their set's seed, as scikit-learn's do)."""
    distinct, which = np.unique(np.asarray(keys), axis=0, return_inverse=True)
    drawn = [draw(*map(int, k)) for k in distinct]
    return jax.tree.map(lambda *a: np.stack(a).astype(dtype), *drawn), np.asarray(which).reshape(-1)
