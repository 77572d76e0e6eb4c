"""icrst_jax.tsne against scikit-learn's exact t-SNE, on digits."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import squareform
from sklearn.datasets import load_digits
from sklearn.manifold import TSNE, trustworthiness
from sklearn.manifold import _t_sne as sk_tsne

from icrst_jax import tsne as T


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x[:240].astype(np.float64), y[:240]


def _steps(p, y0, n_steps, momentum, lr, it0=0):
    """Ours and scikit-learn's ``_gradient_descent`` for ``n_steps`` steps from ``y0`` (float64 P, float32 y)."""
    with jax.enable_x64(True):
        ours, last = T._stage(jnp.asarray(p)[None], jnp.asarray(y0)[None], it0, it0 + n_steps, momentum,
                              T.N_ITER_WITHOUT_PROGRESS, jnp.asarray([lr]))
        ours = np.asarray(ours[0])
    ref, _, it = sk_tsne._gradient_descent(
        sk_tsne._kl_divergence, y0.ravel().copy(), it0, it0 + n_steps, n_iter_check=T.CHECK_EVERY, momentum=momentum,
        learning_rate=np.float64(lr), min_gain=T.MIN_GAIN, min_grad_norm=T.MIN_GRAD_NORM,
        n_iter_without_progress=T.N_ITER_WITHOUT_PROGRESS, args=[squareform(p, checks=False), 1, len(y0), 2],
        kwargs={})
    return ours, ref.reshape(-1, 2), int(last[0]), it


def test_objective_and_first_steps_equal_sklearns(digits):
    """The KL divergence and its gradient to rounding, and the optimiser's steps (gains,
    momentum, learning rate, float32 embedding) to 1e-5 of the embedding's scale in each
    stage; later steps diverge as t-SNE amplifies rounding, so they are not compared."""
    x, _ = digits
    p = T.affinities(x, 30.0)
    y0 = T.pca_start(x, 0)
    kl, grad = sk_tsne._kl_divergence(y0.ravel().copy(), squareform(p, checks=False), 1, len(x), 2)
    with jax.enable_x64(True):
        np.testing.assert_allclose(float(T.kl_divergence(jnp.asarray(y0), jnp.asarray(p))), kl, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(T.kl_gradient(jnp.asarray(y0), jnp.asarray(p))), grad.reshape(-1, 2),
                                   rtol=1e-5, atol=1e-12)
    lr = max(len(x) / T.EARLY_EXAGGERATION / 4, 50)
    ours, ref, last, it = _steps(p * T.EARLY_EXAGGERATION, y0, 12, 0.5, lr)
    assert last == it == 11
    np.testing.assert_allclose(ours, ref, atol=1e-5 * np.abs(ref).max())
    # The second stage's momentum from a spread-out embedding, with its step counter.
    spread = ref * 50
    ours, ref, last, it = _steps(p, spread, 12, 0.8, lr, it0=250)
    assert last == it == 261
    np.testing.assert_allclose(ours, ref, atol=1e-5 * np.abs(ref).max())


def test_learning_schedule_is_sklearns(monkeypatch):
    """scikit-learn's own ``_gradient_descent`` calls in a ``TSNE(method="exact")`` fit (recorded):
    their exaggeration of P, momentum, step range, patience, learning rate and constants are ours."""
    calls = []
    real = sk_tsne._gradient_descent
    default_min_gain = inspect.signature(real).parameters["min_gain"].default

    def spy(objective, p0, it, max_iter, **kw):
        calls.append(dict(it=it, max_iter=max_iter, momentum=kw["momentum"],
                          patience=kw["n_iter_without_progress"], lr=float(kw["learning_rate"]),
                          exaggeration=2 * float(np.sum(kw["args"][0])), check=kw["n_iter_check"],
                          min_gain=kw.get("min_gain", default_min_gain), min_grad_norm=kw["min_grad_norm"]))
        return real(objective, p0, it, max_iter, **kw)

    monkeypatch.setattr(sk_tsne, "_gradient_descent", spy)
    x = np.random.default_rng(0).normal(size=(300, 5))
    TSNE(init="pca", method="exact", random_state=0, max_iter=251).fit(x)
    ours = T.stages(251)
    assert len(calls) == len(ours)
    for call, st in zip(calls, ours):
        assert (call["it"], call["max_iter"], call["momentum"], call["patience"]) == (
            st.it0, st.max_iter, st.momentum, st.n_iter_without_progress)
        assert call["exaggeration"] == pytest.approx(st.exaggeration)
        assert call["lr"] == T.learning_rate(300)
        assert (call["check"], call["min_gain"], call["min_grad_norm"]) == (T.CHECK_EVERY, T.MIN_GAIN,
                                                                             T.MIN_GRAD_NORM)


def test_whole_run_is_as_good_as_sklearns(digits, shipped_compiler):
    """Up to 1,000 steps in float32 (the default) on three copies of 150 samples perturbed by 1e-6
    (one compiled call): the KL divergence within scikit-learn's own spread over the same copies
    (its runs differ by a few % there, t-SNE amplifying rounding) and the same neighbourhoods
    (trustworthiness within 0.01); a panel of another size gets its own call. 150 samples, not
    the 240 of the step-by-step test: scikit-learn's numpy reference is the cost of this test.
    Compiled as shipped: the spread is of the program users run (unoptimised, its rounding
    moves the KL by a few %, as another copy does)."""
    x, y = digits
    x, y = x[:150], y[:150]
    rng = np.random.default_rng(0)
    copies = [x + 1e-6 * rng.normal(size=x.shape) for _ in range(3)]
    ref = [TSNE(init="pca", method="exact", random_state=0).fit(c) for c in copies]
    *ours, small = T.tsne(copies + [x[:60]], seed=0, perplexity=[30.0] * 3 + [19.0])
    kl = [sk_tsne._kl_divergence(o.ravel(), squareform(T.affinities(c, 30.0), checks=False), 1, len(x), 2)[0]
          for o, c in zip(ours, copies)]
    kl_ref = [r.kl_divergence_ for r in ref]
    assert min(kl_ref) * 0.95 < np.mean(kl) < max(kl_ref) * 1.05, (kl, kl_ref)
    trust = np.mean([trustworthiness(x, o) for o in ours])
    assert abs(trust - np.mean([trustworthiness(x, r.embedding_) for r in ref])) < 0.01
    assert small.shape == (60, 2) and trustworthiness(x[:60], small) > 0.9
    # Classes form clusters: each point's nearest embedded neighbour mostly shares its class.
    d = np.square(ours[0][:, None] - ours[0][None]).sum(-1) + np.diag(np.full(len(x), np.inf))
    assert np.mean(y[d.argmin(1)] == y) > 0.9


def test_errors_are_one_line():
    with pytest.raises(ValueError, match="max_iter must be at least 250"):
        T.tsne([np.zeros((10, 2))], max_iter=100)
    with pytest.raises(ValueError, match="2 perplexities for 1 panels"):
        T.tsne([np.zeros((10, 2))], perplexity=[3.0, 3.0])
