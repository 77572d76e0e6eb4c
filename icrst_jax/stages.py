"""The stages of a study, shared by every study kind (:mod:`icrst_jax.studies`).

Protocol (sections 6 and 7 of the paper):
1. :func:`load_data`: the data set; for sets without an official split a
   stratified held-out split (``data.test_fraction``, fixed ``data.split_seed``).
2. :func:`train`: every grid point (mode x p x seed) in one compiled program on
   the *training* split: the mode and p are data on the run axis.
3. :func:`collect_latents`: the *test* split's latents of every point (the
   autoencoder never trained on them: ICRST uses the labels in training, so
   cross-validating on training latents would leak them).
4. :func:`evaluate`: 10-fold stratified cross-validation of SVM / RF / MLP /
   GaussianNB on those latents, all points x folds x classifiers in one pool of
   workers; mean and 95% percentile interval over folds (and seeds); the mutual
   information of section 7 (with its baselines) and the kNN label purity.
5. :func:`summarise` and :func:`write_outputs`: typed records, then
   ``latents_<mode>_p<P>_seed<S>.npz``, the figures, ``results.json`` and
   ``report.md``.

:func:`run_pipeline` runs them in order inside a claimed folder. Beside the
trained points a study evaluates the *untrained* encoder (each seed's initial
parameters, which do not depend on the mode) as a reference row, each feature
scaling of ``eval.scalings``, and, for ``eval.at_epochs``, the held-out latents
after those epochs of the same training run (accuracy, MI and purity against
epochs).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax import data as data_lib
from icrst_jax import distributed, evaluation, faults, live_logs, reporting, run_identity
from icrst_jax.config import P_MODES, GridPoint, StudyConfig
from icrst_jax.data import custom
from icrst_jax.data.registry import CLASS_NAMES, DATASET_SHAPES
from icrst_jax.encoder import save_encoder
from icrst_jax.log import bar_of, detail_of
from icrst_jax.models import check_widths, make_model
from icrst_jax.reporting import EpochScores, PointRecord, Record, Scores, StudyResult, Timing
from icrst_jax.runtime import compilation_cache_dir, home_relative, source_commit, versions
from icrst_jax.train import Snapshots, effective_batch_size, encode, fit, loss_curve, make_mesh
from icrst_jax.training_check import say_training_check

def p_tag(p: float) -> str:
    """``1.0 -> '1'``, ``0.25 -> '0.25'``: the ``p<P>`` part of file names."""
    return f"{p:g}"


def latents_path(out: Path, mode: str, p: float, seed: int) -> Path:
    return out / f"latents_{mode}_p{p_tag(p)}_seed{seed}.npz"


def untrained_latents_path(out: Path, seed: int) -> Path:
    return out / f"latents_untrained_seed{seed}.npz"


def epoch_latents_path(out: Path, epoch: int) -> Path:
    """Every grid point's held-out latents after ``epoch`` (``eval.at_epochs``), in one file."""
    return out / f"latents_epoch{epoch}.npz"


def sample_shape(cfg: StudyConfig, name: str | None = None) -> tuple[tuple[int, ...], int]:
    """The sample shape of data set ``name`` (default ``cfg.data.name``) at the study's image
    size, and its training-split size, from the registry (no data is read)."""
    if name is None and cfg.data.source is not None:  # own data: its shape is read from the data itself
        dataset = custom.load_for(cfg.data)
        check_model_fits(cfg, dataset)
        return tuple(dataset.x_train.shape[1:]), int(dataset.x_train.shape[0])
    shape, n_train = DATASET_SHAPES[name or cfg.data.name]
    if cfg.data.image_size is not None and len(shape) == 3:
        shape = (cfg.data.image_size, cfg.data.image_size, shape[2])
    return tuple(shape), n_train


def model_summary(cfg: StudyConfig, shape: tuple[int, ...], n_train: int, *, num_devices: int | None = None) -> dict:
    """The study's model on samples of ``shape``, traced abstractly (``jax.eval_shape``, no compilation).

    Returns what one training run would be: sample and latent shapes, the global
    batch (as the engine sizes it for ``num_devices``), steps per epoch and the
    parameter count.

    Raises:
      ValueError: a model whose reconstruction does not have the sample's shape.
    """
    model = make_model(cfg.train.model, shape)
    x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    variables = jax.eval_shape(lambda k, xs: model.init({"params": k}, xs, train=False), jax.random.key(0), x)
    recon, latent = jax.eval_shape(lambda v, xs: model.apply(v, xs, train=False), variables, x)
    if recon.shape != x.shape:
        raise ValueError(f"{cfg.train.model.name} reconstructs {recon.shape[1:]} from samples of shape {shape}")
    batch = effective_batch_size(cfg.train, n_train, num_devices or cfg.train.num_devices or 1)
    return {
        "grid_points": len(cfg.grid()),
        "configurations": [f"{m} p={p_tag(p)}" for m, p in cfg.configurations()],
        "seeds": list(cfg.seeds),
        "sample_shape": list(shape),
        "latent_shape": list(latent.shape[1:]),
        "train_samples": n_train,
        "batch": batch,
        "steps_per_epoch": math.ceil(n_train / batch),
        "params": sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(variables["params"])),
    }


