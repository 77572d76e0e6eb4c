"""Display names of modes, scalings, classifiers and metrics, shared by the figures and the report."""

from __future__ import annotations

MODE_ORDER: tuple[str, ...] = ("untrained", "standard", "icrst", "trst", "dae")
MODE_LABELS = {"untrained": "Untrained", "standard": "Standard", "icrst": "ICRST", "trst": "TRST", "dae": "DAE"}
SCALING_LABELS = {"none": "raw latents (the paper's protocol)", "standardised": "latents standardised inside each fold"}
SCALING_SHORT = {"none": "raw", "standardised": "standardised"}
CLASSIFIER_LABELS = {"svm": "SVM (RBF)", "rf": "Random Forest", "mlp": "MLP", "nb": "Gaussian NB",
                     "knn": "weighted kNN", "linear": "Linear probe"}
METRIC_LABELS = {"accuracy": "accuracy", "f1_macro": "macro F1"}
