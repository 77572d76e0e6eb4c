"""Mutual information between observations and their latent-space neighbours (section 7, Table 2).

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?",
section 7: "we sampled N = 150 observations from the latent space and extracted
the KNN embeddings for each sample, using Euclidean Distance, with K = 20; then
we computed the according MI between the samples and their K-NN data
observations from the dataset. The MI is computed as the average of the MI for
each channel of the images."

:func:`mutual_information` does this:

1. Draw ``n_samples`` distinct indices uniformly with
   ``np.random.default_rng(seed)`` (all N if ``n_samples >= N``).
2. For each, find the ``k`` nearest other rows of the features (Euclidean; the
   sample itself is excluded by index; ties by index;
   :func:`~icrst_jax.evaluation.neighbours.knn_excluding_self`).
3. Discretise pixels: clip to [0, 1], bin index ``min(floor(v * bins), bins - 1)``
   (``bins`` equal-width bins, :func:`discretize`).
4. For the sample's image and each neighbour's image, per channel: the joint
   histogram of the two images' bin indices at the same pixel positions (the P
   pixels are the samples) gives the plug-in estimate
   ``MI = sum_xy p(x,y) log(p(x,y) / (p(x) p(y)))`` in nats (natural log; equal
   to ``sklearn.metrics.mutual_info_score`` on the bin indices).
5. Average over channels and neighbours -> one value per sample; the reported
   ``mi`` is the mean over samples, ``low``/``high`` the 95% percentile-bootstrap
   interval of that mean (seeds resampled, then their samples, where seeds are
   pooled) and ``sample_low``/``sample_high`` the percentile spread of single
   samples.

The plug-in estimator is biased upwards by about ``(B_eff - 1)**2 / (2 P)`` nats
for B_eff occupied bins and P pixels per channel, so absolute values depend on
``bins`` and image size; compare modes on the same dataset with the same
settings. Two references (:data:`MI_BASELINES`) come with it, each a summary
like the main one (``mi``, ``low``, ``high``, ``per_sample``):

* ``permuted``: the same sample and neighbours, each neighbour's pixels randomly
  permuted within each channel. The pair keeps its two pixel histograms but
  loses every spatial correspondence, so this is the plug-in MI of independent
  images with those marginals, i.e. the bias. ``corrected`` = ``per_sample -
  permuted`` per sample: about 0 when the neighbours say nothing about the
  sample's pixels.
* ``random_neighbours``: ``k`` uniformly drawn other observations in place of
  the latent neighbours: what any image shares with any other of the set
  (common background, stroke statistics). A latent space helps only by the
  margin above this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from icrst_jax.evaluation.inputs import features_and_labels
from icrst_jax.evaluation.intervals import bootstrap_mean_interval, percentile_interval
from icrst_jax.evaluation.neighbours import knn_excluding_self

MI_BASELINES: tuple[str, ...] = ("permuted", "corrected", "random_neighbours")


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


def _checked_inputs(features, images, *, n_samples: int, k: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x (N, D), pixels (N, P, C))`` of :func:`mutual_information`'s inputs, or a one-line error."""
    x, _ = features_and_labels(features)
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
    return x, _as_pixels_channels(imgs)


