"""The bottleneck as a study axis on Breast Cancer: the paper's MLP with a
1-, 2- and 8-unit bottleneck (8 is Table D1's), standard / ICRST / TRST at
p = 1, three seeds; the paper's training (batch 512, 50 epochs, Adam 1e-3).

Each latent size is its own study in ``<folder>/latent_size<L>/``;
``<folder>/latent_sizes.md`` puts them side by side (icrst_jax.variants).

    python -m experiments.run --config configs/cpu_bottleneck_breast_cancer.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="breast_cancer"),
        train=TrainConfig(model=ModelConfig(name="mlp")),
        modes=("standard", "icrst", "trst"),
        p_values=(1.0,),
        seeds=(0, 1, 2),
        latent_sizes=(1, 2, 8),
        eval=EvalConfig(classifiers=("svm", "mlp", "nb"), n_folds=5, tsne=False),
    )
