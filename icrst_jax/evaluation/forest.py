"""The random forest's fits without ``RandomForestClassifier``'s per-fit overhead.

scikit-learn's forest spends ~0.1 s of Python per fit on ~100 rows (input
checks and a joblib dispatch per tree), far more than growing its 100 small
trees; a study fits thousands. :func:`random_forest_predict` drives
scikit-learn's own tree builder the way ``RandomForestClassifier()`` does, and
predicts what it predicts. It needs private scikit-learn modules
(``sklearn.tree._tree``, ``_splitter``, ``_criterion``), so
``tests/test_jax_classifiers.py`` compares it with the public estimator.
"""

from __future__ import annotations

import numpy as np
from sklearn.tree._criterion import Gini
from sklearn.tree._splitter import BestSplitter
from sklearn.tree._tree import DepthFirstTreeBuilder, Tree


def random_forest_predict(x_train, y_train, x_test, seed: int) -> np.ndarray:
    """``RandomForestClassifier(random_state=seed).fit(x_train, y_train).predict(x_test)``, minus its overhead.

    This drives scikit-learn's own tree builder (``DepthFirstTreeBuilder``
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
