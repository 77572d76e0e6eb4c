"""Command line of the paper's studies.

    python -m experiments.run --config configs/cpu_breast_cancer.py          # a few CPU minutes
    python -m experiments.run --config configs/cpu_digits.py --set train.epochs=10
    python -m experiments.run --config configs/paper_mnist.py --dry-run      # check it, no data
    python -m experiments.run --dataset digits --mode all --p-grid 0,0.5,1 --seeds 0 1

A study (modes x p values x seeds) is one typed config (:class:`icrst_jax.config.StudyConfig`):
a ``configs/*.py`` file whose ``get_config()`` returns it, or the defaults. ``--set KEY=VALUE``
overrides any field by its dotted path; the flags below are shorthands for the same fields,
applied before ``--set``. Every grid point trains in one compiled program.

Compiled XLA programs are cached on disk (``~/.cache/icrst_jax/xla``; move it with
``--compilation-cache DIR`` or ``$ICRST_JAX_CACHE_DIR``, turn it off with
``--no-compilation-cache``), so a repeated run skips compilation.

The logic lives in :mod:`icrst_jax.experiment`; this file only parses options.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from icrst_jax.config import (
    CLASSIFIERS,
    CONV_IMPLS,
    DATASETS,
    INPUT_SCHEMES,
    MODEL_NAMES,
    MODES,
    PAPER_MODEL_FOR_DATASET,
    StudyConfig,
    apply_override,
    load_config,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def _p_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--p-grid takes comma-separated numbers, got {text!r}") from None


# Shorthand flags: (flag, config key, argparse options, help). A flag given on
# the command line becomes ``key=value`` before the --set overrides; its
# default is the config's (printed in --help from StudyConfig, declared only there).
SHORTHANDS = [
    ("--epochs", "train.epochs", dict(type=int), "training epochs (paper: 50)"),
    ("--batch-size", "train.batch_size", dict(type=int),
     "global batch size; none: the paper's for the model (512, 64 for conv_strided)"),
    ("--lr", "train.learning_rate", dict(type=float), "Adam learning rate (paper: 1e-3)"),
    ("--width", "train.model.width", dict(type=float), "channel multiplier of the Table D1 model (1 = paper)"),
    ("--model", "train.model.name", dict(choices=MODEL_NAMES), "model [default: the paper's for the data set]"),
    ("--dropout", "train.model.dropout", dict(type=float), "dropout rate (Table D1: 0.2; authors' code: 0.5)"),
    ("--negative-slope", "train.model.negative_slope", dict(type=float), "LeakyReLU slope"),
    ("--dtype", "train.model.dtype", dict(choices=("float32", "bfloat16")), "compute dtype (bfloat16 = mixed precision)"),
    ("--conv-impl", "train.model.conv_impl", dict(choices=CONV_IMPLS),
     "how convolutions are computed (auto: the CPU path on a CPU, XLA's elsewhere)"),
    ("--dae-sigma", "train.dae_sigma", dict(type=float), "noise std of the dae mode, in encoder-input units"),
    ("--classifiers", "eval.classifiers", dict(nargs="+"), f"any of {', '.join(CLASSIFIERS)}"),
    ("--folds", "eval.n_folds", dict(type=int), "stratified cross-validation folds"),
    ("--mi-samples", "eval.mi_samples", dict(type=int), "MI: sampled observations (paper: 150)"),
    ("--mi-k", "eval.mi_k", dict(type=int), "MI: latent-space neighbours (paper: 20)"),
    ("--data-dir", "data.data_dir", dict(), "TFDS data_dir or folder with the original files"),
    ("--image-size", "data.image_size", dict(type=int), "resize images to this side (digits: 28, caltech101: 64)"),
    ("--test-fraction", "data.test_fraction", dict(type=float), "held-out fraction for sets without an official split"),
    ("--input-scheme", "data.input_scheme", dict(choices=INPUT_SCHEMES),
     "encoder input: per-channel standardised (paper) or [0,1]; the target is always [0,1]"),
    ("--num-devices", "train.num_devices", dict(type=int), "data-parallel devices (default: all local)"),
    ("--seed-batch", "train.seed_batch", dict(type=int),
     "train the grid points in chunks of this many inside one program (>= the number of points: all vmapped) "
     "[default: 1 for the conv models on a CPU, all vmapped otherwise]"),
    ("--checkpoint-every", "train.checkpoint_every", dict(type=int), "checkpoint every N epochs (always at the end)"),
    ("--n-jobs", "eval.n_jobs", dict(type=int), "parallel workers for the classifier fits [default: every core]"),
    ("--out", "out", dict(), "output folder [default: runs/<dataset>-<fingerprint>, a folder of the study's own]"),
]


def _default(key: str):
    obj = StudyConfig()
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="python -m experiments.run",
        description=(
            "Train undercomplete autoencoders with standard, ICRST (in-class random target), TRST "
            "(whole-set random target) or denoising training over a grid of modes x p x seeds in one "
            "compiled program, extract the held-out split's latents, cross-validate scikit-learn "
            "classifiers on them, and write results.json, report.md, latents_*.npz and figures into the "
            "output folder. Defaults are those of the config file (--config) or of StudyConfig."
        ),
    )
    ap.add_argument("--config", metavar="FILE", default=None,
                    help="study config: a Python file whose get_config() returns a StudyConfig (see configs/)")
    ap.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                    help="override a config field by its dotted path, e.g. train.epochs=20, modes=standard,icrst, "
                         "p_values=0,0.5,1, eval.n_folds=5; repeatable, applied after the other flags")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the config (model shapes, batch) without data or training, print the grid and exit")
    ap.add_argument("--dataset", default=None, choices=DATASETS,
                    help="data set (data.name; also picks the paper's model unless --model is given) "
                         f"[default: {_default('data.name')}]")
    ap.add_argument("--mode", action="append", choices=MODES + ("all",), default=None,
                    help="training mode (modes); repeat it to compare several, 'all' for every mode "
                         f"[default: {' '.join(_default('modes'))}]")
    grp = ap.add_mutually_exclusive_group()
    grp.add_argument("--p", type=float, default=None, help="one Bernoulli probability of a swapped target (p_values)")
    grp.add_argument("--p-grid", type=_p_list, default=None, help="comma-separated p values, e.g. 0,0.2,0.4,0.6,0.8,1.0")
    ap.add_argument("--seeds", type=int, nargs="*", default=None,
                    help=f"seeds of every (mode, p) [default: {' '.join(map(str, _default('seeds')))}]")
    for flag, key, opts, text in SHORTHANDS:
        # A help text that explains its own default says it once.
        default = "" if "[default:" in text else f" [default: {_default(key)}]"
        ap.add_argument(flag, default=None, help=f"{text} ({key}){default}", **opts)
    ap.add_argument("--no-mi", action="store_true", help="skip the section 7 mutual information (eval.mi=false)")
    ap.add_argument("--no-tsne", action="store_true", help="skip the t-SNE figure (eval.tsne=false)")
    ap.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints (checkpoints=false)")
    cache = ap.add_mutually_exclusive_group()
    cache.add_argument("--compilation-cache", metavar="DIR", default=None,
                       help="persistent XLA compilation cache: a repeated run loads compiled programs "
                            "from here instead of compiling; must not be writable by others (entries are code) "
                            "[default: $ICRST_JAX_CACHE_DIR, else ~/.cache/icrst_jax/xla]")
    cache.add_argument("--no-compilation-cache", action="store_true",
                       help="compile every program afresh and write no cache")
    dist = ap.add_argument_group(
        "multi-process run (several hosts, or one process per GPU; docs/multiprocess.md)",
        "Start the same command in every process. All of them train together and compute the same results; "
        "only process 0 writes --out. Without these options the run is one process.")
    dist.add_argument("--coordinator-address", metavar="HOST:PORT", default=None,
                      help="address of process 0 and a free port on it, the same in every process")
    dist.add_argument("--num-processes", type=int, default=None, help="number of processes N")
    dist.add_argument("--process-id", type=int, default=None, help="this process's number, 0..N-1")
    dist.add_argument("--distributed", choices=("auto",), default=None,
                      help="auto: read what the three options above leave out from the cluster launcher's "
                           "environment (SLURM, Open MPI, Cloud TPU)")
    ap.add_argument("--quiet", action="store_true", help="print only the final table")
    return ap


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def flagged_overrides(args) -> list[tuple[str, str]]:
    """``(flag, key=value)``: the assignments that the given shorthand flags stand for, each with its flag."""
    sets = []
    if args.dataset is not None:
        sets.append(("--dataset", f"data.name={args.dataset}"))
        if args.model is None:
            sets.append(("--dataset", f"train.model.name={PAPER_MODEL_FOR_DATASET[args.dataset]}"))
    if args.mode:
        modes = list(MODES) if "all" in args.mode else list(dict.fromkeys(args.mode))
        sets.append(("--mode", f"modes={_text(modes)}"))
    if args.p is not None:
        sets.append(("--p", f"p_values={args.p}"))
    if args.p_grid is not None:
        sets.append(("--p-grid", f"p_values={_text(args.p_grid)}"))
    if args.seeds is not None:
        sets.append(("--seeds", f"seeds={_text(args.seeds)}"))
    for flag, key, _, _ in SHORTHANDS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            sets.append((flag, f"{key}={_text(value)}"))
    if args.no_mi:
        sets.append(("--no-mi", "eval.mi=false"))
    if args.no_tsne:
        sets.append(("--no-tsne", "eval.tsne=false"))
    if args.no_checkpoints:
        sets.append(("--no-checkpoints", "checkpoints=false"))
    return sets


def shorthand_overrides(args) -> list[str]:
    """The ``key=value`` assignments that the given shorthand flags stand for."""
    return [assignment for _, assignment in flagged_overrides(args)]


def config_from_args(args) -> StudyConfig:
    """The config file (or the defaults), then the shorthand flags, then --set.

    Raises:
      ValueError: one line that starts with the flag (or ``--set key=value``) that made the config invalid.
    """
    cfg = load_config(args.config) if args.config else StudyConfig()
    for flag, assignment in flagged_overrides(args) + [(f"--set {a}", a) for a in args.overrides]:
        try:
            cfg = apply_override(cfg, assignment)
        except ValueError as e:
            raise ValueError(f"{flag}: {e}") from None
    return cfg


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "experiments.run", *argv])
    from icrst_jax import faults

    cfg = None
    with faults.handle_interrupts():
        try:
            cfg = config_from_args(args)
            from icrst_jax import distributed

            # Before JAX touches a device: a multi-process run must be joined first.
            distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                                   auto=args.distributed == "auto")
            from icrst_jax.experiment import comparison_table, dry_check, run_experiment, setup_compilation_cache

            check = dry_check(cfg)  # a width that empties a layer fails here, before any data is loaded
            from icrst_jax.run_identity import check_out_path, out_dir

            check_out_path(out_dir(cfg))
            if args.dry_run:
                print(json.dumps(check, indent=1))
                return 0
            progress = None if args.quiet else distributed.tag_progress(
                lambda line: print(line, file=sys.stderr, flush=True))
            # Before anything compiles: programs compiled earlier would bypass the cache.
            setup_compilation_cache(args.compilation_cache, enabled=not args.no_compilation_cache, progress=progress)
            payload = run_experiment(cfg, progress=progress, command=command)
        except faults.Interrupted as e:
            print(_interrupted_line(e, cfg), file=sys.stderr)
            return e.exit_status
        except faults.NonFiniteLoss as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except (ValueError, OSError) as e:  # DatasetError and config errors are ValueErrors; OSError: files, cache dir
            print(f"error: {e}", file=sys.stderr)
            return 2
    from icrst_jax import distributed
    from icrst_jax.run_identity import out_dir

    if not distributed.is_primary():
        return 0
    if cfg.data.target is not None:  # an adaptation study (icrst_jax.adaptation) has its own table
        from icrst_jax.adaptation import adaptation_table as comparison_table
    print(comparison_table(payload))
    print(f"results: {out_dir(cfg)}/results.json, {out_dir(cfg)}/report.md")
    return 0


def _interrupted_line(e, cfg) -> str:
    """One line: what the interrupt kept and how to go on."""
    from icrst_jax.run_identity import checkpoint_steps, out_dir

    if cfg is None:
        return f"{e}; nothing was written"
    out = out_dir(cfg)
    steps = checkpoint_steps(out) if cfg.checkpoints else []
    if steps:
        return f"{e}; checkpoint at epoch {steps[-1]} kept in {out}/checkpoints: rerun the same command to resume"
    return f"{e} before any checkpoint was written; rerun the same command to start again"


if __name__ == "__main__":
    sys.exit(main())
