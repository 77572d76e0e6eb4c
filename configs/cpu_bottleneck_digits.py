"""The bottleneck as a study axis on 16x16 digits: the paper's MNIST conv model
at 1/8 width with its last encoder block (the global-average-pooled latent)
at 2, 8 and 64 channels (64 is the width's own), standard / ICRST / TRST at
p = 1, three seeds, 8 epochs of batch 128.

The decoder reads the unpooled 6x6 map of the last block, so what passes it
is 72, 288 or 2304 values for a 256-pixel image: only the narrow variants are
a bottleneck in that sense.

    python -m experiments.run --config configs/cpu_bottleneck_digits.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="digits", image_size=16),
        train=TrainConfig(epochs=8, batch_size=128, model=ModelConfig(name="conv", width=0.125)),
        modes=("standard", "icrst", "trst"),
        p_values=(1.0,),
        seeds=(0, 1, 2),
        latent_sizes=(2, 8, 64),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, mi_samples=100, tsne=False),
    )