def run_pipeline(cfg: StudyConfig, out: Path, *, progress: Callable[[str], None] | None = None, dataset=None,
                 command: str | None = None, hooks: Sequence = ()) -> dict:
    """Runs one grid of modes x p x seeds into ``out`` and returns its ``results.json`` payload.

    The stages in order: claim the folder -> :func:`load_data` -> :func:`train`
    -> :func:`collect_latents` -> :func:`evaluate` -> :func:`summarise` ->
    :func:`write_outputs` (files: process 0 only). The folder is locked for the
    run and must hold this study or nothing (:func:`icrst_jax.run_identity.check_folder`):
    a rerun resumes its checkpoint, another study is refused before any data is loaded.

    Args:
      cfg: a study with one latent size and one data set.
      out: its folder.
      progress: gets one line per stage / epoch / classifier; None is quiet.
      dataset: an already loaded :class:`icrst_jax.data.Dataset` (skips loading).
      command: the command line as typed, for ``results.json`` (default: ``sys.argv``).
      hooks: more :class:`icrst_jax.train.EpochHook` duties for the training loop.

    Raises:
      icrst_jax.run_identity.RunMismatch, FolderBusy: the folder holds another
        study, or another run is writing into it.
      icrst_jax.faults.NonFiniteLoss: training or its latents became NaN / infinite.
      icrst_jax.faults.MissingResults: after writing every other result (and
        saying so in report.md): the latents after an ``eval.at_epochs`` epoch
        could neither be made (this run resumed from a later checkpoint) nor
        found in the folder.

    A rerun or a resumed run reports every result: the latents along training
    are saved as they are made (``latents_epoch<E>.npz``) and read back for the
    epochs that a resumed run does not train again. In a multi-process run
    (:mod:`icrst_jax.distributed`) every process computes the same payload;
    only process 0 locks and checks the folder and writes files.
    """
    check_widths(cfg.train.model)
    make_mesh(cfg.train.num_devices)  # a device count this machine lacks: refused before any file or data
    distributed.check_same_study(cfg)  # a multi-process run: one study, one folder that all processes see
    say = progress or (lambda line: None)
    source_commit()  # read now: results.json names the code that was loaded, not a later checkout
    with _prepared_folder(cfg, out):
        clock = {"start": time.perf_counter()}
        say(f"output folder: {out}")
        dataset = load_data(cfg, dataset, say)
        clock["loaded"] = time.perf_counter()
        trained = train(cfg, dataset, out, say, hooks=hooks)
        clock["trained"] = time.perf_counter()
        latents = collect_latents(cfg, dataset, trained, out, say)
        evaluated = evaluate(cfg, dataset, latents, say)
        study = summarise(cfg, dataset, trained, latents, evaluated, command=command, say=say)
        study = write_outputs(cfg, dataset, latents, study, out, say,
                              timer=lambda tsne_s: _timing(clock, trained.result, evaluated.seconds, tsne_s,
                                                           time.perf_counter()))
        if distributed.is_primary():  # each point's final encoder, usable without the config or the data
            save_encoder(out, cfg.train.model, dataset, trained.result.state, latents.points, study.data or None)
        live_logs.log_results(cfg, out, study.to_dict(), evaluated)
    if latents.missing_epochs:
        raise faults.MissingResults(_missing_message(latents.missing_epochs, trained.result.resumed_from, out))
    return study.to_dict()


@contextlib.contextmanager
def _prepared_folder(cfg: StudyConfig, out: Path):
    """Process 0 owns the folder: it alone locks, checks and writes its identity."""
    if not distributed.is_primary():
        yield
        return
    with run_identity.claim_folder(out, cfg):
        yield


# ---------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------


