"""Command line of the paper's experiment.

    python -m experiments.run                                 # offline, a few CPU minutes
    python -m experiments.run --dataset cifar10 --mode trst   # TFDS / files in --data-dir
    python -m experiments.run --dataset digits --mode all --p-grid 0,0.2,0.4,0.6,0.8,1.0 --seeds 0 1 2

Compiled XLA programs are cached on disk (``~/.cache/icrst_jax/xla``; move it with
``--compilation-cache DIR`` or ``$ICRST_JAX_CACHE_DIR``, turn it off with
``--no-compilation-cache``), so a repeated run or a p sweep skips compilation.

The logic lives in :mod:`icrst_jax.experiment`; this file only parses options.
"""

from __future__ import annotations

import argparse
import sys

from icrst_jax.config import MODES
from icrst_jax.evaluation import CLASSIFIERS

DATASETS = ("breast_cancer", "digits", "mnist5k", "mnist", "fashion_mnist", "cifar10", "caltech101")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def _p_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--p-grid takes comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="python -m experiments.run",
        description=(
            "Train undercomplete autoencoders with standard, ICRST (in-class random target), TRST "
            "(whole-set random target) or denoising training, extract the held-out split's latents, "
            "cross-validate scikit-learn classifiers on them, and write results.json, report.md, "
            "latents_*.npz and figures into --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--dataset", default="breast_cancer", choices=DATASETS,
                    help="breast_cancer, digits and mnist5k ship with packages (offline); the others read "
                         "TFDS-prepared data or the original files in --data-dir")
    ap.add_argument("--mode", action="append", choices=MODES + ("all",), default=None,
                    help="training mode; repeat it to compare several, 'all' for every mode "
                         "[default: standard icrst trst]")
    grp = ap.add_mutually_exclusive_group()
    grp.add_argument("--p", type=float, default=None, help="Bernoulli probability of a swapped target [default 1.0]")
    grp.add_argument("--p-grid", type=_p_list, default=None, help="comma-separated p values, e.g. 0,0.2,0.4,0.6,0.8,1.0")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0], help="seeds trained in parallel (vmap) in one program")
    ap.add_argument("--epochs", type=int, default=50, help="training epochs (paper: 50)")
    ap.add_argument("--batch-size", type=int, default=512, help="global batch size (paper: 512)")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (paper: 1e-3)")
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier of the Table D1 model (1 = paper)")
    ap.add_argument("--model", choices=("conv", "conv_strided", "mlp"), default=None,
                    help="override the paper's model for the data set")
    ap.add_argument("--dropout", type=float, default=0.2, help="dropout rate (Table D1: 0.2; authors' code: 0.5)")
    ap.add_argument("--negative-slope", type=float, default=0.01, help="LeakyReLU slope")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="compute dtype (bfloat16 = mixed precision)")
    ap.add_argument("--dae-sigma", type=float, default=0.5, help="noise std of the dae mode, in encoder-input units")
    ap.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS), help=f"any of {', '.join(CLASSIFIERS)}")
    ap.add_argument("--folds", type=int, default=10, help="stratified cross-validation folds")
    ap.add_argument("--no-mi", action="store_true", help="skip the section 7 mutual information")
    ap.add_argument("--mi-samples", type=int, default=150, help="MI: sampled observations (paper: 150)")
    ap.add_argument("--mi-k", type=int, default=20, help="MI: latent-space neighbours (paper: 20)")
    ap.add_argument("--no-tsne", action="store_true", help="skip the t-SNE figure")
    ap.add_argument("--data-dir", default=None, help="TFDS data_dir or folder with the original files")
    ap.add_argument("--image-size", type=int, default=None, help="resize images to this side (digits: 28, caltech101: 64)")
    ap.add_argument("--test-fraction", type=float, default=0.2,
                    help="held-out fraction for sets without an official split (stratified)")
    ap.add_argument("--input-scheme", choices=("standardized", "unit"), default="standardized",
                    help="encoder input: per-channel standardised (paper) or [0,1]; the target is always [0,1]")
    ap.add_argument("--num-devices", type=int, default=None, help="data-parallel devices (default: all local)")
    ap.add_argument("--seed-batch", type=int, default=None,
                    help="train the seeds in chunks of this many inside one program (>= the number of seeds: "
                         "all vmapped) [default: 1 for the conv models on a CPU, all vmapped otherwise]")
    ap.add_argument("--checkpoint-every", type=int, default=0, help="checkpoint every N epochs (always at the end)")
    ap.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints")
    ap.add_argument("--n-jobs", type=int, default=None, help="parallel jobs for cross-validation (-1: all cores)")
    cache = ap.add_mutually_exclusive_group()
    cache.add_argument("--compilation-cache", metavar="DIR", default=None,
                       help="persistent XLA compilation cache: a repeated run or a p sweep loads compiled programs "
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
    ap.add_argument("--out", default="runs/latest", help="output folder")
    ap.add_argument("--quiet", action="store_true", help="print only the final table")
    return ap


def config_from_args(args):
    from icrst_jax.experiment import ExperimentConfig

    modes = args.mode or ["standard", "icrst", "trst"]
    if "all" in modes:
        modes = list(MODES)
    modes = tuple(dict.fromkeys(modes))
    p_values = tuple(args.p_grid) if args.p_grid is not None else (1.0 if args.p is None else args.p,)
    return ExperimentConfig(
        dataset=args.dataset,
        modes=modes,
        p_values=p_values,
        seeds=tuple(args.seeds),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        width=args.width,
        model=args.model,
        dropout=args.dropout,
        negative_slope=args.negative_slope,
        dtype=args.dtype,
        seed_batch=args.seed_batch,
        dae_sigma=args.dae_sigma,
        classifiers=tuple(args.classifiers),
        n_folds=args.folds,
        mi=not args.no_mi,
        mi_samples=args.mi_samples,
        mi_k=args.mi_k,
        tsne=not args.no_tsne,
        data_dir=args.data_dir,
        image_size=args.image_size,
        test_fraction=args.test_fraction,
        input_scheme=args.input_scheme,
        num_devices=args.num_devices,
        checkpoint_every=args.checkpoint_every,
        checkpoints=not args.no_checkpoints,
        n_jobs=args.n_jobs,
        out=args.out,
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        from icrst_jax import distributed

        # Before JAX touches a device: a multi-process run must be joined first.
        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                               auto=args.distributed == "auto")
        from icrst_jax.experiment import comparison_table, run_experiment, setup_compilation_cache

        progress = None if args.quiet else distributed.tag_progress(lambda line: print(line, file=sys.stderr, flush=True))
        # Before anything compiles: programs compiled earlier would bypass the cache.
        setup_compilation_cache(args.compilation_cache, enabled=not args.no_compilation_cache, progress=progress)
        payload = run_experiment(cfg, progress=progress)
    except (ValueError, OSError) as e:  # DatasetError and config errors are ValueErrors; OSError: files, cache dir
        print(f"error: {e}", file=sys.stderr)
        return 2
    if distributed.is_primary():
        print(comparison_table(payload))
        print(f"results: {cfg.out}/results.json, {cfg.out}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
