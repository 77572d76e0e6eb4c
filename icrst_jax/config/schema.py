"""The study's configuration tree: typed, frozen dataclasses and the names each field accepts.

A :class:`StudyConfig` holds a :class:`DataConfig`, a :class:`TrainConfig` (with
its :class:`ModelConfig`), an :class:`EvalConfig` and an :class:`AdaptConfig`;
each checks its own fields when built (:mod:`icrst_jax.config.checks`), and the
study checks the sections against each other. Data set names, kinds and input
schemes are the data registry's (:mod:`icrst_jax.data.registry`); the paper's
defaults are :mod:`icrst_jax.config.paper`'s.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import ClassVar, Literal

from icrst_jax.config.checks import check_finite, check_positive_int, check_seed, check_types
from icrst_jax.config.paper import DEFAULT_DROPOUT, PAPER_BATCH_SIZE, PAPER_MODEL_FOR_DATASET
from icrst_jax.data.registry import DATASETS, INPUT_SCHEMES, is_tabular

# The names a field accepts are its Literal type; the tuples below are those
# names for loops and messages, read from the types (declared once). Data set
# names and input schemes are the data registry's (icrst_jax.data.registry).
Mode = Literal["standard", "icrst", "trst", "dae"]
MODES: tuple[str, ...] = typing.get_args(Mode)
# Unsupervised domain adaptation (section 8, icrst_jax.adaptation): ICRST whose
# partner is of the anchor's class in the other domain (target classes are
# pseudo-labels). A mode of adaptation studies only (data.target set).
CROSS_ICRST = "cross_icrst"
StudyMode = Literal["standard", "icrst", "trst", "dae", "cross_icrst"]
ADAPT_MODES: tuple[str, ...] = ("standard", "icrst", CROSS_ICRST)
# The Table D1 models, the authors' own network (their code's ``AE2``), and
# conv_tiny, not the paper's: the conv cut to one block each way, for tests
# (models.TINY_CONV).
ModelName = Literal["conv", "conv_strided", "mlp", "authors_ae2", "conv_tiny"]
MODEL_NAMES: tuple[str, ...] = typing.get_args(ModelName)
Dtype = Literal["float32", "bfloat16"]
# How the conv models' convolutions are computed (ModelConfig.conv_impl):
# "xla" is XLA's own convolution, "cpu" the matrix-product formulation of
# icrst_jax.cpu_conv, "matmul" im2col patches times the kernel matrix (vmapped
# over the run axis it is one batched matrix product, where XLA's convolution
# becomes a grouped convolution), "auto" the one for the backend. Another
# implementation is one more name here and one more branch in
# icrst_jax.conv.convolution.
ConvImpl = Literal["auto", "xla", "cpu", "matmul"]
CONV_IMPLS: tuple[str, ...] = typing.get_args(ConvImpl)
# How the encoder input is made from unit-scale samples (DataConfig.input_scheme).
InputScheme = Literal[INPUT_SCHEMES]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture knobs (Table D1, and the authors' network).

    Attributes:
      name: ``conv`` (MNIST / Fashion-MNIST), ``conv_strided`` (CIFAR-10 /
        Caltech101), ``mlp`` (Breast Cancer), or ``authors_ae2``: the network
        of the authors' code (``src/models/AE2.py`` with their
        ``configs/config.yaml``: three unpadded 3x3 conv blocks [32, 64, 128],
        a mirrored transposed decoder, a global-average-pooled latent).
      width: channel / unit multiplier; 1.0 is the paper's size. A width that
        rounds a layer to zero channels is an error.
      negative_slope: LeakyReLU slope. Table D1 only says "LeakyRelu"; the
        authors' code uses PyTorch's default, 0.01.
      dropout: dropout rate; None (default) is the model's own
        (:data:`DEFAULT_DROPOUT`): Table D1's 0.2, and 0.5 for ``authors_ae2``
        (their ``nn.Dropout()``). :attr:`dropout_rate` resolves it.
      batch_norm: Table D1 uses BatchNorm in both conv models.
      latent_activation: ``mlp`` only: apply the LeakyReLU to the 8-unit
        bottleneck too. Table D1 lists the layers [64, 8, 8, 64] and "LeakyRelu"
        without saying whether the bottleneck has one; the default (False) keeps
        the latent linear, the usual choice.
      latent_size: the width of the bottleneck, apart from ``width``; None
        (default) is the model's own scaled by ``width``. For ``mlp`` the units
        of the bottleneck layer (Table D1: 8), the hidden layers keeping
        ``round(64 * width)``; it lets a small model have a bottleneck narrower
        than its input, e.g. 1 unit for 2-D toy data (``experiments.toy``).
        For the conv models the channels of the last encoder block, which the
        global average pool returns as the latent (``conv`` 512,
        ``conv_strided`` 256, ``authors_ae2`` 128), and of the decoder's first
        block, which mirrors it. The decoder of a conv model reads the
        encoder's unpooled feature map, so what passes to it is
        ``latent_size`` channels times the last map's pixels. A study sweeps it
        with ``StudyConfig.latent_sizes``.
      dtype: compute dtype, ``float32`` or ``bfloat16`` (mixed precision:
        parameters and optimizer state stay float32).
      conv_impl: how the convolutions are computed (``CONV_IMPLS``):
        ``auto`` (default) is ``xla`` off a CPU; on a CPU ``cpu``, or ``matmul``
        (a shorter compile) for a program of fewer than 200 optimizer steps
        (:func:`icrst_jax.conv.resolve_conv_impl`).
        The same function up to float rounding, so not part of a study's
        fingerprint.
    """

    _PATH: ClassVar[str] = "train.model."

    name: ModelName = "conv"
    width: float = 1.0
    negative_slope: float = 0.01
    dropout: float | None = None
    batch_norm: bool = True
    latent_activation: bool = False
    latent_size: int | None = None
    dtype: Dtype = "float32"
    conv_impl: ConvImpl = "auto"

    def __post_init__(self):
        check_types(self)
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; known: {', '.join(MODEL_NAMES)}")
        check_finite("width", self.width)
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        check_finite("negative_slope", self.negative_slope)
        # Outside [0, 1] the activation is no longer a leaky ReLU (it flips or
        # amplifies negative inputs), which Table D1 does not mean.
        if not 0.0 <= self.negative_slope <= 1.0:
            raise ValueError(f"negative_slope must be in [0, 1], got {self.negative_slope}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.latent_size is not None:
            check_positive_int("latent_size", self.latent_size)
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"unknown conv_impl {self.conv_impl!r}; known: {', '.join(CONV_IMPLS)}")

    @property
    def dropout_rate(self) -> float:
        """``dropout``, or the model's own rate (:data:`DEFAULT_DROPOUT`) when it is None."""
        return DEFAULT_DROPOUT[self.name] if self.dropout is None else self.dropout


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
        already keeps the cores busy and vmapped seeds measured slower than
        chunks of one (BENCHMARKS.md, seeds), all seeds vmapped otherwise.
        Results do not depend on it.
    """

    _PATH: ClassVar[str] = "train."

    mode: Mode = "standard"
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
        check_types(self)
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or none for the paper's), got {self.batch_size}")
        check_finite("learning_rate", self.learning_rate)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        check_finite("dae_sigma", self.dae_sigma)
        if self.dae_sigma < 0:
            raise ValueError(f"dae_sigma must be >= 0, got {self.dae_sigma}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.seed_batch is not None and self.seed_batch < 1:
            raise ValueError(f"seed_batch must be None (all seeds at once) or >= 1, got {self.seed_batch}")
        if self.num_devices is not None and self.num_devices < 1:
            raise ValueError(f"num_devices must be None (all devices) or >= 1, got {self.num_devices}")
        check_seed("seed", self.seed)

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

    mode: Mode
    p: float
    seed: int

    def __post_init__(self):
        if self.mode not in MODES + (CROSS_ICRST,):
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES + (CROSS_ICRST,))}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        check_seed("seed", self.seed)

    @property
    def tag(self) -> str:
        """``icrst_p0.2_seed1``: names the point's files."""
        return f"{self.mode}_p{self.p:g}_seed{self.seed}"