def load_data(cfg: StudyConfig, dataset=None, say: Callable[[str], None] = lambda line: None):
    """The study's :class:`icrst_jax.data.Dataset` (``dataset`` if given), checked against the config.

    Raises:
      ValueError: the model does not fit the samples, or ``eval.mi_k`` is not
        below the test split's size (checked before training, not after it).
    """
    if dataset is None and cfg.data.source is not None:
        dataset = custom.load_for(cfg.data, say)
    if dataset is None:
        say(f"loading {cfg.data.name} ...")
        dataset = data_lib.load_dataset(
            cfg.data.name,
            cfg.data.data_dir,
            image_size=cfg.data.image_size,
            test_fraction=cfg.data.test_fraction,
            split_seed=cfg.data.split_seed,
            input_scheme=cfg.data.input_scheme,
            download=cfg.data.download,
            say=say,
        )
    if dataset.facts is not None:
        check_model_fits(cfg, dataset)
        for line in used_facts(cfg, dataset).lines():
            say(line)
    say(dataset.summary())
    make_model(cfg.train.model, dataset.x_train.shape[1:])
    if cfg.eval.mi and dataset.x_test.ndim == 4 and cfg.eval.mi_k >= dataset.x_test.shape[0]:
        raise ValueError(f"--mi-k {cfg.eval.mi_k} must be below the test split's {dataset.x_test.shape[0]} samples")
    return dataset


def check_model_fits(cfg: StudyConfig, dataset) -> None:
    """Own data: the MLP takes table rows, the conv models images; one line otherwise."""
    facts = dataset.facts
    if (facts.kind == "tabular") != (cfg.train.model.name == "mlp"):
        raise ValueError(f"model {cfg.train.model.name} does not fit {facts.name} "
                         f"({'table rows' if facts.kind == 'tabular' else 'images'}); "
                         f"set train.model.name={facts.model} (--model {facts.model})")


def used_facts(cfg: StudyConfig, dataset):
    """The data's facts with the model the study trains (the config's, which the command line
    picks from the data unless told)."""
    return dataset.facts.trained_with(cfg.train.model)


def data_name(cfg: StudyConfig, dataset=None) -> str:
    """The name the report and figures give the data: a built-in set's, or own data's file name."""
    if cfg.data.source is None:
        return cfg.data.name
    facts = (dataset.facts if dataset is not None else None) or custom.load_for(cfg.data).facts
    return facts.name


@dataclasses.dataclass(frozen=True)
class Trained:
    """The train stage's output.

    Attributes:
      result: :func:`icrst_jax.train.fit`'s result (final state, history).
      snapshots: epoch -> (R, N_test, D) held-out latents encoded from the
        training loop's own state at that epoch (0: the untrained encoder).
    """

    result: Any
    snapshots: Mapping[int, np.ndarray]


def train(cfg: StudyConfig, dataset, out: Path, say: Callable[[str], None] = lambda line: None, *,
          hooks: Sequence = ()) -> Trained:
    """Trains every grid point in one program, encoding the held-out latents at
    ``eval.at_epochs`` (and epoch 0 for the untrained row) along the way; those
    strictly inside training are saved at once (process 0), as ``latents_epoch<E>.npz``."""
    mean, std = dataset.preprocessing.encoder_mean_std()
    points = cfg.grid()
    # Held-out latents along training, encoded from the training loop's own
    # state (no retraining): epoch 0 gives the untrained reference row.
    snapshot_epochs = set(cfg.eval.at_epochs) | ({0} if cfg.eval.untrained else set())
    snapshot_epochs.discard(cfg.train.epochs)  # the final latents come from the result
    snapshots: dict[int, np.ndarray] = {}

    def on_epoch(epoch, engine, state):
        snapshots[epoch] = encode(engine, state, dataset.x_test, mean=mean, std=std)
        if 0 < epoch < cfg.train.epochs and epoch in cfg.eval.at_epochs and distributed.is_primary():
            # Saved now, not with the other outputs: an interrupted run keeps it, and a
            # resumed one (which cannot encode the epochs before its checkpoint) reads it back.
            _save_epoch_latents(out, epoch, snapshots[epoch], dataset.y_test, points)

    say(f"== training {len(points)} grid points ({', '.join(f'{m} p={p_tag(p)}' for m, p in cfg.configurations())}; "
        f"seeds {list(cfg.seeds)}) for {cfg.train.epochs} epochs in one program")
    result = fit(
        cfg.train,
        dataset.x_train,
        dataset.y_train,
        points=points,
        mean=mean,
        std=std,
        checkpoint_dir=(out / "checkpoints").absolute() if cfg.checkpoints else None,
        metadata={
            "preprocessing": dataset.preprocessing.to_dict(),
            "dataset": data_name(cfg, dataset),
            # Where the data actually came from (files or TFDS) joins the config's fields.
            "identity": {**run_identity.fingerprint(cfg), "data.source": dataset.source},
        },
        progress=say,
        hooks=[Snapshots(snapshot_epochs, on_epoch), *live_logs.training_hooks(cfg, out, points), *hooks],
    )
    say_training_check([h["loss"] for h in result.full_history], result.engine.steps_per_epoch, say)
    return Trained(result=result, snapshots=snapshots)


