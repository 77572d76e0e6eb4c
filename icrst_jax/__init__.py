"""icrst-jax: In-Class / Total Random Sampling Training of autoencoders in JAX."""

from icrst_jax.config import MODES, ModelConfig, TrainConfig
from icrst_jax.runtime import enable_compilation_cache

__all__ = ["MODES", "ModelConfig", "TrainConfig", "enable_compilation_cache"]
__version__ = "0.1.0"