# ---------------------------------------------------------------------------
# Studies: the paper's grid (modes x p x seeds) as one typed config
# ---------------------------------------------------------------------------

DatasetName = Literal[DATASETS]
# The four classifiers of section 6, then the representation-learning protocols:
# DINO's weighted kNN vote and the linear probe (LogisticRegression()).
Classifier = Literal["svm", "rf", "mlp", "nb", "knn", "linear"]
CLASSIFIERS: tuple[str, ...] = typing.get_args(Classifier)
PAPER_CLASSIFIERS: tuple[str, ...] = CLASSIFIERS[:4]
# Feature scaling before the classifiers: "none" is the paper's protocol (it
# mentions none); "standard" is a StandardScaler fitted inside each training fold.
Scaling = Literal["none", "standardised"]
SCALINGS: tuple[str, ...] = typing.get_args(Scaling)
# Earlier names of scaling values, still accepted; the first use in a process says so in one line.
SCALING_ALIASES: dict[str, str] = {"standard": "standardised"}
_ALIASES_NOTED: set[str] = set()


def canonical_scaling(value):
    """The current name of a scaling value (``"standard"`` -> ``"standardised"``); others as they are."""
    if isinstance(value, str) and value in SCALING_ALIASES:
        if value not in _ALIASES_NOTED:
            _ALIASES_NOTED.add(value)
            print(f"notice: the scaling {value!r} is now called {SCALING_ALIASES[value]!r} "
                  f"(the old name still works)", file=sys.stderr)
        return SCALING_ALIASES[value]
    return value