@dataclasses.dataclass(frozen=True)
class Latents:
    """The held-out latents to evaluate, and what training says about each grid point.

    Attributes:
      points: the grid points, in the run axis' order.
      final: (R, N_test, D) after the last epoch.
      untrained: (S, N_test, D) each seed's initial encoder (``cfg.seeds`` order), or None.
      along: epoch -> (R, N_test, D) for each ``eval.at_epochs`` strictly inside training.
      missing_epochs: ``eval.at_epochs`` whose latents could not be made.
      loss_curves: per point, the loss of every epoch.
      diverged: per point, why its numbers are not a result (:func:`icrst_jax.faults.divergence`), or None.
    """

    points: Sequence[GridPoint]
    final: np.ndarray
    untrained: np.ndarray | None
    along: Mapping[int, np.ndarray]
    missing_epochs: Sequence[int]
    loss_curves: Sequence[Sequence[float]]
    diverged: Sequence[str | None]


def collect_latents(cfg: StudyConfig, dataset, trained: Trained, out: Path,
                    say: Callable[[str], None] = lambda line: None) -> Latents:
    """The final, untrained and along-training latents, and each point's divergence.

    The latents after an ``eval.at_epochs`` epoch that training did not pass
    through (it resumed from a later checkpoint) are read back from their file
    in ``out``, if it holds this grid's latents; else they are missing.

    Raises:
      icrst_jax.faults.NonFiniteLoss: a point's final latents are not finite.
    """
    result = trained.result
    points = list(result.points)
    mean, std = dataset.preprocessing.encoder_mean_std()
    # The engine keeps the jitted encoder of the snapshots: no second compilation.
    final = encode(result.engine, result.state, dataset.x_test, mean=mean, std=std)  # (R, N, D)
    loss_curves = [[h["loss"][i] for h in result.full_history] for i in range(len(points))]
    diverged = [faults.divergence(loss_curves[i], final[i]) for i in range(len(points))]
    if any(d == faults.NON_FINITE_LATENTS for d in diverged):
        bad = [pt for pt, d in zip(points, diverged) if d == faults.NON_FINITE_LATENTS]
        raise faults.NonFiniteLoss(
            f"the test latents of {', '.join(f'{pt.mode} p={pt.p:g} seed {pt.seed}' for pt in bad)} are not finite "
            f"after {cfg.train.epochs} epochs; likely causes: a learning rate too large (--lr) or extreme data values"
        )
    for pt, d in zip(points, diverged):
        if d:
            say(f"warning: {pt.mode} p={p_tag(pt.p)} seed {pt.seed} diverged ({d}): its scores are not a result")
    untrained = None
    if cfg.eval.untrained:
        # The untrained encoder of seed s: its initial parameters depend on the seed
        # only, so any point of that seed holds them at epoch 0.
        first = [next(i for i, pt in enumerate(points) if pt.seed == s) for s in cfg.seeds]
        untrained = trained.snapshots[0][first]
    inside = sorted(e for e in cfg.eval.at_epochs if 0 < e < cfg.train.epochs)
    along = {e: trained.snapshots[e] for e in inside if e in trained.snapshots}
    for e in inside:
        if e not in along:
            found = _read_epoch_latents(out, e, final.shape, dataset.y_test, points)
            if found is not None:
                along[e] = found
    if len(along) < len(inside):
        say(f"warning: {_missing_message([e for e in inside if e not in along], result.resumed_from, out)}")
    return Latents(points=points, final=final, untrained=untrained, along=along,
                   missing_epochs=[e for e in inside if e not in along], loss_curves=loss_curves, diverged=diverged)


@dataclasses.dataclass(frozen=True)
class SetScores:
    """The measures of one latent set: ``classifiers`` by scaling
    (``{scaling: evaluate_classifiers result}``), MI, kNN purity, latent spread."""

    classifiers: Mapping[str, Mapping]
    mi: Mapping | None
    purity: Mapping | None
    latent_spread: float

    def only(self, names: Sequence[str]) -> SetScores:
        """These scores with only the classifiers ``names`` kept."""
        kept = {sc: {n: r[n] for n in names} for sc, r in self.classifiers.items()}
        return dataclasses.replace(self, classifiers=kept)


@dataclasses.dataclass(frozen=True)
class Evaluated:
    """The evaluate stage's output: per point (``final``), per seed
    (``untrained``) and per along-training epoch and point (``along``)."""

    final: Sequence[SetScores]
    untrained: Sequence[SetScores]
    along: Mapping[int, Sequence[SetScores]]
    seconds: evaluation.EvalSeconds = dataclasses.field(default_factory=evaluation.EvalSeconds)


