"""The paper's Breast Cancer (no MI: tabular) study: Tables 1-3 and Fig. 5, with section 6's settings
(:func:`icrst_jax.config.paper_study`). Add seeds with --set seeds=0,1,2.

    python -m experiments.run --config configs/paper_breast_cancer.py
    python -m experiments.run --config configs/paper_breast_cancer.py --dry-run
"""

from icrst_jax.config import StudyConfig, paper_study


def get_config() -> StudyConfig:
    return paper_study("breast_cancer")
