"""The paper's four classifiers as scikit-learn estimators, and one fold's fit by scikit-learn.

Section 6: "SVM (with RBF), Random Forest, MLP, Gaussian Naive Bayes with
SKLearn library. All the classifiers are used with the default
hyperparameters." :func:`make_classifier` builds one (optionally behind an
in-fold ``StandardScaler``); :func:`fit_fold` fits it on one training fold and
scores the test fold, as a joblib worker task.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from icrst_jax.config import CLASSIFIERS, SCALINGS  # declared once, with the study config
from icrst_jax.evaluation.scores import FoldOutcome, fold_scores
from icrst_jax.evaluation.weighted_knn import KNN_K, KNN_TEMPERATURE, WeightedKNN


@dataclasses.dataclass(frozen=True)
class ClassifierOptions:
    """The settings of the classifiers that have any: the ``knn`` vote's ``k`` and temperature
    (``eval.knn_k``, ``eval.knn_temperature``); the others use scikit-learn's defaults."""

    knn_k: int = KNN_K
    knn_temperature: float = KNN_TEMPERATURE


def make_classifier(name: str, seed: int = 0, scaling: str = "none", *, intelex: bool = False,
                    options: ClassifierOptions = ClassifierOptions()):
    """One of the paper's classifiers, with scikit-learn's default hyperparameters.

    Only ``random_state`` is set (where the estimator has one), so that runs
    are reproducible.

    Args:
      name: ``"svm"`` (``SVC(kernel="rbf")``), ``"rf"``
        (``RandomForestClassifier``), ``"mlp"`` (``MLPClassifier``) or ``"nb"``
        (``GaussianNB``); the representation-learning protocols ``"knn"``
        (:class:`~icrst_jax.evaluation.weighted_knn.WeightedKNN`, DINO's vote) and
        ``"linear"`` (``LogisticRegression()``).
      seed: ``random_state`` of the estimator.
      scaling: ``"none"`` (the paper: latents as they are) or ``"standardised"``
        (standardised): a ``Pipeline`` of ``StandardScaler`` and the classifier,
        so that fitting it on a training fold fits the scaler on that fold only.
      intelex: the SVM is scikit-learn-intelex's ``SVC``, same hyperparameters.
      options: the kNN vote's ``k`` and temperature.

    Returns:
      An unfitted scikit-learn estimator (or pipeline).

    Raises:
      ValueError: unknown ``name`` or ``scaling``.

    Example:
      >>> make_classifier("rf", seed=1).random_state
      1
    """
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; known: {', '.join(SCALINGS)}")
    if name == "svm":
        # random_state only matters for probability=True, but set it anyway so
        # the estimator is fully determined by (name, seed).
        if intelex:
            from sklearnex.svm import SVC as IntelexSVC  # optional dependency (the "intelex" extra)

            clf = IntelexSVC(kernel="rbf", random_state=seed)
        else:
            clf = SVC(kernel="rbf", random_state=seed)
    elif name == "rf":
        clf = RandomForestClassifier(random_state=seed)
    elif name == "mlp":
        clf = MLPClassifier(random_state=seed)
    elif name == "nb":
        clf = GaussianNB()
    elif name == "knn":
        clf = WeightedKNN(options.knn_k, options.knn_temperature)
    elif name == "linear":
        clf = LogisticRegression()
    else:
        raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), clf) if scaling == "standardised" else clf


def fit_fold(name, seed, scaling, x, y, train, test, intelex: bool = False,
             options: ClassifierOptions = ClassifierOptions()) -> FoldOutcome:
    """Fit one classifier (with its scaler, if any) on one fold; runs in a joblib worker.

    Only the training fold's rows reach ``fit``, so a scaler's statistics never
    see the test fold. Warnings are recorded here rather than filtered in the
    parent because warning filters do not reach joblib's worker processes.

    Args:
      name, seed, scaling, intelex, options: as in :func:`make_classifier`.
      x: ``(N, D)`` features; y: ``(N,)`` labels.
      train, test: the fold's row indices.

    Returns:
      The fold's :class:`~icrst_jax.evaluation.scores.FoldOutcome`.
    """
    clf = make_classifier(name, seed, scaling, intelex=intelex, options=options)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # scikit-learn-intelex's note that it uses its own threads, not joblib's, on every fit.
        warnings.filterwarnings("ignore", message=".*parallel backend is not supported by Extension for scikit-learn")
        clf.fit(x[train], y[train])
        pred = clf.predict(x[test])
    elapsed = time.perf_counter() - t0
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    others = [
        (w.category, str(w.message)) for w in caught if not issubclass(w.category, ConvergenceWarning)
    ]
    return FoldOutcome(fold_scores(y[test], pred), elapsed, n_conv, others)
