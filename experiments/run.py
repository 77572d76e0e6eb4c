"""Command line of the paper's studies.

    python -m experiments.run --config configs/cpu_breast_cancer.py          # a few CPU minutes
    python -m experiments.run --config configs/cpu_digits.py --set train.epochs=10
    python -m experiments.run --config configs/paper_mnist.py --dry-run      # check it, no data
    python -m experiments.run --dataset digits --mode all --p-grid 0,0.5,1 --seeds 0 1

A study (modes x p values x seeds) is one typed config (:class:`icrst_jax.config.StudyConfig`):
a ``configs/*.py`` file whose ``get_config()`` returns it, or the defaults. ``--set KEY=VALUE``
overrides any field by its dotted path; the flags below are shorthands for the same fields.
Flags and ``--set`` make one set of changes (``--set`` wins over a flag for the same field),
from which the config is built once. Every grid point trains in one compiled program.

Compiled XLA programs are cached on disk (``~/.cache/icrst_jax/xla``; move it with
``--compilation-cache DIR`` or ``$ICRST_JAX_CACHE_DIR``, turn it off with
``--no-compilation-cache``), so a repeated run skips compilation.

Exit status: 0 done; 2 bad input (options, config file, environment, an output
folder that holds another study or is busy), found before any work; 1 a run
that failed (a NaN loss, processes that never joined, a file that could not be
written); 130 / 143 interrupted by SIGINT / SIGTERM. Every error is one line.

The logic lives in :mod:`icrst_jax.studies`; this file only parses options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from icrst_jax.config import (
    CLASSIFIERS,
    CONV_IMPLS,
    DATASETS,
    INPUT_SCHEMES,
    MODEL_NAMES,
    MODES,
    PAPER_MODEL_FOR_DATASET,
    StudyConfig,
    apply_overrides,
    load_config,
)
from icrst_jax.distributed import DEFAULT_JOIN_TIMEOUT_S, coordinator_port, initialize
from icrst_jax.log import Log

# The whole log of a run, detail lines included, in its folder.
LOG_FILE = "log.txt"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def _p_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--p-grid takes comma-separated numbers, got {text!r}") from None


# Shorthand flags: (flag, config key, argparse options, help). A flag given on
# the command line becomes ``key=value``, joined by the --set overrides; its
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
    ("--data", "data.source", dict(metavar="SOURCE"),
     "your own data instead of --dataset: a .csv/.tsv table, an .npz/.npy array file, an image folder "
     "(root/<class>/*.png, or root/train/<class> and root/test/<class>) or tfds:NAME (docs/own_data.md) "
     "[default: none]"),
    ("--label-column", "data.label_column", dict(metavar="NAME"),
     "the label column of a --data table [default: the column named label, target, class or y]"),
    ("--data-dir", "data.data_dir", dict(), "folder with the original files, downloaded there when missing [default: ~/.cache/icrst_jax/data], or TFDS data_dir"),
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
        allow_abbrev=False,  # a flag is typed in full: --no-c would otherwise pick one of several
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
                         "p_values=0,0.5,1, eval.n_folds=5; repeatable; wins over the other flags")
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
    ap.add_argument("--no-tensorboard", action="store_true",
                    help="write no TensorBoard event files under <out>/tensorboard (log.tensorboard=false)")
    ap.add_argument("--no-download", action="store_true",
                    help="never fetch a data set's original files; read only what --data-dir (or the cache "
                         "~/.cache/icrst_jax/data) and TFDS hold (data.download=false)")
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
    dist.add_argument("--join-timeout", type=float, default=DEFAULT_JOIN_TIMEOUT_S, metavar="SECONDS",
                      help="how long a process waits for all the others to join; a process still alone then "
                           "exits in one line, and one that stops answering later is declared dead after as "
                           f"long [default: {DEFAULT_JOIN_TIMEOUT_S}]")
    dist.add_argument("--distributed", choices=("auto",), default=None,
                      help="auto: read what the three options above leave out from the cluster launcher's "
                           "environment (SLURM, Open MPI, Cloud TPU)")
    ap.add_argument("--quiet", action="store_true", help="print only the final table")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also print every epoch, every classifier's scores per latent set and every fit batch "
                         "(the run folder's log.txt holds them either way)")
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
    if args.no_tensorboard:
        sets.append(("--no-tensorboard", "log.tensorboard=false"))
    if args.no_download:
        sets.append(("--no-download", "data.download=false"))
    return sets


def config_from_args(args) -> StudyConfig:
    """The config file (or the defaults) with the shorthand flags and --set applied at once.

    The flags and the ``--set`` assignments (in that order: a later one of
    the same key wins) are one set of changes, and the config is constructed
    once from them (:func:`icrst_jax.config.apply_overrides`).

    Raises:
      ValueError: one line that starts with the flag (or ``--set key=value``) that made the config invalid.
    """
    base = load_config(args.config) if args.config else StudyConfig()
    if args.data is not None and args.dataset is not None:
        raise ValueError("--data and --dataset do not go together: --data reads your own data, --dataset a built-in set")
    changes = flagged_overrides(args) + [(f"--set {a}", a) for a in args.overrides]
    cfg = apply_overrides(base, [a for _, a in changes], labels=[flag for flag, _ in changes])
    _check_builtin_data_dir(cfg, quiet=getattr(args, "quiet", False))
    if cfg.data.source is not None and args.model is None and not any(
            a.startswith("train.model.name=") for a in args.overrides):
        # The model the data asks for (Table D1's for its kind), as --dataset picks the paper's.
        from icrst_jax.data.custom import load_for, suggest_model

        data = load_for(cfg.data)
        name, latent = suggest_model(data.facts.kind, data.facts.shape, cfg.train.model.width)
        picked = [("--data", f"train.model.name={name}")]
        if latent is not None and cfg.train.model.latent_size is None:
            picked.append(("--data", f"train.model.latent_size={latent}"))
        changes = picked + changes  # a flag or --set of the same field still wins
        cfg = apply_overrides(base, [a for _, a in changes], labels=[flag for flag, _ in changes])
    return cfg


def _check_builtin_data_dir(cfg: StudyConfig, quiet: bool = False) -> None:
    """--data-dir with a set read from an installed package: a folder of class sub-folders was meant
    for --data (refused); any other folder is not used (said in one line)."""
    from icrst_jax.data import DATASET_SPECS
    from icrst_jax.data.image_folder import is_image_folder

    spec = DATASET_SPECS[cfg.data.name]
    if cfg.data.source is not None or cfg.data.data_dir is None or not spec.builtin or cfg.data.target is not None:
        return
    folder = os.path.expanduser(cfg.data.data_dir)
    if is_image_folder(Path(folder)):
        raise ValueError(f"--data-dir {cfg.data.data_dir} is not read for {cfg.data.name}, which ships with "
                         f"{spec.source}; to train on the class folders in it, use --data {cfg.data.data_dir}")
    if not quiet:  # --quiet prints only the final table
        print(f"note: --data-dir {cfg.data.data_dir} is not used: {cfg.data.name} ships with {spec.source}",
              file=sys.stderr)


def main(argv=None) -> int:
    """The command line; returns the exit status (0 done, 1 the run failed, 2 bad input, 130/143 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "experiments.run", *argv])
    from icrst_jax import faults

    cfg = None
    log = Log(verbose=args.verbose, shown=not args.quiet)
    say = log
    with faults.handle_interrupts():
        try:  # bad input, found before any work: exit 2
            cfg = config_from_args(args)
            _check_distributed_flags(args)
            from icrst_jax import distributed

            multi = args.distributed == "auto" or any(
                v is not None for v in (args.coordinator_address, args.num_processes, args.process_id))
            if multi and not args.dry_run:
                _fetch_before_joining(cfg, say)
            # Before JAX touches a device: a multi-process run must be joined first.
            _join(args, say)
            from icrst_jax import runtime

            runtime.check_platform()
            from icrst_jax import studies

            check = studies.dry_check(cfg)  # a width that empties a layer fails here, before any data is loaded
            from icrst_jax.run_identity import check_out_path, out_dir

            check_out_path(out_dir(cfg))
            check_out_writable(out_dir(cfg), given=cfg.out is not None)
            if args.dry_run:
                print(json.dumps({**check, **_dry_run_data(cfg)}, indent=1))
                return 0
            progress = distributed.tag_progress(say)
            # Before anything compiles: programs compiled earlier would bypass the cache. A directory
            # named by the environment is as explicit as one named by the flag: both must be usable.
            cache = args.compilation_cache
            if cache is None:
                cache = os.environ.get(runtime.CACHE_ENV_VAR)
            runtime.setup_compilation_cache(cache, enabled=not args.no_compilation_cache, progress=progress)
        except faults.Interrupted as e:
            print(_interrupted_line(e, cfg), file=sys.stderr)
            return e.exit_status
        except (ValueError, OSError) as e:  # config, flags, environment, output folder, cache directory
            print(f"error: {e}", file=sys.stderr)
            return 2
        try:
            payload = studies.run(cfg, progress=progress, command=command)
        except faults.Interrupted as e:
            print(_interrupted_line(e, cfg), file=sys.stderr)
            _keep_log(log, cfg, _interrupted_line(e, cfg))
            return e.exit_status
        except (faults.NonFiniteLoss, faults.MissingResults) as e:  # ValueErrors, but the input was fine: the run failed
            print(f"error: {e}", file=sys.stderr)
            _keep_log(log, cfg, f"error: {e}")
            return 1
        except ValueError as e:  # refused before training: another study's folder, a busy one, data not found
            print(f"error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # the run failed: a file could not be read or written
            print(f"error: {e}", file=sys.stderr)
            return 1
    if not distributed.is_primary():
        return 0
    table = studies.table(cfg, payload)
    print(table)
    log.lines.append(table)
    written = _written(cfg)
    print("wrote: " + ", ".join(str(path) for path in written))
    _keep_log(log, cfg, "wrote: " + ", ".join(str(path) for path in written))
    return 0


def _dry_run_data(cfg: StudyConfig) -> dict:
    """What --dry-run adds: where the data is (or what a run would download) and the output folder."""
    from icrst_jax.data.sources import data_plan
    from icrst_jax.run_identity import out_dir

    if cfg.data.source is not None:
        data = f"your own: {cfg.data.source}"
    else:
        names = [cfg.data.name] + ([cfg.data.target] if getattr(cfg.data, "target", None) else [])
        data = "; ".join(data_plan(n, cfg.data.data_dir, download=cfg.data.download) for n in names)
    return {"data": data, "output_folder": str(Path(out_dir(cfg)).absolute())}


def check_out_writable(out, *, given: bool) -> None:
    """The output folder can be made and written, checked before any work; nothing is created.

    Raises:
      ValueError: one line naming --out (or the default folder) and the fix.
    """
    out = Path(out).absolute()
    what = f"--out {out}" if given else f"the output folder {out}"
    fix = "pick a folder you can write with --out DIR"
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{what} is a file, not a folder; {fix}")
        if _cannot_make_in(out, folder=False):  # also what os.access would say, and right for root
            raise ValueError(f"{what} is not writable; {fix}")
        return
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} cannot be created: {parent} is a file, not a folder; {fix}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} cannot be created: {parent} is not writable; {fix}")
    # os.access says yes to root everywhere and knows nothing of file systems that refuse
    # new entries (/sys, /proc, some network mounts): only making one tells.
    reason = _cannot_make_in(parent, folder=True)
    if reason:
        raise ValueError(f"{what} cannot be created in {parent} ({reason}); {fix}")


