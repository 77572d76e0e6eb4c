"""Downstream evaluation of latent features: classifiers, intervals, mutual information.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?".

* Section 6: the latent features are classified by four scikit-learn classifiers
  with default hyperparameters (SVM with RBF kernel, Random Forest, MLP,
  Gaussian Naive Bayes); the paper reports "95% percentile confidence intervals
  computed after 10-cross-fold-validation" (Tables 1 and 3, Fig. 5).
* Section 7: the mutual information (MI) between sampled observations and the
  images of their K nearest neighbours in latent space (Table 2).

Everything here is numpy / scikit-learn; no JAX is needed, so evaluation can run
on a machine without an accelerator.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from icrst_jax.config import CLASSIFIERS, EVAL_BACKENDS, SCALINGS  # declared once, with the study config

METRICS: tuple[str, ...] = ("accuracy", "f1_macro")

# Queries per call of the kNN search: bounds its (queries, N) float64 distances
# (1024 x 70,000 rows: 0.6 GB), and every call of a search has this one shape.
_KNN_QUERIES = 1024


@dataclasses.dataclass
class EvalSeconds:
    """Wall seconds of an evaluation, by part, accumulated over calls.

    ``jax_classifiers_s``: the JAX classifier programs, compiling included;
    ``sklearn_classifiers_s``: scikit-learn's pool of fits (under ``auto`` it
    runs beside the JAX programs, so the two overlap); ``mi_s``, ``purity_s``:
    :func:`mutual_information` and :func:`knn_purity`.
    """

    jax_classifiers_s: float = 0.0
    sklearn_classifiers_s: float = 0.0
    mi_s: float = 0.0
    purity_s: float = 0.0


def make_classifier(name: str, seed: int = 0, scaling: str = "none", *, intelex: bool = False):
    """One of the paper's classifiers, with scikit-learn's default hyperparameters.

    Section 6: "SVM (with RBF), Random Forest, MLP, Gaussian Naive Bayes with
    SKLearn library. All the classifiers are used with the default
    hyperparameters." Only ``random_state`` is set (where the estimator has
    one), so that runs are reproducible.

    Args:
      name: ``"svm"`` (``SVC(kernel="rbf")``), ``"rf"``
        (``RandomForestClassifier``), ``"mlp"`` (``MLPClassifier``) or ``"nb"``
        (``GaussianNB``).
      seed: ``random_state`` of the estimator.
      scaling: ``"none"`` (the paper: latents as they are) or ``"standard"``:
        a ``Pipeline`` of ``StandardScaler`` and the classifier, so that
        fitting it on a training fold fits the scaler on that fold only.
      intelex: the SVM is scikit-learn-intelex's ``SVC``, same hyperparameters.

    Returns:
      An unfitted scikit-learn estimator (or pipeline).

    Raises:
      ValueError: unknown ``name`` or ``scaling``.

    Example:
      >>> make_classifier("rf", seed=1).random_state
      1
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; known: {', '.join(SCALINGS)}")
    if name == "svm":
        # random_state only matters for probability=True, but set it anyway so
        # the estimator is fully determined by (name, seed).
        if intelex:
            from sklearnex.svm import SVC
        clf = SVC(kernel="rbf", random_state=seed)
    elif name == "rf":
        clf = RandomForestClassifier(random_state=seed)
    elif name == "mlp":
        clf = MLPClassifier(random_state=seed)
    elif name == "nb":
        clf = GaussianNB()
    else:
        raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), clf) if scaling == "standard" else clf


# ---------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------


def percentile_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and percentile interval of a set of scores.

    The paper's "95% percentile confidence interval" over the 10 folds (Table 1):
    ``low`` and ``high`` are the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles of the values (2.5th and 97.5th percentiles for ``level=0.95``),
    computed with ``np.percentile``'s default linear interpolation. With 10
    folds these lie between the two smallest and between the two largest fold
    scores.

    Args:
      values: 1-D array-like of scores, e.g. shape ``(n_folds,)``.
      level: coverage of the interval, in (0, 1).

    Returns:
      ``(mean, low, high)`` as Python floats.

    Example:
      >>> [round(v, 3) for v in percentile_interval([0.1, 0.2, 0.3, 0.4, 0.5])]
      [0.3, 0.11, 0.49]
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("percentile_interval needs at least one value")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(v, [tail, 100.0 - tail])
    return float(v.mean()), float(low), float(high)


