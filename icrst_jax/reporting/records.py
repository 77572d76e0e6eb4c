"""The study's results as typed records; ``to_dict`` gives their results.json form.

A :class:`Record` is one row of the report: a trained configuration (mode, p)
over its seeds, or the untrained encoder (mode ``untrained``, the reference
row). A :class:`PointRecord` is one grid point (mode, p, seed). Both carry
:class:`Scores`, the held-out measures: ``classifiers`` is the output of
``evaluation.evaluate_classifiers`` (or ``evaluation.pool_results`` over
seeds) for the main feature scaling, e.g.::

    {"mlp": {"accuracy": {"mean", "low", "high", ...}, "f1_macro": {...}}, ...}

``mi`` that of ``evaluation.mutual_information``, ``purity`` of
``evaluation.knn_purity`` (pooled). The figures and the report read the JSON
form (:meth:`Record.to_dict`), so they also draw a ``results.json`` read back
from disk, or hand-made dicts with the same keys (``label`` overrides a row's
label there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

# The version of results.json's layout, for scripts that read it. 4: an MI result's "low"/"high" are the
# 95% bootstrap interval of the mean over samples, the single samples' spread is "sample_low"/"sample_high". 3: a score's "low"/"high" are the
# 95% bootstrap interval of the mean, the single folds' spread is "fold_low"/"fold_high". 2: the in-fold
# scaling is named "standardised" (1 named it "standard"); every study kind states it.
SCHEMA_VERSION = 4


@dataclasses.dataclass(frozen=True)
class Scores:
    """Held-out measures of one configuration, pooled over its seeds.

    Attributes:
      scaling: the feature scaling of ``classifiers`` (the main table's).
      classifiers: ``{classifier: {metric: summary}}`` for ``scaling``.
      other_scalings: ``{scaling: classifiers}`` for the other scalings.
      mi: the section 7 mutual information (pooled), or None (tabular data, or off).
      purity: kNN label purity (pooled), or None.
      latent_spread: per seed, the mean over latent dimensions of the std across samples.
    """

    scaling: str
    classifiers: Mapping
    other_scalings: Mapping
    mi: Mapping | None
    purity: Mapping | None
    latent_spread: Sequence[float]

    def to_dict(self) -> dict:
        return {
            "scaling": self.scaling,
            "classifiers": self.classifiers,
            "other_scalings": self.other_scalings,
            "mi": self.mi,
            "purity": self.purity,
            "latent_spread": list(self.latent_spread),
        }


@dataclasses.dataclass(frozen=True)
class EpochScores:
    """The scores of a configuration's held-out latents after ``epoch`` epochs (a trajectory step)."""

    epoch: int
    scores: Scores

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, **self.scores.to_dict()}


@dataclasses.dataclass(frozen=True)
class Record:
    """One row of the report: a configuration over its seeds.

    Attributes:
      mode, p: the training mode and p (``untrained``: the initial encoder; p None).
      seeds: the seeds pooled in ``scores``.
      epoch: the epochs trained (0 for the untrained encoder).
      latents: the latents files of the seeds (names in the run folder).
      final_loss: per seed; None for the untrained encoder.
      diverged: ``"seed S: reason"`` per diverged seed (its scores are not a result).
      dae_sigma: the DAE's input noise (shown in its row label).
      trajectory: the scores after chosen epochs (``eval.at_epochs``), oldest first.
    """

    mode: str
    p: float | None
    seeds: tuple[int, ...]
    epoch: int
    scores: Scores
    latents: tuple[str, ...]
    final_loss: tuple[float, ...] | None = None
    diverged: tuple[str, ...] = ()
    dae_sigma: float | None = None
    trajectory: tuple[EpochScores, ...] = ()

    def to_dict(self) -> dict:
        d = {"mode": self.mode, "p": self.p, "seeds": list(self.seeds), "epoch": self.epoch, **self.scores.to_dict()}
        if self.final_loss is not None:
            d["final_loss"] = list(self.final_loss)
        d["latents"] = list(self.latents)
        if self.diverged:
            d["diverged"] = list(self.diverged)
        if self.dae_sigma is not None:
            d["dae_sigma"] = self.dae_sigma
        if self.trajectory:
            d["trajectory"] = [t.to_dict() for t in self.trajectory]
        return d


@dataclasses.dataclass(frozen=True)
class PointRecord:
    """One grid point (mode, p, seed): its own scores, loss curve and latents file."""

    mode: str
    p: float
    seed: int
    scores: Scores
    final_loss: float | None
    loss_curve: Sequence[float]
    latents: str
    diverged: str | None

    def to_dict(self) -> dict:
        return {"mode": self.mode, "p": self.p, "seed": self.seed, **self.scores.to_dict(),
                "final_loss": self.final_loss, "loss_curve": list(self.loss_curve), "latents": self.latents,
                "diverged": self.diverged}


