"""The adaptation study: unsupervised domain adaptation with ICRST (paper section 8).

A study with ``data.target`` set trains one autoencoder per grid point on the
source's and the target's training images together; the source's labels are
used, the target's never reach training (only the evaluation). The modes, all
in one compiled epoch (the mode is the traced partner code, the pairing table
is per-run data of the same shapes):

* ``standard``: every image reconstructs itself;
* ``icrst``: ICRST inside the source's classes; target images reconstruct
  themselves (their class is unknown);
* ``cross_icrst``: with probability p an image's partner is a uniform sample of
  its class from the *other* domain. The target's classes are pseudo-labels:
  every ``adapt.refresh_every`` epochs (and before the first) a classifier
  (``adapt.classifier``) is fitted on the grid point's current source latents
  and labels, and only target samples whose max posterior reaches
  ``adapt.threshold`` are paired; the others reconstruct themselves.

Training is driven here from the engine's pure pieces (``make_engine``,
``init_state``, ``compile_epoch``, ``encode``) in chunks of k epochs; the table
changes between chunks, its shapes do not, so the epoch compiles once.

The evaluation is the adaptation protocol: a classifier fitted on all source
latents (train and test split) with their labels, scored on the target's test
latents; beside it the untrained encoder, a target-only reference
(cross-validated on the target's test latents), the domain invariance
(cross-validated accuracy of a source-vs-target classifier on balanced test
latents; chance 0.5) and the target's kNN purity. Of ``eval`` it reads
``classifiers`` (the first one also judges the domains), ``n_folds``,
``purity_k`` and ``untrained``; an adaptation study writes no checkpoints,
mutual information or figures (``checkpoints``, ``mi``, ``tsne``,
``scalings`` and ``at_epochs`` are not used).

Its folder holds, beside ``results.json`` and ``report.md``, the latents of
every grid point and seed in a grid study's ``.npz`` layout (``features``,
``labels``), one file per domain and split:
``latents_<mode>_p<P>_seed<S>_<domain>_<split>.npz`` (``source_train``,
``source_test``, ``target_train``, ``target_test``; the target's training
labels are stored for checking, they never reached training), and
``latents_untrained_seed<S>_<domain>_<split>.npz`` for the untrained encoder;
each record of ``results.json`` names its files under ``latents``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import jax
import numpy as np

# The evaluation package loads scikit-learn on first use: its names are read at call time.
from icrst_jax import distributed, evaluation, faults, live_logs, run_identity, stages
from icrst_jax.config import CROSS_ICRST, AdaptConfig, GridPoint, StudyConfig, TrainConfig
from icrst_jax.data import load_dataset
from icrst_jax.distributed import to_host
from icrst_jax.jsonable import to_jsonable
from icrst_jax.models import check_widths
from icrst_jax.pairing import build_pairing_table
from icrst_jax.reporting import atomic_write_text, write_results_json
from icrst_jax.reporting.adaptation import adaptation_table, render_adaptation
from icrst_jax.reporting.records import SCHEMA_VERSION
from icrst_jax.runtime import compilation_cache_dir, home_relative, source_commit, versions
from icrst_jax.train import TrainData, compile_epoch, encode, init_state, make_engine, replicate
from icrst_jax.training_check import say_training_check

KIND = "adaptation"
# The latent sets written per grid point: (name, domain, split).
LATENT_SETS = (("source_train", "source", "train"), ("source_test", "source", "test"),
               ("target_train", "target", "train"), ("target_test", "target", "test"))

SOURCE, TARGET = 0, 1


@dataclasses.dataclass
class Refresh:
    """One pseudo-label refresh of one cross_icrst grid point.

    Attributes:
      epoch: the epoch after which it was fitted (0: the untrained encoder).
      threshold: the confidence threshold in force.
      paired_share: share of target training samples above it (paired).
      pseudo_labels: (N_target_train,) the predicted class of every target
        training sample (-1 where not confident).
    """

    epoch: int
    threshold: float
    paired_share: float
    pseudo_labels: np.ndarray


@dataclasses.dataclass
class AdaptTraining:
    """What :func:`train_adaptation` returns.

    Attributes:
      engine, state: the engine and final stacked state (leading axis = points).
      initial_latents: ``{name: (R, N, D)}`` latents of the untrained encoders.
      final_latents: ``{name: (R, N, D)}`` latents after training.
      loss: (epochs, R) mean loss per epoch and run.
      refreshes: per point index (cross_icrst points only): its refreshes.
      compile_count: how often the epoch was traced (1: the table refreshes reused it).
      seconds: training wall time.
    """

    engine: object
    state: object
    initial_latents: dict
    final_latents: dict
    loss: np.ndarray
    refreshes: dict
    compile_count: int
    seconds: float


def pseudo_labels(z_source, y_source, z_target, *, classifier: str, threshold: float, seed: int = 0):
    """Pseudo-labels of the target from a classifier of the source latents.

    Args:
      z_source: (N_s, D) source latents; y_source: (N_s,) their labels.
      z_target: (N_t, D) target latents.
      classifier: ``nb`` (GaussianNB) or ``logistic`` (LogisticRegression).
      threshold: minimum max-posterior of a confident prediction.

    Returns:
      (labels (N_t,), confident (N_t,) bool).
    """
    # scikit-learn is imported here for start-up time: the command line imports this module
    # for every study, and a --help, a dry check or a refused input need no scikit-learn.
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = GaussianNB() if classifier == "nb" else make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    clf.fit(np.asarray(z_source, np.float64), y_source)
    proba = clf.predict_proba(np.asarray(z_target, np.float64))
    classes = clf.classes_
    return classes[proba.argmax(axis=1)], proba.max(axis=1) >= threshold


def _tables(points, y_source, n_target, class_values, pseudo: dict) -> list:
    """One pairing table per point: source labels known; a cross point's confident pseudo-labels too."""
    n_source = y_source.shape[0]
    domains = np.r_[np.full(n_source, SOURCE), np.full(n_target, TARGET)]
    tables = []
    for r, _ in enumerate(points):
        labels = np.r_[y_source, np.zeros(n_target, y_source.dtype)]
        known = np.r_[np.ones(n_source, bool), np.zeros(n_target, bool)]
        if r in pseudo:
            lab, conf = pseudo[r]
            labels[n_source:] = np.where(conf, lab, 0)
            known[n_source:] = conf
        tables.append(build_pairing_table(labels, domains, known=known, class_values=class_values, num_domains=2))
    return tables