def summarize(values, level: float = 0.95) -> dict:
    """Summary of a set of scores: mean, percentile interval, std and count.

    Args:
      values: 1-D array-like, e.g. per-fold accuracies of shape ``(n_folds,)``.
      level: coverage of the percentile interval (see ``percentile_interval``).

    Returns:
      ``{"mean", "low", "high", "std", "n"}``; ``std`` is the sample standard
      deviation (``ddof=1``; 0.0 for a single value).

    Example:
      >>> summarize([1.0, 1.0])["std"]
      0.0
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    mean, low, high = percentile_interval(v, level)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": mean, "low": low, "high": high, "std": std, "n": int(v.size)}


def pool_over_seeds(fold_arrays: Sequence, level: float = 0.95) -> dict:
    """Summarise scores over folds and seeds together.

    Each training seed gives one array of per-fold scores; the pooled summary
    treats all ``sum(len(a))`` scores as one sample, so the interval reflects
    both the fold-to-fold and the seed-to-seed variation.

    Args:
      fold_arrays: sequence of 1-D arrays, one per seed (lengths may differ).
      level: coverage of the percentile interval.

    Returns:
      ``summarize`` of the concatenation, plus ``"n_seeds"`` and ``"folds"``
      (the concatenated scores, seed-major).

    Example:
      >>> pool_over_seeds([[0.8, 0.9], [0.7, 1.0]])["n"]
      4
    """
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in fold_arrays]
    if not arrays:
        raise ValueError("pool_over_seeds needs at least one array")
    pooled = np.concatenate(arrays)
    out = summarize(pooled, level)
    out["n_seeds"] = len(arrays)
    out["folds"] = pooled
    return out


def pool_results(results_per_seed: Sequence[Mapping], level: float = 0.95) -> dict:
    """Pool several ``evaluate_classifiers`` results (one per seed) into one.

    Args:
      results_per_seed: outputs of ``evaluate_classifiers`` for the same
        classifiers, one per training seed.
      level: coverage of the percentile interval.

    Returns:
      A dict shaped like ``evaluate_classifiers``' output where every metric is
      ``pool_over_seeds`` of the per-seed fold arrays and the counters
      (``convergence_warnings``) are summed.

    Example:
      >>> r = {"nb": {"accuracy": {"folds": [1.0, 0.5]}, "f1_macro": {"folds": [1.0, 0.4]}}}
      >>> pool_results([r, r])["nb"]["accuracy"]["n"]
      4
    """
    if not results_per_seed:
        raise ValueError("pool_results needs at least one result")
    names = list(results_per_seed[0])
    for r in results_per_seed[1:]:
        if list(r) != names:
            raise ValueError(f"results disagree on classifiers: {names} vs {list(r)}")
    pooled = {}
    for name in names:
        entries = [r[name] for r in results_per_seed]
        out = {m: pool_over_seeds([e[m]["folds"] for e in entries], level) for m in METRICS}
        out["n_folds"] = [e.get("n_folds") for e in entries]
        out["convergence_warnings"] = int(sum(e.get("convergence_warnings", 0) for e in entries))
        scalings = {e.get("scaling", "none") for e in entries}
        if len(scalings) > 1:
            raise ValueError(f"cannot pool results of different feature scalings: {sorted(scalings)}")
        out["scaling"] = scalings.pop()
        fitted_on = {e.get("fitted_on", out["scaling"]) for e in entries}
        out["fitted_on"] = fitted_on.pop() if len(fitted_on) == 1 else out["scaling"]
        pooled[name] = out
    return pooled


# ---------------------------------------------------------------------------
# Cross-validated classification
# ---------------------------------------------------------------------------


def _fit_fold(name, seed, scaling, x, y, train, test, intelex: bool = False):
    """Fit one classifier (with its scaler, if any) on one fold; runs in a joblib worker.

    Only the training fold's rows reach ``fit``, so a scaler's statistics never
    see the test fold. Warnings are recorded here rather than filtered in the
    parent because warning filters do not reach joblib's worker processes.
    ``intelex``: the SVM is scikit-learn-intelex's ``SVC`` (same hyperparameters).
    """
    from sklearn.exceptions import ConvergenceWarning

    clf = make_classifier(name, seed, scaling, intelex=intelex)
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
    return fold_scores(y[test], pred), elapsed, n_conv, others


def random_forest_predict(x_train, y_train, x_test, seed: int) -> np.ndarray:
    """``RandomForestClassifier(random_state=seed).fit(x_train, y_train).predict(x_test)``, minus its overhead.

    scikit-learn's forest spends ~0.1 s of Python per fit on ~100 rows (input
    checks and a joblib dispatch per tree), far more than growing its 100 small
    trees. This drives scikit-learn's own tree builder (``DepthFirstTreeBuilder``
    with ``BestSplitter`` and ``Gini``) exactly as ``RandomForestClassifier()``
    with default hyperparameters does: the same per-tree seeds drawn from
    ``RandomState(seed)``, the same bootstrap counts as sample weights,
    ``max_features = int(sqrt(D))``, float32 features, probabilities averaged
    over the trees in order. Its predictions equal scikit-learn's (tested);
    only private scikit-learn modules make it possible, hence the test.

    Args:
      x_train: ``(n, D)`` finite features; y_train: ``(n,)`` labels.
      x_test: ``(m, D)``.
      seed: the forest's ``random_state``.

    Returns:
      ``(m,)`` predicted labels (values of ``y_train``).
    """
    from sklearn.tree._criterion import Gini
    from sklearn.tree._splitter import BestSplitter
    from sklearn.tree._tree import DepthFirstTreeBuilder, Tree

    n_trees = 100  # RandomForestClassifier's n_estimators
    xt = np.ascontiguousarray(x_train, dtype=np.float32)
    xs = np.ascontiguousarray(x_test, dtype=np.float32)
    n, d = xt.shape
    classes, y_enc = np.unique(y_train, return_inverse=True)
    y = np.ascontiguousarray(y_enc.reshape(-1, 1), dtype=np.float64)
    n_classes = np.array([len(classes)], dtype=np.intp)
    max_features = max(1, int(np.sqrt(d)))
    forest_rng = np.random.RandomState(seed)
    # scikit-learn builds a fresh RandomState(tree_seed) for the bootstrap and another for the
    # tree; re-seeding one gives the same draws without MT19937's ~80 us construction, twice
    # per tree (most of this function's time otherwise).
    tree_rng = np.random.RandomState(0)
    int32_max = np.iinfo(np.int32).max
    proba = np.zeros((xs.shape[0], len(classes)))
    for _ in range(n_trees):
        tree_seed = forest_rng.randint(int32_max)
        tree_rng.seed(tree_seed)
        counts = np.bincount(tree_rng.randint(0, n, n), minlength=n)
        tree_rng.seed(tree_seed)
        splitter = BestSplitter(Gini(1, n_classes), max_features, 1, 0.0, tree_rng, None)
        tree = Tree(d, n_classes, 1)
        DepthFirstTreeBuilder(splitter, 2, 1, 0.0, int32_max, 0.0).build(
            tree, xt, y, counts.astype(np.float64), None)
        proba += tree.predict(xs)[:, : len(classes)]  # (m, K): one output, as DecisionTreeClassifier.predict_proba
    proba /= n_trees
    return classes.take(np.argmax(proba, axis=1))


# scikit-learn-intelex's SVC predicts what scikit-learn's predicts (tests/test_evaluation.py)
# and is faster from about this many training cells (rows x features) up, slower below
# (BENCHMARKS.md, "Evaluation").
INTELEX_SVC_MIN_CELLS = 100_000


def intelex_available() -> bool:
    """Whether scikit-learn-intelex is installed (``pip install -e ".[intelex]"``)."""
    import importlib.util

    return importlib.util.find_spec("sklearnex") is not None


def svm_through_intelex(n_train: int, n_features: int) -> bool:
    """The ``auto`` backend's choice for an SVM fit: scikit-learn-intelex's SVC when it is
    installed and the training fold has at least :data:`INTELEX_SVC_MIN_CELLS` cells."""
    return n_train * n_features >= INTELEX_SVC_MIN_CELLS and intelex_available()


# Under ``auto`` the SVM is fitted by the JAX solver (icrst_jax/jax_svc.py) on an accelerator;
# on a CPU libsvm is faster on small folds (BENCHMARKS.md, "SVC"), so there it stays in the
# pool unless this is set.
JAX_SVC_ON_CPU = False


def _auto_host_classifiers() -> tuple[str, ...]:
    """The classifiers the ``auto`` backend leaves to scikit-learn's pool."""
    import jax

    from icrst_jax import jax_classifiers as jc

    if JAX_SVC_ON_CPU or jax.default_backend() != "cpu":
        return tuple(name for name in jc.SKLEARN_ONLY if name != "svm")
    return jc.SKLEARN_ONLY


