"""One typed configuration object, with the paper's values as defaults.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?",
section 6 (batch 512, learning rate 1e-3, 50 epochs, Adam) and Table D1 (models).

The public names, one idea per module:

* :mod:`~icrst_jax.config.schema`: the configuration tree (:class:`StudyConfig` and
  its sections) and the names each field accepts;
* :mod:`~icrst_jax.config.checks`: the runtime type and range checks the sections share;
* :mod:`~icrst_jax.config.paper`: the paper's values (batch sizes, dropout, models, sweep);
* :mod:`~icrst_jax.config.presets`: ready-made studies (:func:`paper_study`);
* :mod:`~icrst_jax.config.overrides`: ``--set key=value`` by dotted path (:func:`apply_overrides`);
* :mod:`~icrst_jax.config.loading`: config files (:func:`load_config`).

Data set facts (names, specs, input schemes, the image sides the models accept)
are the data registry's (:mod:`icrst_jax.data.registry`), re-exported here.
"""

from icrst_jax.config.checks import MAX_SEED
from icrst_jax.config.loading import ConfigFileError, load_config
from icrst_jax.config.overrides import apply_override, apply_overrides, config_paths
from icrst_jax.config.paper import (
    DEFAULT_DROPOUT,
    PAPER_BATCH_SIZE,
    PAPER_MODEL_FOR_DATASET,
    PAPER_MODES,
    PAPER_P_VALUES,
)
from icrst_jax.config.presets import paper_study
from icrst_jax.config.schema import (
    ADAPT_MODES,
    CLASSIFIERS,
    CONV_IMPLS,
    CROSS_ICRST,
    EVAL_BACKENDS,
    GRID_DECIDED,
    MODEL_NAMES,
    MODES,
    PAPER_CLASSIFIERS,
    P_MODES,
    SCALING_ALIASES,
    SCALINGS,
    canonical_scaling,
    AdaptConfig,
    Classifier,
    ConvImpl,
    DataConfig,
    DatasetName,
    Dtype,
    EvalBackend,
    EvalConfig,
    GridPoint,
    InputScheme,
    LogConfig,
    Mode,
    ModelConfig,
    ModelName,
    Scaling,
    StudyConfig,
    StudyMode,
    TrainConfig,
)
from icrst_jax.data.registry import DATASET_SPECS, DATASETS, INPUT_SCHEMES, MIN_IMAGE_SIZE, STRIDED_MULTIPLE

__all__ = [
    "ADAPT_MODES",
    "CLASSIFIERS",
    "CONV_IMPLS",
    "CROSS_ICRST",
    "DATASETS",
    "DATASET_SPECS",
    "DEFAULT_DROPOUT",
    "EVAL_BACKENDS",
    "GRID_DECIDED",
    "INPUT_SCHEMES",
    "MAX_SEED",
    "MIN_IMAGE_SIZE",
    "MODEL_NAMES",
    "MODES",
    "PAPER_BATCH_SIZE",
    "PAPER_CLASSIFIERS",
    "PAPER_MODEL_FOR_DATASET",
    "PAPER_MODES",
    "PAPER_P_VALUES",
    "P_MODES",
    "SCALING_ALIASES",
    "canonical_scaling",
    "SCALINGS",
    "STRIDED_MULTIPLE",
    "AdaptConfig",
    "Classifier",
    "ConfigFileError",
    "ConvImpl",
    "DataConfig",
    "DatasetName",
    "Dtype",
    "EvalBackend",
    "EvalConfig",
    "GridPoint",
    "InputScheme",
    "LogConfig",
    "Mode",
    "ModelConfig",
    "ModelName",
    "Scaling",
    "StudyConfig",
    "StudyMode",
    "TrainConfig",
    "apply_override",
    "apply_overrides",
    "config_paths",
    "load_config",
    "paper_study",
]
