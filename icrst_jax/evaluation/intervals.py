"""Intervals of scores, their summaries, and scores pooled over training seeds.

Section 6 / Table 1 of the paper: "95% percentile confidence intervals computed
after 10-cross-fold-validation", reported as ``mean ± 0.02`` on Breast Cancer.
Single folds of that size cannot all lie within 0.02 of the mean, so the
paper's interval is read as one of the *mean* accuracy:
:func:`bootstrap_mean_interval` is a percentile bootstrap of the mean over
folds (and over seeds x folds when a configuration has several seeds, seeds
resampled first, then folds within each seed), seeded so every run of the same
scores gives the same interval. :func:`percentile_interval` is the spread of
single scores (folds, or sampled observations for the MI); :func:`summarize`
gives both (``low``/``high`` the mean's, ``fold_low``/``fold_high`` the
folds'), the standard deviation and the count; :func:`pool_over_seeds` and
:func:`pool_results` pool the fold scores of several training seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from icrst_jax.evaluation.scores import METRICS

# Resamples of the bootstrap, and its fixed seed: the same fold scores always
# give the same interval (results.json, report and figures agree run to run).
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0


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


def bootstrap_mean_interval(groups: Sequence, level: float = 0.95, *, n_boot: int = N_BOOTSTRAP,
                            seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean score, over folds or over seeds x folds.

    One group (one training seed): the folds are resampled with replacement.
    Several groups (seeds): the study's design is seeds, each cross-validated,
    so each resample draws the seeds with replacement and then, within each
    drawn seed, its folds; the interval covers both sources of variation. The
    interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
    resampled means; seeded, so it is reproducible.

    Args:
      groups: sequence of 1-D arrays of scores, one per seed (lengths may differ).
      level: coverage, in (0, 1).
      n_boot: number of resamples.
      seed: the resampling's seed.

    Returns:
      ``(low, high)`` as Python floats; both the mean for a single score.

    Example:
      >>> low, high = bootstrap_mean_interval([[0.9, 0.95, 1.0, 0.85]])
      >>> 0.85 < low < 0.925 < high < 1.0
      True
    """
    arrays = [np.asarray(g, dtype=np.float64).ravel() for g in groups]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("bootstrap_mean_interval needs at least one score in every group")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n_groups = len(arrays)
    picked = rng.integers(0, n_groups, size=(n_boot, n_groups)) if n_groups > 1 else np.zeros((n_boot, 1), int)
    if len({a.size for a in arrays}) == 1:  # the usual case, every seed has the same folds: one gather
        table = np.stack(arrays)
        folds = rng.integers(0, table.shape[1], size=(n_boot, n_groups, table.shape[1]))
        means = table[picked[..., None], folds].mean(axis=(1, 2))
    else:
        # Each drawn seed's own folds, resampled; seeds weigh equally.
        means = np.zeros(n_boot)
        for g, a in enumerate(arrays):
            drawn = a[rng.integers(0, a.size, size=(n_boot, n_groups, a.size))].mean(axis=2)
            means += np.where(picked == g, drawn, 0.0).sum(axis=1)
        means /= n_groups
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def summarize(values, level: float = 0.95, *, groups: Sequence | None = None) -> dict:
    """Summary of a set of scores: mean, the mean's interval, the folds' spread, std and count.

    Args:
      values: 1-D array-like, e.g. per-fold accuracies of shape ``(n_folds,)``.
      level: coverage of both intervals.
      groups: the same scores split by training seed, for the mean's interval
        (:func:`bootstrap_mean_interval`); default: one group, ``values``.

    Returns:
      ``{"mean", "low", "high", "fold_low", "fold_high", "std", "n"}``: ``low``
      and ``high`` the bootstrap interval of the mean, ``fold_low`` and
      ``fold_high`` the percentile interval of single scores
      (:func:`percentile_interval`), ``std`` the sample standard deviation
      (``ddof=1``; 0.0 for a single value).

    Example:
      >>> summarize([1.0, 1.0])["std"]
      0.0
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    mean, fold_low, fold_high = percentile_interval(v, level)
    low, high = bootstrap_mean_interval(groups if groups is not None else [v], level)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": mean, "low": low, "high": high, "fold_low": fold_low, "fold_high": fold_high,
            "std": std, "n": int(v.size)}


def pool_over_seeds(fold_arrays: Sequence, level: float = 0.95) -> dict:
    """Summarise scores over folds and seeds together.

    Each training seed gives one array of per-fold scores; the mean, the std
    and the folds' spread treat all ``sum(len(a))`` scores as one sample; the
    mean's interval resamples seeds, then folds within them
    (:func:`bootstrap_mean_interval`), so it reflects both the fold-to-fold and
    the seed-to-seed variation.

    Args:
      fold_arrays: sequence of 1-D arrays, one per seed (lengths may differ).
      level: coverage of the intervals.

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
    out = summarize(pooled, level, groups=arrays)
    out["n_seeds"] = len(arrays)
    out["folds"] = pooled
    return out


def pool_results(results_per_seed: Sequence[Mapping], level: float = 0.95) -> dict:
    """Pool several ``evaluate_classifiers`` results (one per seed) into one.

    Args:
      results_per_seed: outputs of
        :func:`~icrst_jax.evaluation.cross_validation.evaluate_classifiers` for the same
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