def _fit_folds_auto(name, seed, scaling, x, y, splits):
    """:func:`_fit_fold` of every fold of one feature set, in one worker task (the ``auto``
    backend's scikit-learn side; the random forest through :func:`random_forest_predict`,
    a large SVM through scikit-learn-intelex when installed)."""
    if name != "rf":
        intelex = name == "svm" and svm_through_intelex(len(splits[0][0]), x.shape[1])
        return [_fit_fold(name, seed, scaling, x, y, train, test, intelex) for train, test in splits]
    out = []
    for train, test in splits:
        t0 = time.perf_counter()
        pred = random_forest_predict(x[train], y[train], x[test], seed)
        out.append((fold_scores(y[test], pred), time.perf_counter() - t0, 0, []))
    return out


def _check_folds(labels: np.ndarray, n_folds: int, progress) -> int:
    """Number of folds to use: ``n_folds`` capped at the smallest class count."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"need at least 2 classes to classify, got {classes.size}")
    smallest = int(counts.min())
    if smallest < 2:
        rare = classes[counts < 2].tolist()
        raise ValueError(
            f"classes {rare} have a single member; stratified cross-validation needs "
            "at least 2 per class (drop those classes or add data)"
        )
    if n_folds > smallest:
        msg = (
            f"n_folds={n_folds} is larger than the smallest class "
            f"(class {classes[counts.argmin()]!r}, {smallest} members); using {smallest} folds"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        if progress is not None:
            progress("warning: " + msg)
        return smallest
    return n_folds


def evaluate_classifiers(
    features,
    labels,
    classifiers: Sequence[str] = CLASSIFIERS,
    *,
    n_folds: int = 10,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    level: float = 0.95,
    scaling: str = "none",
    backend: str = "sklearn",
) -> dict[str, dict]:
    """Stratified k-fold cross-validation of the paper's classifiers on latent features.

    Section 6 / Tables 1 and 3 / Fig. 5: default-hyperparameter classifiers,
    10-fold cross-validation, 95% percentile intervals over folds. The folds are
    ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)`` and are the
    same for every classifier. By default features are used as given (the
    paper mentions no feature scaling before the classifiers); ``scaling=
    "standard"`` standardises them with statistics of each training fold.

    If ``n_folds`` exceeds the number of members of the smallest class the
    number of folds is reduced to that count, with a ``RuntimeWarning`` and a
    line through ``progress``; the folds actually used are in ``"n_folds"``. A
    class with a single member is a ``ValueError``.

    ``ConvergenceWarning`` (MLPClassifier stops at its default ``max_iter=200``
    on most latent spaces) is silenced and counted per classifier in
    ``"convergence_warnings"``; other warnings are re-issued.

    Args:
      features: ``(N, D)`` latent features.
      labels: ``(N,)`` class labels.
      classifiers: names from ``CLASSIFIERS``.
      n_folds: number of cross-validation folds (10 in the paper).
      seed: seed of the fold shuffle and of the classifiers' ``random_state``.
      n_jobs: parallel (classifier, fold) fits through joblib; ``None`` = 1,
        ``-1`` = all cores.
      progress: optional callable receiving one line per fold and one summary
        line per classifier.
      level: coverage of the percentile interval.
      scaling: ``"none"`` or ``"standard"`` (see :func:`make_classifier`).
      backend: ``"sklearn"`` or ``"auto"`` (see :func:`evaluate_many`).

    Returns:
      ``{name: {"accuracy": {...}, "f1_macro": {...}, "fit_time": (n_folds,),
      "n_folds": int, "convergence_warnings": int, "scaling": str}}`` where each metric dict is
      ``summarize`` of the per-fold scores plus ``"folds"``, the
      ``(n_folds,)`` array of scores in fold order. ``f1_macro`` is the
      unweighted mean of per-class F1 (the paper's Caltech101 metric).

    Example:
      >>> x = np.r_[np.zeros((20, 2)), np.ones((20, 2))]; y = np.r_[[0] * 20, [1] * 20]
      >>> evaluate_classifiers(x, y, ["nb"], n_folds=5)["nb"]["accuracy"]["mean"]
      1.0
    """
    return evaluate_many([(features, labels, seed, scaling)], classifiers, n_folds=n_folds, n_jobs=n_jobs,
                         progress=progress, level=level, backend=backend)[0]


def _features_and_labels(features, labels=None, dtype=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``features`` as an (N, D) array and ``labels`` as (N,), or a one-line error."""
    x = np.asarray(features, dtype=dtype)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    if labels is None:
        return x, None
    y = np.asarray(labels)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must be ({x.shape[0]},), got shape {y.shape}")
    return x, y


def evaluate_many(
    jobs: Sequence[tuple],
    classifiers: Sequence[str] = CLASSIFIERS,
    *,
    n_folds: int = 10,
    n_jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    level: float = 0.95,
    fold_lines: bool = True,
    backend: str = "sklearn",
    seconds: EvalSeconds | None = None,
    job_names: Sequence[str] | None = None,
    job_classifiers: Sequence[Sequence[str]] | None = None,
) -> list[dict[str, dict]]:
    """:func:`evaluate_classifiers` of several feature sets as one pool of fits.

    A study's grid points each need (classifiers x folds) fits; submitting all
    of them to one joblib pool keeps every worker busy to the end, where one
    pool per point idles while its slowest fit (the SVM, the MLP) finishes.

    ``backend="auto"`` fits the MLP and Gaussian NB of every job and fold as
    compiled JAX programs (:mod:`icrst_jax.jax_classifiers`, one per
    classifier and data shape) while scikit-learn's SVM and random forest run
    in the joblib pool beside them. The random forest does not depend on the
    feature scale (its splits are per-feature thresholds, invariant to the
    affine per-feature map of standardisation), so under ``auto`` it is fitted
    once per feature set and seed and that result is reported under each of
    the set's scalings, with ``"fitted_on"`` naming the scaling it saw.
    NB and the MLP see each scaling (NB depends on it through
    ``var_smoothing``). The folds are the same as with ``sklearn``.

    Args:
      jobs: ``(features, labels, seed)`` or ``(features, labels, seed,
        scaling)`` per feature set; the seed decides its folds and classifier
        seeds exactly as in :func:`evaluate_classifiers`, the scaling (default
        ``"none"``) what the classifiers see.
      fold_lines: send one progress line per fit (False: per classifier only).
      backend: ``"sklearn"`` (every fit by scikit-learn) or ``"auto"``.
      seconds: optional :class:`EvalSeconds` to add this call's classifier time to.
      job_names: optional name of each job for the progress lines (e.g. ``"icrst p=0.5
        seed 1, standardised"``); by default ``job 3/48``.
      job_classifiers: optional subset of ``classifiers`` per job (a study's latents
        along training get only ``eval.epoch_classifiers``); one call keeps the
        compiled fits of every job busy while scikit-learn's run beside them.
      classifiers, n_folds, n_jobs, progress, level: as in :func:`evaluate_classifiers`.

    Returns:
      One :func:`evaluate_classifiers` result per job, in order; the same
      numbers as evaluating each job alone. Each entry also has
      ``"fitted_on"``: the scaling of the features the classifier was fitted on.
      A job equal to an earlier one (same features, labels, seed, scaling and
      classifiers: a study's standard, ICRST p=0 and TRST p=0 latents of one
      seed are the same numbers) is not fitted again: its entries are the
      earlier job's, with ``"same_as"`` naming it.
    """
    if backend not in EVAL_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(EVAL_BACKENDS)}")
    names = list(classifiers)
    for name in names:
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    if job_classifiers is not None and len(job_classifiers) != len(jobs):
        raise ValueError(f"job_classifiers has {len(job_classifiers)} entries for {len(jobs)} jobs")
    if job_names is not None and len(job_names) != len(jobs):
        raise ValueError(f"job_names has {len(job_names)} names for {len(jobs)} jobs")
    first_of = _first_equal_job(jobs, job_classifiers)
    unique = sorted(set(first_of))
    if len(unique) == len(jobs):
        return _evaluate_unique(jobs, names, n_folds=n_folds, n_jobs=n_jobs, progress=progress, level=level,
                                fold_lines=fold_lines, backend=backend, seconds=seconds, job_names=job_names,
                                job_classifiers=job_classifiers)
    name_of = (lambda j: job_names[j]) if job_names is not None else (lambda j: f"job {j + 1}")
    if progress is not None:
        copies = [j for j, src in enumerate(first_of) if src != j]
        progress(f"{len(copies)} feature set(s) equal to an earlier one (e.g. [{name_of(copies[0])}] = "
                 f"[{name_of(first_of[copies[0]])}]): fitted once, their scores shared")
    pick = lambda seq: None if seq is None else [seq[j] for j in unique]  # noqa: E731
    results = _evaluate_unique([jobs[j] for j in unique], names, n_folds=n_folds, n_jobs=n_jobs, progress=progress,
                               level=level, fold_lines=fold_lines, backend=backend, seconds=seconds,
                               job_names=pick(job_names), job_classifiers=pick(job_classifiers))
    by_job = dict(zip(unique, results))
    out = []
    for j, src in enumerate(first_of):
        if src == j:
            out.append(by_job[j])
        else:
            out.append({name: {**copy.deepcopy(entry), "same_as": name_of(src)} for name, entry in by_job[src].items()})
    return out


