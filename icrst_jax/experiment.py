"""The paper's experiment end to end: train, extract latents, evaluate, report.

``python -m experiments.run`` is a thin command line over :func:`run_experiment`.

Protocol (sections 6 and 7):
1. Load the data set; for sets without an official split a stratified
   held-out split (``test_fraction``, fixed ``split_seed``) is made.
2. For each mode and p, train all seeds in one vmapped program on the
   *training* split.
3. Extract the *test* split's latents (the autoencoder never trained on them:
   ICRST uses the labels in training, so cross-validating on training latents
   would leak them) and save them as ``latents_<mode>_p<P>_seed<S>.npz``.
4. 10-fold stratified cross-validation of SVM / RF / MLP / GaussianNB on those
   latents; mean and 95% percentile interval over folds (and seeds).
5. Mutual information of section 7 on the test split; t-SNE panels per mode;
   score-vs-p curves for a p grid; ``results.json`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from icrst_jax import evaluation, reporting
from icrst_jax.config import MODES, PAPER_MODEL_FOR_DATASET, ModelConfig, TrainConfig
from icrst_jax.models import check_widths, make_model

# Modes that depend on p; the others run once (recorded with p = 0, the
# point where ICRST/TRST reduce to standard training).
P_MODES = ("icrst", "trst")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything ``experiments.run`` decides. Defaults: a few-minute CPU run."""

    dataset: str = "breast_cancer"
    modes: tuple[str, ...] = ("standard", "icrst", "trst")
    p_values: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    epochs: int = 50
    batch_size: int = 512
    learning_rate: float = 1e-3
    width: float = 1.0
    model: str | None = None  # None: the paper's model for the data set
    dropout: float = 0.2
    negative_slope: float = 0.01
    dtype: str = "float32"
    dae_sigma: float = 0.5
    classifiers: tuple[str, ...] = evaluation.CLASSIFIERS
    n_folds: int = 10
    mi: bool = True
    mi_samples: int = 150
    mi_k: int = 20
    mi_bins: int = 16
    tsne: bool = True
    tsne_points: int = 2000
    data_dir: str | None = None
    image_size: int | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    input_scheme: str = "standardized"
    num_devices: int | None = None
    seed_batch: int | None = None  # TrainConfig.seed_batch: None = the engine's choice
    checkpoint_every: int = 0
    checkpoints: bool = True
    out: str = "runs/latest"
    n_jobs: int | None = None

    def __post_init__(self):
        if not self.modes:
            raise ValueError("at least one mode is needed")
        for m in self.modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}; known: {', '.join(MODES)} or all")
        if not self.p_values:
            raise ValueError("at least one p is needed")
        for p in self.p_values:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"p must be in [0, 1], got {p}")
        if not self.seeds:
            raise ValueError("the seed list is empty; give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        for c in self.classifiers:
            if c not in evaluation.CLASSIFIERS:
                raise ValueError(f"unknown classifier {c!r}; known: {', '.join(evaluation.CLASSIFIERS)}")
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be >= 1")
        # Fail fast on a width that empties a layer or a bad seed_batch, before any data is loaded.
        self.model_config()
        self.train_config(self.modes[0], self.p_values[0])

    def model_config(self) -> ModelConfig:
        name = self.model or PAPER_MODEL_FOR_DATASET.get(self.dataset, "conv")
        cfg = ModelConfig(
            name=name, width=self.width, negative_slope=self.negative_slope, dropout=self.dropout, dtype=self.dtype
        )
        check_widths(cfg)
        return cfg

    def train_config(self, mode: str, p: float) -> TrainConfig:
        return TrainConfig(
            mode=mode,
            p=p,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            dae_sigma=self.dae_sigma,
            num_devices=self.num_devices,
            seed_batch=self.seed_batch,
            checkpoint_every=self.checkpoint_every,
            seed=self.seeds[0],
            model=self.model_config(),
        )

    def runs(self) -> list[tuple[str, float]]:
        """(mode, p) pairs in order: p-independent modes once, the others per p."""
        out = []
        for m in self.modes:
            if m in P_MODES:
                out += [(m, float(p)) for p in self.p_values]
            else:
                out.append((m, 0.0))
        return out


def p_tag(p: float) -> str:
    """``1.0 -> '1'``, ``0.25 -> '0.25'``: the ``p<P>`` part of file names."""
    return f"{p:g}"


def latents_path(out: Path, mode: str, p: float, seed: int) -> Path:
    return out / f"latents_{mode}_p{p_tag(p)}_seed{seed}.npz"


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


def run_experiment(cfg: ExperimentConfig, *, progress: Callable[[str], None] | None = None, dataset=None) -> dict:
    """Runs the whole experiment and writes its files into ``cfg.out``.

    Args:
      cfg: the experiment configuration.
      progress: gets one line per stage / epoch / classifier; None is quiet.
      dataset: an already loaded :class:`icrst_jax.data.Dataset` (skips loading).

    Returns:
      The ``results.json`` payload (also written to ``cfg.out/results.json``).

    In a multi-process run (:mod:`icrst_jax.distributed`) every process runs
    all of it and computes the same payload; only process 0 writes files (its
    payload alone lists the figures), and ``cfg.out`` need exist on it only.
    """
    from icrst_jax import data as data_lib
    from icrst_jax import distributed
    from icrst_jax.train import encode, fit

    say = progress or (lambda line: None)
    t_start = time.perf_counter()
    out = Path(cfg.out)
    primary = distributed.is_primary()
    if primary:
        out.mkdir(parents=True, exist_ok=True)

    if dataset is None:
        say(f"loading {cfg.dataset} ...")
        dataset = data_lib.load_dataset(
            cfg.dataset,
            cfg.data_dir,
            image_size=cfg.image_size,
            test_fraction=cfg.test_fraction,
            split_seed=cfg.split_seed,
            input_scheme=cfg.input_scheme,
        )
    say(dataset.summary())
    # Check the model fits the data before spending time on anything.
    make_model(cfg.model_config(), dataset.x_train.shape[1:])
    mean, std = dataset.preprocessing.encoder_mean_std()
    metric = reporting.primary_metric(cfg.dataset)

    records = []
    tsne_panels = {}
    for mode, p in cfg.runs():
        tcfg = cfg.train_config(mode, p)
        label = f"{mode}" + (f" p={p_tag(p)}" if mode in P_MODES else "")
        say(f"== {label}: training {len(cfg.seeds)} seed(s) for {cfg.epochs} epochs")
        t0 = time.perf_counter()
        ckpt_dir = (out / "checkpoints" / f"{mode}_p{p_tag(p)}").absolute() if cfg.checkpoints else None
        result = fit(
            tcfg,
            dataset.x_train,
            dataset.y_train,
            seeds=cfg.seeds,
            mean=mean,
            std=std,
            checkpoint_dir=ckpt_dir,
            metadata={"preprocessing": dataset.preprocessing.to_dict(), "dataset": cfg.dataset},
            progress=say,
        )
        train_s = time.perf_counter() - t0

        say(f"   extracting test latents ({dataset.x_test.shape[0]} samples)")
        feats = encode(result, x=dataset.x_test, mean=mean, std=std)
        for i, s in enumerate(cfg.seeds if primary else ()):  # only process 0 writes files
            np.savez_compressed(
                latents_path(out, mode, p, s),
                features=feats[i],
                labels=dataset.y_test,
                mode=mode,
                p=p,
                seed=s,
                split="test",
            )

        per_seed = []
        mi_per_seed = []
        for i, s in enumerate(cfg.seeds):
            say(f"   {cfg.n_folds}-fold CV, seed {s}: {', '.join(cfg.classifiers)}")
            per_seed.append(
                evaluation.evaluate_classifiers(
                    feats[i],
                    dataset.y_test,
                    cfg.classifiers,
                    n_folds=cfg.n_folds,
                    seed=s,
                    n_jobs=cfg.n_jobs,
                    progress=lambda line: say("     " + line),
                )
            )
            # Table 2 is an image measure (per channel over pixels); tabular rows skip it.
            if cfg.mi and dataset.x_test.ndim == 4:
                mi_per_seed.append(
                    evaluation.mutual_information(
                        feats[i], dataset.x_test, n_samples=cfg.mi_samples, k=cfg.mi_k, bins=cfg.mi_bins, seed=s
                    )
                )
        classifiers = per_seed[0] if len(per_seed) == 1 else evaluation.pool_results(per_seed)
        mi = _pool_mi(mi_per_seed) if mi_per_seed else None
        record = {
            "mode": mode,
            "p": p,
            "seeds": list(cfg.seeds),
            "classifiers": classifiers,
            "mi": mi,
            "train_seconds": train_s,
            "compile_seconds": result.compile_seconds,
            "final_loss": result.final_loss.tolist(),
            "history": result.history,
            "latents": [latents_path(out, mode, p, s).name for s in cfg.seeds],
        }
        if mode == "dae":
            record["dae_sigma"] = cfg.dae_sigma
        records.append(record)
        say("   " + _summary_line(record, metric))
        # t-SNE: one panel per mode, at the largest p (the paper shows p = 1).
        key = reporting.MODE_LABELS[mode]
        if mode not in P_MODES or p == max(cfg.p_values):
            tsne_panels[key if mode not in P_MODES else f"{key} (p={p_tag(p)})"] = (feats[0], dataset.y_test)

    figures = []
    if cfg.tsne and primary:
        say("t-SNE of the test latents ...")
        figures.append(
            str(reporting.plot_tsne(tsne_panels, out / "tsne.png", seed=cfg.seeds[0], max_points=cfg.tsne_points,
                                    title=f"{cfg.dataset}: t-SNE of test-split latents (seed {cfg.seeds[0]})"))
        )
    if len(cfg.p_values) > 1 and primary:
        for mode in P_MODES:
            if mode in cfg.modes:
                curves = reporting.curves_from_records(records, metric=metric, mode=mode)
                figures.append(str(reporting.plot_accuracy_vs_p(curves, out / f"{metric}_vs_p_{mode}.png", metric=metric, mode=mode)))

    payload = {
        "dataset": cfg.dataset,
        "dataset_summary": dataset.summary(),
        "split": dataset.split,
        "metric": metric,
        "config": dataclasses.asdict(cfg),
        "model": dataclasses.asdict(cfg.model_config()),
        "seeds": list(cfg.seeds),
        "records": records,
        "figures": [Path(f).name for f in figures],
        "preprocessing": dataset.preprocessing.to_dict(),
        "versions": versions(),
        "wall_seconds": time.perf_counter() - t_start,
        "command": " ".join(sys.argv),
        # Where compiled programs were loaded from / stored (None: no persistent cache).
        "compilation_cache_dir": _compilation_cache_dir(),
    }
    if not primary:
        return payload
    reporting.write_results_json(out / "results.json", payload)
    reporting.render_report(records, dataset=cfg.dataset, out_path=out / "report.md", metric=metric,
                            figures=[Path(f).name for f in figures])
    say(f"wrote {out / 'results.json'}, {out / 'report.md'} and {len(figures)} figure(s) in {payload['wall_seconds']:.0f}s")
    return payload


def _compilation_cache_dir() -> str | None:
    import jax

    return jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None


def _pool_mi(per_seed: Sequence[dict]) -> dict:
    """MI over seeds: the per-sample values of all seeds pooled."""
    if len(per_seed) == 1:
        return per_seed[0]
    values = np.concatenate([np.asarray(m["per_sample"]) for m in per_seed])
    mean, low, high = evaluation.percentile_interval(values)
    pooled = dict(per_seed[0])
    pooled.update(mi=mean, low=low, high=high, per_sample=values, n_seeds=len(per_seed))
    return pooled


def _summary_line(record: dict, metric: str) -> str:
    parts = []
    for name, res in record["classifiers"].items():
        s = res[metric]
        parts.append(f"{name} {s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]")
    if record.get("mi"):
        parts.append(f"MI {record['mi']['mi']:.3f}")
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
        lines.append(f"{label:<16}{cells}{mi}")
    return "\n".join(lines)