def evaluate(cfg: StudyConfig, dataset, latents: Latents, say: Callable[[str], None] = lambda line: None
             ) -> Evaluated:
    """Classifiers (each scaling), MI and purity of every latent set, as one pool of fits:
    the final and untrained latents with ``eval.classifiers``, the along-training
    ones with ``eval.epoch_classifiers`` (one call, so the compiled fits of the
    latter run beside scikit-learn's fits of the former)."""
    ev = cfg.eval
    points, seeds = latents.points, list(cfg.seeds)
    sets = [(latents.final[i], pt.seed) for i, pt in enumerate(points)]
    names = [f"{_label(pt.mode, pt.p)} seed {pt.seed}" for pt in points]
    if latents.untrained is not None:
        sets += list(zip(latents.untrained, seeds))
        names += [f"untrained seed {s}" for s in seeds]
    scaling_names = ", ".join(reporting.SCALING_SHORT.get(sc, sc) for sc in ev.scalings)
    say(f"== evaluating the test latents ({dataset.x_test.shape[0]} samples): {len(sets)} sets ({len(points)} "
        f"points{' + the untrained encoder of each seed' if latents.untrained is not None else ''}) x "
        f"{len(ev.scalings)} scaling(s) ({scaling_names}) x {ev.n_folds} folds x {len(ev.classifiers)} classifiers")
    epochs = sorted(latents.along)
    mid = [(latents.along[e][i], pt.seed) for e in epochs for i, pt in enumerate(points)]
    mid_names = [f"epoch {e} {_label(pt.mode, pt.p)} seed {pt.seed}" for e in epochs for pt in points]
    if epochs:
        say(f"   and the latents after epochs {epochs} ({', '.join(ev.epoch_classifiers)})")
    seconds = evaluation.EvalSeconds()
    per_set = [ev.classifiers] * len(sets) + [ev.epoch_classifiers] * len(mid)
    t0 = time.perf_counter()
    flat = evaluate_sets(sets + mid, dataset.x_test, dataset.y_test, ev, per_set, say, seconds, names + mid_names)
    say(f"evaluated: {len(sets) + len(mid)} latent sets in {time.perf_counter() - t0:.1f} s")
    scores, flat_along = flat[: len(sets)], flat[len(sets):]
    along = {e: flat_along[j * len(points):(j + 1) * len(points)] for j, e in enumerate(epochs)}
    return Evaluated(final=scores[: len(points)], untrained=scores[len(points):], along=along, seconds=seconds)


def evaluate_sets(sets, x_test, labels, ev, classifiers, say: Callable[[str], None],
                  seconds: evaluation.EvalSeconds | None = None, names: Sequence[str] | None = None
                  ) -> list[SetScores]:
    """:class:`SetScores` of each ``(features (N, D), seed)`` in ``sets``.

    ``classifiers``: the names for every set, or one sequence of names per set.
    All sets x scalings x classifiers x folds go to one pool of workers. The
    MI of section 7 is an image measure (per channel over pixels): tabular
    data (``x_test`` not 4-D) skips it.
    """
    images = x_test if ev.mi and x_test.ndim == 4 else None
    n_jobs = -1 if ev.n_jobs is None else ev.n_jobs
    jobs = [(f, labels, s, sc) for f, s in sets for sc in ev.scalings]
    job_names = None if names is None else [f"{n}, {reporting.SCALING_SHORT.get(sc, sc)}" for n in names
                                             for sc in ev.scalings]
    seconds = evaluation.EvalSeconds() if seconds is None else seconds
    per_set = [classifiers] * len(sets) if classifiers and isinstance(classifiers[0], str) else classifiers
    every = list(dict.fromkeys(c for cs in per_set for c in cs))
    flat = evaluation.evaluate_many(jobs, every, n_folds=ev.n_folds, n_jobs=n_jobs,
                                    progress=_Indented(say), fold_lines=False, backend=ev.backend,
                                    seconds=seconds, job_names=job_names,
                                    job_classifiers=[cs for cs in per_set for _ in ev.scalings],
                                    options=evaluation.ClassifierOptions(ev.knn_k, ev.knn_temperature))
    n_sc = len(ev.scalings)

    def mi(f, s):
        t0 = time.perf_counter()
        out = evaluation.mutual_information(f, images, n_samples=ev.mi_samples, k=ev.mi_k, bins=ev.mi_bins,
                                            seed=s, baselines=ev.mi_baselines)
        seconds.mi_s += time.perf_counter() - t0
        return out

    def purity(f):
        t0 = time.perf_counter()
        out = evaluation.knn_purity(f, labels, k=min(ev.purity_k, len(labels) - 1))
        seconds.purity_s += time.perf_counter() - t0
        return out

    return [
        SetScores(
            classifiers=dict(zip(ev.scalings, flat[j * n_sc:(j + 1) * n_sc])),
            mi=mi(f, s) if images is not None else None,
            purity=purity(f) if ev.purity else None,
            latent_spread=evaluation.latent_spread(f),
        )
        for j, (f, s) in enumerate(sets)
    ]