def _first_equal_job(jobs: Sequence[tuple], job_classifiers) -> list[int]:
    """For each job, the index of the first job equal to it (itself if none is)."""
    import hashlib

    def digest(a) -> tuple:
        a = np.ascontiguousarray(np.asarray(a))
        return a.shape, a.dtype.str, hashlib.blake2b(a.tobytes(), digest_size=16).digest()

    seen: dict[tuple, int] = {}
    first = []
    cache: dict[int, tuple] = {}  # one digest per array object (a set's scalings share it)
    for j, job in enumerate(jobs):
        features, labels, seed, scaling = job if len(job) == 4 else (*job, "none")
        fx = cache.setdefault(id(features), digest(features))
        fy = cache.setdefault(id(labels), digest(labels))
        wanted = None if job_classifiers is None else tuple(job_classifiers[j])
        first.append(seen.setdefault((fx, fy, int(seed), scaling, wanted), j))
    return first


def _evaluate_unique(jobs, names, *, n_folds, n_jobs, progress, level, fold_lines, backend, seconds, job_names,
                     job_classifiers) -> list[dict[str, dict]]:
    """:func:`evaluate_many` of jobs that are all different."""
    from sklearn.model_selection import StratifiedKFold

    prepared = []
    for job in jobs:
        features, labels, seed, scaling = job if len(job) == 4 else (*job, "none")
        if scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {scaling!r}; known: {', '.join(SCALINGS)}")
        x, y = _features_and_labels(features, labels)
        if not np.isfinite(x).all():
            # A diverged autoencoder gives NaN latents; say so instead of letting
            # each classifier fail with its own message.
            raise ValueError("features contain NaN or inf")
        folds_used = _check_folds(y, n_folds, progress)
        splits = list(StratifiedKFold(folds_used, shuffle=True, random_state=seed).split(x, y))
        prepared.append((x, y, seed, folds_used, splits, scaling))

    if job_classifiers is None:
        job_classifiers = [names] * len(prepared)
    for wanted in job_classifiers:
        extra = [c for c in wanted if c not in names]
        if extra:
            raise ValueError(f"job_classifiers names {extra}, which are not among classifiers {names}")
    # Each job's classifiers in the order of ``classifiers``.
    job_names_of = [[n for n in names if n in wanted] for wanted in job_classifiers]
    tasks = [(j, name, f) for j, (*_, folds_used, _, _) in enumerate(prepared) for name in job_names_of[j]
             for f in range(folds_used)]
    seconds = EvalSeconds() if seconds is None else seconds
    if backend == "sklearn":
        outputs = _timed(_sklearn_fits(prepared, tasks, n_jobs), seconds)
        fitted_on = {(j, name): prepared[j][5] for j, name, _ in tasks}
    else:
        outputs, fitted_on = _auto_fits(prepared, tasks, jobs, n_jobs, progress, seconds)

    per_clf: dict[tuple, list] = {}
    results: list[dict[str, dict]] = [{} for _ in prepared]

    def tag(j):
        if job_names is not None:
            return f"[{job_names[j]}]"
        return f"[job {j + 1}/{len(prepared)}]" if len(prepared) > 1 else ""

    not_converged: dict[str, list[int]] = {}
    # strict: also runs the outputs generator to its end (where _timed adds its seconds).
    for (j, name, f), (scores, elapsed, n_conv, others) in zip(tasks, outputs, strict=True):
        folds_used = prepared[j][3]
        for category, message in others:
            warnings.warn(f"[{name} fold {f + 1}] {message}", category, stacklevel=2)
        per_clf.setdefault((j, name), []).append((scores, elapsed, n_conv))
        if progress is not None and fold_lines:
            progress(
                f"{tag(j)}[{name}] fold {f + 1}/{folds_used}: accuracy={scores['accuracy']:.4f} "
                f"f1_macro={scores['f1_macro']:.4f} ({elapsed:.1f}s)"
            )
        done = per_clf[(j, name)]
        if len(done) == folds_used:
            entry = {}
            for m in METRICS:
                folds = np.array([s[m] for s, _, _ in done])
                entry[m] = {**summarize(folds, level), "folds": folds}
            entry["fit_time"] = np.array([t for _, t, _ in done])
            entry["n_folds"] = folds_used
            entry["convergence_warnings"] = int(sum(c for _, _, c in done))
            entry["scaling"] = prepared[j][5]
            entry["fitted_on"] = fitted_on[(j, name)]
            results[j][name] = entry
            counts = not_converged.setdefault(name, [0, 0])
            counts[0] += entry["convergence_warnings"]
            counts[1] += folds_used
            if progress is not None:
                acc, f1 = entry["accuracy"], entry["f1_macro"]
                progress(
                    f"{tag(j)}[{name}] accuracy {acc['mean']:.4f} [{acc['low']:.4f}, {acc['high']:.4f}]  "
                    f"f1_macro {f1['mean']:.4f} [{f1['low']:.4f}, {f1['high']:.4f}]"
                )
    if progress is not None:
        # One line per classifier, not the same sentence on every set's line.
        for name, (n_warned, n_fits) in not_converged.items():
            if n_warned:
                progress(f"[{name}] {n_warned}/{n_fits} fits stopped at the classifier's max_iter before "
                         "converging (scikit-learn's ConvergenceWarning); their scores count")
    # Classifier order as given, whatever order the fits finished in.
    return [{name: res[name] for name in job_names_of[j]} for j, res in enumerate(results)]


