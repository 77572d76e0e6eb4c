"""The ``auto`` backend of the cross-validation: JAX programs for what they fit, scikit-learn beside them.

Gaussian NB and the MLP (and, on an accelerator, the SVM, the weighted kNN vote and the linear probe; on a
CPU with :data:`JAX_SVC_ON_CPU` / :data:`JAX_KNN_LINEAR_ON_CPU`) of every feature set and fold are fitted by compiled JAX
programs (:mod:`~icrst_jax.evaluation.jax_classifiers`,
:mod:`~icrst_jax.evaluation.jax_svc`), one program per classifier and data
shape, all fits of a group as rows of its fit axis. Meanwhile a joblib pool on
a background thread fits the rest with scikit-learn: the random forest through
:func:`~icrst_jax.evaluation.forest.random_forest_predict`, once per feature
set and seed whatever its scaling (its splits are per-feature thresholds,
invariant to standardisation), and the SVM by libsvm, or by
scikit-learn-intelex's ``SVC`` on large folds where it is installed. The folds
and the scores' definitions are the ``sklearn`` backend's.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from icrst_jax.evaluation.chunks import host_cores
from icrst_jax.evaluation.classifiers import ClassifierOptions, fit_fold
from icrst_jax.evaluation.folds import FeatureSet, Fit
from icrst_jax.evaluation.forest import random_forest_predict
from icrst_jax.evaluation.jax_classifiers import MLP_MAX_ITER, fits_per_chunk, gaussian_nb, mlp, mlp_slots
from icrst_jax.evaluation.jax_knn import knn, knn_fits_per_chunk
from icrst_jax.evaluation.jax_linear import linear, linear_fits_per_chunk
from icrst_jax.evaluation.jax_svc import class_size, svc, svc_fits_per_chunk
from icrst_jax.evaluation.scores import FoldOutcome, fold_scores
from icrst_jax.evaluation.timing import EvalSeconds

# The classifiers that stay with scikit-learn under eval.backend="auto".
SKLEARN_ONLY: tuple[str, ...] = ("svm", "rf")

# scikit-learn-intelex's SVC predicts what scikit-learn's predicts (tests/test_evaluation.py)
# and is faster from about this many training cells (rows x features) up, slower below
# (BENCHMARKS.md, "Evaluation").
INTELEX_SVC_MIN_CELLS = 100_000

# Under ``auto`` the SVM is fitted by the JAX solver (jax_svc) on an accelerator; on a CPU
# libsvm is faster on small folds (BENCHMARKS.md, "SVC"), so there it stays in the pool
# unless this is set.
JAX_SVC_ON_CPU = False

# The kNN vote and the linear probe likewise: on a CPU scikit-learn's (the numpy vote,
# LogisticRegression) on both cores were faster at paper scale and on 2,000-row sets
# (BENCHMARKS.md, "Evaluation"), so there they stay in the pool unless this is set.
JAX_KNN_LINEAR_ON_CPU = False


def intelex_available() -> bool:
    """Whether scikit-learn-intelex is installed (``pip install -e ".[intelex]"``)."""
    return importlib.util.find_spec("sklearnex") is not None


def svm_through_intelex(n_train: int, n_features: int) -> bool:
    """The ``auto`` backend's choice for an SVM fit: scikit-learn-intelex's SVC when it is
    installed and the training fold has at least :data:`INTELEX_SVC_MIN_CELLS` cells."""
    return n_train * n_features >= INTELEX_SVC_MIN_CELLS and intelex_available()


def host_classifiers() -> tuple[str, ...]:
    """The classifiers the ``auto`` backend leaves to scikit-learn's pool."""
    if jax.default_backend() != "cpu":
        return tuple(name for name in SKLEARN_ONLY if name != "svm")
    on_cpu = tuple(name for name in SKLEARN_ONLY if name != "svm" or not JAX_SVC_ON_CPU)
    return on_cpu + (() if JAX_KNN_LINEAR_ON_CPU else ("knn", "linear"))


def _host_workers(n_workers: int | None, jax_fits: bool) -> int | None:
    """Workers for the scikit-learn pool: ``n_workers``, except that "all cores" (None or
    -1) leaves one core to the JAX programs when they run on the CPU (both sides busy on
    every core made the Breast Cancer study's evaluation slower; BENCHMARKS.md, "Evaluation")."""
    if n_workers in (None, -1) and jax_fits and jax.default_backend() == "cpu":
        return max(1, host_cores() - 1)
    return n_workers


