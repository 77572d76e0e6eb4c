"""The weighted kNN classifier of representation learning, as a plain numpy estimator.

DINO's ``eval_knn.py`` and solo-learn's ``WeightedKNNClassifier`` judge
features by their ``k`` nearest training rows under cosine similarity (dot
products of L2-normalised rows), each neighbour voting for its class with
weight ``exp(similarity / T)`` (``k = 20``, ``T = 0.07``). scikit-learn has no
such vote, so this is the ``sklearn`` backend's reference of the rule, and the
JAX program (:mod:`~icrst_jax.evaluation.jax_knn`) is tested against it.
``weights="uniform"`` and ``metric="euclidean"`` give scikit-learn's
``KNeighborsClassifier(n_neighbors=k)``, the check of the neighbour search.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

KNN_K = 20  # DINO's and solo-learn's default neighbours
KNN_TEMPERATURE = 0.07  # the temperature of their votes


def l2_normalised(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (``torch.nn.functional.normalize``: a zero row stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class WeightedKNN(ClassifierMixin, BaseEstimator):
    """``fit`` / ``predict`` of the weighted kNN vote; ``k`` is cut to the training rows.

    Args:
      k: neighbours per query.
      temperature: T of the votes ``exp(sim / T)``.
      weights: ``"exp"`` (DINO) or ``"uniform"`` (one vote each).
      metric: ``"cosine"`` (DINO; neighbours by similarity of normalised rows) or
        ``"euclidean"`` (scikit-learn's default; neighbours by distance).
    """

    def __init__(self, k: int = KNN_K, temperature: float = KNN_TEMPERATURE, weights: str = "exp",
                 metric: str = "cosine"):
        self.k, self.temperature, self.weights, self.metric = k, temperature, weights, metric

    def fit(self, x, y):
        self.classes_, self.y_ = np.unique(y, return_inverse=True)
        x = np.asarray(x, np.float64)
        self.x_ = l2_normalised(x) if self.metric == "cosine" else x
        return self

    def predict(self, x):
        x = np.asarray(x, np.float64)
        k = min(self.k, len(self.y_))
        if self.metric == "cosine":
            sim = l2_normalised(x) @ self.x_.T
        else:  # negative squared distance: the nearest have the largest
            sim = -(np.square(x).sum(1)[:, None] - 2 * x @ self.x_.T + np.square(self.x_).sum(1)[None])
        nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(sim, nearest, axis=1)
        w = np.exp(top / self.temperature) if self.weights == "exp" else np.ones_like(top)
        votes = np.zeros((len(x), len(self.classes_)))
        np.add.at(votes, (np.arange(len(x))[:, None], self.y_[nearest]), w)
        return self.classes_[np.argmax(votes, axis=1)]
