"""The ``sklearn`` backend of the cross-validation: every fit by scikit-learn, in one joblib pool.

Each (feature set, classifier, fold) is one worker task
(:func:`~icrst_jax.evaluation.classifiers.fit_fold`); one pool for all of a
call's sets keeps every worker busy to the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from sklearn.utils.parallel import Parallel, delayed

from icrst_jax.evaluation.classifiers import ClassifierOptions, fit_fold
from icrst_jax.evaluation.folds import FeatureSet, Fit
from icrst_jax.evaluation.scores import FoldOutcome
from icrst_jax.evaluation.timing import EvalSeconds


def sklearn_fits(sets: Sequence[FeatureSet], fits: Sequence[Fit], n_workers: int | None,
                 seconds: EvalSeconds, options: ClassifierOptions = ClassifierOptions()) -> Iterator[FoldOutcome]:
    """:func:`~icrst_jax.evaluation.classifiers.fit_fold` of each fit in one joblib pool of
    ``n_workers`` (``None`` = 1, ``-1`` = all cores), lazily, in the order of ``fits``;
    the pool's wall time is added to ``seconds.sklearn_classifiers_s`` once it is drained."""
    runner = Parallel(n_jobs=n_workers, return_as="generator")
    outcomes = runner(
        delayed(fit_fold)(name, sets[s].seed, sets[s].scaling, sets[s].x, sets[s].y, *sets[s].splits[f],
                          options=options)
        for s, name, f in fits
    )
    return _timed(outcomes, seconds)


def _timed(outcomes, seconds: EvalSeconds):
    """``outcomes`` as they come (progress lines stay live), their wall time added to ``seconds``."""
    t0 = time.perf_counter()
    yield from outcomes
    seconds.sklearn_classifiers_s += time.perf_counter() - t0
