"""One typed configuration object, with the paper's values as defaults.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?",
section 6 (batch 512, learning rate 1e-3, 50 epochs, Adam) and Table D1 (models).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Mode = Literal["standard", "icrst", "trst", "dae"]
MODES: tuple[str, ...] = ("standard", "icrst", "trst", "dae")
MODEL_NAMES: tuple[str, ...] = ("conv", "conv_strided", "mlp")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture knobs (Table D1).

    Attributes:
      name: ``conv`` (MNIST / Fashion-MNIST), ``conv_strided`` (CIFAR-10 /
        Caltech101) or ``mlp`` (Breast Cancer).
      width: channel / unit multiplier; 1.0 is the paper's size. A width that
        rounds a layer to zero channels is an error.
      negative_slope: LeakyReLU slope. Table D1 only says "LeakyRelu"; the
        authors' code uses PyTorch's default, 0.01.
      dropout: dropout rate. Table D1 says 0.2 (the authors' code uses 0.5).
      batch_norm: Table D1 uses BatchNorm in both conv models.
      latent_activation: ``mlp`` only: apply the LeakyReLU to the 8-unit
        bottleneck too. Table D1 lists the layers [64, 8, 8, 64] and "LeakyRelu"
        without saying whether the bottleneck has one; the default (False) keeps
        the latent linear, the usual choice.
      latent_size: ``mlp`` only: units of the bottleneck, overriding
        ``round(8 * width)`` while the hidden layers keep ``round(64 * width)``.
        None (default) is Table D1's scaling. It lets a small model have a
        bottleneck narrower than its input, e.g. 1 unit for 2-D toy data
        (``experiments.toy``), where width alone cannot give a 1-unit latent
        without also shrinking the hidden layers to 8 units.
      dtype: compute dtype, ``float32`` or ``bfloat16`` (mixed precision:
        parameters and optimizer state stay float32).
    """

    name: str = "conv"
    width: float = 1.0
    negative_slope: float = 0.01
    dropout: float = 0.2
    batch_norm: bool = True
    latent_activation: bool = False
    latent_size: int | None = None
    dtype: str = "float32"

    def __post_init__(self):
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; known: {', '.join(MODEL_NAMES)}")
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.latent_size is not None:
            if self.name != "mlp":
                raise ValueError(f"latent_size applies to the mlp model only, not {self.name!r}")
            if isinstance(self.latent_size, bool) or int(self.latent_size) != self.latent_size or self.latent_size < 1:
                raise ValueError(f"latent_size must be a positive integer or None, got {self.latent_size!r}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run.

    Attributes:
      mode: ``standard`` (target = input), ``icrst`` (with probability ``p``
        the target is a uniform sample of the same class, section 3), ``trst``
        (with probability ``p`` a uniform sample of the whole training set,
        section 4) or ``dae`` (denoising baseline: Gaussian noise of
        ``dae_sigma`` on the encoder input, target the clean sample).
      p: Bernoulli probability of swapping the target (section 6), drawn per
        sample per step. Ignored by ``standard`` and ``dae``.
      epochs, batch_size, learning_rate: section 6 (50, 512, 1e-3, Adam).
      dae_sigma: noise standard deviation for ``dae``, in the units of the
        encoder input (standardised pixels for images).
      num_devices: data-parallel devices (None = all local devices). The global
        batch is split over them; results do not depend on the count.
      checkpoint_every: save an orbax checkpoint every N epochs (0 = only at
        the end, when a checkpoint directory is given).
      seed: base seed; seed ``s`` of a vmapped run uses ``jax.random.key(s)``.
      seed_batch: how many seeds one program step trains side by side. An
        integer b runs the seeds in chunks of b inside the same compiled epoch
        (``lax.map`` with ``batch_size=b``); b >= K vmaps all K at once, best
        where one seed leaves the device idle (GPU/TPU, tiny models). None
        (default) picks: 1 for the conv models on a CPU, where one seed
        already keeps the cores busy and 8 vmapped seeds measured 1.8x slower
        than chunks of one (BENCHMARKS.md, seeds), all seeds vmapped otherwise.
        Results do not depend on it.
    """

    mode: str = "standard"
    p: float = 1.0
    epochs: int = 50
    batch_size: int = 512
    learning_rate: float = 1e-3
    dae_sigma: float = 0.5
    num_devices: int | None = None
    checkpoint_every: int = 0
    seed: int = 0
    seed_batch: int | None = None
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.dae_sigma < 0:
            raise ValueError(f"dae_sigma must be >= 0, got {self.dae_sigma}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.seed_batch is not None and self.seed_batch < 1:
            raise ValueError(f"seed_batch must be None (all seeds at once) or >= 1, got {self.seed_batch}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        model = ModelConfig(**d.pop("model", {}))
        return cls(model=model, **d)


# The paper's per-dataset choices (Table D1, section 6).
PAPER_MODEL_FOR_DATASET = {
    "mnist": "conv",
    "fashion_mnist": "conv",
    "mnist5k": "conv",
    "digits": "conv",
    "cifar10": "conv_strided",
    "caltech101": "conv_strided",
    "breast_cancer": "mlp",
}
