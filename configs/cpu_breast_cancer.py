"""A CPU-sized Breast Cancer study: the paper's MLP and settings, a short p grid, three seeds.

21 grid points (standard; ICRST and TRST at p = 0, 0.5, 1; seeds 0, 1, 2) train
as one vmapped program; a few minutes on a 2-core CPU, evaluation included.

    python -m experiments.run --config configs/cpu_breast_cancer.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="breast_cancer"),
        train=TrainConfig(model=ModelConfig(name="mlp")),  # paper: batch 512, 50 epochs, Adam 1e-3
        modes=("standard", "icrst", "trst"),
        p_values=(0.0, 0.5, 1.0),
        seeds=(0, 1, 2),
        # Both feature scalings and the latents along training: the untrained
        # encoder, once scaled, is already a strong baseline.
        eval=EvalConfig(scalings=("none", "standardised"), at_epochs=(0, 10, 25)),
    )