def _sklearn_fits(prepared, tasks, n_jobs):
    """``_fit_fold`` of each ``(job, classifier, fold)`` task in one joblib pool, lazily, in task order."""
    from sklearn.utils.parallel import Parallel, delayed

    runner = Parallel(n_jobs=n_jobs, return_as="generator")
    return runner(
        delayed(_fit_fold)(name, prepared[j][2], prepared[j][5], prepared[j][0], prepared[j][1], *prepared[j][4][f])
        for j, name, f in tasks
    )


def _timed(outputs, seconds: EvalSeconds):
    """``outputs`` as they come (progress lines stay live), their wall time added to ``seconds``."""
    t0 = time.perf_counter()
    yield from outputs
    seconds.sklearn_classifiers_s += time.perf_counter() - t0


def fold_scores(y_test, pred) -> dict[str, float]:
    """``accuracy_score`` and ``f1_score(average="macro", zero_division=0)`` of one fold.

    Computed from the per-class counts as scikit-learn computes them (the labels
    are those present in ``y_test`` or ``pred``; per class ``F1 = 2 TP / (2 TP +
    FP + FN)``), without its input validation: 4 ms a call, which a study pays
    once per fit (thousands) and which outweighed the compiled fits themselves.
    ``tests/test_evaluation.py`` checks equality with scikit-learn.
    """
    y_test, pred = np.asarray(y_test), np.asarray(pred)
    labels, inverse = np.unique(np.concatenate([y_test, pred]), return_inverse=True)
    t, p = inverse[: len(y_test)], inverse[len(y_test):]
    k = len(labels)
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    fp = np.bincount(p, minlength=k) - tp
    fn = np.bincount(t, minlength=k) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return {"accuracy": float(np.mean(t == p)), "f1_macro": float(f1.mean())}


def _host_workers(n_jobs: int | None, jax_fits: bool) -> int | None:
    """Workers for the ``auto`` backend's scikit-learn pool: ``n_jobs``, except that "all
    cores" (None or -1) leaves one core to the JAX programs when they run on the CPU
    (both sides busy on every core made the Breast Cancer study's evaluation slower;
    BENCHMARKS.md, "Evaluation")."""
    import jax

    from icrst_jax import jax_classifiers as jc

    if n_jobs in (None, -1) and jax_fits and jax.default_backend() == "cpu":
        return max(1, jc.host_cores() - 1)
    return n_jobs


def _auto_fits(prepared, tasks, jobs, n_jobs, progress, seconds: EvalSeconds):
    """The ``auto`` backend: (outputs in task order, fitted_on per (job, classifier)).

    scikit-learn's fits (SVM; random forest once per feature set) start in a
    joblib pool on a background thread; the JAX programs run meanwhile.
    """
    from concurrent.futures import ThreadPoolExecutor

    # Random forest: one fit per (feature array, seed), whatever the scaling.
    rf_owner: dict[tuple, int] = {}
    for j, job in enumerate(jobs):
        rf_owner.setdefault((id(job[0]), prepared[j][2]), j)
    owner_of = {j: rf_owner[(id(jobs[j][0]), prepared[j][2])] for j in range(len(prepared))}
    host_only = _auto_host_classifiers()
    host = list(dict.fromkeys((j, name) for j, name, _ in tasks
                              if name in host_only and (name != "rf" or owner_of[j] == j)))
    n_jobs = _host_workers(n_jobs, any(name not in host_only for _, name, _ in tasks))

    def host_fits():
        from sklearn.utils.parallel import Parallel, delayed

        t0 = time.perf_counter()

        # One worker task per feature set and classifier, not per fold: a fit of the
        # forest is now a few tens of milliseconds, comparable to a pool round trip.
        per_set = Parallel(n_jobs=n_jobs)(
            delayed(_fit_folds_auto)(name, prepared[j][2], prepared[j][5], prepared[j][0], prepared[j][1],
                                     prepared[j][4])
            for j, name in host)
        seconds.sklearn_classifiers_s += time.perf_counter() - t0
        return {(j, name, f): o for (j, name), outs in zip(host, per_set) for f, o in enumerate(outs)}

    if progress is not None:
        large = sum(svm_through_intelex(len(prepared[j][4][0][0]), prepared[j][0].shape[1]) for j, name in host
                    if name == "svm")
        if large:
            progress(f"[svm] {large} feature set(s) fitted by scikit-learn-intelex's SVC (installed; it predicts "
                     "what scikit-learn's SVC predicts, faster on large folds)")
    with ThreadPoolExecutor(1) as pool:
        host_future = pool.submit(host_fits)
        t0 = time.perf_counter()
        device = _jax_fits(prepared, tasks, progress, host_only)
        seconds.jax_classifiers_s += time.perf_counter() - t0
        host_out = host_future.result()
    outputs = []
    fitted_on = {}
    for j, name, f in tasks:
        if name in host_only:
            src = owner_of[j] if name == "rf" else j
            outputs.append(host_out[(src, name, f)])
            fitted_on[(j, name)] = prepared[src][5]
        else:
            outputs.append(device[(j, name, f)])
            fitted_on[(j, name)] = prepared[j][5]
    return outputs, fitted_on