@dataclasses.dataclass(frozen=True)
class Timing:
    """Where the study's wall time went (seconds): the epoch program's compilation, the
    epochs, everything after training (latents, fits, MI, figures), and the rest.

    The evaluation by part: the JAX classifier programs (compiling included),
    scikit-learn's fits (under ``eval.backend="auto"`` they run beside the JAX
    programs, so the two overlap), the MI, the kNN purity and the t-SNE figure.
    """

    wall_s: float
    loading_s: float
    compiling_s: float
    training_s: float
    setup_s: float  # init, transfers, checkpoints
    evaluation_s: float
    jax_classifiers_s: float = 0.0
    sklearn_classifiers_s: float = 0.0
    mi_s: float = 0.0
    purity_s: float = 0.0
    tsne_s: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def line(self) -> str:
        """``study 95 s: training 40 s, compiling 30 s, evaluation 20 s, ...``"""
        return (
            f"study {self.wall_s:.0f} s: training {self.training_s:.1f} s, compiling {self.compiling_s:.1f} s, "
            f"evaluation {self.evaluation_s:.1f} s, loading {self.loading_s:.1f} s, other {self.setup_s:.1f} s\n"
            f"evaluation {self.evaluation_s:.1f} s: classifiers as JAX programs {self.jax_classifiers_s:.1f} s "
            f"(compiling included), scikit-learn fits {self.sklearn_classifiers_s:.1f} s (beside them under "
            f"eval.backend=auto), MI {self.mi_s:.1f} s, purity {self.purity_s:.1f} s, t-SNE {self.tsne_s:.1f} s"
        )


@dataclasses.dataclass(frozen=True)
class StudyResult:
    """A study's results: ``to_dict()`` is ``results.json``, :func:`render_report` its ``report.md``.

    The fields a report does not read default to empty, so that a report can
    be rendered from records alone.

    Attributes:
      dataset, metric: the data set's name and its headline metric.
      records: the report's rows (:class:`Record`, or their JSON form).
      figures: file names in the run folder, embedded by the report.
      warnings: lines the report shows above its tables (diverged points,
        results that could not be made); not part of results.json, which
        states the same facts as data (``diverged``, ``missing_epochs``).
      missing_epochs: ``eval.at_epochs`` whose latents this run could neither
        make nor find on disk.
      history: the loss per epoch of the whole run (``epoch``, ``loss`` per grid
        point, ``seconds``), epochs restored from a checkpoint included.
      the rest: as written to results.json.
    """

    dataset: str
    metric: str
    records: Sequence[Record | Mapping]
    figures: Sequence[str] = ()
    warnings: Sequence[str] = ()
    dataset_summary: str = ""
    split: Any = None
    config: Mapping = dataclasses.field(default_factory=dict)
    model: Mapping = dataclasses.field(default_factory=dict)
    batch_size: int | None = None
    scalings: Sequence[str] = ()
    seeds: Sequence[int] = ()
    points: Sequence[PointRecord] = ()
    history: Sequence[Mapping] = ()
    preprocessing: Mapping = dataclasses.field(default_factory=dict)
    versions: Mapping = dataclasses.field(default_factory=dict)
    timing: Timing | None = None
    command: str = ""
    fingerprint: str = ""
    diverged: Sequence[Mapping] = ()
    compilation_cache_dir: str | None = None
    missing_epochs: Sequence[int] = ()
    # A researcher's own data: what was inferred about it (icrst_jax.data.custom.DataFacts.to_dict()).
    data: Mapping = dataclasses.field(default_factory=dict)

    def record_dicts(self) -> list[dict]:
        """The records' JSON form (what the figures and the report read)."""
        return [as_dict(r) for r in self.records]

    def to_dict(self) -> dict:
        """The results.json payload."""
        d = {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            "dataset_summary": self.dataset_summary,
            "split": self.split,
            "metric": self.metric,
            "config": self.config,
            "model": self.model,
            "batch_size": self.batch_size,  # the global batch used (batch_size None: the paper's)
            "scalings": list(self.scalings),
            "seeds": list(self.seeds),
            "records": self.record_dicts(),
            "points": [as_dict(pt) for pt in self.points],
            "history": list(self.history),
            "figures": list(self.figures),
            "preprocessing": self.preprocessing,
            "versions": self.versions,
            "timing": self.timing.to_dict() if self.timing else None,
            "wall_seconds": self.timing.wall_s if self.timing else None,
            "command": self.command,
            "fingerprint": self.fingerprint,
            "diverged": list(self.diverged),
            # Where compiled programs were loaded from / stored (None: no persistent cache).
            "compilation_cache_dir": self.compilation_cache_dir,
        }
        if self.missing_epochs:
            d["missing_epochs"] = list(self.missing_epochs)
        if self.data:
            d["data"] = dict(self.data)
        return d


def as_dict(record) -> Mapping:
    """A record's JSON form; a mapping is taken as it is."""
    return record.to_dict() if hasattr(record, "to_dict") else record
