"""Stratified k-fold cross-validation of the paper's classifiers on latent features.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?",
section 6 / Tables 1 and 3 / Fig. 5: the latent features are classified by four
scikit-learn classifiers with default hyperparameters (SVM with RBF kernel,
Random Forest, MLP, Gaussian Naive Bayes); the paper reports "95% percentile
confidence intervals computed after 10-cross-fold-validation".

:func:`evaluate_classifiers` cross-validates one feature set;
:func:`evaluate_many` several as one pool of fits, by one of two backends:
``sklearn`` (:mod:`~icrst_jax.evaluation.sklearn_backend`, every fit by
scikit-learn) or ``auto`` (:mod:`~icrst_jax.evaluation.auto_backend`, JAX
programs beside scikit-learn), with the same folds and the same numbers up to
the MLP's random draws. A feature set equal to an earlier one of the same call
is fitted once.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from icrst_jax.config import CLASSIFIERS, EVAL_BACKENDS, PAPER_CLASSIFIERS  # declared once, with the study config
from icrst_jax.evaluation.auto_backend import auto_fits
from icrst_jax.evaluation.classifiers import ClassifierOptions
from icrst_jax.evaluation.folds import FeatureSet, Fit, prepare, unpack
from icrst_jax.evaluation.intervals import summarize
from icrst_jax.log import bar_of
from icrst_jax.evaluation.scores import METRICS, FoldOutcome
from icrst_jax.evaluation.sklearn_backend import sklearn_fits
from icrst_jax.evaluation.timing import EvalSeconds


def evaluate_classifiers(
    features,
    labels,
    classifiers: Sequence[str] = PAPER_CLASSIFIERS,
    *,
    n_folds: int = 10,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    level: float = 0.95,
    scaling: str = "none",
    backend: str = "sklearn",
    options: ClassifierOptions | None = None,
) -> dict[str, dict]:
    """Stratified k-fold cross-validation of the paper's classifiers on latent features.

    Section 6 / Tables 1 and 3 / Fig. 5: default-hyperparameter classifiers,
    10-fold cross-validation, 95% percentile intervals over folds. The folds are
    ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)`` and are the
    same for every classifier. By default features are used as given (the
    paper mentions no feature scaling before the classifiers); ``scaling=
    "standardised"`` standardises them with statistics of each training fold.

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
      classifiers: names from ``CLASSIFIERS`` (default the paper's four).
      n_folds: number of cross-validation folds (10 in the paper).
      seed: seed of the fold shuffle and of the classifiers' ``random_state``.
      n_jobs: joblib workers for the (classifier, fold) fits; ``None`` = 1,
        ``-1`` = all cores.
      progress: optional callable receiving one line per fold and one summary
        line per classifier.
      level: coverage of the percentile interval.
      scaling: ``"none"`` or ``"standardised"`` (see
        :func:`~icrst_jax.evaluation.classifiers.make_classifier`).
      backend: ``"sklearn"`` or ``"auto"`` (see :func:`evaluate_many`).
      options: the ``knn`` vote's ``k`` and temperature (default DINO's 20 and 0.07).

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
                         progress=progress, level=level, backend=backend, options=options)[0]


