"""The paper's study end to end: train a grid, extract latents, evaluate, report.

``python -m experiments.run --config configs/NAME.py`` is a thin command line
over :func:`run_experiment`; the study is a :class:`icrst_jax.config.StudyConfig`.

Protocol (sections 6 and 7):
1. Load the data set; for sets without an official split a stratified
   held-out split (``data.test_fraction``, fixed ``data.split_seed``) is made.
2. Train every grid point (mode x p x seed) in one compiled program on the
   *training* split: the mode and p are data on the run axis.
3. Extract the *test* split's latents of every point (the autoencoder never
   trained on them: ICRST uses the labels in training, so cross-validating on
   training latents would leak them) and save them as
   ``latents_<mode>_p<P>_seed<S>.npz``.
4. 10-fold stratified cross-validation of SVM / RF / MLP / GaussianNB on those
   latents, all points x folds x classifiers in one pool of workers; mean and
   95% percentile interval over folds (and seeds).
5. Mutual information of section 7 on the test split (with its baselines) and
   the kNN label purity; t-SNE panels per mode; score-vs-p curves for a p grid;
   one ``results.json`` and one ``report.md``.

Beside the trained points, the study evaluates the *untrained* encoder (each
seed's initial parameters, which do not depend on the mode) as a reference row,
each feature scaling of ``eval.scalings``, and, for ``eval.at_epochs``, the
held-out latents after those epochs of the same training run (accuracy, MI and
purity against epochs).
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from icrst_jax import distributed, evaluation, faults, reporting, run_identity
from icrst_jax.config import P_MODES, StudyConfig
from icrst_jax.models import check_widths, make_model

# Sample shape and training-split size of each data set at its default image
# size, for the dry check of a study config without its data (the sizes of the
# official training splits; 80% of the whole set where the loader holds out 20%).
DATASET_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "breast_cancer": ((30,), 455),
    "digits": ((28, 28, 1), 1437),
    "mnist5k": ((28, 28, 1), 4000),
    "mnist": ((28, 28, 1), 60000),
    "fashion_mnist": ((28, 28, 1), 60000),
    "cifar10": ((32, 32, 3), 50000),
    "caltech101": ((64, 64, 3), 3060),  # TFDS caltech101 train split
}


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


def dry_check(cfg: StudyConfig, *, num_devices: int | None = None) -> dict:
    """Checks a study config without its data or any compilation.

    The model is built for the data set's sample shape and traced abstractly
    (``jax.eval_shape``): its reconstruction must have the sample's shape.
    Returns what the study would run: grid size, shapes, the global batch (as
    the engine sizes it for ``num_devices``) and steps per epoch, parameter count.

    Raises:
      ValueError: a width that empties a layer, or a model that does not fit
        the data (image side, channels).
    """
    if cfg.data.target is not None:  # an adaptation study: two data sets, the mlp on flattened images
        from icrst_jax.adaptation import dry_check as adaptation_dry_check

        return adaptation_dry_check(cfg, num_devices=num_devices)
    import math

    import jax
    import jax.numpy as jnp

    from icrst_jax.train import effective_batch_size

    cfg.check_model_fits_data()
    cfg.check_eval_epochs()
    check_widths(cfg.train.model)
    shape, n_train = DATASET_SHAPES[cfg.data.name]
    if cfg.data.image_size is not None and len(shape) == 3:
        shape = (cfg.data.image_size, cfg.data.image_size, shape[2])
    model = make_model(cfg.train.model, shape)
    x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    variables = jax.eval_shape(lambda k, xs: model.init({"params": k}, xs, train=False), jax.random.key(0), x)
    recon, latent = jax.eval_shape(lambda v, xs: model.apply(v, xs, train=False), variables, x)
    if recon.shape != x.shape:
        raise ValueError(f"{cfg.train.model.name} reconstructs {recon.shape[1:]} from samples of shape {shape}")
    n_dev = num_devices or cfg.train.num_devices or 1
    batch = effective_batch_size(cfg.train, n_train, n_dev)
    n_params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(variables["params"]))
    return {
        "dataset": cfg.data.name,
        "grid_points": len(cfg.grid()),
        "runs": [f"{m} p={p_tag(p)}" for m, p in cfg.runs()],
        "seeds": list(cfg.seeds),
        "sample_shape": list(shape),
        "latent_shape": list(latent.shape[1:]),
        "train_samples": n_train,
        "batch": batch,
        "steps_per_epoch": math.ceil(n_train / batch),
        "params": n_params,
    }


def versions() -> dict:
    import flax
    import jax
    import optax
    import sklearn

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
    }


def setup_compilation_cache(
    directory: str | None = None, *, enabled: bool = True, progress: Callable[[str], None] | None = None
) -> str | None:
    """The command line's persistent XLA compilation cache; call before any JAX work.

    A repeated run, and every point of a p sweep (``p`` is traced data, so all
    p share one compiled epoch), then loads the compiled programs from disk
    instead of compiling them; see :func:`icrst_jax.runtime.enable_compilation_cache`
    for where the cache lives and why it must be trusted.

    Args:
      directory: ``--compilation-cache DIR``; None means ``$ICRST_JAX_CACHE_DIR``,
        else ``~/.cache/icrst_jax/xla``.
      enabled: False for ``--no-compilation-cache`` (also turns off a cache JAX
        was configured with elsewhere, e.g. ``JAX_COMPILATION_CACHE_DIR``).
      progress: gets one line naming the cache directory (or "off").

    Returns:
      The cache directory, or None when the cache is off.

    Raises:
      OSError: an explicitly given ``directory`` cannot be created. A default
        location that cannot be created (read-only home, say) only costs the
        speed-up: the run goes on without a cache and says so.
    """
    from icrst_jax.runtime import enable_compilation_cache

    say = progress or (lambda line: None)
    try:
        used = enable_compilation_cache(directory if enabled else "off")
    except OSError as e:
        if directory is not None:
            raise OSError(f"cannot use compilation cache directory {directory!r}: {e}") from e
        say(f"XLA compilation cache: off (cannot use the default location: {e})")
        return enable_compilation_cache("off")
    say(f"XLA compilation cache: {used}" if used else "XLA compilation cache: off")
    return used


def run_experiment(
    cfg: StudyConfig, *, progress: Callable[[str], None] | None = None, dataset=None, command: str | None = None
) -> dict:
    """Runs the whole study and writes its files into its folder
    (``cfg.out``, or ``runs/<dataset>-<fingerprint>``: :func:`icrst_jax.run_identity.out_dir`).

    The folder is locked for the run, and must hold this study or nothing
    (:func:`icrst_jax.run_identity.check_folder`): a rerun of the same study
    resumes its checkpoint, another study is refused before any data is loaded.

    Args:
      cfg: the study configuration.
      progress: gets one line per stage / epoch / classifier; None is quiet.
      dataset: an already loaded :class:`icrst_jax.data.Dataset` (skips loading).
      command: the command line as typed, for ``results.json`` (default: ``sys.argv``).

    Returns:
      The ``results.json`` payload (also written to ``<folder>/results.json``).

    Raises:
      icrst_jax.run_identity.RunMismatch, FolderBusy: the folder holds another
        study, or another run is writing into it.
      icrst_jax.faults.NonFiniteLoss: training or its latents became NaN / infinite.

    In a multi-process run (:mod:`icrst_jax.distributed`) every process runs
    all of it and computes the same payload; only process 0 locks and checks the
    folder and writes files (its payload alone lists the figures).
    """
    if cfg.data.target is not None:  # an unsupervised domain-adaptation study: its own loop and report
        from icrst_jax.adaptation import run_adaptation_study

        return run_adaptation_study(cfg, progress=progress, command=command)
    out = run_identity.out_dir(cfg)
    cfg.check_model_fits_data()
    cfg.check_eval_epochs()
    check_widths(cfg.train.model)
    if not distributed.is_primary():
        # Process 0 owns the folder: it alone locks, checks and writes it.
        return _run_locked(cfg, out, progress=progress, dataset=dataset, command=command)
    run_identity.check_out_path(out)
    with run_identity.FolderLock(out):
        run_identity.check_folder(out, cfg)
        run_identity.write_identity(out, cfg)
        return _run_locked(cfg, out, progress=progress, dataset=dataset, command=command)


def _run_locked(cfg: StudyConfig, out: Path, *, progress, dataset, command) -> dict:
    from icrst_jax import data as data_lib
    from icrst_jax.train import encode, fit

    say = progress or (lambda line: None)
    t_start = time.perf_counter()
    say(f"output folder: {out}")
    primary = distributed.is_primary()

    if dataset is None:
        say(f"loading {cfg.data.name} ...")
        dataset = data_lib.load_dataset(
            cfg.data.name,
            cfg.data.data_dir,
            image_size=cfg.data.image_size,
            test_fraction=cfg.data.test_fraction,
            split_seed=cfg.data.split_seed,
            input_scheme=cfg.data.input_scheme,
        )
    say(dataset.summary())
    # Check the model fits the data before spending time on anything.
    make_model(cfg.train.model, dataset.x_train.shape[1:])
    mean, std = dataset.preprocessing.encoder_mean_std()
    metric = reporting.primary_metric(cfg.data.name)
    points = cfg.grid()
    # The last setting that depends on the data: checked before training, not after it.
    if cfg.eval.mi and dataset.x_test.ndim == 4 and cfg.eval.mi_k >= dataset.x_test.shape[0]:
        raise ValueError(f"--mi-k {cfg.eval.mi_k} must be below the test split's {dataset.x_test.shape[0]} samples")
    t_loaded = time.perf_counter()

    # Held-out latents along training, encoded from the training loop's own
    # state (no retraining): epoch 0 gives the untrained reference row.
    snapshot_epochs = set(cfg.eval.at_epochs) | ({0} if cfg.eval.untrained else set())
    snapshot_epochs.discard(cfg.train.epochs)  # the final latents come from the result
    snapshots: dict[int, np.ndarray] = {}

    def on_epoch(epoch, engine, state):
        snapshots[epoch] = encode(engine, state, dataset.x_test, mean=mean, std=std)

    say(f"== training {len(points)} grid points ({', '.join(f'{m} p={p_tag(p)}' for m, p in cfg.runs())}; "
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
            "dataset": cfg.data.name,
            # Where the data actually came from (files or TFDS) joins the config's fields.
            "identity": {**run_identity.fingerprint(cfg), "data.source": dataset.source},
        },
        progress=say,
        at_epochs=sorted(snapshot_epochs),
        on_epoch=on_epoch,
    )
    t_trained = time.perf_counter()
    epochs_s = sum(h["seconds"] for h in result.history)

    say(f"== evaluating: test latents ({dataset.x_test.shape[0]} samples) of {len(points)} points, "
        f"{len(points)} x {cfg.eval.n_folds} folds x {len(cfg.eval.classifiers)} classifiers"
        f" x {len(cfg.eval.scalings)} scaling(s)")
    if result.missed_epochs:
        say(f"warning: no latents at epochs {result.missed_epochs}: they were trained before the checkpoint "
            f"this run resumed from")
    # The engine keeps the jitted encoder of the snapshots above: no second compilation.
    feats = encode(result.engine, result.state, dataset.x_test, mean=mean, std=std)  # (R, N, D)
    loss_curves = [[h["loss"][i] for h in result.full_history] for i in range(len(points))]
    diverged = [faults.divergence(loss_curves[i], feats[i]) for i in range(len(points))]
    if any(d == faults.NON_FINITE_LATENTS for d in diverged):
        bad = [pt for pt, d in zip(points, diverged) if d == faults.NON_FINITE_LATENTS]
        raise faults.NonFiniteLoss(
            f"the test latents of {', '.join(f'{pt.mode} p={pt.p:g} seed {pt.seed}' for pt in bad)} are not finite "
            f"after {cfg.train.epochs} epochs; likely causes: a learning rate too large (--lr) or extreme data values"
        )
    for pt, d in zip(points, diverged):
        if d:
            say(f"warning: {pt.mode} p={p_tag(pt.p)} seed {pt.seed} diverged ({d}): its scores are not a result")
    for i, pt in enumerate(points if primary else ()):  # only process 0 writes files
        np.savez_compressed(
            latents_path(out, pt.mode, pt.p, pt.seed),
            features=feats[i], labels=dataset.y_test, mode=pt.mode, p=pt.p, seed=pt.seed, split="test",
        )
    seeds = list(cfg.seeds)
    # The untrained encoder of seed s: its initial parameters depend on the seed
    # only, so any point of that seed holds them at epoch 0.
    untrained = None
    if cfg.eval.untrained:
        first = [next(i for i, pt in enumerate(points) if pt.seed == s) for s in seeds]
        untrained = snapshots[0][first]
        for s, f in zip(seeds if primary else (), untrained):
            np.savez_compressed(untrained_latents_path(out, s), features=f, labels=dataset.y_test, mode="untrained",
                                seed=s, epoch=0, split="test")
    mid_epochs = sorted(e for e in cfg.eval.at_epochs if 0 < e < cfg.train.epochs and e in snapshots)
    for e in mid_epochs if primary else ():
        np.savez_compressed(epoch_latents_path(out, e), features=snapshots[e], labels=dataset.y_test, epoch=e,
                            points=np.array([pt.tag for pt in points]), split="test")

    ev = cfg.eval
    n_jobs = -1 if ev.n_jobs is None else ev.n_jobs
    # Table 2 is an image measure (per channel over pixels); tabular rows skip it.
    images = dataset.x_test if ev.mi and dataset.x_test.ndim == 4 else None
    sets = [(feats[i], pt.seed) for i, pt in enumerate(points)]
    sets += [(f, s) for f, s in zip(untrained, seeds)] if untrained is not None else []
    evals = _evaluate_sets(sets, dataset.y_test, ev, ev.classifiers, images, n_jobs, say)
    final_evals, untrained_evals = evals[: len(points)], evals[len(points):]
    mid_evals = {}
    if mid_epochs:
        say(f"== evaluating the latents after epochs {mid_epochs} ({', '.join(ev.epoch_classifiers)})")
        mid_sets = [(snapshots[e][i], pt.seed) for e in mid_epochs for i, pt in enumerate(points)]
        flat = _evaluate_sets(mid_sets, dataset.y_test, ev, ev.epoch_classifiers, images, n_jobs, say)
        mid_evals = {e: flat[j * len(points):(j + 1) * len(points)] for j, e in enumerate(mid_epochs)}

    final_loss = result.final_loss.tolist()
    point_records = []
    for i, pt in enumerate(points):
        point_records.append({
            **dataclasses.asdict(pt),
            **_pooled(final_evals[i:i + 1], ev.scalings),
            "final_loss": final_loss[i] if final_loss else None,
            "loss_curve": loss_curves[i],
            "latents": latents_path(out, pt.mode, pt.p, pt.seed).name,
            "diverged": diverged[i],
        })

    records = []
    tsne_panels = {}
    if untrained is not None:
        records.append({"mode": "untrained", "p": None, "seeds": seeds, "epoch": 0,
                        **_pooled(untrained_evals, ev.scalings),
                        "latents": [untrained_latents_path(out, s).name for s in seeds]})
        say("   untrained encoder: " + _summary_line(records[-1], metric))
        tsne_panels[reporting.MODE_LABELS["untrained"]] = (untrained[0], dataset.y_test)
    for mode, p in cfg.runs():
        idx = [i for i, pt in enumerate(points) if (pt.mode, pt.p) == (mode, p)]
        record = {
            "mode": mode,
            "p": p,
            "seeds": [points[i].seed for i in idx],
            "epoch": cfg.train.epochs,
            **_pooled([final_evals[i] for i in idx], ev.scalings),
            "final_loss": [final_loss[i] for i in idx] if final_loss else [],
            "latents": [point_records[i]["latents"] for i in idx],
        }
        if any(diverged[i] for i in idx):
            record["diverged"] = [f"seed {points[i].seed}: {diverged[i]}" for i in idx if diverged[i]]
        if mode == "dae":
            record["dae_sigma"] = cfg.train.dae_sigma
        if ev.at_epochs:
            # Epoch 0 is the untrained encoder of the same seeds; the last epoch the record itself.
            steps = []
            if untrained is not None:
                steps.append((0, [untrained_evals[seeds.index(points[i].seed)] for i in idx]))
            steps += [(e, [mid_evals[e][i] for i in idx]) for e in mid_epochs]
            steps.append((cfg.train.epochs, [final_evals[i] for i in idx]))
            record["trajectory"] = [
                {"epoch": e, **_pooled(_only(es, ev.epoch_classifiers), ev.scalings, per_sample=False)} for e, es in steps
            ]
        records.append(record)
        label = mode + (f" p={p_tag(p)}" if mode in P_MODES else "")
        say(f"   {label}: " + _summary_line(record, metric))
        # t-SNE: one panel per mode, at the largest p (the paper shows p = 1).
        key = reporting.MODE_LABELS[mode]
        if mode not in P_MODES or p == max(cfg.p_values):
            tsne_panels[key if mode not in P_MODES else f"{key} (p={p_tag(p)})"] = (feats[idx[0]], dataset.y_test)

    figures = []
    if cfg.eval.tsne and primary:
        say("t-SNE of the test latents ...")
        figures.append(
            str(reporting.plot_tsne(tsne_panels, out / "tsne.png", seed=cfg.seeds[0], max_points=cfg.eval.tsne_points,
                                    title=f"{cfg.data.name}: t-SNE of test-split latents (seed {cfg.seeds[0]})"))
        )
    if len(cfg.p_values) > 1 and primary:
        for mode in P_MODES:
            if mode in cfg.modes:
                curves = reporting.curves_from_records(records, metric=metric, mode=mode)
                figures.append(str(reporting.plot_accuracy_vs_p(curves, out / f"{metric}_vs_p_{mode}.png", metric=metric, mode=mode)))
    if ev.at_epochs and primary:
        figures.append(str(reporting.plot_vs_epochs(
            records, out / f"{metric}_vs_epochs.png", metric=metric, classifier=ev.epoch_classifiers[0],
            title=f"{cfg.data.name}: held-out latents along training ({reporting.CLASSIFIER_LABELS[ev.epoch_classifiers[0]]})")))
    # Figures of an earlier run in this folder (a t-SNE before --no-tsne) would sit beside these results.
    for stale in (set(out.glob("*.png")) - {Path(f) for f in figures}) if primary else ():
        stale.unlink()
    t_done = time.perf_counter()

    # Where the study's wall time went: the epoch program's compilation, the
    # epochs themselves, and everything after training (latents, fits, MI, figures).
    timing = {
        "wall_s": t_done - t_start,
        "loading_s": t_loaded - t_start,
        "compiling_s": result.compile_seconds,
        "training_s": epochs_s,
        "setup_s": (t_trained - t_loaded) - result.compile_seconds - epochs_s,  # init, transfers, checkpoints
        "evaluation_s": t_done - t_trained,
    }
    payload = {
        "dataset": cfg.data.name,
        "dataset_summary": dataset.summary(),
        "split": dataset.split,
        "metric": metric,
        "config": cfg.to_dict(),
        "model": dataclasses.asdict(cfg.train.model),
        "batch_size": result.engine.batch_size,  # the global batch used (batch_size None: the paper's)
        "scalings": list(ev.scalings),
        "seeds": list(cfg.seeds),
        "records": records,
        "points": point_records,
        "history": result.history,
        "figures": [Path(f).name for f in figures],
        "preprocessing": dataset.preprocessing.to_dict(),
        "versions": versions(),
        "timing": timing,
        "wall_seconds": timing["wall_s"],
        "command": command if command is not None else " ".join(sys.argv),
        "fingerprint": run_identity.short_hash(run_identity.fingerprint(cfg)),
        "diverged": [{**dataclasses.asdict(pt), "reason": d} for pt, d in zip(points, diverged) if d],
        # Where compiled programs were loaded from / stored (None: no persistent cache).
        "compilation_cache_dir": _compilation_cache_dir(),
    }
    if not primary:
        return payload
    reporting.write_results_json(out / "results.json", payload)
    warnings = [
        f"{pt.mode} p={p_tag(pt.p)} seed {pt.seed} diverged ({d}); its rows are marked DIVERGED and are not results."
        for pt, d in zip(points, diverged) if d
    ]
    reporting.render_report(records, dataset=cfg.data.name, out_path=out / "report.md", metric=metric,
                            figures=[Path(f).name for f in figures], warnings=warnings)
    say(f"wrote {out / 'results.json'}, {out / 'report.md'} and {len(figures)} figure(s)")
    say(timing_line(timing))
    return payload


def timing_line(timing: dict) -> str:
    """``study 95 s: training 40 s, compiling 30 s, evaluation 20 s, ...``"""
    t = timing
    return (
        f"study {t['wall_s']:.0f} s: training {t['training_s']:.1f} s, compiling {t['compiling_s']:.1f} s, "
        f"evaluation {t['evaluation_s']:.1f} s, loading {t['loading_s']:.1f} s, other {t['setup_s']:.1f} s"
    )


def _compilation_cache_dir() -> str | None:
    import jax

    return jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None


def _evaluate_sets(sets, labels, ev, classifiers, images, n_jobs, say) -> list[dict]:
    """Classifiers (each scaling), MI, purity and spread of each ``(features, seed)``.

    All sets x scalings x classifiers x folds go to one pool of workers.
    Returns per set ``{"classifiers": {scaling: result}, "mi", "purity", "latent_spread"}``.
    """
    jobs = [(f, labels, s, sc) for f, s in sets for sc in ev.scalings]
    flat = evaluation.evaluate_many(jobs, classifiers, n_folds=ev.n_folds, n_jobs=n_jobs,
                                    progress=lambda line: say("   " + line), fold_lines=False)
    n_sc = len(ev.scalings)
    out = []
    for j, (f, s) in enumerate(sets):
        out.append({
            "classifiers": dict(zip(ev.scalings, flat[j * n_sc:(j + 1) * n_sc])),
            "mi": evaluation.mutual_information(f, images, n_samples=ev.mi_samples, k=ev.mi_k, bins=ev.mi_bins,
                                                seed=s, baselines=ev.mi_baselines) if images is not None else None,
            "purity": evaluation.knn_purity(f, labels, k=min(ev.purity_k, len(labels) - 1)) if ev.purity else None,
            "latent_spread": evaluation.latent_spread(f),
        })
    return out


def _only(evals: Sequence[dict], classifiers: Sequence[str]) -> list[dict]:
    """``evals`` with only ``classifiers`` kept (the trajectory's classifiers)."""
    return [{**e, "classifiers": {sc: {n: r[n] for n in classifiers} for sc, r in e["classifiers"].items()}}
            for e in evals]


def _pooled(evals: Sequence[dict], scalings: Sequence[str], *, per_sample: bool = True) -> dict:
    """Record fields from the evaluations of one configuration's seeds, pooled.

    ``classifiers`` is the first scaling's (the main table), ``other_scalings``
    the rest by name. ``per_sample=False`` drops the MI's per-sample values.
    """
    by_scaling = {
        sc: evals[0]["classifiers"][sc] if len(evals) == 1 else evaluation.pool_results([e["classifiers"][sc] for e in evals])
        for sc in scalings
    }
    mi = [e["mi"] for e in evals if e["mi"] is not None]
    mi = evaluation.pool_mi(mi) if mi else None
    if mi is not None and not per_sample:
        mi = {k: ({kk: vv for kk, vv in v.items() if kk != "per_sample"} if isinstance(v, dict) else v)
              for k, v in mi.items() if k not in ("per_sample", "indices")}
    purity = [e["purity"] for e in evals if e["purity"] is not None]
    return {
        "scaling": scalings[0],
        "classifiers": by_scaling[scalings[0]],
        "other_scalings": {sc: by_scaling[sc] for sc in scalings[1:]},
        "mi": mi,
        "purity": evaluation.pool_purity(purity) if purity else None,
        "latent_spread": [e["latent_spread"] for e in evals],
    }


def _summary_line(record: dict, metric: str) -> str:
    parts = []
    for name, res in record["classifiers"].items():
        s = res[metric]
        parts.append(f"{name} {s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]")
    for sc, clfs in (record.get("other_scalings") or {}).items():
        parts.append(f"| {sc}: " + "  ".join(f"{n} {r[metric]['mean']:.3f}" for n, r in clfs.items()))
    if record.get("mi"):
        parts.append(f"MI {record['mi']['mi']:.3f}")
        if record["mi"].get("corrected"):
            parts.append(f"(corrected {record['mi']['corrected']['mi']:.3f})")
    if record.get("purity"):
        parts.append(f"purity {record['purity']['purity']:.3f}")
    return f"{metric}: " + "  ".join(parts)


def comparison_table(payload: dict) -> str:
    """A plain-text table of the primary metric per mode and classifier (for the terminal)."""
    metric = payload["metric"]
    recs = payload["records"]
    names = list(recs[0]["classifiers"]) if recs else []
    head = f"{'method':<16}" + "".join(f"{n:>22}" for n in names) + ("   MI" if any(r.get("mi") for r in recs) else "")
    lines = [f"{payload['dataset']} — {metric} on held-out latents (mean [95% interval])", head]
    for r in recs:
        label = r["mode"] + (f" p={p_tag(r['p'])}" if r["mode"] in P_MODES else "")
        cells = "".join(
            f"{r['classifiers'][n][metric]['mean']:>8.3f} [{r['classifiers'][n][metric]['low']:.2f},{r['classifiers'][n][metric]['high']:.2f}]"
            for n in names
        )
        mi = f"  {r['mi']['mi']:.3f}" if r.get("mi") else ""
        lines.append(f"{label:<16}{cells}{mi}" + ("  DIVERGED" if r.get("diverged") else ""))
    if payload.get("diverged"):
        lines.append(f"DIVERGED: {len(payload['diverged'])} grid point(s) diverged (see results.json 'diverged'); "
                     "their rows are not results")
    return "\n".join(lines)
