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


SETS = {"breast_cancer": lambda: load_breast_cancer(return_X_y=True), "digits": lambda: load_digits(return_X_y=True),
        "trained latents": _trained_latents}


def _folds(y, n_folds=5):
    splits = list(StratifiedKFold(n_folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    mask = np.zeros((len(splits), len(y)), bool)
    for g, (train, _) in enumerate(splits):
        mask[g, train] = True
    return splits, mask


@pytest.mark.parametrize("name", ["breast_cancer", "trained latents"])
def test_knn_predicts_what_the_reference_and_scikit_learn_predict(name):
    x, y = SETS[name]()
    classes, yi = np.unique(y, return_inverse=True)
    splits, mask = _folds(y)
    both = np.r_[mask, mask]
    pred = knn(x[None], yi[None], np.zeros(len(both), int), both, n_classes=len(classes), scaled=False)
    plain = knn(x[None], yi[None], np.zeros(len(mask), int), mask, n_classes=len(classes), scaled=False,
                uniform=True, euclidean=True)
    for g, (train, test) in enumerate(splits):
        ref = WeightedKNN().fit(x[train], y[train]).predict(x[test])
        np.testing.assert_array_equal(classes[pred[g, test]], ref)
        sk = KNeighborsClassifier(20).fit(x[train], y[train]).predict(x[test])
        np.testing.assert_array_equal(classes[plain[g, test]], sk)
        np.testing.assert_array_equal(WeightedKNN(weights="uniform", metric="euclidean").fit(x[train], y[train])
                                      .predict(x[test]), sk)


def test_the_temperature_weights_the_votes():
    # Two far neighbours of class 1 outvote one close one of class 0 only with uniform votes.
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0], [1.0, 0.05]])
    knn3 = WeightedKNN(k=3).fit(x[:3], [0, 1, 1])
    assert knn3.predict(x[3:]).tolist() == [0]
    assert WeightedKNN(k=3, weights="uniform").fit(x[:3], [0, 1, 1]).predict(x[3:]).tolist() == [1]


@pytest.mark.parametrize("name", list(SETS))
def test_linear_probe_predicts_what_logistic_regression_predicts(name):
    x, y = SETS[name]()
    classes, yi = np.unique(y, return_inverse=True)
    splits, mask = _folds(y)
    # Standardised: scikit-learn's lbfgs converges within max_iter, so both reach the one minimiser.
    res = linear(x[None], yi[None], np.zeros(len(mask), int), mask, n_classes=len(classes), scaled=True)
    for g, (train, test) in enumerate(splits):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            ref = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[train], y[train]).predict(x[test])
        assert res.converged[g]
        assert np.mean(classes[res.pred[g, test]] == ref) >= 0.99, (name, g)


def test_linear_probe_without_intercept_and_l2_is_another_classifier():
    x, y = load_breast_cancer(return_X_y=True)
    x = x[:, :2] + 50.0  # an offset only an intercept absorbs
    splits, mask = _folds(y, 3)
    ours = linear(x[None], y[None], np.zeros(3, int), mask, n_classes=2, scaled=False)
    planted = linear(x[None], y[None], np.zeros(3, int), mask, n_classes=2, scaled=False, intercept=False)
    agree = lambda pred: np.mean([np.mean(pred[g, t] == LogisticRegression(max_iter=1000).fit(x[tr], y[tr])  # noqa: E731
                                          .predict(x[t])) for g, (tr, t) in enumerate(splits)])
    assert agree(planted.pred) < 0.95 <= agree(ours.pred)
