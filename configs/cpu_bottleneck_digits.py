"""A latent-size study on 16x16 digits: the ``cpu_digits`` study
(the paper's MNIST conv model at 1/8 width, batch 128) with its last encoder
block (the global-average-pooled latent) at 2, 8 and 64 channels (64 is the
width's own), standard / ICRST / TRST at p = 1, three seeds, 8 epochs.

The decoder reads the unpooled 6x6 map of the last block, so what passes it
is 72, 288 or 2304 values for a 256-pixel image: only the narrow variants are
a bottleneck in that sense.

    python -m experiments.run --config configs/cpu_bottleneck_digits.py
"""

from pathlib import Path

from icrst_jax.config import EvalConfig, StudyConfig, load_config


def get_config() -> StudyConfig:
    base = load_config(Path(__file__).with_name("cpu_digits.py"))
    return base.replace(
        train=base.train.replace(epochs=8),
        p_values=(1.0,),
        seeds=(0, 1, 2),
        latent_sizes=(2, 8, 64),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, mi_samples=100, tsne=False),
    )
