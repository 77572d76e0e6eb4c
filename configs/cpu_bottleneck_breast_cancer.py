"""A latent-size study on Breast Cancer: the paper's MLP with a
1-, 2- and 8-unit bottleneck (8 is Table D1's), standard / ICRST / TRST at
p = 1, three seeds; batch 64 for 300 epochs (Adam 1e-3): with the paper's
batch 512 the 455 training rows are one step per epoch and 50 epochs leave
the encoder barely trained (README, "Reproduction on a CPU");
``--set train.batch_size=none --set train.epochs=50`` is the paper's setting.

Each latent size is its own study in ``<folder>/latent_size<L>/``;
``<folder>/latent_sizes.md`` puts them side by side (icrst_jax.latent_size_study).

    python -m experiments.run --config configs/cpu_bottleneck_breast_cancer.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="breast_cancer"),
        train=TrainConfig(epochs=300, batch_size=64, model=ModelConfig(name="mlp")),
        modes=("standard", "icrst", "trst"),
        p_values=(1.0,),
        seeds=(0, 1, 2),
        latent_sizes=(1, 2, 8),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, tsne=False),
    )
