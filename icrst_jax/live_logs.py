"""Live logs of a study: one run per grid point, written while it trains and when its results are in.

Under the study folder's ``tensorboard/`` each grid point has a run named like
its latents (``icrst_p1_seed0``): per epoch its training loss
(:data:`LOSS_TAG`, written by the :class:`TrainingLog` hook, so ``tensorboard
--logdir runs/`` shows the curves while the study runs), then the scores of its
latents along training (``along/<classifier>/<scaling>/accuracy``,
``along/purity``, at each ``eval.at_epochs`` epoch and the last), every final
measure of its ``results.json`` entry (``final/<classifier>/<scaling>/<metric>``,
``final/mi_corrected``, ``final/purity``) and its hyperparameters (hparams).
A resumed run writes its curve again from the start (the epochs before its
checkpoint from the checkpoint's record), so each epoch is in the run once.
The adaptation study, with its own training loop, writes the same runs: the
loss per epoch (:func:`adaptation_training_log`), then its measures
(``final/transfer/<classifier>/accuracy``, ``final/target_only/<classifier>/accuracy``,
``final/domain_accuracy``, ``final/target_purity``) and hparams (:func:`log_adaptation`).
Process 0 alone writes. The writers are :class:`~icrst_jax.metric_writers.MetricWriter`\\ s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from icrst_jax import distributed
from icrst_jax.config import GridPoint, StudyConfig
from icrst_jax.metric_writers import MetricWriter, TensorBoardWriter, clear_run
from icrst_jax.train import EpochEnd, TrainStart

TENSORBOARD_FOLDER = "tensorboard"
LOSS_TAG = "train/loss"
METRICS = ("accuracy", "f1_macro")  # the metrics of evaluation.scores, without importing the evaluation

WriterFactory = Callable[[Path], MetricWriter]


def run_dir(out: Path, point: GridPoint) -> Path:
    """``<out>/tensorboard/<mode>_p<p>_seed<s>``: the grid point's run, named like its latents."""
    return Path(out) / TENSORBOARD_FOLDER / point.tag


class TrainingLog:
    """An :class:`~icrst_jax.train.EpochHook`: each grid point's loss after each epoch, flushed at once."""

    def __init__(self, out: Path, points: Sequence[GridPoint], writer: WriterFactory = TensorBoardWriter):
        self.out, self.points, self.writer = Path(out), list(points), writer
        self.writers: list[MetricWriter] = []

    def start(self, begin: TrainStart) -> None:
        self.open(begin.earlier)

    def open(self, earlier: Sequence[Mapping] = ()) -> None:
        """A fresh run per grid point, holding ``earlier``'s epochs (a restored checkpoint's record)."""
        self.writers = []
        for i, pt in enumerate(self.points):
            clear_run(run_dir(self.out, pt))
            w = self.writer(run_dir(self.out, pt))
            for h in earlier:
                w.write_scalars(int(h["epoch"]), {LOSS_TAG: float(h["loss"][i])})
            w.flush()
            self.writers.append(w)

    def __call__(self, end: EpochEnd) -> None:
        self.epoch(end.epoch, end.loss, end.last)

    def epoch(self, epoch: int, loss: Sequence[float], last: bool) -> None:
        """Each run's loss after ``epoch`` epochs; the writers close after the ``last``."""
        for i, w in enumerate(self.writers):
            w.write_scalars(epoch, {LOSS_TAG: float(loss[i])})
            w.flush()
        if last:
            self.close()

    def close(self) -> None:
        for w in self.writers:
            w.close()
        self.writers = []


def training_hooks(cfg: StudyConfig, out: Path, points: Sequence[GridPoint]) -> list:
    """The study's live-log hooks: a :class:`TrainingLog` where ``log.tensorboard`` is on, on process 0."""
    if not cfg.log.tensorboard or not distributed.is_primary():
        return []
    return [TrainingLog(out, points)]


def classifier_scalars(prefix: str, by_scaling: Mapping[str, Mapping], metrics: Sequence[str] = METRICS
                       ) -> dict[str, float]:
    """``{prefix/<classifier>/<scaling>/<metric>: mean}`` of ``{scaling: {classifier: entry}}``."""
    return {f"{prefix}/{name}/{sc}/{m}": float(entry[m]["mean"])
            for sc, clfs in by_scaling.items() for name, entry in clfs.items() for m in metrics}


