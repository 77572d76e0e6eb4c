"""The authors' own network (``authors_ae2``: their ``src/models/AE2.py`` with
``configs/config.yaml``) on 16x16 digits, CPU-sized.

Three unpadded 3x3 conv blocks [32, 64, 128] with BatchNorm, LeakyReLU (0.01)
and dropout 0.5, a mirrored transposed decoder, the global-average-pooled
latent; their batch 256 and learning rate 1e-3. At 1/4 width ([8, 16, 32],
latent 32) and 5 epochs (theirs: width 1, 10 epochs with early stopping) so
that it runs in minutes on 2 cores; ``--set train.model.width=1`` is their
network unchanged. Standard, ICRST and TRST at p = 1, two seeds.

    python -m experiments.run --config configs/cpu_authors_ae2.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="digits", image_size=16),
        # batch_size None is the authors' 256; dropout None is their 0.5.
        train=TrainConfig(epochs=5, model=ModelConfig(name="authors_ae2", width=0.25)),
        modes=("standard", "icrst", "trst"),
        p_values=(1.0,),
        seeds=(0, 1),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, mi_samples=100, tsne=False),
    )
