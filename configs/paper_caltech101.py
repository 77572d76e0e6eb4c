"""The paper's Caltech101 study: Tables 1-3 and Fig. 5 (Caltech101, macro F1).

Section 6: Adam 1e-3, 50 epochs, batch 512 (64 for the strided CNN), modes
standard / ICRST / TRST, p in 0, 0.2, ..., 1.0, SVM / random forest / MLP /
Gaussian NB with 10-fold cross-validation, and the section 7 mutual information.
The paper states no seeds; one seed per point, add more with --set seeds=0,1,2.

    python -m experiments.run --config configs/paper_caltech101.py
    python -m experiments.run --config configs/paper_caltech101.py --dry-run
"""

from icrst_jax.config import DataConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="caltech101"),
        # batch: the paper's for the strided CNN (64, TrainConfig.global_batch_size)
        train=TrainConfig(model=ModelConfig(name="conv_strided")),  # Table D1
        modes=("standard", "icrst", "trst"),
        p_values=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        seeds=(0,),
    )