def _draw_neighbours(x: np.ndarray, n_samples: int, k: int, seed: int, baselines: bool):
    """``(queries (m,), latent neighbours (m, k), random others (m, k) or (m, 0))``.

    The samples come from ``default_rng(seed)``, the random others from their own
    generator, so the main estimate does not depend on ``baselines``.
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    m = min(n_samples, n)
    queries = np.sort(rng.choice(n, size=m, replace=False))
    neighbours = knn_excluding_self(x, queries, k)
    if not baselines:
        return queries, neighbours, np.zeros((m, 0), np.int64)
    # k distinct others per sample, uniformly: draw from N - 1 and skip self.
    rng_random = np.random.default_rng([seed, 1])
    random_nb = np.stack([rng_random.choice(n - 1, size=k, replace=False) for _ in queries])
    random_nb += random_nb >= queries[:, None]
    return queries, neighbours, random_nb


def _pixel_codes(pixels: np.ndarray, used: np.ndarray, bins: int) -> np.ndarray:
    """:func:`discretize` of the images of rows ``used`` (``(len(used), P, C)``), after checking their range."""
    sub = pixels[used].astype(np.float64)
    lo, hi = float(sub.min()), float(sub.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        # Standardised or 0-255 pixels would be silently clipped into a couple
        # of bins and give a meaningless MI.
        raise ValueError(f"images must be in [0, 1]; found values in [{lo:.3g}, {hi:.3g}]")
    return discretize(sub, bins)


def _per_sample_mi(codes, row_of: dict, queries, neighbours, random_nb, bins: int, seed: int, baselines: bool):
    """``(per_sample, permuted, random_neighbours)``, each ``(m,)``: the MI of each sample with its
    neighbours, with their pixels permuted (generator ``[seed, 2]``), and with random others."""
    m = len(queries)
    per_sample, permuted, random_mi = np.empty(m), np.empty(m), np.empty(m)
    rng_perm = np.random.default_rng([seed, 2])
    for s, (q, nb) in enumerate(zip(queries, neighbours)):
        a = codes[row_of[int(q)]]
        b = codes[[row_of[int(j)] for j in nb]]
        per_sample[s] = _mi_one_vs_many(a, b, bins).mean()
        if baselines:
            # Each (neighbour, channel) slice shuffled on its own along the pixels.
            permuted[s] = _mi_one_vs_many(a, rng_perm.permuted(b, axis=1), bins).mean()
            random_mi[s] = _mi_one_vs_many(a, codes[[row_of[int(j)] for j in random_nb[s]]], bins).mean()
    return per_sample, permuted, random_mi


def mutual_information(features, images, *, n_samples: int = 150, k: int = 20, bins: int = 16, seed: int = 0,
                       level: float = 0.95, baselines: bool = True) -> dict:
    """Mutual information between observations and their latent-space neighbours.

    Section 7 / Table 2; the procedure, the estimator's bias and the baselines
    are in the module docstring.

    Args:
      features: ``(N, D)`` latent features, row-aligned with ``images``.
      images: ``(N, D)``, ``(N, H, W)`` or ``(N, H, W, C)`` float pixels in
        [0, 1] (unit scale, *not* standardised; a small overshoot is clipped,
        values outside [-1e-3, 1 + 1e-3] or an integer dtype are an error).
      n_samples: number of sampled observations (150 in the paper).
      k: neighbours per sample (20 in the paper).
      bins: equal-width bins over [0, 1] per pixel value.
      seed: seed of the sample draw.
      level: coverage of the interval of the mean and of the spread of samples.
      baselines: also compute ``permuted``, ``corrected`` and
        ``random_neighbours`` (their draws use their own generators, so the
        main estimate does not depend on this flag).

    Returns:
      ``{"mi", "low", "high", "sample_low", "sample_high", "per_sample" (n_samples,), "indices"
      (n_samples,), "n_samples", "k", "bins", "unit": "nats"}``, plus
      ``"permuted"``, ``"corrected"`` and ``"random_neighbours"`` with
      ``baselines``.

    Example:
      >>> rng = np.random.default_rng(0)
      >>> imgs = rng.random((100, 8, 8, 1)); z = rng.normal(size=(100, 4))
      >>> round(mutual_information(z, imgs, n_samples=10, k=5, bins=2)["mi"], 2)
      0.01
    """
    x, pixels = _checked_inputs(features, images, n_samples=n_samples, k=k, bins=bins)
    queries, neighbours, random_nb = _draw_neighbours(x, n_samples, k, seed, baselines)
    used = np.unique(np.concatenate([queries, neighbours.ravel(), random_nb.ravel()]))
    codes = _pixel_codes(pixels, used, bins)
    row_of = {int(i): j for j, i in enumerate(used)}
    per_sample, permuted, random_mi = _per_sample_mi(codes, row_of, queries, neighbours, random_nb, bins, seed,
                                                     baselines)
    out = {
        **_mi_summary(per_sample, level),
        "indices": queries,
        "n_samples": len(queries),
        "k": int(k),
        "bins": int(bins),
        "unit": "nats",
    }
    if baselines:
        out["permuted"] = _mi_summary(permuted, level)
        out["corrected"] = _mi_summary(per_sample - permuted, level)
        out["random_neighbours"] = _mi_summary(random_mi, level)
    return out


def _mi_summary(per_sample: np.ndarray, level: float = 0.95, groups: Sequence | None = None) -> dict:
    """``{"mi", "low", "high", "sample_low", "sample_high", "per_sample"}`` of per-sample MI values.

    ``mi`` is the mean over samples; ``low``/``high`` the percentile-bootstrap
    interval of that mean (:func:`~icrst_jax.evaluation.intervals.bootstrap_mean_interval`;
    ``groups``, the per-seed values when seeds are pooled, are resampled as
    the seeds of a study, then their samples), the interval every other mean
    of a report carries; ``sample_low``/``sample_high`` the percentile spread
    of single samples, which no difference between modes could ever clear.
    """
    mean, sample_low, sample_high = percentile_interval(per_sample, level)
    low, high = bootstrap_mean_interval(groups if groups is not None else [per_sample], level)
    return {"mi": mean, "low": low, "high": high, "sample_low": sample_low, "sample_high": sample_high,
            "per_sample": per_sample}


def upgrade_mi(mi: Mapping) -> dict:
    """An MI result read from a results.json of schema 3 or older in today's form.

    Those files kept the spread of single samples in ``low``/``high``; it moves
    to ``sample_low``/``sample_high``, and ``low``/``high`` become the interval
    of the mean, recomputed from ``per_sample`` where the file kept it (a
    final record; its ``n_seeds`` equal groups in seed order), else None (an
    along-training entry: its cells then show the mean alone).
    """
    if "sample_low" in mi:
        return dict(mi)
    n_seeds = int(mi.get("n_seeds", 1))

    def one(m: Mapping) -> dict:
        m = dict(m, sample_low=m.get("low"), sample_high=m.get("high"), low=None, high=None)
        if m.get("per_sample") is not None:
            values = np.asarray(m["per_sample"], dtype=np.float64)
            groups = np.split(values, n_seeds) if n_seeds > 1 and values.size % n_seeds == 0 else [values]
            m["low"], m["high"] = bootstrap_mean_interval(groups)
        return m

    out = one(mi)
    for name in MI_BASELINES:
        if isinstance(mi.get(name), Mapping):
            out[name] = one(mi[name])
    return out


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
    groups = [np.asarray(r["per_sample"]) for r in per_seed]
    pooled.update(_mi_summary(np.concatenate(groups), level, groups))
    pooled.pop("indices", None)  # each seed drew its own samples
    for name in MI_BASELINES:
        if all(name in r for r in per_seed):
            groups = [np.asarray(r[name]["per_sample"]) for r in per_seed]
            pooled[name] = _mi_summary(np.concatenate(groups), level, groups)
        else:
            pooled.pop(name, None)
    pooled["n_seeds"] = len(per_seed)
    return pooled
