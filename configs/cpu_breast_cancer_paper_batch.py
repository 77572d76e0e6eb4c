"""The paper's literal Breast Cancer settings on a CPU: its MLP, batch 512, 50 epochs; a short p grid, three seeds.

The main job's grid (``configs/cpu_breast_cancer.py``) with section 6's
training: a batch of 512 holds all 455 training samples, so each run takes one
optimizer step per epoch, 50 in all. Its loss is still falling fast at the
end, and the log says so in one warning line: these autoencoders stopped
early, and their raw latents classify worse than the untrained encoder's. Kept
as the paper's protocol taken literally, and as the workload the evaluation
benchmark compares over time.

    python -m experiments.run --config configs/cpu_breast_cancer_paper_batch.py
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
