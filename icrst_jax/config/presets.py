"""Ready-made studies: the paper's study of a data set as one :class:`StudyConfig`."""

from __future__ import annotations

from icrst_jax.config.paper import PAPER_MODEL_FOR_DATASET, PAPER_MODES, PAPER_P_VALUES
from icrst_jax.config.schema import DataConfig, ModelConfig, StudyConfig, TrainConfig


def paper_study(dataset: str) -> StudyConfig:
    """The paper's study of one data set: Tables 1-3 and Fig. 5.

    Section 6's settings (Adam 1e-3, 50 epochs, the model's batch), Table D1's
    model for the data set, :data:`PAPER_MODES` x :data:`PAPER_P_VALUES`, the four
    classifiers with 10-fold cross-validation and the section 7 mutual
    information (image sets only). The paper states no seeds: one per point.

    Example (``configs/paper_cifar10.py``)::

        def get_config():
            return paper_study("cifar10")
    """
    if dataset not in PAPER_MODEL_FOR_DATASET:
        raise ValueError(f"unknown data set {dataset!r}; known: {', '.join(PAPER_MODEL_FOR_DATASET)}")
    return StudyConfig(
        data=DataConfig(name=dataset),
        train=TrainConfig(model=ModelConfig(name=PAPER_MODEL_FOR_DATASET[dataset])),
        modes=PAPER_MODES,
        p_values=PAPER_P_VALUES,
        seeds=(0,),
    )
