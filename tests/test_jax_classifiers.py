"""The JAX classifiers against scikit-learn on real data.

* Gaussian NB is deterministic: probabilities equal to scikit-learn's to 1e-6.
* The MLP's algorithm is replayed step by step: given scikit-learn's own initial
  weights and epoch shuffles, the loss curve, the number of epochs (the
  stopping rule) and the predictions must be scikit-learn's. A missing L2
  term, a missing early stop or a wrong Adam bias correction breaks it.
* Through the evaluation's ``auto`` backend, which draws each fit's initial
  weights and epoch orders as ``MLPClassifier(random_state=seed)`` does, the
  fold accuracies must be those of scikit-learn's fit of the same seed, to a
  prediction or two of float32 rounding, with no bias over the sets. To stay
  affordable in CI this is checked on 5 folds and a stratified third of digits
  (the 10-fold full-data comparison is in ``benchmarks/bench_evaluation.py
  --offline`` and docs/evaluation.md).

scikit-learn runs with one BLAS thread: on a shared 2-core machine its threaded
BLAS is many times slower on these small matrices.
"""

import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import shuffle
from threadpoolctl import threadpool_limits

from icrst_jax import evaluation
from icrst_jax.evaluation import chunks
from icrst_jax.evaluation import jax_classifiers as jc
from icrst_jax.config import EvalConfig

SAME_SEED_FOLDS = 5


@pytest.fixture(scope="module")
def breast_cancer():
    return load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="module")
def digits_third():
    x, y = load_digits(return_X_y=True)
    x, _, y, _ = train_test_split(x, y, train_size=1 / 3, stratify=y, random_state=0)
    return x, y


def _fold_masks(y, n_folds, seed):
    splits = list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    mask = np.zeros((n_folds, len(y)), bool)
    for f, (tr, _) in enumerate(splits):
        mask[f, tr] = True
    return splits, mask


# ---------------------------------------------------------------------------
# Scaling and Gaussian NB: equal to scikit-learn
# ---------------------------------------------------------------------------


def test_fold_standard_stats_are_standard_scalers(breast_cancer):
    x, y = load_digits(return_X_y=True)  # constant pixels: scale 1, as scikit-learn
    tr = _fold_masks(y, 10, 0)[0][3][0]
    mask = np.zeros(len(y), bool)
    mask[tr] = True
    with jax.enable_x64(True):
        mean, scale = jc.fold_standard_stats(jax.numpy.asarray(x), mask)
    ref = StandardScaler().fit(x[tr])
    assert (ref.scale_ == 1.0).any()
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scale, ref.scale_, rtol=1e-12)


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("data", ["breast_cancer", "digits"])
def test_gaussian_nb_equals_sklearn(data, scaled):
    x, y = (load_breast_cancer if data == "breast_cancer" else load_digits)(return_X_y=True)
    splits, mask = _fold_masks(y, 10, 0)
    pred, log_proba = jc.gaussian_nb(x[None], y[None], np.zeros(10, int), mask, n_classes=len(np.unique(y)),
                                     scaled=scaled)
    for f, (tr, te) in enumerate(splits):
        ref = make_pipeline(StandardScaler(), GaussianNB()) if scaled else GaussianNB()
        ref.fit(x[tr], y[tr])
        np.testing.assert_allclose(np.exp(log_proba[f, te]), ref.predict_proba(x[te]), atol=1e-6)
        np.testing.assert_array_equal(pred[f, te], ref.predict(x[te]))


# ---------------------------------------------------------------------------
# MLP: scikit-learn's algorithm, replayed with scikit-learn's random numbers
# ---------------------------------------------------------------------------


def _sklearn_draws(random_state, n_features, n_out, n_train, max_iter):
    """The initial weights and epoch orders ``MLPClassifier(random_state=...)`` draws, in its order."""
    rs = np.random.RandomState(random_state)
    rs.uniform(size=n_features * 100 + 100 + 100 * n_out + n_out)  # the initial weights' draws
    params = jc.sklearn_initial_weights(random_state, n_features, n_out)
    idx = np.arange(n_train)
    orders = np.empty((max_iter, n_train), np.int32)
    for e in range(max_iter):
        idx = shuffle(idx, random_state=rs)
        orders[e] = idx
    return params, orders