def train_adaptation(
    config: TrainConfig,
    adapt: AdaptConfig,
    points: Sequence[GridPoint],
    x_source,
    y_source,
    x_target,
    *,
    mean,
    std,
    encode_sets: dict | None = None,
    progress: Callable[[str], None] = lambda line: None,
    engine=None,
    on_epoch: Callable[[int, np.ndarray, bool], None] | None = None,
) -> AdaptTraining:
    """Trains every grid point on source + target images; target labels are not an input.

    Args:
      config: training settings (mode, p and seed come from ``points``).
      adapt: the pseudo-label settings of cross_icrst.
      points: grid points; modes ``standard``, ``icrst``, ``cross_icrst``.
      x_source: (N_s, ...) unit-scale source training samples (images, or
        flattened images for the mlp); y_source: (N_s,) labels.
      x_target: (N_t, ...) unit-scale target training samples (no labels).
      mean, std: encoder-input statistics.
      encode_sets: ``{name: (N, ...)}`` samples whose latents are returned
        before and after training.
      engine: an earlier call's ``engine`` (same config and data shapes), to
        reuse its compiled programs.
      on_epoch: called after each epoch with (epochs done, (R,) loss, last), as the live logs'
        :meth:`~icrst_jax.live_logs.TrainingLog.epoch`.
    """
    x_source = np.asarray(x_source, np.float32)
    x_target = np.asarray(x_target, np.float32)
    y_source = np.asarray(y_source)
    x = np.concatenate([x_source, x_target])
    n_s = x_source.shape[0]
    class_values = np.unique(y_source)
    encode_sets = encode_sets or {}
    t0 = time.perf_counter()
    if engine is None:
        engine = make_engine(config, x.shape[1:], x.shape[0], noise=False, runs=len(points))
    state = init_state(engine, list(points))
    enc = lambda st, images: encode(engine, st, images, mean=mean, std=std)  # noqa: E731
    initial = {name: enc(state, images) for name, images in encode_sets.items()}
    cross = [r for r, pt in enumerate(points) if pt.mode == CROSS_ICRST]
    refreshes: dict[int, list[Refresh]] = {r: [] for r in cross}
    losses = []
    epoch = 0
    while epoch < config.epochs:
        pseudo = _refresh(adapt, points, cross, enc(state, x) if cross else None, n_s, y_source, epoch, refreshes,
                          progress)
        tables = _tables(points, y_source, x_target.shape[0], class_values, pseudo)
        table = jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(v) for v in a]), *tables)
        data = replicate(TrainData(x=x, table=table, mean=np.asarray(mean, np.float32),
                                   std=np.asarray(std, np.float32)), engine.mesh)
        compiled, seconds = compile_epoch(engine, state, data)
        if seconds:
            progress(f"{len(points)} runs, {x.shape[0]} images, compiled in {seconds:.1f}s")
        for _ in range(min(adapt.refresh_every, config.epochs - epoch)):
            state, loss = _epoch(compiled, state, data, epoch, config.epochs, points, progress)
            epoch += 1
            losses.append(loss)
            if on_epoch is not None:
                on_epoch(epoch, loss, epoch == config.epochs)
    final = {name: enc(state, images) for name, images in encode_sets.items()}
    return AdaptTraining(engine, state, initial, final, np.stack(losses), refreshes, engine.trace_count[0],
                         time.perf_counter() - t0)