def _cannot_make_in(where: Path, *, folder: bool) -> str | None:
    """Why a new folder (``folder``) or file cannot be made in ``where`` (the system's words), or
    None; the one made to find out is removed at once."""
    try:
        if folder:
            os.rmdir(tempfile.mkdtemp(prefix=".icrst-jax-check-", dir=where))
        else:
            fd, name = tempfile.mkstemp(prefix=".icrst-jax-check-", dir=where)
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def _written(cfg) -> list[Path]:
    """The files the study really wrote for a reader: its results, reports and figures, and the log."""
    from icrst_jax import studies
    from icrst_jax.run_identity import out_dir

    out = out_dir(cfg)
    return [p for p in studies.outputs(cfg) if p.is_file()] + sorted(out.glob("*.png")) + [out / LOG_FILE]


def _keep_log(log, cfg, last: str) -> None:
    """The whole log, detail lines included, into the run folder's log.txt (if the run made the folder)."""
    from icrst_jax import distributed
    from icrst_jax.run_identity import out_dir

    if cfg is None or not distributed.is_primary():
        return
    out = out_dir(cfg)
    if out.is_dir():
        log.lines.append(last)
        log.write(out / LOG_FILE)


def _check_distributed_flags(args) -> None:
    """The multi-process flags, each wrong one or combination refused in one line that names the flags."""
    given = {"--coordinator-address": args.coordinator_address, "--num-processes": args.num_processes,
             "--process-id": args.process_id}
    missing = [k for k, v in given.items() if v is None]
    if args.distributed != "auto" and 0 < len(missing) < len(given):
        raise ValueError(
            f"{', '.join(k for k, v in given.items() if v is not None)} given without {' and '.join(missing)}: "
            "a multi-process run needs all three of --coordinator-address, --num-processes and --process-id "
            "(or --distributed auto under a cluster launcher such as SLURM)"
        )
    if args.coordinator_address is not None:
        port = coordinator_port(args.coordinator_address)
        if port is None:
            raise ValueError(f"--coordinator-address must be HOST:PORT, got {args.coordinator_address!r}")
        if not 1 <= port <= 65535:
            raise ValueError(f"--coordinator-address: the port must be in 1..65535, got {port}")
    if args.num_processes is not None and args.num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {args.num_processes}")
    if args.process_id is not None and args.process_id < 0:
        raise ValueError(f"--process-id must be >= 0, got {args.process_id}")
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        raise ValueError(f"--process-id must be below --num-processes ({args.num_processes}), got {args.process_id}")
    if not args.join_timeout > 0:
        raise ValueError(f"--join-timeout must be > 0 seconds, got {args.join_timeout}")


def _join(args, say) -> None:
    """Joins a multi-process run, if the flags ask for one (:func:`icrst_jax.distributed.initialize`)."""
    try:
        initialize(args.coordinator_address, args.num_processes, args.process_id,
                   auto=args.distributed == "auto", join_timeout=args.join_timeout, say=say)
    except ValueError as e:
        if args.distributed != "auto":
            raise
        raise ValueError(f"--distributed auto: {e} (no cluster environment found; outside SLURM, Open MPI or "
                         "Cloud TPU give --coordinator-address, --num-processes and --process-id)") from None


def _fetch_before_joining(cfg: StudyConfig, say) -> None:
    """A multi-process run finds (or downloads) its data before the processes join: a
    download can take longer than the join and heartbeat timeouts allow, and a data set
    that is missing is one line before anyone waits for anyone."""
    from icrst_jax.data import DATASET_SPECS, locate

    if not DATASET_SPECS[cfg.data.name].builtin:
        locate(cfg.data.name, cfg.data.data_dir, download=cfg.data.download, say=say or (lambda line: None))


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