def _replay(x, y, random_state, max_iter, scaled):
    """(scikit-learn's fitted MLP, ours given its draws, the fold's test rows) on fold 0 of 10, in float64."""
    (tr, te), = _fold_masks(y, 10, 0)[0][:1]
    n_classes = len(np.unique(y))
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        ref = make_pipeline(StandardScaler(), MLPClassifier(random_state=random_state, max_iter=max_iter)) \
            if scaled else MLPClassifier(random_state=random_state, max_iter=max_iter)
        ref.fit(x[tr], y[tr])
    params, orders = _sklearn_draws(random_state, x.shape[1], 1 if n_classes == 2 else n_classes, len(tr), max_iter)
    mask = np.zeros((1, len(y)), bool)
    mask[0, tr] = True
    with jax.enable_x64(True):
        ours = jc.mlp(x[None], y[None], np.zeros(1, int), mask, seeds=[random_state], n_classes=n_classes,
                      scaled=scaled, init=jax.tree.map(lambda a: a[None], params), orders=orders[None],
                      max_iter=max_iter, dtype=np.float64)
    return ref[-1] if scaled else ref, ref.predict(x[te]), ours, te


def test_mlp_replays_sklearn_binary_with_its_early_stop(breast_cancer):
    """Two classes: one logistic output unit; unscaled features stop early (epoch 141 for this seed)."""
    x, y = breast_cancer
    ref, ref_pred, ours, te = _replay(x, y, random_state=1, max_iter=200, scaled=False)
    assert ref.n_iter_ < 200, "the case must exercise the early stop"
    assert int(ours.n_iter[0]) == ref.n_iter_
    assert bool(ours.converged[0])
    np.testing.assert_allclose(ours.loss_curve[0, : ref.n_iter_], ref.loss_curve_, rtol=1e-9)
    np.testing.assert_array_equal(ours.pred[0, te], ref_pred)


def test_mlp_replays_sklearn_multiclass_softmax():
    """Ten classes: softmax output; 20 epochs of standardised digits, every loss equal."""
    x, y = load_digits(return_X_y=True)
    ref, ref_pred, ours, te = _replay(x, y, random_state=3, max_iter=20, scaled=True)
    assert int(ours.n_iter[0]) == ref.n_iter_ == 20 and not bool(ours.converged[0])
    np.testing.assert_allclose(ours.loss_curve[0], ref.loss_curve_, rtol=1e-9)
    np.testing.assert_array_equal(ours.pred[0, te], ref_pred)