def _refresh(adapt: AdaptConfig, points, cross: Sequence[int], z, n_source: int, y_source, epoch: int,
             refreshes: dict, progress) -> dict:
    """Each cross_icrst point's confident pseudo-labels from its current latents ``z``
    ((R, N_s + N_t, D), source first); appends a :class:`Refresh` per point."""
    pseudo = {}
    for r in cross:
        lab, conf = pseudo_labels(z[r, :n_source], y_source, z[r, n_source:], classifier=adapt.classifier,
                                  threshold=adapt.threshold, seed=points[r].seed)
        pseudo[r] = (lab, conf)
        refreshes[r].append(Refresh(epoch, adapt.threshold, float(conf.mean()), np.where(conf, lab, -1)))
    if cross:
        shares = ", ".join(f"{refreshes[r][-1].paired_share:.2f}" for r in cross)
        progress(f"epoch {epoch}: pseudo-labels refreshed, share paired per cross_icrst run: {shares}")
    return pseudo


def _epoch(compiled, state, data, done: int, epochs: int, points, progress):
    """One compiled epoch; returns the new state and the (R,) loss of each run.

    Raises:
      icrst_jax.faults.NonFiniteLoss: a run's loss is NaN or infinite.
    """
    t_epoch = time.perf_counter()
    with jax.transfer_guard("disallow"):
        state, metrics = compiled(state, data)
    loss = np.asarray(to_host(metrics)["loss"])
    progress(f"epoch {done + 1:>3}/{epochs}  loss {loss.mean():.5f} (runs {loss.min():.5f}..{loss.max():.5f})"
             f"  {time.perf_counter() - t_epoch:.2f}s")
    if not np.all(np.isfinite(loss)):
        raise faults.NonFiniteLoss(faults.non_finite_message(done + 1, loss, list(points)))
    return state, loss


# ---------------------------------------------------------------------------
# Evaluation: the adaptation protocol
# ---------------------------------------------------------------------------