def summarise(cfg: StudyConfig, dataset, trained: Trained, latents: Latents, evaluated: Evaluated, *,
              command: str | None = None, say: Callable[[str], None] = lambda line: None) -> StudyResult:
    """The study's typed results: a :class:`Record` per configuration (the
    untrained encoder first), a :class:`PointRecord` per grid point, and the
    report's warnings. No files, no figures, no timing yet."""
    ev = cfg.eval
    metric = reporting.primary_metric(data_name(cfg, dataset))
    points, diverged = latents.points, latents.diverged
    result = trained.result
    final_loss = result.final_loss.tolist()
    seeds = list(cfg.seeds)
    point_records = [
        PointRecord(mode=pt.mode, p=pt.p, seed=pt.seed, scores=pooled(evaluated.final[i:i + 1], ev.scalings),
                    final_loss=final_loss[i] if final_loss else None, loss_curve=latents.loss_curves[i],
                    latents=latents_path(Path(), pt.mode, pt.p, pt.seed).name, diverged=diverged[i])
        for i, pt in enumerate(points)
    ]
    records = []
    if latents.untrained is not None:
        records.append(Record(mode="untrained", p=None, seeds=tuple(seeds), epoch=0,
                              scores=pooled(evaluated.untrained, ev.scalings),
                              latents=tuple(untrained_latents_path(Path(), s).name for s in seeds)))
        detail_of(say)("   untrained encoder: " + _summary_line(records[-1].to_dict(), metric))
    for mode, p in cfg.configurations():
        idx = [i for i, pt in enumerate(points) if (pt.mode, pt.p) == (mode, p)]
        trajectory = ()
        if ev.at_epochs:
            # Epoch 0 is the untrained encoder of the same seeds; the last epoch the record itself.
            steps = []
            if latents.untrained is not None:
                steps.append((0, [evaluated.untrained[seeds.index(points[i].seed)] for i in idx]))
            steps += [(e, [evaluated.along[e][i] for i in idx]) for e in sorted(evaluated.along)]
            steps.append((cfg.train.epochs, [evaluated.final[i] for i in idx]))
            trajectory = tuple(
                EpochScores(e, pooled([s.only(ev.epoch_classifiers) for s in ss], ev.scalings, per_sample=False))
                for e, ss in steps
            )
        records.append(Record(
            mode=mode, p=p, seeds=tuple(points[i].seed for i in idx), epoch=cfg.train.epochs,
            scores=pooled([evaluated.final[i] for i in idx], ev.scalings),
            final_loss=tuple(final_loss[i] for i in idx) if final_loss else (),
            latents=tuple(point_records[i].latents for i in idx),
            diverged=tuple(f"seed {points[i].seed}: {diverged[i]}" for i in idx if diverged[i]),
            dae_sigma=cfg.train.dae_sigma if mode == "dae" else None,
            trajectory=trajectory,
        ))
        detail_of(say)(f"   {_label(mode, p)}: " + _summary_line(records[-1].to_dict(), metric))
    warnings = [
        f"{pt.mode} p={p_tag(pt.p)} seed {pt.seed} diverged ({d}); its rows are marked DIVERGED and are not results."
        for pt, d in zip(points, diverged) if d
    ]
    if latents.missing_epochs:
        warnings.append(_missing_message(latents.missing_epochs, result.resumed_from, None))
    return StudyResult(
        dataset=data_name(cfg, dataset),
        dataset_summary=dataset.summary(),
        split=dataset.split,
        metric=metric,
        config=cfg.to_dict(),
        model=dataclasses.asdict(cfg.train.model),
        batch_size=result.engine.batch_size,
        scalings=list(ev.scalings),
        seeds=seeds,
        records=records,
        points=point_records,
        history=loss_curve(result.full_history),
        missing_epochs=list(latents.missing_epochs),
        preprocessing=dataset.preprocessing.to_dict(),
        versions=versions(),
        command=command if command is not None else " ".join(sys.argv),
        fingerprint=run_identity.short_hash(run_identity.fingerprint(cfg)),
        diverged=[{**dataclasses.asdict(pt), "reason": d} for pt, d in zip(points, diverged) if d],
        # The home directory as ~: a committed results.json names no folder of a user's.
        compilation_cache_dir=home_relative(compilation_cache_dir()),
        warnings=warnings,
        data=used_facts(cfg, dataset).to_dict() if dataset.facts is not None else {},
    )


