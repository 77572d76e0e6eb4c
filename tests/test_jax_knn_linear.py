"""The kNN vote and the linear probe: the JAX programs against the numpy reference and scikit-learn."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from icrst_jax.evaluation.jax_knn import knn
from icrst_jax.evaluation.jax_linear import linear
from icrst_jax.evaluation.weighted_knn import WeightedKNN

DATA = Path(__file__).parent / "data"


def _trained_latents():
    with np.load(DATA / "breast_cancer_latents.npz") as z:  # (modes, N, 8): the ICRST latents
        return z["features"][1].astype(np.float64), z["labels"]


def _offset():
    x, y = load_breast_cancer(return_X_y=True)
    return x[:, :2] + 50.0, y  # an offset only an intercept absorbs


SETS = {"breast_cancer": lambda: load_breast_cancer(return_X_y=True), "digits": lambda: load_digits(return_X_y=True),
        "trained latents": _trained_latents, "offset": _offset}


def _folds(y, n_folds=5):
    splits = list(StratifiedKFold(n_folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    mask = np.zeros((len(splits), len(y)), bool)
    for g, (train, _) in enumerate(splits):
        mask[g, train] = True
    return splits, mask


def _stacked(names):
    """The sets as one ``(S, N, D)`` array, each zero-padded to the largest rows and columns, so that
    every set shares one compiled program: a zero column changes no distance, no cosine, no
    standardised feature and no L2-penalised weight; a padded row is in no training fold (it is
    queried, and its prediction is never read)."""
    sets = [SETS[n]() for n in names]
    n, d = max(len(x) for x, _ in sets), max(x.shape[1] for x, _ in sets)
    xs, ys, folds = np.zeros((len(sets), n, d)), np.zeros((len(sets), n), int), []
    for s, (x, y) in enumerate(sets):
        xs[s, :len(x), :x.shape[1]], ys[s, :len(y)] = x, y
        splits, mask = _folds(y)
        folds.append((x, y, splits, np.pad(mask, ((0, 0), (0, n - len(y))))))
    return xs, ys, folds


def test_knn_predicts_what_the_reference_and_scikit_learn_predict():
    xs, ys, folds = _stacked(["breast_cancer", "trained latents"])
    set_idx = np.repeat(np.arange(len(folds)), 5)
    mask = np.concatenate([m for *_, m in folds])
    pred = knn(xs, ys, set_idx, mask, n_classes=2, scaled=False)
    plain = knn(xs, ys, set_idx, mask, n_classes=2, scaled=False, uniform=True, euclidean=True)
    for s, (x, y, splits, _) in enumerate(folds):
        for f, (train, test) in enumerate(splits):
            g = 5 * s + f
            ref = WeightedKNN().fit(x[train], y[train]).predict(x[test])
            np.testing.assert_array_equal(pred[g, test], ref)
            sk = KNeighborsClassifier(20).fit(x[train], y[train]).predict(x[test])
            np.testing.assert_array_equal(plain[g, test], sk)
            np.testing.assert_array_equal(WeightedKNN(weights="uniform", metric="euclidean").fit(x[train], y[train])
                                          .predict(x[test]), sk)


def test_the_temperature_weights_the_votes():
    # Two far neighbours of class 1 outvote one close one of class 0 only with uniform votes.
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0], [1.0, 0.05]])
    knn3 = WeightedKNN(k=3).fit(x[:3], [0, 1, 1])
    assert knn3.predict(x[3:]).tolist() == [0]
    assert WeightedKNN(k=3, weights="uniform").fit(x[:3], [0, 1, 1]).predict(x[3:]).tolist() == [1]


@pytest.fixture(scope="module")
def binary_fits():
    """Every two-class linear fit of this file in one call of one compiled program: Breast Cancer and the
    trained latents standardised, the offset set raw with and without the intercept (5 folds each)."""
    xs, ys, folds = _stacked(["breast_cancer", "trained latents", "offset"])
    set_idx = np.repeat([0, 1, 2, 2], 5)
    mask = np.concatenate([folds[s][3] for s in set_idx[::5]])
    scaled, intercept = set_idx < 2, np.arange(20) < 15
    res = linear(xs, ys, set_idx, mask, n_classes=2, scaled=scaled, intercept=intercept)
    return folds, res


def _agrees_with_logistic_regression(name, x, y, splits, res, first):
    # Standardised: scikit-learn's lbfgs converges within max_iter, so both reach the one minimiser.
    classes = np.unique(y)
    for f, (train, test) in enumerate(splits):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            ref = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[train], y[train]).predict(x[test])
        assert res.converged[first + f]
        assert np.mean(classes[res.pred[first + f, test]] == ref) >= 0.99, (name, f)


@pytest.mark.parametrize("name", ["breast_cancer", "trained latents"])
def test_linear_probe_predicts_what_logistic_regression_predicts(binary_fits, name):
    folds, res = binary_fits
    s = ["breast_cancer", "trained latents"].index(name)
    x, y, splits, _ = folds[s]
    _agrees_with_logistic_regression(name, x, y, splits, res, 5 * s)


def test_linear_probe_predicts_what_logistic_regression_predicts_on_digits():
    x, y = load_digits(return_X_y=True)
    splits, mask = _folds(y)
    res = linear(x[None], y[None], np.zeros(len(mask), int), mask, n_classes=10, scaled=True)
    _agrees_with_logistic_regression("digits", x, y, splits, res, 0)


def test_linear_probe_without_intercept_and_l2_is_another_classifier(binary_fits):
    folds, res = binary_fits
    x, y, splits, _ = folds[2]

    refs = [LogisticRegression(max_iter=1000).fit(x[tr], y[tr]).predict(x[t]) for tr, t in splits]

    def agree(first):
        return np.mean([np.mean(res.pred[first + f, t] == ref) for f, ((_, t), ref) in enumerate(zip(splits, refs))])

    assert agree(15) < 0.95 <= agree(10)  # the planted one (no intercept) against ours


def test_auto_on_a_cpu_fits_knn_and_linear_with_the_options_on_the_host(monkeypatch):
    """On a CPU the auto backend leaves the kNN vote and the linear probe to scikit-learn's side (faster
    there at every size measured) with the study's k and temperature; JAX_KNN_LINEAR_ON_CPU brings them back."""
    from icrst_jax.evaluation import auto_backend, evaluate_many
    from icrst_jax.evaluation.classifiers import ClassifierOptions

    x, y = load_breast_cancer(return_X_y=True)
    x, y = x[:200], y[:200]
    assert {"knn", "linear", "svm", "rf"} <= set(auto_backend.host_classifiers())
    runs = {}
    for k in (1, 15):
        runs[k] = evaluate_many([(x, y, 0, "standardised")], ["knn"], n_folds=5, backend="auto", options=ClassifierOptions(knn_k=k))[0]
        ref = evaluate_many([(x, y, 0, "standardised")], ["knn"], n_folds=5, backend="sklearn", options=ClassifierOptions(knn_k=k))[0]
        np.testing.assert_array_equal(runs[k]["knn"]["accuracy"]["folds"], ref["knn"]["accuracy"]["folds"])
    assert not np.array_equal(runs[1]["knn"]["accuracy"]["folds"], runs[15]["knn"]["accuracy"]["folds"])
    monkeypatch.setattr(auto_backend, "JAX_KNN_LINEAR_ON_CPU", True)
    assert not {"knn", "linear"} & set(auto_backend.host_classifiers())