def _jax_fits(prepared, tasks, progress, host_only: tuple[str, ...]) -> dict:
    """``{(job, classifier, fold): _fit_fold-like output}`` of the JAX classifiers, one program per group.

    A group is the jobs of one classifier and data shape (N, D, classes); their
    scalings are per-fit data of the same program.
    """
    from icrst_jax import jax_classifiers as jc

    wanted = sorted({name for _, name, _ in tasks if name not in host_only})
    asked = {(j, name) for j, name, _ in tasks}
    groups: dict[tuple, list[int]] = {}
    for j, (x, y, *_) in enumerate(prepared):
        groups.setdefault((x.shape, len(np.unique(y))), []).append(j)
    out = {}
    for name in wanted:
        for (shape, n_classes), members in groups.items():
            members = [j for j in members if (j, name) in asked]
            if not members:
                continue
            labels = [np.unique(prepared[j][1], return_inverse=True) for j in members]
            # One copy of each distinct (features, labels): its scalings are fits, not sets.
            set_of: dict[tuple, int] = {}
            for m, j in enumerate(members):
                set_of.setdefault((id(prepared[j][0]), id(prepared[j][1])), m)
            set_rows = sorted(set_of.values())
            x_sets = np.stack([prepared[members[m]][0] for m in set_rows])
            y_sets = np.stack([labels[m][1] for m in set_rows])
            set_pos = {key: set_rows.index(m) for key, m in set_of.items()}
            fits = [(m, j, f) for m, j in enumerate(members) for f in range(prepared[j][3])]
            set_idx = np.array([set_pos[(id(prepared[j][0]), id(prepared[j][1]))] for _, j, _ in fits])
            scaled = np.array([prepared[j][5] == "standard" for _, j, _ in fits])
            train_mask = np.zeros((len(fits), shape[0]), bool)
            for g, (_, j, f) in enumerate(fits):
                train_mask[g, prepared[j][4][f][0]] = True
            t0 = time.perf_counter()
            chunk = jc.fits_per_chunk(shape[0], shape[1])
            if name == "nb":
                pred = jc.gaussian_nb(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled,
                                      chunk=chunk)[0]
                warned = np.zeros(len(fits), bool)
            elif name == "svm":
                from icrst_jax import jax_svc

                c_max = jax_svc.class_size(y_sets, set_idx, train_mask, n_classes)
                res = jax_svc.svc(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled,
                                  chunk=jax_svc.svc_fits_per_chunk(shape[0], shape[1], n_classes, c_max))
                pred = res.pred
                warned = ~res.converged.all(axis=1)
            else:
                res = jc.mlp(x_sets, y_sets, set_idx, train_mask, n_classes=n_classes, scaled=scaled,
                             seeds=[prepared[j][2] for _, j, _ in fits], folds=[f for _, _, f in fits], chunk=chunk)
                pred = res.pred
                warned = (res.n_iter >= jc.MLP_MAX_ITER) & ~res.converged
            elapsed = time.perf_counter() - t0
            if progress is not None:
                progress(f"[{name}] {len(fits)} fits ({len(members)} feature sets and scalings x folds) as one "
                         f"JAX program: {elapsed:.1f}s")
            for g, (m, j, f) in enumerate(fits):
                classes, _ = labels[m]
                test = prepared[j][4][f][1]
                scores = fold_scores(prepared[j][1][test], classes[pred[g, test]])
                out[(j, name, f)] = (scores, elapsed / len(fits), int(warned[g]), [])
    return out


# ---------------------------------------------------------------------------
# Mutual information (section 7, Table 2)
# ---------------------------------------------------------------------------


def _as_pixels_channels(images: np.ndarray) -> np.ndarray:
    """(N, D) / (N, H, W) / (N, H, W, C) -> (N, P, C) view."""
    if images.ndim == 2:
        return images[:, :, None]
    if images.ndim == 3:
        return images.reshape(images.shape[0], -1, 1)
    if images.ndim == 4:
        return images.reshape(images.shape[0], -1, images.shape[-1])
    raise ValueError(f"images must be (N, D), (N, H, W) or (N, H, W, C), got shape {images.shape}")


def discretize(images, bins: int = 16) -> np.ndarray:
    """Equal-width bin index of each pixel value in [0, 1].

    Pixel value ``v`` is clipped to [0, 1] and mapped to
    ``min(floor(v * bins), bins - 1)``: bin ``j`` holds ``[j/bins, (j+1)/bins)``
    and the last bin also holds 1.0.

    Args:
      images: array of any shape with float values in [0, 1].
      bins: number of bins.

    Returns:
      ``int64`` array of the same shape with values in ``[0, bins)``.

    Example:
      >>> discretize(np.array([0.0, 0.49, 0.5, 1.0]), bins=2).tolist()
      [0, 0, 1, 1]
    """
    v = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    return np.minimum(np.floor(v * bins), bins - 1).astype(np.int64)


def _knn_excluding_self(x: np.ndarray, queries: np.ndarray, k: int, on_device: bool | None = None) -> np.ndarray:
    """Indices (len(queries), k) of the k nearest rows of x to x[queries], self excluded.

    Sorted by Euclidean distance, ties broken by index. The query point itself
    is excluded by index, so exact duplicates of it still count as neighbours.
    Squared distances in float64 from the norms' expansion, ``_KNN_QUERIES``
    queries at a time. ``on_device`` (default: when JAX's default backend is
    not the CPU): a compiled program with ``lax.top_k``; otherwise numpy's
    BLAS and a partial sort (XLA's float64 products on a CPU are slower than
    numpy's). Both give the same indices (tested).
    """
    import jax

    queries = np.asarray(queries, dtype=np.int64)
    if on_device is None:
        on_device = jax.default_backend() != "cpu"
    blocks = [queries[s:s + _KNN_QUERIES] for s in range(0, len(queries), _KNN_QUERIES)]
    if not blocks:
        return np.zeros((0, k), np.int64)
    if not on_device:
        # The float64 features and their squared norms once, not once per block of queries.
        xf = np.asarray(x, dtype=np.float64)
        x_sq = np.einsum("ij,ij->i", xf, xf)
        return np.concatenate([_knn_host(xf, x_sq, q, k) for q in blocks])
    with jax.enable_x64(True):
        xd = jax.device_put(np.asarray(x, dtype=np.float64))
        out = []
        for q in blocks:
            pad = _KNN_QUERIES - len(q) if len(blocks) > 1 else 0
            out.append(np.asarray(_knn_jit()(xd, np.concatenate([q, np.repeat(q[-1:], pad)]), k))[: len(q)])
    return np.concatenate(out)