def evaluate_many(
    jobs: Sequence[tuple],
    classifiers: Sequence[str] = PAPER_CLASSIFIERS,
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
    options: ClassifierOptions | None = None,
) -> list[dict[str, dict]]:
    """:func:`evaluate_classifiers` of several feature sets as one pool of fits.

    A study's grid points each need (classifiers x folds) fits; submitting all
    of them to one joblib pool keeps every worker busy to the end, where one
    pool per point idles while its slowest fit (the SVM, the MLP) finishes.

    ``backend="auto"`` fits the MLP and Gaussian NB of every feature set and fold
    as compiled JAX programs (:mod:`~icrst_jax.evaluation.auto_backend`) while
    scikit-learn's SVM and random forest run in the joblib pool beside them. The
    random forest does not depend on the feature scale, so under ``auto`` it is
    fitted once per feature set and seed and that result is reported under each
    of the set's scalings, with ``"fitted_on"`` naming the scaling it saw. NB and
    the MLP see each scaling (NB depends on it through ``var_smoothing``). The
    folds are the same as with ``sklearn``.

    Args:
      jobs: the feature sets, ``(features, labels, seed)`` or ``(features,
        labels, seed, scaling)`` each; the seed decides its folds and classifier
        seeds exactly as in :func:`evaluate_classifiers`, the scaling (default
        ``"none"``; ``"standardised"``) what the classifiers see.
      n_jobs: joblib workers, as in :func:`evaluate_classifiers`.
      fold_lines: send one progress line per fit (False: per classifier only).
      backend: ``"sklearn"`` (every fit by scikit-learn) or ``"auto"``.
      seconds: optional :class:`~icrst_jax.evaluation.timing.EvalSeconds` to add
        this call's classifier time to.
      job_names: optional name of each feature set for the progress lines (e.g.
        ``"icrst p=0.5 seed 1, standardised"``); by default ``job 3/48``.
      job_classifiers: optional subset of ``classifiers`` per feature set (a study's
        latents along training get only ``eval.epoch_classifiers``); one call keeps
        the compiled fits of every set busy while scikit-learn's run beside them.
      options: the ``knn`` vote's ``k`` and temperature, as in :func:`evaluate_classifiers`.
      classifiers, n_folds, progress, level: as in :func:`evaluate_classifiers`.

    Returns:
      One :func:`evaluate_classifiers` result per feature set, in order; the same
      numbers as evaluating each alone. Each entry also has ``"fitted_on"``: the
      scaling of the features the classifier was fitted on. A set equal to an
      earlier one (same features, labels, seed, scaling and classifiers: a
      study's standard, ICRST p=0 and TRST p=0 latents of one seed are the same
      numbers) is not fitted again: its entries are the earlier set's, with
      ``"same_as"`` naming it.
    """
    names = list(classifiers)
    _check_arguments(jobs, names, backend, job_names, job_classifiers)
    first_of = _first_equal(jobs, job_classifiers)
    unique = sorted(set(first_of))
    options = dict(n_folds=n_folds, n_workers=n_jobs, progress=progress, level=level, fold_lines=fold_lines,
                   backend=backend, seconds=seconds, options=options or ClassifierOptions())
    if len(unique) == len(jobs):
        return _evaluate_unique(jobs, names, set_names=job_names, set_classifiers=job_classifiers, **options)
    name_of = (lambda s: job_names[s]) if job_names is not None else (lambda s: f"job {s + 1}")
    if progress is not None:
        copies = [s for s, src in enumerate(first_of) if src != s]
        progress(f"{len(copies)} feature set(s) equal to an earlier one (e.g. [{name_of(copies[0])}] = "
                 f"[{name_of(first_of[copies[0]])}]): fitted once, their scores shared")
    pick = lambda seq: None if seq is None else [seq[s] for s in unique]  # noqa: E731
    results = _evaluate_unique([jobs[s] for s in unique], names, set_names=pick(job_names),
                               set_classifiers=pick(job_classifiers), **options)
    by_set = dict(zip(unique, results))
    return [by_set[s] if src == s else
            {name: {**copy.deepcopy(entry), "same_as": name_of(src)} for name, entry in by_set[src].items()}
            for s, src in enumerate(first_of)]


def _check_arguments(entries, classifiers, backend, set_names, set_classifiers) -> None:
    """A one-line error for an unknown backend or classifier, or per-set lists of the wrong length."""
    if backend not in EVAL_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(EVAL_BACKENDS)}")
    for name in classifiers:
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    if set_classifiers is not None and len(set_classifiers) != len(entries):
        raise ValueError(f"job_classifiers has {len(set_classifiers)} entries for {len(entries)} jobs")
    if set_names is not None and len(set_names) != len(entries):
        raise ValueError(f"job_names has {len(set_names)} names for {len(entries)} jobs")


def _first_equal(entries: Sequence[tuple], set_classifiers) -> list[int]:
    """For each feature set, the index of the first set equal to it (itself if none is)."""

    def digest(a) -> tuple:
        a = np.ascontiguousarray(np.asarray(a))
        return a.shape, a.dtype.str, hashlib.blake2b(a.tobytes(), digest_size=16).digest()

    seen: dict[tuple, int] = {}
    first = []
    cache: dict[int, tuple] = {}  # one digest per array object (a set's scalings share it)
    for s, entry in enumerate(entries):
        features, labels, seed, scaling = unpack(entry)
        fx = cache.setdefault(id(features), digest(features))
        fy = cache.setdefault(id(labels), digest(labels))
        wanted = None if set_classifiers is None else tuple(set_classifiers[s])
        first.append(seen.setdefault((fx, fy, int(seed), scaling, wanted), s))
    return first


