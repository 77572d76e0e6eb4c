"""icrst-jax: In-Class / Total Random Sampling Training of autoencoders in JAX."""

from icrst_jax.config import MODES, ModelConfig, TrainConfig
from icrst_jax.runtime import enable_compilation_cache

__all__ = ["MODES", "ModelConfig", "TrainConfig", "enable_compilation_cache", "load_encoder"]
__version__ = "0.1.0"


def __getattr__(name):
    # start-up time: load_encoder needs JAX and Flax, which `import icrst_jax` does not import
    if name == "load_encoder":
        from icrst_jax.encoder import load_encoder

        return load_encoder
    raise AttributeError(f"module 'icrst_jax' has no attribute {name!r}")
