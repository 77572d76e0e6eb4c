"""Unsupervised domain adaptation, CPU-sized: MNIST (source) -> scikit-learn's digits (target).

The reverse of ``cpu_adapt_digits_to_mnist.py``, with the same model, modes,
seeds and pseudo-label settings (icrst_jax.adaptation).

    python -m experiments.run --config configs/cpu_adapt_mnist_to_digits.py
"""

import dataclasses
from pathlib import Path

from icrst_jax.config import StudyConfig, load_config


def get_config() -> StudyConfig:
    forward = load_config(Path(__file__).with_name("cpu_adapt_digits_to_mnist.py"))
    return forward.replace(data=dataclasses.replace(forward.data, name="mnist5k", target="digits"))
