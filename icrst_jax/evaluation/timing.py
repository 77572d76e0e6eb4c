"""The wall seconds of an evaluation, by part (:class:`EvalSeconds`)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class EvalSeconds:
    """Wall seconds of an evaluation, by part, accumulated over calls.

    ``jax_classifiers_s``: the JAX classifier programs, compiling included;
    ``sklearn_classifiers_s``: scikit-learn's pool of fits (under ``auto`` it
    runs beside the JAX programs, so the two overlap); ``mi_s``, ``purity_s``:
    :func:`~icrst_jax.evaluation.information.mutual_information` and
    :func:`~icrst_jax.evaluation.neighbours.knn_purity`.
    """

    jax_classifiers_s: float = 0.0
    sklearn_classifiers_s: float = 0.0
    mi_s: float = 0.0
    purity_s: float = 0.0
