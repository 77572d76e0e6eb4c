"""The authors' per-sample host pairing for ICRST / TRST, reproduced for timing.

In the authors' code (GabMartino/icrst_trst_autoencoder, ``src/dataloaders/
RandomMNISTDataLoader.py``, ``TotalRandomMNISTDataLoader.py``) ``Dataset.__getitem__``
picks each sample's target on the host:

* ``res = scipy.stats.bernoulli.rvs(p=self.p)`` -- one scipy call per sample;
* if ``res == 1``: ``idx = np.random.choice(self.distribution_dict[label])`` (ICRST,
  a Python list of the indices of the anchor's class) or
  ``idx = np.random.choice(list(range(self.targets.size)))`` (TRST, a Python list of
  every index, rebuilt on every call);
* otherwise the target is the anchor itself.

``np.random.choice`` converts the Python list to an array on every call, so the cost
grows with the class size (ICRST) or the data set (TRST). This module reproduces that
work as is, with numpy and scipy only (no torch needed).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from scipy.stats import bernoulli

from icrst_jax.config import P_MODES as PAIRING_MODES  # the modes that pair, as in the authors' Dataset


class HostPairing:
    """Per-sample target choice exactly as the authors' ``Dataset.__getitem__`` makes it.

    ``mode``: ``icrst`` (partner from the anchor's class) or ``trst`` (from the whole
    set); ``p``: probability that the target is swapped for a partner. TRST rebuilds
    ``list(range(N))`` for every swapped sample as the authors do, unless
    ``rebuild_all_indices=False`` (one prebuilt list, still converted per call).
    Randomness comes from numpy's global state (``np.random.seed``), as in the
    authors' code. ``distribution_dict``: label -> list of its indices, in order.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        mode: str = "icrst",
        p: float = 0.5,
        *,
        rebuild_all_indices: bool = True,
    ):
        if mode not in PAIRING_MODES:
            raise ValueError(f"unknown pairing mode {mode!r}; known: {', '.join(PAIRING_MODES)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
        self.mode = mode
        self.p = float(p)
        self.rebuild_all_indices = bool(rebuild_all_indices)
        # Python ints, so the per-sample lookup is a plain list index + dict lookup,
        # as cheap as the authors' lookup of the label their dataset already returned.
        self._labels: list[int] = [int(v) for v in labels.tolist()]
        self.size = len(self._labels)
        self.distribution_dict: dict[int, list[int]] = {}
        for idx, v in enumerate(self._labels):
            self.distribution_dict.setdefault(v, []).append(idx)
        self._all_indices: list[int] = list(range(self.size))

    def __len__(self) -> int:
        return self.size

    def pair(self, index: int) -> int:
        """Return the index whose sample is the reconstruction target of ``index``."""
        res = bernoulli.rvs(p=self.p)
        if res == 1:
            if self.mode == "icrst":
                return int(np.random.choice(self.distribution_dict[self._labels[index]]))
            pool = list(range(self.size)) if self.rebuild_all_indices else self._all_indices
            return int(np.random.choice(pool))
        return index


def host_pairs_per_second(labels: Sequence[int] | np.ndarray, mode: str = "icrst", p: float = 0.5, n: int = 20000,
                          *, rebuild_all_indices: bool = True, seed: int = 0) -> float:
    """Time ``n`` calls of :meth:`HostPairing.pair` and return pairs per second.

    Anchors are visited in a random permutation (what a shuffled DataLoader hands
    ``__getitem__``), cycling if ``n`` exceeds the data-set size. Building the
    class lists is not timed: the authors build them once, in the constructor.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pairing = HostPairing(labels, mode, p, rebuild_all_indices=rebuild_all_indices)
    np.random.seed(seed)
    order = np.random.permutation(pairing.size).tolist()
    size, pair = pairing.size, pairing.pair
    start = time.perf_counter()
    for k in range(n):
        pair(order[k % size])
    return n / (time.perf_counter() - start)