# Who fits the classifiers: "auto" = compiled JAX programs where they are faithful
# (MLP, Gaussian NB), scikit-learn for the rest; "sklearn" = scikit-learn for all.
EvalBackend = Literal["auto", "sklearn"]
EVAL_BACKENDS: tuple[str, ...] = typing.get_args(EvalBackend)
# Modes whose training depends on p; the others run once, recorded at p = 0
# (the point where ICRST/TRST reduce to standard training).
P_MODES: tuple[str, ...] = ("icrst", "trst")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data set and how it is split and scaled (see ``data.load_dataset``).

    Attributes:
      name: one of ``DATASETS``. breast_cancer, digits and mnist5k ship with
        packages (offline); the others read the original files in
        ``data_dir`` or TFDS-prepared data, and fetch the files when neither is there.
      data_dir: folder with the original files (downloads go there) or TFDS data_dir.
      image_size: resize images to this side (None: digits 28, caltech101 64,
        the native size otherwise).
      test_fraction, split_seed: stratified hold-out of the sets without an
        official split.
      input_scheme: encoder input ``standardized`` (paper) or ``unit``; the
        target is always unit scale.
      download: fetch the original files into ``data_dir`` (default
        ``~/.cache/icrst_jax/data``) when neither they nor TFDS data are found.
      target: a second image data set with the same classes: the study is then
        an unsupervised domain adaptation (:mod:`icrst_jax.adaptation`) from
        ``name`` (source, labels used) to ``target`` (labels used only to
        evaluate), both read with the settings above.
      source: a researcher's own data instead of ``name`` (``--data``): a
        ``.csv``/``.tsv`` table, an ``.npz``/``.npy`` array file, an image
        folder (``root/<class>/*.png``) or ``tfds:NAME``
        (:mod:`icrst_jax.data.custom`); None: the built-in set ``name``.
      label_column: a table's label column (default: ``label``, ``target``,
        ``class`` or ``y``).
    """

    _PATH: ClassVar[str] = "data."

    name: DatasetName = "breast_cancer"
    data_dir: str | None = None
    image_size: int | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    input_scheme: InputScheme = "standardized"
    download: bool = True
    target: DatasetName | None = None
    source: str | None = None
    label_column: str | None = None

    def __post_init__(self):
        check_types(self)
        self._check_source()
        if self.name not in DATASETS:
            raise ValueError(f"unknown dataset {self.name!r}; known: {', '.join(DATASETS)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.input_scheme not in INPUT_SCHEMES:
            raise ValueError(f"input_scheme must be standardized or unit, got {self.input_scheme!r}")
        if is_tabular(self.name) and self.image_size is not None and self.source is None:
            raise ValueError(f"{self.name} is tabular: image_size must be none, got {self.image_size}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        check_seed("split_seed", self.split_seed)
        if self.target is not None and self.target not in DATASETS:
            raise ValueError(f"unknown target dataset {self.target!r}; known: {', '.join(DATASETS)}")
        if self.target is not None and (self.target == self.name or is_tabular(self.name) or is_tabular(self.target)):
            raise ValueError(f"data.target must be another image data set than {self.name!r}, got {self.target!r}")

    def _check_source(self) -> None:
        if self.source is not None and not self.source.strip():
            raise ValueError("data.source must name a file, a folder or tfds:NAME (or be none), got ''")
        if self.source is not None and self.target is not None:
            raise ValueError("data.source and data.target do not go together: an adaptation study reads built-in sets")
        if self.label_column is not None and self.source is None:
            raise ValueError("data.label_column (--label-column) names a column of --data's table; give --data")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How the latents are judged (sections 6 and 7).

    Attributes:
      classifiers: any of ``CLASSIFIERS``: the paper's four (SVM, random forest, MLP,
        Gaussian NB; the default) and the representation-learning protocols
        ``knn`` (weighted kNN vote) and ``linear`` (``LogisticRegression()``).
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
      backend: ``auto`` (MLP and Gaussian NB as compiled JAX programs over
        all fits, SVM and random forest by scikit-learn; see
        ``evaluation.evaluate_many``) or ``sklearn`` (every fit by
        scikit-learn, the reference).
      knn_k, knn_temperature: the ``knn`` classifier's neighbours and the
        temperature of its votes ``exp(cosine similarity / T)`` (DINO: 20, 0.07).
    """

    _PATH: ClassVar[str] = "eval."

    classifiers: tuple[Classifier, ...] = PAPER_CLASSIFIERS
    n_folds: int = 10
    mi: bool = True
    mi_samples: int = 150
    mi_k: int = 20
    mi_bins: int = 16
    mi_baselines: bool = True
    purity: bool = True
    purity_k: int = 20
    scalings: tuple[Scaling, ...] = ("none",)
    untrained: bool = True
    at_epochs: tuple[int, ...] = ()
    epoch_classifiers: tuple[Classifier, ...] = ("mlp",)
    tsne: bool = True
    tsne_points: int = 2000
    n_jobs: int | None = None
    backend: EvalBackend = "auto"
    knn_k: int = 20
    knn_temperature: float = 0.07

    def __post_init__(self):
        if isinstance(self.scalings, (tuple, list)):
            object.__setattr__(self, "scalings", type(self.scalings)(canonical_scaling(s) for s in self.scalings))
        check_types(self)
        if self.backend not in EVAL_BACKENDS:
            raise ValueError(f"unknown eval.backend {self.backend!r}; known: {', '.join(EVAL_BACKENDS)}")
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
        missing = [c for c in self.epoch_classifiers if c not in self.classifiers]
        if self.at_epochs and missing:
            # The along-training rows are read from the classifiers' own evaluation.
            raise ValueError(
                f"eval.epoch_classifiers {list(self.epoch_classifiers)} must be among eval.classifiers "
                f"{list(self.classifiers)} when eval.at_epochs is set: add {' '.join(missing)} to --classifiers, "
                f"or --set eval.epoch_classifiers={','.join(self.classifiers)}, or --set eval.at_epochs= for none"
            )
        if self.purity_k < 1:
            raise ValueError(f"purity_k must be >= 1, got {self.purity_k}")
        if self.knn_k < 1:
            raise ValueError(f"eval.knn_k must be >= 1, got {self.knn_k}")
        if not self.knn_temperature > 0:
            raise ValueError(f"eval.knn_temperature must be > 0, got {self.knn_temperature}")
        # mi_k must also stay below the test split's size: checked once the data is loaded.
        for name, low in (("mi_samples", 1), ("mi_k", 1), ("mi_bins", 2), ("tsne_points", 2)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.n_jobs is not None and not (self.n_jobs >= 1 or self.n_jobs == -1):
            raise ValueError(f"n_jobs must be >= 1, or -1 for every core, got {self.n_jobs}")


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """Live logs of the training and the results, beside the study's files.

    Attributes:
      tensorboard: TensorBoard event files, one run per grid point, under the
        study folder's ``tensorboard/`` (:mod:`icrst_jax.metric_writers`).
    """

    _PATH: ClassVar[str] = "log."

    tensorboard: bool = True

    def __post_init__(self):
        check_types(self)


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """The pseudo-labels of cross-domain ICRST (used when ``data.target`` is set).

    Attributes:
      refresh_every: k: the target's pseudo-labels are refit every k epochs
        (and before the first), from each grid point's current latents.
      threshold: a target sample is paired only if the classifier's max
        posterior reaches this; the others reconstruct themselves.
      classifier: ``nb`` (Gaussian naive Bayes) or ``logistic`` (logistic
        regression), fitted on the source latents and labels.
    """

    _PATH: ClassVar[str] = "adapt."

    refresh_every: int = 2
    threshold: float = 0.9
    classifier: Literal["nb", "logistic"] = "nb"

    def __post_init__(self):
        check_types(self)
        if self.refresh_every < 1:
            raise ValueError(f"adapt.refresh_every must be >= 1, got {self.refresh_every}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"adapt.threshold must be in [0, 1], got {self.threshold}")
        if self.classifier not in ("nb", "logistic"):
            raise ValueError(f"adapt.classifier must be nb or logistic, got {self.classifier!r}")


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
      latent_sizes: a latent-size study: each size is a grid of its own with
        ``train.model.latent_size`` set to it, trained (one compiled program
        per size) and reported in a subfolder ``latent_size<L>``, then
        compared side by side in the study's folder
        (:mod:`icrst_jax.latent_size_study`). Empty (default): one grid, the
        model's own bottleneck.
      eval: how the latents are judged.
      checkpoints: write an orbax checkpoint of the study (at the end, and
        every ``train.checkpoint_every`` epochs).
      out: output folder; None (default) is ``runs/<dataset>-<fingerprint>``,
        a folder of this study's own (:func:`icrst_jax.run_identity.default_out`).
      adapt: cross-domain ICRST's pseudo-labels (adaptation studies only).
      log: live logs (TensorBoard).
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(model=ModelConfig(name="mlp")))
    _PATH: ClassVar[str] = ""

    modes: tuple[StudyMode, ...] = ("standard", "icrst", "trst")
    p_values: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    latent_sizes: tuple[int, ...] = ()
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    checkpoints: bool = True
    out: str | None = None
    adapt: AdaptConfig = dataclasses.field(default_factory=AdaptConfig)
    log: LogConfig = dataclasses.field(default_factory=LogConfig)

    def __post_init__(self):
        check_types(self)
        if self.out is not None and not self.out.strip():
            raise ValueError("out must name a folder (or be none for runs/<dataset>-<fingerprint>), got ''")
        if not self.modes:
            raise ValueError("at least one mode is needed")
        known = ADAPT_MODES if self.data.target is not None else MODES
        for m in self.modes:
            if m not in known:
                raise ValueError(f"unknown mode {m!r}; known: {', '.join(known)}"
                                 + (" (cross_icrst needs data.target)" if m == CROSS_ICRST else ""))
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
            check_seed("seeds", seed)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        for size in self.latent_sizes:
            check_positive_int("latent_sizes", size)
        if len(set(self.latent_sizes)) != len(self.latent_sizes):
            raise ValueError(f"latent_sizes must be distinct, got {list(self.latent_sizes)}")
        if self.latent_sizes and self.train.model.latent_size is not None:
            raise ValueError(f"latent_sizes sweeps train.model.latent_size: set that to none "
                             f"(it is {self.train.model.latent_size})")
        # Across sections: every change of a command line is applied at once
        # (apply_overrides), so no legitimate config is mixed half-way.
        self.check_model_fits_data()
        self.check_eval_epochs()

    def check_eval_epochs(self) -> None:
        """``eval.at_epochs`` lie within training: a one-line error that says how to cut them otherwise."""
        late = [e for e in self.eval.at_epochs if e > self.train.epochs]
        if late:
            kept = ",".join(str(e) for e in self.eval.at_epochs if e <= self.train.epochs)
            raise ValueError(
                f"eval.at_epochs {late} lie beyond train.epochs={self.train.epochs}; "
                f"cut them with --set eval.at_epochs={kept}" + ("" if kept else " (none)")
            )

    def check_model_fits_data(self) -> None:
        """The MLP takes tabular rows, the conv models images: a one-line error otherwise."""
        if self.data.target is not None:
            return  # adaptation studies (two image sets) flatten the images for the mlp
        if self.data.source is not None:
            return  # own data: its kind is known once it is read (icrst_jax.stages.check_model_fits)
        tabular = is_tabular(self.data.name)
        if tabular != (self.train.model.name == "mlp"):
            want = PAPER_MODEL_FOR_DATASET[self.data.name]
            raise ValueError(
                f"model {self.train.model.name} does not fit {self.data.name} "
                f"({'tabular rows' if tabular else 'images'}); set train.model.name={want}"
            )

    def configurations(self) -> list[tuple[str, float]]:
        """(mode, p) pairs in order: p-independent modes once (p = 0), the others per p.

        A configuration is a row of the report; with each seed it is a grid point."""
        out = []
        for m in self.modes:
            out += [(m, float(p)) for p in self.p_values] if m in P_MODES + (CROSS_ICRST,) else [(m, 0.0)]
        return out

    def grid(self) -> list[GridPoint]:
        """Every grid point: each (mode, p) of :meth:`configurations` with each seed."""
        return [GridPoint(m, p, int(s)) for m, p in self.configurations() for s in self.seeds]

    def replace(self, **changes) -> "StudyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Fields that a study's grid decides: setting them would be silently ignored.
GRID_DECIDED = {"train.mode": "modes", "train.p": "p_values", "train.seed": "seeds"}
