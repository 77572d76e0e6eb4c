"""The paper's values, named once: section 6's batch sizes and sweep, Table D1's dropout and models.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?",
section 6 (batch 512, learning rate 1e-3, 50 epochs, Adam) and Table D1 (models).
"""

from __future__ import annotations

from icrst_jax.data.registry import DATASET_SPECS

# Section 6: "batch size of 512 (64 for the CNN2)"; CNN2 is the strided model.
# authors_ae2: the batch of the authors' configs/config.yaml.
PAPER_BATCH_SIZE: dict[str, int] = {"conv": 512, "conv_strided": 64, "mlp": 512, "authors_ae2": 256, "conv_tiny": 512}
# Dropout rates when ModelConfig.dropout is None: Table D1's 0.2, and the
# authors' code's nn.Dropout() default of 0.5 for their network.
DEFAULT_DROPOUT: dict[str, float] = {"conv": 0.2, "conv_strided": 0.2, "mlp": 0.2, "authors_ae2": 0.5, "conv_tiny": 0.2}
# The paper's per-dataset choices (Table D1, section 6).
PAPER_MODEL_FOR_DATASET = {name: spec.model for name, spec in DATASET_SPECS.items()}

# Section 6 and Fig. 5: the modes the paper compares and the swap probabilities it sweeps.
PAPER_MODES: tuple[str, ...] = ("standard", "icrst", "trst")
PAPER_P_VALUES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