def transfer_accuracy(z_source, y_source, z_target, y_target, classifiers: Sequence[str], seed: int = 0) -> dict:
    """Accuracy on the target of each classifier fitted on the source latents: ``{name: float}``."""
    out = {}
    for name in classifiers:
        clf = evaluation.make_classifier(name, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(np.asarray(z_source, np.float64), y_source)
            out[name] = float(np.mean(clf.predict(np.asarray(z_target, np.float64)) == y_target))
    return out


def domain_invariance(z_source, z_target, *, classifier: str = "nb", n_folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a source-vs-target classifier on the latents.

    The larger domain is subsampled to the smaller one's size, so chance is
    0.5: 0.5 means the latents do not tell the domains apart, 1 that they
    separate them completely.
    """
    rng = np.random.default_rng(seed)
    n = min(len(z_source), len(z_target))
    a = np.asarray(z_source)[rng.choice(len(z_source), n, replace=False)]
    b = np.asarray(z_target)[rng.choice(len(z_target), n, replace=False)]
    z = np.concatenate([a, b])
    domain = np.r_[np.zeros(n, int), np.ones(n, int)]
    return evaluation.evaluate_classifiers(z, domain, [classifier], n_folds=n_folds, seed=seed)[classifier]["accuracy"]["mean"]


def evaluate_point(z_source, y_source, z_target, y_target, *, classifiers, n_folds, purity_k, seed=0,
                   target_only: bool = True) -> dict:
    """The adaptation protocol on one grid point's latents.

    Args:
      z_source: (N_s, D) all source latents; y_source: their labels.
      z_target: (N_t, D) the target's held-out latents; y_target: their labels.

    Returns:
      ``{"transfer": {clf: acc}, "target_only": {clf: acc}, "domain_accuracy", "target_purity"}``.
    """
    out = {"transfer": transfer_accuracy(z_source, y_source, z_target, y_target, classifiers, seed)}
    if target_only:
        cv = evaluation.evaluate_classifiers(z_target, y_target, list(classifiers), n_folds=n_folds, seed=seed)
        out["target_only"] = {c: cv[c]["accuracy"]["mean"] for c in classifiers}
    out["domain_accuracy"] = domain_invariance(z_source, z_target, classifier=classifiers[0], seed=seed)
    out["target_purity"] = evaluation.knn_purity(z_target, y_target, k=purity_k)["purity"]
    return out


def _metric_paths(record: dict) -> list[tuple[str, ...]]:
    paths = [("transfer", c) for c in record["transfer"]]
    paths += [("target_only", c) for c in record.get("target_only", {})]
    return paths + [("domain_accuracy",), ("target_purity",)]


def _get(record, path):
    for key in path:
        record = record[key]
    return record


def pool_over_seeds(records: Sequence[dict]) -> dict:
    """Mean and percentile interval over seeds of every metric: ``{"transfer/svm": summary, ...}``."""
    return {"/".join(path): evaluation.summarize([_get(r, path) for r in records]) for path in _metric_paths(records[0])}


# ---------------------------------------------------------------------------
# The study: data, training, evaluation, files
# ---------------------------------------------------------------------------


def load_pair(cfg: StudyConfig):
    """(source, target) :class:`icrst_jax.data.Dataset` at the study's common image size."""
    d = cfg.data
    sets = [load_dataset(name, d.data_dir, image_size=d.image_size, test_fraction=d.test_fraction,
                         split_seed=d.split_seed, input_scheme=d.input_scheme) for name in (d.name, d.target)]
    source, target = sets
    if source.x_train.shape[1:] != target.x_train.shape[1:]:
        raise ValueError(f"{d.name} and {d.target} images differ in shape ({source.x_train.shape[1:]} vs "
                         f"{target.x_train.shape[1:]}): set data.image_size")
    if set(np.unique(source.y_train)) != set(np.unique(target.y_test)):
        raise ValueError(f"{d.name} and {d.target} do not have the same classes")
    return source, target


def mean_std(cfg: StudyConfig, x_source, x_target):
    """Encoder-input statistics of the training images of both domains (per channel)."""
    if cfg.data.input_scheme == "unit":
        c = x_source.shape[-1]
        return np.zeros(c, np.float32), np.ones(c, np.float32)
    x = np.concatenate([x_source, x_target]).reshape(-1, x_source.shape[-1]).astype(np.float64)
    return x.mean(axis=0).astype(np.float32), np.maximum(x.std(axis=0), 1e-6).astype(np.float32)


def model_input(cfg: StudyConfig, images) -> np.ndarray:
    """Images as the model takes them: as they are for the conv models, flattened (N, H*W*C) for the mlp."""
    images = np.asarray(images, np.float32)
    return images.reshape(images.shape[0], -1) if cfg.train.model.name == "mlp" else images


def dry_check(cfg: StudyConfig, *, num_devices: int | None = None) -> dict:
    """What the study would run, checked without its data: the model on the pair's sample shape
    (the keys of :func:`icrst_jax.stages.model_summary`, plus ``study`` and ``adaptation``)."""
    check_widths(cfg.train.model)
    shapes = []
    n_train = 0
    for name in (cfg.data.name, cfg.data.target):
        shape, n = stages.sample_shape(cfg, name)
        n_train += n
        shapes.append(shape)
    if shapes[0] != shapes[1]:
        raise ValueError(f"{cfg.data.name} and {cfg.data.target} images differ in shape ({shapes[0]} vs {shapes[1]}): "
                         "set data.image_size")
    shape = model_input(cfg, np.zeros((1, *shapes[0]))).shape[1:]
    return {"study": KIND, "adaptation": f"{cfg.data.name} -> {cfg.data.target}",
            **stages.model_summary(cfg, shape, n_train, num_devices=num_devices)}


def run_adaptation(cfg: StudyConfig, source, target, *, progress: Callable[[str], None] = lambda line: None,
                   out: Path | None = None) -> dict:
    """Trains and evaluates an adaptation study on loaded data sets; returns the results payload.

    ``target.y_train`` is never read by training; ``target.y_test`` only by the
    evaluation (and ``target.y_train`` to score the recorded pseudo-labels afterwards).
    With ``out``, the latents of every point (and the untrained encoders) are
    written there (process 0) and named in the records' ``latents``.
    """
    ev = cfg.eval
    points = cfg.grid()
    mean, std = mean_std(cfg, source.x_train, target.x_train)
    if cfg.train.model.name == "mlp":  # per-feature statistics of the flattened (H, W, C) images
        pixels = int(np.prod(source.x_train.shape[1:-1]))
        mean, std = np.tile(mean, pixels), np.tile(std, pixels)
    x_source_all = model_input(cfg, np.concatenate([source.x_train, source.x_test]))
    y_source_all = np.concatenate([source.y_train, source.y_test])
    sets = {"source": x_source_all, "target_test": model_input(cfg, target.x_test)}
    if out is not None:
        sets["target_train"] = model_input(cfg, target.x_train)
    live = live_logs.adaptation_training_log(cfg, out, points)
    try:
        training = train_adaptation(cfg.train, cfg.adapt, points, model_input(cfg, source.x_train), source.y_train,
                                    model_input(cfg, target.x_train), mean=mean, std=std, encode_sets=sets,
                                    progress=progress, on_epoch=live.epoch if live else None)
    finally:
        if live:  # an interrupted run keeps the epochs it logged
            live.close()
    say_training_check(training.loss, training.engine.steps_per_epoch, progress)
    records = _evaluate_points(cfg, points, training, y_source_all, target, progress)
    live_logs.log_adaptation(cfg, out, points, records)
    untrained = _evaluate_untrained(cfg, points, training, y_source_all, target, progress) if ev.untrained else []
    if out is not None:
        _write_latents(out, cfg, points, training, source, target, records, untrained)
    rows = [{"mode": "untrained", "p": None, "pooled": pool_over_seeds(untrained)}] if untrained else []
    for mode, p in cfg.configurations():
        recs = [rec for rec in records if rec["mode"] == mode and rec["p"] == p]
        row = {"mode": mode, "p": p, "pooled": pool_over_seeds(recs)}
        if mode == CROSS_ICRST:
            row["paired_share_last"] = float(np.mean([rec["refreshes"][-1]["paired_share"] for rec in recs]))
        rows.append(row)
    return {
        "schema_version": SCHEMA_VERSION,
        "study": KIND,
        "adaptation": {"source": cfg.data.name, "target": cfg.data.target, "image_size": list(source.x_train.shape[1:])},
        "config": cfg.to_dict(),
        "classifiers": list(ev.classifiers),
        "rows": rows,
        "records": records,
        "untrained": untrained,
        "compile_count": training.compile_count,
        "train_seconds": training.seconds,
        "loss": training.loss.tolist(),
    }


def _evaluate_points(cfg: StudyConfig, points, training: AdaptTraining, y_source_all, target, progress) -> list:
    """The adaptation protocol on every trained point's latents, with its pseudo-label refreshes."""
    ev = cfg.eval
    records = []
    for r, pt in enumerate(points):
        progress(f"evaluating {pt.tag}")
        rec = evaluate_point(training.final_latents["source"][r], y_source_all, training.final_latents["target_test"][r],
                             target.y_test, classifiers=tuple(ev.classifiers), n_folds=ev.n_folds,
                             purity_k=ev.purity_k, seed=pt.seed)
        rec.update(mode=pt.mode, p=pt.p, seed=pt.seed, final_loss=float(training.loss[-1, r]))
        if r in training.refreshes:
            rec["refreshes"] = [
                {"epoch": f.epoch, "threshold": f.threshold, "paired_share": f.paired_share,
                 # Scored after training, for the report: the labels never reached it.
                 "pseudo_label_accuracy": (float(np.mean(f.pseudo_labels[f.pseudo_labels >= 0]
                                                         == target.y_train[f.pseudo_labels >= 0]))
                                           if (f.pseudo_labels >= 0).any() else None)}
                for f in training.refreshes[r]]
        records.append(rec)
    return records


def _evaluate_untrained(cfg: StudyConfig, points, training: AdaptTraining, y_source_all, target, progress) -> list:
    """The adaptation protocol on each seed's untrained encoder."""
    ev = cfg.eval
    untrained = []
    for seed in cfg.seeds:
        r = _first_point_of(points, seed)
        progress(f"evaluating the untrained encoder, seed {seed}")
        rec = evaluate_point(training.initial_latents["source"][r], y_source_all,
                             training.initial_latents["target_test"][r], target.y_test,
                             classifiers=tuple(ev.classifiers), n_folds=ev.n_folds, purity_k=ev.purity_k, seed=seed)
        untrained.append({**rec, "seed": seed})
    return untrained


def _first_point_of(points, seed: int) -> int:
    """The run index of the first point of ``seed``: its initial parameters are the seed's untrained encoder."""
    return next(i for i, pt in enumerate(points) if pt.seed == seed)


def latents_name(prefix: str, set_name: str) -> str:
    """``latents_icrst_p1_seed0_target_test.npz`` from ``latents_icrst_p1_seed0`` and ``target_test``."""
    return f"{prefix}_{set_name}.npz"


def _write_latents(out: Path, cfg: StudyConfig, points, training: AdaptTraining, source, target, records: list,
                   untrained: list) -> None:
    """Every point's (and untrained encoder's) latents of both domains and splits, one ``.npz`` each;
    each record gains ``latents``: ``{set name: file name}``. Process 0 writes."""
    n_train = source.x_train.shape[0]
    labels = {"source_train": source.y_train, "source_test": source.y_test,
              "target_train": target.y_train, "target_test": target.y_test}

    def by_set(latents: dict, r: int) -> dict:
        return {"source_train": latents["source"][r, :n_train], "source_test": latents["source"][r, n_train:],
                "target_train": latents["target_train"][r], "target_test": latents["target_test"][r]}

    def write(prefix: str, features: dict, meta: dict) -> dict:
        names = {}
        for set_name, domain, split in LATENT_SETS:
            names[set_name] = latents_name(prefix, set_name)
            if distributed.is_primary():
                np.savez_compressed(Path(out) / names[set_name], features=features[set_name],
                                    labels=labels[set_name], domain=domain, split=split, **meta)
        return names

    for r, (pt, rec) in enumerate(zip(points, records)):
        prefix = stages.latents_path(Path(), pt.mode, pt.p, pt.seed).stem
        rec["latents"] = write(prefix, by_set(training.final_latents, r), {"mode": pt.mode, "p": pt.p, "seed": pt.seed})
    for rec in untrained:
        r = _first_point_of(points, rec["seed"])
        prefix = stages.untrained_latents_path(Path(), rec["seed"]).stem
        rec["latents"] = write(prefix, by_set(training.initial_latents, r),
                               {"mode": "untrained", "seed": rec["seed"], "epoch": 0})


def run(cfg: StudyConfig, *, progress: Callable[[str], None] | None = None, dataset=None,
        command: str | None = None, hooks: Sequence = ()) -> dict:
    """Runs the study: loads the pair, trains, evaluates, writes the latents,
    ``results.json`` and ``report.md`` into the study's folder.

    ``dataset`` and ``hooks`` are not used (the study loads its two data sets and
    drives its own training loop); they are accepted like every study kind's.
    """
    say = progress or (lambda line: None)
    start = time.perf_counter()
    source_commit()  # read now: results.json names the code that was loaded, not a later checkout
    out = run_identity.out_dir(cfg)
    with run_identity.claim_folder(out, cfg):
        say(f"output folder: {out}")
        source, target = load_pair(cfg)
        say(f"source {source.summary()}")
        say(f"target {target.summary()}")
        payload = run_adaptation(cfg, source, target, progress=say, out=out)
        payload["versions"] = versions()
        payload["wall_seconds"] = time.perf_counter() - start
        payload["command"] = command if command is not None else " ".join(sys.argv)
        payload["fingerprint"] = run_identity.fingerprint(cfg)
        # The home directory as ~: a committed results.json names no folder of a user's.
        payload["compilation_cache_dir"] = home_relative(compilation_cache_dir())
        write_results_json(Path(out) / "results.json", payload)
        # From the payload's JSON form, as the docs' quoted tables read it back (icrst_jax.reporting.quoted).
        atomic_write_text(Path(out) / "report.md", render_adaptation(to_jsonable(payload)))
    return payload


def outputs(cfg: StudyConfig) -> list[Path]:
    """The files a finished study leaves for a reader: results.json and report.md."""
    out = run_identity.out_dir(cfg)
    return [out / "results.json", out / "report.md"]


table = adaptation_table
