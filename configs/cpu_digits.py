"""A CPU-sized digits study: the paper's MNIST conv model, narrowed, on 16x16 digits.

scikit-learn's 8x8 digits (offline), resized to 16x16; the conv model of Table
D1 at 1/8 width; 5 epochs of batch 128. 10 grid points (standard; ICRST and
TRST at p = 0.5, 1; seeds 0, 1) in one compiled program: minutes on 2 cores.

It stops early on purpose: 5 epochs of 12 steps (60 optimizer steps per run)
keep it a few-minute workload that the evaluation benchmark compares over
time, so the log warns that the loss is still falling. Train it further with
``--set train.epochs=40`` (docs/results/reproduction.md).

    python -m experiments.run --config configs/cpu_digits.py
    python -m experiments.run --config configs/cpu_digits.py --set train.epochs=20 --set seeds=0,1,2
"""

from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="digits", image_size=16),
        train=TrainConfig(epochs=5, batch_size=128, model=ModelConfig(name="conv", width=0.125)),
        modes=("standard", "icrst", "trst"),
        p_values=(0.5, 1.0),
        seeds=(0, 1),
        eval=EvalConfig(scalings=("none", "standardised"), at_epochs=(0, 1, 3), mi_samples=100),
    )