def _fit_folds_on_host(name: str, fs: FeatureSet, options: ClassifierOptions) -> list[FoldOutcome]:
    """Every fold of one feature set and classifier, in one worker task: the random forest
    through :func:`~icrst_jax.evaluation.forest.random_forest_predict`, the others by
    :func:`~icrst_jax.evaluation.classifiers.fit_fold` (scikit-learn-intelex's SVC on a
    large fold, where installed)."""
    if name != "rf":
        intelex = name == "svm" and svm_through_intelex(fs.n_train, fs.x.shape[1])
        return [fit_fold(name, fs.seed, fs.scaling, fs.x, fs.y, train, test, intelex, options)
                for train, test in fs.splits]
    out = []
    for train, test in fs.splits:
        t0 = time.perf_counter()
        pred = random_forest_predict(fs.x[train], fs.y[train], fs.x[test], fs.seed)
        out.append(FoldOutcome(fold_scores(fs.y[test], pred), time.perf_counter() - t0, 0, []))
    return out


def _host_fits(sets: Sequence[FeatureSet], host: list[tuple[int, str]], n_workers: int | None,
               seconds: EvalSeconds, options: ClassifierOptions) -> dict[Fit, FoldOutcome]:
    """The scikit-learn side: each ``(set, classifier)`` of ``host``, every fold, in one pool."""
    t0 = time.perf_counter()
    # One worker task per feature set and classifier, not per fold: a fit of the
    # forest is a few tens of milliseconds, comparable to a pool round trip.
    per_set = Parallel(n_jobs=n_workers)(delayed(_fit_folds_on_host)(name, sets[s], options) for s, name in host)
    seconds.sklearn_classifiers_s += time.perf_counter() - t0
    return {Fit(s, name, f): o for (s, name), outs in zip(host, per_set) for f, o in enumerate(outs)}


def auto_fits(sets: Sequence[FeatureSet], fits: Sequence[Fit], n_workers: int | None, progress,
              seconds: EvalSeconds, options: ClassifierOptions = ClassifierOptions()
              ) -> tuple[list[FoldOutcome], dict[tuple[int, str], str]]:
    """The ``auto`` backend's fits.

    Args:
      sets: the call's feature sets.
      fits: the fits to make (every fold of each set's classifiers).
      n_workers: joblib workers of the scikit-learn pool (``None`` or ``-1``: all cores,
        less one left to the JAX programs on a CPU).
      progress: optional callable receiving one line per JAX program.
      seconds: the JAX programs' and the pool's wall seconds are added to it.
      options: the kNN vote's ``k`` and temperature.

    Returns:
      ``(outcomes in the order of fits, {(set, classifier): the scaling it was fitted on})``.
    """
    # Random forest: one fit per (caller's feature array, seed), whatever the scaling.
    rf_owner: dict[tuple, int] = {}
    for s, fs in enumerate(sets):
        rf_owner.setdefault((fs.source, fs.seed), s)
    owner_of = {s: rf_owner[(fs.source, fs.seed)] for s, fs in enumerate(sets)}
    host_only = host_classifiers()
    host = list(dict.fromkeys((s, name) for s, name, _ in fits
                              if name in host_only and (name != "rf" or owner_of[s] == s)))
    n_workers = _host_workers(n_workers, any(name not in host_only for _, name, _ in fits))
    if progress is not None:
        large = sum(svm_through_intelex(sets[s].n_train, sets[s].x.shape[1]) for s, name in host if name == "svm")
        if large:
            progress(f"[svm] {large} feature set(s) fitted by scikit-learn-intelex's SVC (installed; it predicts "
                     "what scikit-learn's SVC predicts, faster on large folds)")
    with ThreadPoolExecutor(1) as pool:
        host_future = pool.submit(_host_fits, sets, host, n_workers, seconds, options)
        t0 = time.perf_counter()
        device = _jax_fits(sets, fits, progress, host_only, options)
        seconds.jax_classifiers_s += time.perf_counter() - t0
        host_out = host_future.result()
    outcomes = []
    fitted_on = {}
    for s, name, f in fits:
        src = owner_of[s] if name == "rf" else s
        outcomes.append(host_out[Fit(src, name, f)] if name in host_only else device[Fit(s, name, f)])
        fitted_on[(s, name)] = sets[src if name in host_only else s].scaling
    return outcomes, fitted_on