def _evaluate_unique(entries, names, *, n_folds, n_workers, progress, level, fold_lines, backend, seconds,
                     set_names, set_classifiers, options: ClassifierOptions) -> list[dict[str, dict]]:
    """:func:`evaluate_many` of feature sets that are all different."""
    sets = []
    for entry in entries:  # a loop, not a comprehension: its warnings' stacklevel counts frames
        sets.append(prepare(entry, n_folds, progress))
    if set_classifiers is None:
        set_classifiers = [names] * len(sets)
    for wanted in set_classifiers:
        extra = [c for c in wanted if c not in names]
        if extra:
            raise ValueError(f"job_classifiers names {extra}, which are not among classifiers {names}")
    # Each set's classifiers in the order of ``classifiers``.
    names_of = [[n for n in names if n in wanted] for wanted in set_classifiers]
    fits = [Fit(s, name, f) for s, fs in enumerate(sets) for name in names_of[s] for f in range(fs.n_folds)]
    seconds = EvalSeconds() if seconds is None else seconds
    if backend == "sklearn":
        outcomes = sklearn_fits(sets, fits, n_workers, seconds, options)
        fitted_on = {(s, name): sets[s].scaling for s, name, _ in fits}
    else:
        outcomes, fitted_on = auto_fits(sets, fits, n_workers, progress, seconds, options)
    results = _collect(sets, fits, outcomes, fitted_on, progress=progress, fold_lines=fold_lines, level=level,
                       set_names=set_names)
    # Classifier order as given, whatever order the fits finished in.
    return [{name: res[name] for name in names_of[s]} for s, res in enumerate(results)]


def _collect(sets: Sequence[FeatureSet], fits: Sequence[Fit], outcomes, fitted_on: dict, *, progress,
             fold_lines: bool, level: float, set_names) -> list[dict[str, dict]]:
    """Each set's ``{classifier: entry}`` from the fits' outcomes (in the order of ``fits``),
    re-issuing their warnings and sending the progress lines as the outcomes come."""
    tag = _tagger(set_names, len(sets))
    per_clf: dict[tuple, list[FoldOutcome]] = {}
    results: list[dict[str, dict]] = [{} for _ in sets]
    not_converged: dict[str, list[int]] = {}
    bar = bar_of(progress, len(fits), "evaluating")  # a Log's bar (icrst_jax.log), else None
    # strict: also runs the outcomes generator to its end (where the sklearn backend adds its seconds).
    for (s, name, f), outcome in zip(fits, outcomes, strict=True):
        if bar is not None:
            bar.update(1)
        folds_used = sets[s].n_folds
        for category, message in outcome.other_warnings:
            warnings.warn(f"[{name} fold {f + 1}] {message}", category, stacklevel=3)  # at evaluate_many
        done = per_clf.setdefault((s, name), [])
        done.append(outcome)
        if progress is not None and fold_lines:
            scores = outcome.scores
            progress(f"{tag(s)}[{name}] fold {f + 1}/{folds_used}: accuracy={scores['accuracy']:.4f} "
                     f"f1_macro={scores['f1_macro']:.4f} ({outcome.seconds:.1f}s)")
        if len(done) == folds_used:
            entry = _entry(done, sets[s], fitted_on[(s, name)], level)
            results[s][name] = entry
            counts = not_converged.setdefault(name, [0, 0])
            counts[0] += entry["convergence_warnings"]
            counts[1] += folds_used
            if progress is not None:
                acc, f1 = entry["accuracy"], entry["f1_macro"]
                progress(f"{tag(s)}[{name}] accuracy {acc['mean']:.4f} [{acc['low']:.4f}, {acc['high']:.4f}]  "
                         f"f1_macro {f1['mean']:.4f} [{f1['low']:.4f}, {f1['high']:.4f}]")
    if bar is not None:
        bar.close()
    if progress is not None:
        # One line per classifier, not the same sentence on every set's line.
        for name, (n_warned, n_fits) in not_converged.items():
            if n_warned:
                progress(f"[{name}] {n_warned}/{n_fits} fits stopped at the classifier's max_iter before "
                         "converging (scikit-learn's ConvergenceWarning); their scores count")
    return results


def _tagger(set_names, n_sets: int) -> Callable[[int], str]:
    """The prefix of a set's progress lines: ``[its name]``, ``[job 3/48]``, or none for a single set."""

    def tag(s: int) -> str:
        if set_names is not None:
            return f"[{set_names[s]}]"
        return f"[job {s + 1}/{n_sets}]" if n_sets > 1 else ""

    return tag


def _entry(done: Sequence[FoldOutcome], fs: FeatureSet, fitted_on: str, level: float) -> dict:
    """One classifier's result on one set from its folds' outcomes (in fold order)."""
    entry = {}
    for m in METRICS:
        folds = np.array([o.scores[m] for o in done])
        entry[m] = {**summarize(folds, level), "folds": folds}
    entry["fit_time"] = np.array([o.seconds for o in done])
    entry["n_folds"] = fs.n_folds
    entry["convergence_warnings"] = int(sum(o.convergence_warnings for o in done))
    entry["scaling"] = fs.scaling
    entry["fitted_on"] = fitted_on
    return entry