def final_scalars(point: Mapping) -> dict[str, float]:
    """Every final measure of a grid point's ``results.json`` entry (its ``points`` item)."""
    out = classifier_scalars("final", {point["scaling"]: point["classifiers"], **point["other_scalings"]})
    if point.get("mi") and "corrected" in point["mi"]:
        out["final/mi_corrected"] = float(point["mi"]["corrected"]["mi"])
    if point.get("purity"):
        out["final/purity"] = float(point["purity"]["purity"])
    return out


def hparams(cfg: StudyConfig, point: GridPoint, batch_size: int | None) -> dict:
    """The grid point's hyperparameters as TensorBoard's hparams plugin shows them."""
    return {"mode": point.mode, "p": float(point.p), "seed": int(point.seed), "data": cfg.data.name,
            "model": cfg.train.model.name, "batch": int(batch_size or 0), "learning_rate": float(cfg.train.learning_rate)}


def along_scalars(set_scores) -> dict[str, float]:
    """The along-training scalars of one latent set's scores (a ``stages.SetScores``)."""
    out = classifier_scalars("along", set_scores.classifiers, ("accuracy",))
    if set_scores.purity is not None:
        out["along/purity"] = float(set_scores.purity["purity"])
    return out


def log_results(cfg: StudyConfig, out: Path, study: Mapping, evaluated, writer: WriterFactory = TensorBoardWriter
                ) -> None:
    """Each grid point's scores along training, final measures and hparams, into its run (process 0).

    Args:
      cfg: the study; out: its folder.
      study: its ``results.json`` payload (``points`` in the grid's order).
      evaluated: the evaluate stage's output (``final``, ``untrained``, ``along``), for the
        scores along training of each point.
    """
    if not cfg.log.tensorboard or not distributed.is_primary():
        return
    seeds = list(cfg.seeds)
    for i, (pt, entry) in enumerate(zip(cfg.grid(), study["points"])):
        w = writer(run_dir(out, pt))
        if cfg.eval.at_epochs:  # as the records' trajectory: the untrained encoder, the epochs, the last
            if evaluated.untrained:
                w.write_scalars(0, along_scalars(evaluated.untrained[seeds.index(pt.seed)]))
            for e in sorted(evaluated.along):
                w.write_scalars(e, along_scalars(evaluated.along[e][i]))
            w.write_scalars(cfg.train.epochs, along_scalars(evaluated.final[i]))
        final = final_scalars(entry)
        w.write_scalars(cfg.train.epochs, final)
        w.write_hparams(hparams(cfg, pt, study.get("batch_size")), final)
        w.close()


def adaptation_training_log(cfg: StudyConfig, out: Path | None, points: Sequence[GridPoint]) -> TrainingLog | None:
    """The adaptation study's loss curves, opened (its loop calls :meth:`TrainingLog.epoch`); None
    where ``log.tensorboard`` is off, there is no study folder, or on another process than 0."""
    if out is None or not cfg.log.tensorboard or not distributed.is_primary():
        return None
    log = TrainingLog(out, points)
    log.open()
    return log


def adaptation_scalars(record: Mapping) -> dict[str, float]:
    """The final measures of one adaptation record (``adaptation.evaluate_point``'s keys)."""
    out = {f"final/{kind}/{name}/accuracy": float(acc)
           for kind in ("transfer", "target_only") for name, acc in record.get(kind, {}).items()}
    out["final/domain_accuracy"] = float(record["domain_accuracy"])
    out["final/target_purity"] = float(record["target_purity"])
    return out


def log_adaptation(cfg: StudyConfig, out: Path | None, points: Sequence[GridPoint], records: Sequence[Mapping],
                   writer: WriterFactory = TensorBoardWriter) -> None:
    """Each adaptation point's final measures and hparams (with the target domain), at its last epoch."""
    if out is None or not cfg.log.tensorboard or not distributed.is_primary():
        return
    for pt, rec in zip(points, records):
        w = writer(run_dir(out, pt))
        final = adaptation_scalars(rec)
        w.write_scalars(cfg.train.epochs, final)
        w.write_hparams({**hparams(cfg, pt, cfg.train.batch_size), "target": str(cfg.data.target)}, final)
        w.close()