def _jax_fits(sets: Sequence[FeatureSet], fits: Sequence[Fit], progress,
              host_only: tuple[str, ...], options: ClassifierOptions) -> dict[Fit, FoldOutcome]:
    """The JAX classifiers' fits, one program per group.

    A group is the sets of one classifier and data shape (N, D, classes); their
    scalings are per-fit data of the same program.
    """
    wanted = sorted({name for _, name, _ in fits if name not in host_only})
    asked = {(s, name) for s, name, _ in fits}
    groups: dict[tuple, list[int]] = {}
    for s, fs in enumerate(sets):
        groups.setdefault((fs.x.shape, len(np.unique(fs.y))), []).append(s)
    out = {}
    for name in wanted:
        for (shape, n_classes), members in groups.items():
            members = [s for s in members if (s, name) in asked]
            if members:
                out.update(_fit_group(name, [sets[s] for s in members], members, shape, n_classes, progress,
                                      options))
    return out


def _fit_group(name: str, group: list[FeatureSet], members: list[int], shape: tuple, n_classes: int,
               progress, options: ClassifierOptions) -> dict[Fit, FoldOutcome]:
    """Every fold of ``group`` (sets ``members`` of the call, one data shape) by one JAX program."""
    labels = [np.unique(fs.y, return_inverse=True) for fs in group]
    # One copy of each distinct (features, labels): its scalings are fits, not sets.
    set_of: dict[tuple, int] = {}
    for m, fs in enumerate(group):
        set_of.setdefault((id(fs.x), id(fs.y)), m)
    set_rows = sorted(set_of.values())
    x_sets = np.stack([group[m].x for m in set_rows])
    y_sets = np.stack([labels[m][1] for m in set_rows])
    set_pos = {key: set_rows.index(m) for key, m in set_of.items()}
    rows = [(m, f) for m, fs in enumerate(group) for f in range(fs.n_folds)]
    set_idx = np.array([set_pos[(id(group[m].x), id(group[m].y))] for m, _ in rows])
    scaled = np.array([group[m].scaling == "standardised" for m, _ in rows])
    train_mask = np.zeros((len(rows), shape[0]), bool)
    for g, (m, f) in enumerate(rows):
        train_mask[g, group[m].splits[f][0]] = True
    t0 = time.perf_counter()
    pred, warned = _run_program(name, x_sets, y_sets, set_idx, train_mask, n_classes, scaled,
                                seeds=[group[m].seed for m, _ in rows], folds=[f for _, f in rows], options=options)
    elapsed = time.perf_counter() - t0
    if progress is not None:
        progress(f"[{name}] {len(rows)} fits ({len(group)} feature sets and scalings x folds) as one "
                 f"JAX program: {elapsed:.1f}s")
    out = {}
    for g, (m, f) in enumerate(rows):
        classes, _ = labels[m]
        test = group[m].splits[f][1]
        scores = fold_scores(group[m].y[test], classes[pred[g, test]])
        out[Fit(members[m], name, f)] = FoldOutcome(scores, elapsed / len(rows), int(warned[g]), [])
    return out


def _run_program(name, x_sets, y_sets, set_idx, train_mask, n_classes, scaled, *, seeds, folds, options):
    """``(pred (G, N) class indices, warned (G,) bool)``: classifier ``name``'s fits as one JAX
    program; ``warned`` where a fit stopped at its iteration limit (scikit-learn's ConvergenceWarning)."""
    n, d = x_sets.shape[1:]
    if name == "nb":
        pred = gaussian_nb(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled,
                           chunk=fits_per_chunk(n, d))[0]
        return pred, np.zeros(len(set_idx), bool)
    if name == "knn":
        n_test = int((~np.asarray(train_mask)).sum(1).max())
        pred = knn(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled, k=options.knn_k,
                   temperature=options.knn_temperature, chunk=knn_fits_per_chunk(n, d, n_test))
        return pred, np.zeros(len(set_idx), bool)
    if name == "linear":
        res = linear(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled,
                     chunk=linear_fits_per_chunk(n, d, n_classes))
        return res.pred, ~res.converged
    if name == "svm":
        c_max = class_size(y_sets, set_idx, train_mask, n_classes)
        res = svc(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled,
                  chunk=svc_fits_per_chunk(n, d, n_classes, c_max))
        return res.pred, ~res.converged.all(axis=1)
    res = mlp(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled, seeds=seeds, folds=folds,
              chunk=mlp_slots(n, d))
    return res.pred, (res.n_iter >= MLP_MAX_ITER) & ~res.converged
