"""icrst-jax: In-Class / Total Random Sampling Training of autoencoders in JAX."""

from icrst_jax.config import MODES, ModelConfig, TrainConfig

__all__ = ["MODES", "ModelConfig", "TrainConfig"]
__version__ = "0.1.0"