def test_sklearn_initial_weights_are_mlpclassifiers():
    """One iteration of lr 0 leaves scikit-learn's initial weights in place: ours equal them."""
    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MLPClassifier(random_state=7, max_iter=1, learning_rate_init=1e-300).fit(x[:50], y[:50])
    ours = jc.sklearn_initial_weights(7, x.shape[1], 10)
    for a, b in zip((ours.w1, ours.b1, ours.w2, ours.b2), (*ref.coefs_[:1], *ref.intercepts_[:1], ref.coefs_[1],
                                                         ref.intercepts_[1])):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_one_batch_fits_follow_sklearns_fit_of_the_same_seed():
    """Folds of at most 200 training rows are one minibatch, where the shuffle only reorders a
    sum: from scikit-learn's initial weights, the float32 fits of the auto backend score what
    ``MLPClassifier(random_state=seed)`` scores, fold by fold, on the shipped trained latents
    (raw; the same-seed fixture's standardised ones share this program: 15 fits, same folds)."""
    jobs = [(x, y, 0, "none") for x, y in trained_latents().values()]
    auto = evaluation.evaluate_many(jobs, ["mlp"], n_folds=SAME_SEED_FOLDS, backend="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        ref = evaluation.evaluate_many(jobs, ["mlp"], n_folds=SAME_SEED_FOLDS, backend="sklearn", fold_lines=False)
    ours = np.concatenate([r["mlp"]["accuracy"]["folds"] for r in auto])
    theirs = np.concatenate([r["mlp"]["accuracy"]["folds"] for r in ref])
    assert np.mean(ours == theirs) >= 0.9, np.c_[ours, theirs]
    assert abs(ours.mean() - theirs.mean()) <= 0.005


# ---------------------------------------------------------------------------
# MLP of several minibatches: scikit-learn's fit of the same seed, fold by fold
# ---------------------------------------------------------------------------


def trained_latents():
    """Test-split latents of Breast Cancer's MLP autoencoder, seed 0, one set per mode
    (standard, ICRST p=1, TRST p=1), as ``python -m experiments.run --config
    configs/cpu_breast_cancer.py`` wrote them at commit 551d2d3 (tests/data)."""
    z = np.load(Path(__file__).parent / "data" / "breast_cancer_latents.npz")
    return {f"latents {mode}": (x, z["labels"]) for mode, x in zip(z["modes"], z["features"])}


SAME_SEED_SETS = ["breast_cancer scaled", "digits pixels", "latents standard", "latents icrst p=1",
                  "latents trst p=1"]


@pytest.fixture(scope="module")
def same_seed(breast_cancer, digits_third):
    """Per set: (our fold accuracies through evaluate_many(backend="auto"), scikit-learn's with
    ``random_state=0``, the folds' test sizes). Trained latents are standardised in-fold (the
    study's second scaling). Breast Cancer and digits train on 455 and 479 rows: three
    minibatches an epoch, in scikit-learn's epoch orders."""
    sets = {"breast_cancer scaled": (*breast_cancer, "standardised"), "digits pixels": (*digits_third, "none"),
            **{name: (x, y, "standardised") for name, (x, y) in trained_latents().items()}}
    jobs = [(x, y, 0, sc) for x, y, sc in sets.values()]
    ours = evaluation.evaluate_many(jobs, ["mlp"], n_folds=SAME_SEED_FOLDS, backend="auto")
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        ref = evaluation.evaluate_many(jobs, ["mlp"], n_folds=SAME_SEED_FOLDS, backend="sklearn", fold_lines=False)
    return {name: (a["mlp"]["accuracy"]["folds"], b["mlp"]["accuracy"]["folds"],
                   np.array([len(te) for _, te in _fold_masks(y, SAME_SEED_FOLDS, 0)[0]]))
            for (name, (x, y, sc)), a, b in zip(sets.items(), ours, ref)}


@pytest.mark.parametrize("name", SAME_SEED_SETS)
def test_mlp_scores_what_sklearns_fit_of_the_same_seed_scores(same_seed, name):
    """The same initial weights and epoch orders as ``MLPClassifier(random_state=0)``: float32
    against float64 over up to 200 epochs may part a prediction or two of a fold, no more; a
    wrong shuffle, batch split or stopping rule moves whole percents."""
    ours, theirs, n_test = same_seed[name]
    assert np.all(np.abs(ours - theirs) * n_test <= 2 + 1e-9), np.c_[ours, theirs, n_test]
    assert np.mean(ours == theirs) >= 0.6, np.c_[ours, theirs]


def test_mlp_has_no_bias_over_the_sets(same_seed):
    diffs = [ours.mean() - theirs.mean() for ours, theirs, _ in same_seed.values()]
    assert abs(np.mean(diffs)) <= 0.005, diffs


# ---------------------------------------------------------------------------
# The backend switch
# ---------------------------------------------------------------------------


def test_auto_backend_has_sklearns_structure_and_its_deterministic_scores(breast_cancer, same_seed):
    x, y = breast_cancer
    names = ["svm", "rf", "mlp", "nb"]
    auto = evaluation.evaluate_many([(x, y, 0, "standardised")], names, n_folds=SAME_SEED_FOLDS, backend="auto")[0]
    ref = evaluation.evaluate_many([(x, y, 0, "standardised")], ["svm", "rf", "nb"], n_folds=SAME_SEED_FOLDS,
                                   backend="sklearn")[0]
    assert list(auto) == names
    for name in names:
        assert set(auto[name]) == set(ref["nb"])
        assert auto[name]["n_folds"] == SAME_SEED_FOLDS and auto[name]["fitted_on"] == "standardised"
    for name in ("svm", "rf", "nb"):
        np.testing.assert_array_equal(auto[name]["accuracy"]["folds"], ref[name]["accuracy"]["folds"])
        np.testing.assert_array_equal(auto[name]["f1_macro"]["folds"], ref[name]["f1_macro"]["folds"])
    np.testing.assert_array_equal(auto["mlp"]["accuracy"]["folds"], same_seed["breast_cancer scaled"][0])


def test_auto_fits_the_random_forest_once_per_feature_set(breast_cancer):
    x, y = breast_cancer
    jobs = [(x, y, 0, "none"), (x, y, 0, "standardised")]
    none, std = evaluation.evaluate_many(jobs, ["rf", "nb"], n_folds=3, backend="auto")
    np.testing.assert_array_equal(none["rf"]["accuracy"]["folds"], std["rf"]["accuracy"]["folds"])
    assert none["rf"]["fitted_on"] == std["rf"]["fitted_on"] == "none"
    assert std["nb"]["fitted_on"] == "standardised"
    assert not np.array_equal(none["nb"]["accuracy"]["folds"], std["nb"]["accuracy"]["folds"])


@pytest.mark.parametrize("data", ["breast_cancer", "digits"])
def test_fast_random_forest_predicts_what_sklearns_forest_predicts(data):
    """The auto backend's forest is scikit-learn's: same predictions, fold after fold and seed after seed."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_breast_cancer(return_X_y=True) if data == "breast_cancer" else load_digits(return_X_y=True)
    x, y = x[:300], y[:300]
    splits, _ = _fold_masks(y, 5, 0)
    for seed, (tr, te) in zip(range(4), splits):
        ref = RandomForestClassifier(random_state=seed).fit(x[tr], y[tr]).predict(x[te])
        np.testing.assert_array_equal(evaluation.random_forest_predict(x[tr], y[tr], x[te], seed), ref)


def test_unknown_backend_is_a_clear_error(breast_cancer):
    x, y = breast_cancer
    with pytest.raises(ValueError, match="unknown backend 'gpu'; known: auto, sklearn"):
        evaluation.evaluate_many([(x, y, 0)], ["nb"], backend="gpu")
    with pytest.raises(ValueError, match="unknown eval.backend"):
        EvalConfig(backend="jax")
    assert EvalConfig().backend == "auto"


# ---------------------------------------------------------------------------
# One compiled program per classifier and shape, whatever the number of sets and fits
# ---------------------------------------------------------------------------


def test_a_studys_calls_and_chunks_share_one_nb_program(breast_cancer):
    """The evaluate stage calls evaluate_many twice (final + untrained sets, then the
    along-training sets) with different numbers of sets; both, and every chunk, run
    one compiled program. The same fits in one call or split across calls agree."""
    x, y = breast_cancer
    x, y = x[:120, :8], y[:120]
    before = jc._nb_program._cache_size()
    first = evaluation.evaluate_many([(x, y, s, sc) for s in range(7) for sc in ("none", "standardised")], ["nb"],
                                     n_folds=10, backend="auto")
    second = evaluation.evaluate_many([(x + 1.0, y, s, "standardised") for s in range(33)], ["nb"], n_folds=10,
                                      backend="auto")
    assert jc._nb_program._cache_size() - before == 1
    alone = evaluation.evaluate_many([(x, y, 3, "standardised")], ["nb"], n_folds=10, backend="auto")[0]
    np.testing.assert_array_equal(first[7]["nb"]["accuracy"]["folds"], alone["nb"]["accuracy"]["folds"])
    assert len(second) == 33


def test_mlp_chunks_of_any_count_share_one_program(breast_cancer):
    x, y = breast_cancer
    x, y = x[:100, :6], y[:100]
    _, mask = _fold_masks(y, 5, 0)
    before = jc._mlp_program._cache_size()
    results = []
    for n_sets in (3, 7):  # 15 and 35 fits in chunks of 8: 2 and 5 calls, the last ones padded
        x_sets = np.stack([x + s for s in range(n_sets)])
        set_idx = np.repeat(np.arange(n_sets), 5)
        results.append(jc.mlp(x_sets, np.stack([y] * n_sets), set_idx, np.tile(mask, (n_sets, 1)),
                              n_classes=2, scaled=True, seeds=0, chunk=8, max_iter=3))
    assert jc._mlp_program._cache_size() - before == 1
    # A fit's result does not depend on the chunk it ran in: same key, data and fold, same loss curve.
    np.testing.assert_allclose(results[0].loss_curve, results[1].loss_curve[:15], rtol=1e-6)


def test_fits_split_over_the_local_devices_give_the_single_device_results(breast_cancer, monkeypatch):
    """With the suite's 4 CPU devices each chunk's fit axis is sharded over them (10 fits:
    padded to 12, 3 per device); the MLP's and NB's results equal a one-device run's."""
    x, y = breast_cancer
    x, y = x[:100, :6], y[:100]
    _, mask = _fold_masks(y, 5, 0)
    x_sets, y_sets = np.stack([x, x * 2.0]), np.stack([y, y])
    set_idx, masks = np.repeat([0, 1], 5), np.tile(mask, (2, 1))

    def run():
        placed = []
        real_put = jax.device_put
        monkeypatch.setattr(jax, "device_put", lambda a, s=None: placed.append(s) or real_put(a, s))
        out = (jc.mlp(x_sets, y_sets, set_idx, masks, n_classes=2, scaled=True, seeds=0, max_iter=5),
               jc.gaussian_nb(x_sets, y_sets, set_idx, masks, n_classes=2, scaled=False))
        monkeypatch.setattr(jax, "device_put", real_put)
        return out, placed

    (mlp4, nb4), placed4 = run()
    assert len(jax.local_devices()) == 4 and len(placed4) == 2
    assert all(s.mesh.size == 4 for s in placed4)
    real_devices = jax.local_devices
    monkeypatch.setattr(jax, "local_devices", lambda: real_devices()[:1])
    (mlp1, nb1), placed1 = run()
    assert placed1 == []
    np.testing.assert_array_equal(mlp4.pred, mlp1.pred)
    np.testing.assert_allclose(mlp4.loss_curve, mlp1.loss_curve, rtol=1e-6)
    np.testing.assert_array_equal(nb4[0], nb1[0])


def test_one_device_runs_chunks_side_by_side_one_per_core(monkeypatch):
    """On one CPU device chunks run from one thread per core, and their results come back in fit order."""
    import threading
    import time

    monkeypatch.setattr(jax, "local_devices", lambda real=jax.local_devices: real()[:1])
    monkeypatch.setattr(chunks, "host_cores", lambda: 3)
    lock, active, peak = threading.Lock(), [0], [0]

    def program(x, y, local, mask):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return x[:, 0, 0] * 10 + mask.sum(1)

    x = np.arange(20, dtype=float)[:, None, None] * np.ones((20, 2, 1))
    mask = np.ones((20, 2), bool)
    np.testing.assert_array_equal(chunks.run_chunked(program, x, np.zeros((20, 2), int), np.arange(20), mask, 2),
                                  np.arange(20) * 10 + 2)
    assert peak[0] == 3


def test_side_by_side_chunks_keep_the_callers_float64(monkeypatch, digits_third):
    """``jax.enable_x64`` is per thread: Gaussian NB's chunks, run from worker threads on one
    CPU device, must still compute in float64 and equal scikit-learn to 1e-6."""
    monkeypatch.setattr(jax, "local_devices", lambda real=jax.local_devices: real()[:1])
    monkeypatch.setattr(chunks, "host_cores", lambda: 2)
    x, y = digits_third
    _, mask = _fold_masks(y, 5, 0)
    _, log_proba = jc.gaussian_nb(x[None], y[None], np.zeros(5, int), mask, n_classes=10, scaled=False, chunk=2)
    assert log_proba.dtype == np.float64
    for g in range(5):
        ref = GaussianNB().fit(x[mask[g]], y[mask[g]]).predict_proba(x)
        np.testing.assert_allclose(np.exp(log_proba[g]), ref, rtol=0, atol=1e-6)
