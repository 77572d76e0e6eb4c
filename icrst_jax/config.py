"""One typed configuration object, with the paper's values as defaults.

Paper: Martino, Moroni, Martinelli, "Are We Using Autoencoders in a Wrong Way?",
section 6 (batch 512, learning rate 1e-3, 50 epochs, Adam) and Table D1 (models).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

Mode = Literal["standard", "icrst", "trst", "dae"]
MODES: tuple[str, ...] = ("standard", "icrst", "trst", "dae")
# conv_tiny is not the paper's: the conv cut to one block each way, for tests
# (models.TINY_CONV).
MODEL_NAMES: tuple[str, ...] = ("conv", "conv_strided", "mlp", "conv_tiny")
# How the conv models' convolutions are computed (ModelConfig.conv_impl):
# "xla" is XLA's own convolution, "cpu" the matrix-product formulation of
# icrst_jax.cpu_conv, "matmul" im2col patches times the kernel matrix (vmapped
# over the run axis it is one batched matrix product, where XLA's convolution
# becomes a grouped convolution), "auto" the one for the backend. Another
# implementation is one more name here and one more branch in
# icrst_jax.conv.convolution.
CONV_IMPLS: tuple[str, ...] = ("auto", "xla", "cpu", "matmul")
# Input sizes the conv models accept (checked by data loading and by
# models.make_model): the conv model's encoder stacks five unpadded 3x3
# convolutions, so a side shrinks by 10 and 11 is the smallest that works; the
# strided model halves the side three times.
MIN_IMAGE_SIZE = 11
STRIDED_MULTIPLE = 8
# How the encoder input is made from unit-scale samples (DataConfig.input_scheme).
INPUT_SCHEMES: tuple[str, ...] = ("standardized", "unit")
# Section 6: "batch size of 512 (64 for the CNN2)"; CNN2 is the strided model.
PAPER_BATCH_SIZE: dict[str, int] = {"conv": 512, "conv_strided": 64, "mlp": 512, "conv_tiny": 512}
# Seeds feed ``jax.random.key`` and numpy generators, which take unsigned 32-bit values.
MAX_SEED = 2**32 - 1


def _check_finite(name: str, value) -> None:
    """NaN fails every comparison, but inf passes ``> 0``: reject both by name."""
    if isinstance(value, (int, float)) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")


def _check_seed(name: str, value) -> None:
    if isinstance(value, bool) or int(value) != value or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in 0..{MAX_SEED}, got {value!r}")


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
      conv_impl: how the convolutions are computed (``CONV_IMPLS``):
        ``auto`` (default) is ``cpu`` on a CPU backend and ``xla`` elsewhere.
        The same function up to float rounding, so not part of a study's
        fingerprint.
    """

    name: str = "conv"
    width: float = 1.0
    negative_slope: float = 0.01
    dropout: float = 0.2
    batch_norm: bool = True
    latent_activation: bool = False
    latent_size: int | None = None
    dtype: str = "float32"
    conv_impl: str = "auto"

    def __post_init__(self):
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; known: {', '.join(MODEL_NAMES)}")
        _check_finite("width", self.width)
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        _check_finite("negative_slope", self.negative_slope)
        # Outside [0, 1] the activation is no longer a leaky ReLU (it flips or
        # amplifies negative inputs), which Table D1 does not mean.
        if not 0.0 <= self.negative_slope <= 1.0:
            raise ValueError(f"negative_slope must be in [0, 1], got {self.negative_slope}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.latent_size is not None:
            if self.name != "mlp":
                raise ValueError(f"latent_size applies to the mlp model only, not {self.name!r}")
            if isinstance(self.latent_size, bool) or int(self.latent_size) != self.latent_size or self.latent_size < 1:
                raise ValueError(f"latent_size must be a positive integer or None, got {self.latent_size!r}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"unknown conv_impl {self.conv_impl!r}; known: {', '.join(CONV_IMPLS)}")


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
      epochs, learning_rate: section 6 (50, 1e-3, Adam).
      batch_size: the global batch; None (default) is the paper's for the
        model (:data:`PAPER_BATCH_SIZE`), so switching to the strided CNN
        switches the batch with it. :attr:`global_batch_size` resolves it.
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
    batch_size: int | None = None
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
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or none for the paper's), got {self.batch_size}")
        _check_finite("learning_rate", self.learning_rate)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        _check_finite("dae_sigma", self.dae_sigma)
        if self.dae_sigma < 0:
            raise ValueError(f"dae_sigma must be >= 0, got {self.dae_sigma}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.seed_batch is not None and self.seed_batch < 1:
            raise ValueError(f"seed_batch must be None (all seeds at once) or >= 1, got {self.seed_batch}")
        if self.num_devices is not None and self.num_devices < 1:
            raise ValueError(f"num_devices must be None (all devices) or >= 1, got {self.num_devices}")
        _check_seed("seed", self.seed)

    @property
    def global_batch_size(self) -> int:
        """``batch_size``, or the paper's for the model when it is None."""
        return PAPER_BATCH_SIZE[self.model.name] if self.batch_size is None else self.batch_size

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        model = ModelConfig(**d.pop("model", {}))
        return cls(model=model, **d)


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """One point of a study's grid: a training mode, its p and a seed.

    A study trains all its points in one compiled program (the mode and p are
    traced data of the epoch); each point gives the same result as training
    it alone.
    """

    mode: str
    p: float
    seed: int

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        _check_seed("seed", self.seed)

    @property
    def tag(self) -> str:
        """``icrst_p0.2_seed1``: names the point's files."""
        return f"{self.mode}_p{self.p:g}_seed{self.seed}"


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


# ---------------------------------------------------------------------------
# Studies: the paper's grid (modes x p x seeds) as one typed config
# ---------------------------------------------------------------------------

DATASETS: tuple[str, ...] = ("breast_cancer", "digits", "mnist5k", "mnist", "fashion_mnist", "cifar10", "caltech101")
CLASSIFIERS: tuple[str, ...] = ("svm", "rf", "mlp", "nb")  # the four classifiers of section 6
# Feature scaling before the classifiers: "none" is the paper's protocol (it
# mentions none); "standard" is a StandardScaler fitted inside each training fold.
SCALINGS: tuple[str, ...] = ("none", "standard")
# Modes whose training depends on p; the others run once, recorded at p = 0
# (the point where ICRST/TRST reduce to standard training).
P_MODES: tuple[str, ...] = ("icrst", "trst")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data set and how it is split and scaled (see ``data.load_dataset``).

    Attributes:
      name: one of ``DATASETS``. breast_cancer, digits and mnist5k ship with
        packages (offline); the others read TFDS-prepared data or the original
        files in ``data_dir``.
      data_dir: TFDS data_dir or folder with the original files.
      image_size: resize images to this side (None: digits 28, caltech101 64,
        the native size otherwise).
      test_fraction, split_seed: stratified hold-out of the sets without an
        official split.
      input_scheme: encoder input ``standardized`` (paper) or ``unit``; the
        target is always unit scale.
    """

    name: str = "breast_cancer"
    data_dir: str | None = None
    image_size: int | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    input_scheme: str = "standardized"

    def __post_init__(self):
        if self.name not in DATASETS:
            raise ValueError(f"unknown dataset {self.name!r}; known: {', '.join(DATASETS)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.input_scheme not in INPUT_SCHEMES:
            raise ValueError(f"input_scheme must be standardized or unit, got {self.input_scheme!r}")
        if self.name == "breast_cancer" and self.image_size is not None:
            raise ValueError(f"breast_cancer is tabular: image_size must be none, got {self.image_size}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        _check_seed("split_seed", self.split_seed)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How the latents are judged (sections 6 and 7).

    Attributes:
      classifiers: any of ``CLASSIFIERS`` (SVM, random forest, MLP, Gaussian NB).
      n_folds: stratified cross-validation folds (paper: 10).
      mi, mi_samples, mi_k, mi_bins: the section 7 mutual information
        (paper: 150 observations, 20 neighbours); images only.
      mi_baselines: beside the paper's plug-in MI, the pixel-permuted
        baseline (its bias), the corrected MI (plug-in minus that baseline)
        and the MI to random neighbours (``evaluation.mutual_information``).
      purity, purity_k: the kNN label purity of the latents (share of the
        ``purity_k`` nearest neighbours with the observation's label), for
        every data set.
      scalings: feature scalings before the classifiers, each evaluated:
        ``none`` (the paper's protocol) and/or ``standard`` (a StandardScaler
        fitted inside each training fold). The first is the main table's.
      untrained: evaluate the untrained encoder (each seed's initial
        parameters, before the first step) as a reference row.
      at_epochs: epochs after which the held-out latents are also evaluated,
        within the same training run (0 is the untrained encoder); the final
        epoch is always evaluated. Empty: no accuracy-vs-epochs figure.
      epoch_classifiers: the classifiers evaluated at those epochs (the
        final epoch and the reference row use ``classifiers``).
      tsne, tsne_points: the t-SNE figure (Figs. 6-7) and its point budget.
      n_jobs: parallel workers for the fits over grid points x folds x
        classifiers (None: every core; 1: serial).
    """

    classifiers: tuple[str, ...] = CLASSIFIERS
    n_folds: int = 10
    mi: bool = True
    mi_samples: int = 150
    mi_k: int = 20
    mi_bins: int = 16
    mi_baselines: bool = True
    purity: bool = True
    purity_k: int = 20
    scalings: tuple[str, ...] = ("none",)
    untrained: bool = True
    at_epochs: tuple[int, ...] = ()
    epoch_classifiers: tuple[str, ...] = ("mlp",)
    tsne: bool = True
    tsne_points: int = 2000
    n_jobs: int | None = None

    def __post_init__(self):
        if not self.classifiers:
            raise ValueError("at least one classifier is needed")
        for c in self.classifiers + self.epoch_classifiers:
            if c not in CLASSIFIERS:
                raise ValueError(f"unknown classifier {c!r}; known: {', '.join(CLASSIFIERS)}")
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds}")
        if not self.scalings:
            raise ValueError("at least one feature scaling is needed (none is the paper's)")
        for sc in self.scalings:
            if sc not in SCALINGS:
                raise ValueError(f"unknown scaling {sc!r}; known: {', '.join(SCALINGS)}")
        if len(set(self.scalings)) != len(self.scalings):
            raise ValueError(f"scalings must be distinct, got {list(self.scalings)}")
        if any(e < 0 for e in self.at_epochs) or len(set(self.at_epochs)) != len(self.at_epochs):
            raise ValueError(f"eval.at_epochs must be distinct epochs >= 0, got {list(self.at_epochs)}")
        if self.at_epochs and not self.epoch_classifiers:
            raise ValueError("eval.at_epochs needs at least one eval.epoch_classifiers")
        if self.purity_k < 1:
            raise ValueError(f"purity_k must be >= 1, got {self.purity_k}")
        # mi_k must also stay below the test split's size: checked once the data is loaded.
        for name, low in (("mi_samples", 1), ("mi_k", 1), ("mi_bins", 2), ("tsne_points", 2)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.n_jobs is not None and not (self.n_jobs >= 1 or self.n_jobs == -1):
            raise ValueError(f"n_jobs must be >= 1, or -1 for every core, got {self.n_jobs}")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A study: one data set, one training setup, a grid of modes x p x seeds.

    Every grid point trains in one compiled program (``train.fit(points=...)``)
    and the study writes one folder: latents per point, ``results.json``,
    ``report.md`` and figures. ``configs/*.py`` return one of these from
    ``get_config()``; ``--set key=value`` overrides any field by its dotted
    path (``train.epochs``, ``train.model.width``, ``modes``, ``eval.n_folds``).

    Attributes:
      data: the data set.
      train: training settings shared by every grid point. Its ``mode``, ``p``
        and ``seed`` are not used: the grid below decides them.
      modes: training modes (``standard``, ``icrst``, ``trst``, ``dae``).
      p_values: swap probabilities of the p-dependent modes (icrst, trst).
      seeds: seeds of every (mode, p).
      eval: how the latents are judged.
      checkpoints: write an orbax checkpoint of the study (at the end, and
        every ``train.checkpoint_every`` epochs).
      out: output folder; None (default) is ``runs/<dataset>-<fingerprint>``,
        a folder of this study's own (:func:`icrst_jax.run_identity.default_out`).
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(model=ModelConfig(name="mlp")))
    modes: tuple[str, ...] = ("standard", "icrst", "trst")
    p_values: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    checkpoints: bool = True
    out: str | None = None

    def __post_init__(self):
        if not self.modes:
            raise ValueError("at least one mode is needed")
        for m in self.modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}; known: {', '.join(MODES)}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes must be distinct, got {list(self.modes)}")
        if not self.p_values:
            raise ValueError("at least one p is needed")
        for p in self.p_values:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"p must be in [0, 1], got {p}")
        if len(set(self.p_values)) != len(self.p_values):
            raise ValueError(f"p values must be distinct, got {list(self.p_values)}")
        if not self.seeds:
            raise ValueError("the seed list is empty; give at least one seed")
        for seed in self.seeds:
            _check_seed("seeds", seed)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")

    def check_eval_epochs(self) -> None:
        """``eval.at_epochs`` lie within training: a one-line error otherwise.

        Not part of ``__post_init__`` for the same reason as
        :meth:`check_model_fits_data`: ``--set`` applies one field at a time.
        """
        late = [e for e in self.eval.at_epochs if e > self.train.epochs]
        if late:
            raise ValueError(f"eval.at_epochs {late} lie beyond train.epochs={self.train.epochs}")

    def check_model_fits_data(self) -> None:
        """The MLP takes tabular rows, the conv models images: a one-line error otherwise.

        Not part of ``__post_init__``: switching data set and model takes two
        ``--set`` overrides, and the config between them is legitimately mixed.
        """
        tabular = self.data.name == "breast_cancer"
        if tabular != (self.train.model.name == "mlp"):
            want = PAPER_MODEL_FOR_DATASET[self.data.name]
            raise ValueError(
                f"model {self.train.model.name} does not fit {self.data.name} "
                f"({'tabular rows' if tabular else 'images'}); set train.model.name={want}"
            )

    def runs(self) -> list[tuple[str, float]]:
        """(mode, p) pairs in order: p-independent modes once (p = 0), the others per p."""
        out = []
        for m in self.modes:
            out += [(m, float(p)) for p in self.p_values] if m in P_MODES else [(m, 0.0)]
        return out

    def grid(self) -> list[GridPoint]:
        """Every grid point: each (mode, p) of :meth:`runs` with each seed."""
        return [GridPoint(m, p, int(s)) for m, p in self.runs() for s in self.seeds]

    def replace(self, **changes) -> "StudyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Fields that a study's grid decides: setting them would be silently ignored.
_GRID_DECIDED = {"train.mode": "modes", "train.p": "p_values", "train.seed": "seeds"}


# Section 6 and Fig. 5: the modes the paper compares and the swap probabilities it sweeps.
PAPER_MODES: tuple[str, ...] = ("standard", "icrst", "trst")
PAPER_P_VALUES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


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


def config_paths(cfg) -> dict[str, type]:
    """Every settable dotted path of a config dataclass and its field type.

    Example:
      >>> config_paths(StudyConfig())["train.model.width"]
      float
    """
    import typing

    out: dict[str, Any] = {}

    def walk(obj, prefix):
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            path = prefix + f.name
            if dataclasses.is_dataclass(value):
                walk(value, path + ".")
            elif path not in _GRID_DECIDED:
                out[path] = hints[f.name]

    walk(cfg, "")
    return out


def _parse_value(text: str, typ, path: str):
    """Parses ``text`` as a value of the field type ``typ`` (from the annotation)."""
    import types
    import typing

    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.strip().lower() in ("none", "null") and len(args) < len(typing.get_args(typ)):
            return None
        if len(args) == 1:
            return _parse_value(text, args[0], path)
    if origin is tuple:
        (item, _) = typing.get_args(typ)
        return tuple(_parse_value(v, item, path) for v in text.split(",") if v.strip())
    if typ is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{path} takes true or false, got {text!r}")
    if typ in (int, float, str):
        try:
            return typ(text.strip())
        except ValueError:
            raise ValueError(f"{path} takes {'an integer' if typ is int else 'a number'}, got {text!r}") from None
    raise ValueError(f"{path} has a type ({typ}) that --set cannot parse")


def _replace_path(cfg, parts: list[str], value):
    if len(parts) == 1:
        return dataclasses.replace(cfg, **{parts[0]: value})
    child = getattr(cfg, parts[0])
    return dataclasses.replace(cfg, **{parts[0]: _replace_path(child, parts[1:], value)})


def apply_override(cfg, assignment: str):
    """``cfg`` with one ``key=value`` applied; the key is a dotted field path.

    The value is parsed by the field's declared type (tuples: comma-separated;
    ``none`` for an optional field), and the new config is validated as a
    whole. An unknown key is a one-line ``ValueError`` naming the near matches.

    Example:
      >>> apply_override(StudyConfig(), "train.epochs=20").train.epochs
      20
    """
    import difflib

    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set takes key=value, got {assignment!r}")
    paths = config_paths(cfg)
    if key in _GRID_DECIDED:
        raise ValueError(f"{key} is decided by the study's grid; set {_GRID_DECIDED[key]} instead")
    if key not in paths:
        near = difflib.get_close_matches(key, list(paths), n=3, cutoff=0.6)
        if not near:  # a bare field name: suggest the full paths that end with it
            near = [p for p in paths if p.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]][:3]
        hint = f"; did you mean {' or '.join(near)}?" if near else f"; known keys: {', '.join(paths)}"
        raise ValueError(f"unknown config key {key!r}{hint}")
    return _replace_path(cfg, key.split("."), _parse_value(text, paths[key], key))


def apply_overrides(cfg, assignments) -> Any:
    """Applies ``key=value`` overrides in order (later ones win)."""
    for a in assignments:
        cfg = apply_override(cfg, a)
    return cfg


def load_config(path) -> StudyConfig:
    """Runs a config file's ``get_config()`` and returns its :class:`StudyConfig`."""
    import importlib.util
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"_icrst_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path} defines no get_config()")
    cfg = module.get_config()
    if not isinstance(cfg, StudyConfig):
        raise ValueError(f"{path}: get_config() returned {type(cfg).__name__}, not a StudyConfig")
    return cfg