def _knn_host(xf: np.ndarray, x_sq: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """:func:`_knn_excluding_self` of a block of queries with numpy (``xf`` float64, ``x_sq`` its squared norms)."""
    q = xf[queries]
    d2 = x_sq[queries][:, None] - 2.0 * q @ xf.T + x_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    d2[np.arange(len(queries)), queries] = np.inf
    part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    part_d = np.take_along_axis(d2, part, axis=1)
    # The k smallest by (distance, index); a row whose k-th distance is shared with an
    # unselected point (a tie at the cut) is sorted whole.
    kth = part_d.max(axis=1)
    tied = (d2 <= kth[:, None]).sum(axis=1) > k
    order = np.lexsort((part, part_d), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    for r in np.flatnonzero(tied):
        best[r] = np.lexsort((np.arange(d2.shape[1]), d2[r]))[:k]
    return best


@functools.cache
def _knn_jit():
    """The compiled search of one block of queries (one program per shape); built on first
    use, so that importing this module does not import JAX."""
    import jax
    import jax.numpy as jnp

    def program(x, queries, k):
        x_sq = jnp.einsum("ij,ij->i", x, x)
        d2 = jnp.maximum(x_sq[queries][:, None] - 2.0 * x[queries] @ x.T + x_sq[None, :], 0.0)
        d2 = jnp.where(jnp.arange(x.shape[0])[None, :] == queries[:, None], jnp.inf, d2)
        return jax.lax.top_k(-d2, k)[1]

    return jax.jit(program, static_argnums=2)


def _mi_one_vs_many(a: np.ndarray, b: np.ndarray, bins: int) -> np.ndarray:
    """Plug-in MI (nats) between image a (P, C) and each image of b (K, P, C), per channel.

    Returns (K, C). The pixels of one channel are the samples of the two
    discrete variables; the joint histogram of all K * C pairs is one bincount.
    """
    n_k, n_p, n_c = b.shape
    joint_code = (a[None] * bins + b).transpose(0, 2, 1)  # (K, C, P)
    offsets = (np.arange(n_k * n_c, dtype=np.int64) * bins * bins).reshape(n_k, n_c, 1)
    counts = np.bincount((joint_code + offsets).ravel(), minlength=n_k * n_c * bins * bins)
    p_xy = counts.reshape(n_k, n_c, bins, bins) / n_p
    p_x = p_xy.sum(axis=3, keepdims=True)
    p_y = p_xy.sum(axis=2, keepdims=True)
    nz = p_xy > 0
    # 0 * log 0 = 0: only nonzero cells contribute; where p_xy > 0 both marginals are > 0.
    ratio = np.divide(p_xy, p_x * p_y, out=np.ones_like(p_xy), where=nz)
    return np.sum(np.where(nz, p_xy * np.log(ratio), 0.0), axis=(2, 3))


def mutual_information(
    features,
    images,
    *,
    n_samples: int = 150,
    k: int = 20,
    bins: int = 16,
    seed: int = 0,
    level: float = 0.95,
    baselines: bool = True,
) -> dict:
    """Mutual information between observations and their latent-space neighbours.

    Section 7 / Table 2: "we sampled N = 150 observations from the latent space
    and extracted the KNN embeddings for each sample, using Euclidean Distance,
    with K = 20; then we computed the according MI between the samples and
    their K-NN data observations from the dataset. The MI is computed as the
    average of the MI for each channel of the images."

    Procedure:
      1. Draw ``n_samples`` distinct indices uniformly with
         ``np.random.default_rng(seed)`` (all N if ``n_samples >= N``).
      2. For each, find the ``k`` nearest other rows of ``features``
         (Euclidean; the sample itself is excluded by index; ties by index).
      3. Discretise pixels: clip to [0, 1], bin index
         ``min(floor(v * bins), bins - 1)`` (``bins`` equal-width bins, see
         ``discretize``).
      4. For the sample's image and each neighbour's image, per channel: the
         joint histogram of the two images' bin indices at the same pixel
         positions (the P pixels are the samples) gives the plug-in estimate
         ``MI = sum_xy p(x,y) log(p(x,y) / (p(x) p(y)))`` in nats (natural
         log; equal to ``sklearn.metrics.mutual_info_score`` on the bin
         indices).
      5. Average over channels and neighbours -> one value per sample; the
         reported ``mi`` is the mean over samples and ``low``/``high`` the
         percentile interval over samples.

    The plug-in estimator is biased upwards by about ``(B_eff - 1)**2 / (2 P)``
    nats for B_eff occupied bins and P pixels per channel, so absolute values
    depend on ``bins`` and image size; compare modes on the same dataset with
    the same settings. With ``baselines`` (default) two references come with
    it, each a summary like the main one (``mi``, ``low``, ``high``,
    ``per_sample``):

    * ``permuted``: the same sample and neighbours, each neighbour's pixels
      randomly permuted within each channel. The pair keeps its two pixel
      histograms but loses every spatial correspondence, so this is the
      plug-in MI of independent images with those marginals, i.e. the bias.
      ``corrected`` = ``per_sample - permuted`` per sample: about 0 when the
      neighbours say nothing about the sample's pixels.
    * ``random_neighbours``: ``k`` uniformly drawn other observations in place
      of the latent neighbours: what any image shares with any other of the
      set (common background, stroke statistics). A latent space helps only
      by the margin above this.

    Args:
      features: ``(N, D)`` latent features, row-aligned with ``images``.
      images: ``(N, D)``, ``(N, H, W)`` or ``(N, H, W, C)`` float pixels in
        [0, 1] (unit scale, *not* standardised; a small overshoot is clipped,
        values outside [-1e-3, 1 + 1e-3] or an integer dtype are an error).
      n_samples: number of sampled observations (150 in the paper).
      k: neighbours per sample (20 in the paper).
      bins: equal-width bins over [0, 1] per pixel value.
      seed: seed of the sample draw.
      level: coverage of the percentile interval over samples.
      baselines: also compute ``permuted``, ``corrected`` and
        ``random_neighbours`` (their draws use their own generators, so the
        main estimate does not depend on this flag).

    Returns:
      ``{"mi", "low", "high", "per_sample" (n_samples,), "indices"
      (n_samples,), "n_samples", "k", "bins", "unit": "nats"}``, plus
      ``"permuted"``, ``"corrected"`` and ``"random_neighbours"`` with
      ``baselines``.

    Example:
      >>> rng = np.random.default_rng(0)
      >>> imgs = rng.random((100, 8, 8, 1)); z = rng.normal(size=(100, 4))
      >>> round(mutual_information(z, imgs, n_samples=10, k=5, bins=2)["mi"], 2)
      0.01
    """
    x, _ = _features_and_labels(features)
    imgs = np.asarray(images)
    n = x.shape[0]
    if imgs.shape[0] != n:
        raise ValueError(f"features ({n}) and images ({imgs.shape[0]}) differ in length")
    if not np.issubdtype(imgs.dtype, np.floating):
        raise ValueError(f"images must be floats in [0, 1], got dtype {imgs.dtype} (divide by 255?)")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ValueError("features must be finite numbers (NaN or inf found)")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, N - 1] = [1, {n - 1}], got {k}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    pix = _as_pixels_channels(imgs)

    rng = np.random.default_rng(seed)
    m = min(n_samples, n)
    queries = np.sort(rng.choice(n, size=m, replace=False))
    neighbours = _knn_excluding_self(x, queries, k)
    if baselines:
        # k distinct others per sample, uniformly: draw from N - 1 and skip self.
        rng_random = np.random.default_rng([seed, 1])
        random_nb = np.stack([rng_random.choice(n - 1, size=k, replace=False) for _ in queries])
        random_nb += random_nb >= queries[:, None]
    else:
        random_nb = np.zeros((m, 0), np.int64)

    used = np.unique(np.concatenate([queries, neighbours.ravel(), random_nb.ravel()]))
    sub = pix[used].astype(np.float64)
    lo, hi = float(sub.min()), float(sub.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        # Standardised or 0-255 pixels would be silently clipped into a couple
        # of bins and give a meaningless MI.
        raise ValueError(f"images must be in [0, 1]; found values in [{lo:.3g}, {hi:.3g}]")
    codes = discretize(sub, bins)
    pos = {int(i): j for j, i in enumerate(used)}

    per_sample = np.empty(m)
    permuted = np.empty(m)
    random_mi = np.empty(m)
    rng_perm = np.random.default_rng([seed, 2])
    for s, (q, nb) in enumerate(zip(queries, neighbours)):
        a = codes[pos[int(q)]]
        b = codes[[pos[int(j)] for j in nb]]
        per_sample[s] = _mi_one_vs_many(a, b, bins).mean()
        if baselines:
            # Each (neighbour, channel) slice shuffled on its own along the pixels.
            permuted[s] = _mi_one_vs_many(a, rng_perm.permuted(b, axis=1), bins).mean()
            random_mi[s] = _mi_one_vs_many(a, codes[[pos[int(j)] for j in random_nb[s]]], bins).mean()

    out = {
        **_mi_summary(per_sample, level),
        "indices": queries,
        "n_samples": int(m),
        "k": int(k),
        "bins": int(bins),
        "unit": "nats",
    }
    if baselines:
        out["permuted"] = _mi_summary(permuted, level)
        out["corrected"] = _mi_summary(per_sample - permuted, level)
        out["random_neighbours"] = _mi_summary(random_mi, level)
    return out


MI_BASELINES: tuple[str, ...] = ("permuted", "corrected", "random_neighbours")


def _mi_summary(per_sample: np.ndarray, level: float = 0.95) -> dict:
    mean, low, high = percentile_interval(per_sample, level)
    return {"mi": mean, "low": low, "high": high, "per_sample": per_sample}


def pool_mi(per_seed: Sequence[Mapping], level: float = 0.95) -> dict:
    """:func:`mutual_information` results of several seeds, per-sample values pooled.

    The main estimate and each baseline present in every seed's result are
    re-summarised over the concatenated samples; ``n_seeds`` is added.
    """
    if not per_seed:
        raise ValueError("pool_mi needs at least one result")
    if len(per_seed) == 1:
        return dict(per_seed[0])
    pooled = dict(per_seed[0])
    pooled.update(_mi_summary(np.concatenate([np.asarray(r["per_sample"]) for r in per_seed]), level))
    pooled.pop("indices", None)  # each seed drew its own samples
    for name in MI_BASELINES:
        if all(name in r for r in per_seed):
            pooled[name] = _mi_summary(np.concatenate([np.asarray(r[name]["per_sample"]) for r in per_seed]), level)
        else:
            pooled.pop(name, None)
    pooled["n_seeds"] = len(per_seed)
    return pooled


# ---------------------------------------------------------------------------
# kNN label purity
# ---------------------------------------------------------------------------


def knn_purity(features, labels, *, k: int = 20) -> dict:
    """Share of each observation's ``k`` nearest latent neighbours that carry its label.

    The direct measure of the paper's "similar data end up closer" (sections 3
    and 7): 1 when every class is its own tight cluster, about ``chance`` when
    the latents ignore the labels. Neighbours are Euclidean, the observation
    itself excluded by index, ties by index (as in :func:`mutual_information`);
    every observation is a query. Unlike the classifiers, it does not change
    when all latents are scaled by one factor.

    Args:
      features: ``(N, D)`` latent features.
      labels: ``(N,)`` class labels.
      k: neighbours per observation.

    Returns:
      ``{"purity": mean over observations, "chance": the expected purity of k
      random other observations, sum_c n_c (n_c - 1) / (N (N - 1)), "k", "n"}``.

    Example:
      >>> z = np.r_[np.zeros((5, 2)), np.full((5, 2), 9.0)]; y = np.r_[[0] * 5, [1] * 5]
      >>> knn_purity(z, y, k=4)["purity"]
      1.0
    """
    x, y = _features_and_labels(features, labels)
    n = x.shape[0]
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, N - 1] = [1, {n - 1}], got {k}")
    nb = _knn_excluding_self(x, np.arange(n), k)
    same = (y[nb] == y[:, None]).mean(axis=1)
    _, counts = np.unique(y, return_counts=True)
    chance = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    return {"purity": float(same.mean()), "chance": chance, "k": int(k), "n": int(n)}


def pool_purity(per_seed: Sequence[Mapping]) -> dict:
    """Purity over seeds: the mean of the seeds' values, with each seed's value kept."""
    if not per_seed:
        raise ValueError("pool_purity needs at least one result")
    values = [float(r["purity"]) for r in per_seed]
    return {**per_seed[0], "purity": float(np.mean(values)), "per_seed": values}


def latent_spread(features) -> float:
    """Mean over latent dimensions of the standard deviation across observations.

    The scale the classifiers see: an encoder whose latents shrink toward one
    point has a small spread even where their arrangement (purity) is kept.
    """
    x, _ = _features_and_labels(features, dtype=np.float64)
    return float(x.std(axis=0).mean())