def tsne_panels(cfg: StudyConfig, latents: Latents, labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The t-SNE figure's panels: the untrained encoder, then one per mode at
    its largest p (the paper shows p = 1); the first seed's latents."""
    panels = {}
    if latents.untrained is not None:
        panels[reporting.MODE_LABELS["untrained"]] = (latents.untrained[0], labels)
    for mode, p in cfg.configurations():
        if mode in P_MODES and p != max(cfg.p_values):
            continue
        i = next(i for i, pt in enumerate(latents.points) if (pt.mode, pt.p) == (mode, p))
        key = reporting.MODE_LABELS[mode]
        panels[f"{key} (p={p_tag(p)})" if mode in P_MODES else key] = (latents.final[i], labels)
    return panels


def write_outputs(cfg: StudyConfig, dataset, latents: Latents, study: StudyResult, out: Path,
                  say: Callable[[str], None] = lambda line: None, *,
                  timer: Callable[[float], Timing] | None = None) -> StudyResult:
    """Writes the final and untrained latents, the figures, report.md and
    results.json (the latents along training were saved as they were made);
    returns ``study`` with its figures and its ``timer(t-SNE seconds)``. Only
    process 0 writes: the others return ``study`` timed, without figures."""
    if not distributed.is_primary():
        return dataclasses.replace(study, timing=timer(0.0) if timer else None)
    y = dataset.y_test
    for i, pt in enumerate(latents.points):
        np.savez_compressed(latents_path(out, pt.mode, pt.p, pt.seed), features=latents.final[i], labels=y,
                            mode=pt.mode, p=pt.p, seed=pt.seed, split="test")
    if latents.untrained is not None:
        for s, f in zip(cfg.seeds, latents.untrained):
            np.savez_compressed(untrained_latents_path(out, s), features=f, labels=y, mode="untrained", seed=s,
                                epoch=0, split="test")
    figures, tsne_s = _draw_figures(cfg, latents, y, study, out, say)
    # Figures of an earlier run in this folder (a t-SNE before --no-tsne) would sit beside these results.
    for stale in set(out.glob("*.png")) - {out / f for f in figures}:
        stale.unlink()
    study = dataclasses.replace(study, figures=figures)
    reporting.atomic_write_text(out / "report.md", reporting.render_report(study))
    study = dataclasses.replace(study, timing=timer(tsne_s) if timer else None)
    reporting.write_results_json(out / "results.json", study.to_dict())
    # A detail line: the command line ends with the paths it really wrote.
    detail_of(say)(f"wrote {out / 'results.json'}, {out / 'report.md'} and {len(figures)} figure(s)")
    if study.timing:
        say(study.timing.line())
    return study


def _draw_figures(cfg: StudyConfig, latents: Latents, labels, study: StudyResult, out: Path, say
                  ) -> tuple[list[str], float]:
    """The study's PNG figures; returns their names and the seconds the t-SNE took."""
    ev, metric, name = cfg.eval, study.metric, study.dataset
    figures = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        if ev.tsne:
            say("t-SNE of the test latents ...")
            panels = tsne_panels(cfg, latents, labels)

            def embed():
                t0 = time.perf_counter()
                embedded = reporting.tsne_embeddings(panels, seed=cfg.seeds[0], max_points=ev.tsne_points)
                return embedded, time.perf_counter() - t0

            # A compiled program on its own thread while matplotlib draws the other figures.
            embedding = pool.submit(embed)
        if len(cfg.p_values) > 1:
            for mode in (m for m in P_MODES if m in cfg.modes):
                scaling = reporting.SCALING_SHORT.get(ev.scalings[0], ev.scalings[0])
                # The records, not their curves: the Standard and untrained rows become reference bands.
                figures.append(reporting.plot_accuracy_vs_p(
                    study.records, out / f"{metric}_vs_p_{mode}.png", metric=metric, mode=mode,
                    title=f"{name}: {reporting.MODE_LABELS.get(mode, mode)}, {metric} vs p ({scaling} latents)"))
        if ev.at_epochs:
            clf = ev.epoch_classifiers[0]
            figures.append(reporting.plot_vs_epochs(
                study.records, out / f"{metric}_vs_epochs.png", metric=metric, classifier=clf,
                title=f"{name}: held-out latents along training ({reporting.CLASSIFIER_LABELS[clf]})"))
        tsne_s = 0.0
        if ev.tsne:
            embedded, tsne_s = embedding.result()
            figures.insert(0, reporting.plot_tsne(
                panels, out / "tsne.png", seed=cfg.seeds[0], max_points=ev.tsne_points, embedded=embedded,
                class_names=(study.data or {}).get("class_names") or CLASS_NAMES.get(name),
                title=f"{name}: t-SNE of test-split latents (seed {cfg.seeds[0]})"))
    return [Path(f).name for f in figures], tsne_s


# ---------------------------------------------------------------------------
# Helpers of the stages
# ---------------------------------------------------------------------------


def pooled(scores: Sequence[SetScores], scalings: Sequence[str], *, per_sample: bool = True) -> Scores:
    """The :class:`Scores` of one configuration's seeds, pooled.

    ``classifiers`` is the first scaling's (the main table), ``other_scalings``
    the rest by name. ``per_sample=False`` drops the MI's per-sample values.
    """
    by_scaling = {
        sc: scores[0].classifiers[sc] if len(scores) == 1 else evaluation.pool_results([s.classifiers[sc] for s in scores])
        for sc in scalings
    }
    mi = [s.mi for s in scores if s.mi is not None]
    mi = evaluation.pool_mi(mi) if mi else None
    if mi is not None and not per_sample:
        mi = {k: ({kk: vv for kk, vv in v.items() if kk != "per_sample"} if isinstance(v, dict) else v)
              for k, v in mi.items() if k not in ("per_sample", "indices")}
    purity = [s.purity for s in scores if s.purity is not None]
    return Scores(
        scaling=scalings[0],
        classifiers=by_scaling[scalings[0]],
        other_scalings={sc: by_scaling[sc] for sc in scalings[1:]},
        mi=mi,
        purity=evaluation.pool_purity(purity) if purity else None,
        latent_spread=[s.latent_spread for s in scores],
    )


def _save_epoch_latents(out: Path, epoch: int, features: np.ndarray, labels: np.ndarray,
                        points: Sequence[GridPoint]) -> None:
    np.savez_compressed(epoch_latents_path(out, epoch), features=features, labels=labels, epoch=epoch,
                        points=np.array([pt.tag for pt in points]), split="test")


def _read_epoch_latents(out: Path, epoch: int, shape, labels: np.ndarray, points: Sequence[GridPoint]
                        ) -> np.ndarray | None:
    """The (R, N, D) latents after ``epoch`` saved by an earlier run of this study, or None
    if there is no such file or it holds another grid, split or latent size."""
    path = epoch_latents_path(out, epoch)
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            same = (int(z["epoch"]) == epoch and list(z["points"]) == [pt.tag for pt in points]
                    and z["features"].shape == tuple(shape) and np.array_equal(z["labels"], labels))
            return z["features"] if same else None
    except (OSError, ValueError, KeyError):  # a truncated or foreign file: as if absent
        return None


def _missing_message(epochs: Sequence[int], resumed_from: int | None, out: Path | None) -> str:
    """One line: which along-training results are missing, why, and how to get them."""
    where = f"in {out}" if out is not None else "in the run folder"
    why = (f"this run resumed from the checkpoint at epoch {resumed_from}" if resumed_from
           else "training did not pass through them")
    files = ", ".join(epoch_latents_path(Path(), e).name for e in epochs)
    return (f"no held-out latents after epoch(s) {', '.join(map(str, epochs))}: {why} and {files} is not {where}; "
            f"every other result is reported; to get these, delete the folder's checkpoints and rerun "
            f"(training starts again)")


def _label(mode: str, p: float) -> str:
    """``standard``, ``icrst p=0.5``: a configuration in the log."""
    return mode + (f" p={p_tag(p)}" if mode in P_MODES else "")


def _timing(clock: dict, result, seconds: evaluation.EvalSeconds, tsne_s: float, done: float) -> Timing:
    """Where the study's wall time went: the epoch program's compilation, the
    epochs themselves, and everything after training (latents, fits, MI, figures),
    the last split by part."""
    epochs_s = sum(h["seconds"] for h in result.history)
    return Timing(
        wall_s=done - clock["start"],
        loading_s=clock["loaded"] - clock["start"],
        compiling_s=result.compile_seconds,
        training_s=epochs_s,
        setup_s=(clock["trained"] - clock["loaded"]) - result.compile_seconds - epochs_s,
        evaluation_s=done - clock["trained"],
        jax_classifiers_s=seconds.jax_classifiers_s,
        sklearn_classifiers_s=seconds.sklearn_classifiers_s,
        mi_s=seconds.mi_s,
        purity_s=seconds.purity_s,
        tsne_s=tsne_s,
    )


def _summary_line(record: dict, metric: str) -> str:
    parts = []
    for name, res in record["classifiers"].items():
        s = res[metric]
        parts.append(f"{name} {s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]")
    for sc, clfs in (record.get("other_scalings") or {}).items():
        parts.append(f"| {reporting.SCALING_SHORT.get(sc, sc)}: "
                     + "  ".join(f"{n} {r[metric]['mean']:.3f}" for n, r in clfs.items()))
    if record.get("mi"):
        parts.append(f"MI {record['mi']['mi']:.3f}")
        if record["mi"].get("corrected"):
            parts.append(f"(corrected {record['mi']['corrected']['mi']:.3f})")
    if record.get("purity"):
        parts.append(f"purity {record['purity']['purity']:.3f}")
    return f"{metric}: " + "  ".join(parts)


class _Indented:
    """The evaluation's progress: its lines indented, as detail (-v), and a Log's bars passed on."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say

    def __call__(self, line: str) -> None:
        detail_of(self.say)("   " + line)

    def bar(self, total: int, desc: str):
        return bar_of(self.say, total, desc)
