"""Downstream evaluation of latent features: classifiers, intervals, mutual information, kNN purity.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?".

* Section 6: the latent features are classified by four scikit-learn classifiers
  with default hyperparameters (SVM with RBF kernel, Random Forest, MLP,
  Gaussian Naive Bayes); the paper reports "95% percentile confidence intervals
  computed after 10-cross-fold-validation" (Tables 1 and 3, Fig. 5).
* Section 7: the mutual information (MI) between sampled observations and the
  images of their K nearest neighbours in latent space (Table 2).

One module per idea:

* :mod:`~icrst_jax.evaluation.cross_validation`: :func:`evaluate_classifiers`,
  :func:`evaluate_many` (folds, backends, results, equal sets fitted once);
* :mod:`~icrst_jax.evaluation.folds`: feature sets checked and split into folds, the fits of a call;
* :mod:`~icrst_jax.evaluation.scores`: one fold's scores and outcome;
* :mod:`~icrst_jax.evaluation.classifiers`: the scikit-learn estimators, one fold's fit;
* :mod:`~icrst_jax.evaluation.sklearn_backend`: every fit by scikit-learn, in one joblib pool;
* :mod:`~icrst_jax.evaluation.auto_backend`: JAX programs beside scikit-learn's pool;
* :mod:`~icrst_jax.evaluation.forest`: the random forest's fits without its per-fit overhead;
* :mod:`~icrst_jax.evaluation.chunks`: many fits of one compiled program, chunk by chunk;
* :mod:`~icrst_jax.evaluation.jax_classifiers`: Gaussian NB and the MLP as JAX programs;
* :mod:`~icrst_jax.evaluation.jax_svc`: ``SVC()`` as a JAX program;
* :mod:`~icrst_jax.evaluation.weighted_knn`, :mod:`~icrst_jax.evaluation.jax_knn`: DINO's weighted kNN
  vote (numpy reference, JAX program); :mod:`~icrst_jax.evaluation.jax_linear`: the linear probe
  (``LogisticRegression()``) in JAX;
* :mod:`~icrst_jax.evaluation.intervals`: percentile intervals, summaries, pooling over seeds;
* :mod:`~icrst_jax.evaluation.information`: the section-7 mutual information;
* :mod:`~icrst_jax.evaluation.neighbours`: the kNN search, kNN label purity, the latents' spread;
* :mod:`~icrst_jax.evaluation.timing`: the seconds of an evaluation, by part;
* :mod:`~icrst_jax.evaluation.inputs`: the checks of features and labels.

This package re-exports the public names below. A name's module is imported on
its first use (PEP 562), so importing the package (the reporting modules do, for
``CLASSIFIERS``) imports neither JAX nor scikit-learn. Settings read at call
time (``auto_backend.JAX_SVC_ON_CPU``, ``auto_backend.JAX_KNN_LINEAR_ON_CPU``,
``auto_backend.INTELEX_SVC_MIN_CELLS``)
are set on their module.
"""

from __future__ import annotations

import importlib

from icrst_jax.config import CLASSIFIERS, PAPER_CLASSIFIERS  # declared once, with the study config

# Public name -> the module that defines it.
_DEFINED_IN = {
    "evaluate_classifiers": "cross_validation",
    "evaluate_many": "cross_validation",
    "EvalSeconds": "timing",
    "METRICS": "scores",
    "fold_scores": "scores",
    "make_classifier": "classifiers",
    "ClassifierOptions": "classifiers",
    "WeightedKNN": "weighted_knn",
    "random_forest_predict": "forest",
    "intelex_available": "auto_backend",
    "svm_through_intelex": "auto_backend",
    "percentile_interval": "intervals",
    "bootstrap_mean_interval": "intervals",
    "summarize": "intervals",
    "pool_over_seeds": "intervals",
    "pool_results": "intervals",
    "MI_BASELINES": "information",
    "discretize": "information",
    "mutual_information": "information",
    "pool_mi": "information",
    "knn_purity": "neighbours",
    "pool_purity": "neighbours",
    "latent_spread": "neighbours",
}

__all__ = ["CLASSIFIERS", "PAPER_CLASSIFIERS", *_DEFINED_IN]


def __getattr__(name: str):
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_DEFINED_IN[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
