"""One process of the two-process training runs of ``test_multiprocess.py``.

    python tests/multiprocess_child.py --job first --work DIR \
        --coordinator-address 127.0.0.1:PORT --num-processes 2 --process-id I
    python tests/multiprocess_child.py --job resume --work DIR    # under SLURM's variables

Each process writes what it computed to ``DIR/<job>_process<I>.npz`` (every
process, so the test can check that they agree); the test compares them with
the same runs in one process. The runs themselves are defined here
(:func:`mlp_run`, :func:`conv_run`) and imported by the test for its reference.

Jobs:
  first: the MLP on Breast Cancer, stopped after epoch 1 of 2 with a
    checkpoint in DIR/mlp_ckpt; the tiny conv on digits images, 2 epochs.
  resume: new processes, joined by the command line itself: first the
    study of :data:`CLI_ARGS` with ``--distributed auto`` (SLURM's variables,
    set by the test as srun would), run in this process's working directory;
    then, on the same joined pair, the MLP again from DIR/mlp_ckpt (epoch 2)
    and the checks that the processes run one study into one shared folder
    (:func:`agreement_cases`).

The MLP run is that study's own training (its config, data and grid points): in
the resume job, process 0 loads the program its study compiled from the pair's
compilation cache (``$ICRST_JAX_CACHE_DIR``; JAX writes it from process 0 only,
and process 1 compiles again), and the test's one-process reference and its
one-process command line share one program too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SEEDS = [0, 1]
# The command-line study of the resume job; the test runs it again in one process. The
# compilation cache comes from the environment: the pair's own, this process's in the test.
# ICRST at p=0.5: the Bernoulli draw of each sample decides, on every process's shard.
CLI_ARGS = ["--dataset", "breast_cancer", "--mode", "standard", "--mode", "icrst", "--p-grid", "0.5", "--seeds", "0", "1",
            "--epochs", "3", "--batch-size", "64", "--classifiers", "nb", "svm", "--folds", "3", "--no-tsne",
            "--no-checkpoints", "--out", "out"]


def mlp_run():
    """(TrainConfig, x, y, mean, std, x_encode, points) of the MLP run: the training of
    the study of :data:`CLI_ARGS` (its four grid points on the 455 training samples of
    Breast Cancer in batches of 64, a ragged last batch), 2 epochs; latents of the 114
    test samples."""
    from experiments import run as cli
    from icrst_jax.stages import load_data

    study = cli.config_from_args(cli.build_parser().parse_args(CLI_ARGS))
    ds = load_data(study)
    mean, std = ds.preprocessing.encoder_mean_std()
    return study.train.replace(epochs=2), ds.x_train, ds.y_train, mean, std, ds.x_test, study.grid()


def conv_run():
    """(TrainConfig, x, y, mean, std, x_encode, points) of ``conv_tiny`` (one conv +
    BatchNorm + LeakyReLU + dropout block each way, 4 channels) on 64 digits images
    at 12x12, batches of 16, 2 epochs, seeds :data:`SEEDS`; latents of 40 held-out images.

    What is under test is the processes, not the model: the tiny conv has
    every kind of state the Table D1 conv has (BatchNorm statistics reduced
    across processes, dropout keys) at a fraction of its compile time, and
    XLA's convolutions (``conv_impl="xla"``) compile faster than the CPU
    path's (BENCHMARKS.md, "Cold start"), whose sharded program is tested on
    1 and 4 devices in ``test_train.py``."""
    from icrst_jax.config import GridPoint, ModelConfig, TrainConfig
    from icrst_jax.data import load_dataset

    ds = load_dataset("digits", image_size=12)
    mean, std = ds.preprocessing.encoder_mean_std()
    cfg = TrainConfig(
        mode="icrst", p=0.5, epochs=2, batch_size=16, model=ModelConfig(name="conv_tiny", width=1 / 8, dropout=0.2, conv_impl="xla")
    )
    points = [GridPoint(cfg.mode, cfg.p, s) for s in SEEDS]
    return cfg, ds.x_train[:64], ds.y_train[:64], mean, std, ds.x_test[:40], points


def outputs(result, x_encode, mean, std) -> dict:
    """What the test compares: step losses, parameters, BatchNorm statistics, latents."""
    import jax

    from icrst_jax.distributed import to_host
    from icrst_jax.train import encode

    step_loss = (
        np.concatenate([np.asarray(h["step_loss"]) for h in result.history], axis=1)
        if result.history
        else np.zeros((len(result.points), 0))
    )
    out = {"step_loss": step_loss, "latents": encode(result.engine, result.state, x_encode, mean=mean, std=std)}
    for name in ("params", "batch_stats"):
        leaves = jax.tree_util.tree_leaves(to_host(getattr(result.state, name)))
        out.update({f"{name}_{i}": leaf for i, leaf in enumerate(leaves)})
    return out


def agreement_cases(work: Path, process_id: int) -> list[str]:
    """``distributed.check_same_study`` on cases every process runs in step:
    the error line of each ("" when it passed)."""
    import os

    from icrst_jax.config import StudyConfig, apply_override
    from icrst_jax.distributed import check_same_study

    base = StudyConfig(out=str(work / "agreed"))
    (work / "a_file").write_text("x")
    cwd = Path.cwd()
    own = work / f"cwd{process_id}"  # a relative --out resolved in folders the processes do not share
    own.mkdir(exist_ok=True)
    cases = {
        "same": lambda: base,
        "epochs": lambda: apply_override(base, f"train.epochs={3 + process_id}"),
        "out": lambda: base.replace(out=str(work / f"out{process_id}")),
        "unshared": lambda: base.replace(out="relative_out"),
        "unshared_without_checkpoints": lambda: base.replace(out="relative_out", checkpoints=False),
        "out_is_a_file": lambda: base.replace(out=str(work / "a_file")),
    }
    lines = []
    for name, make in cases.items():
        os.chdir(own if name.startswith("unshared") else cwd)
        try:
            check_same_study(make())
            lines.append("")
        except ValueError as e:
            lines.append(str(e))
    os.chdir(cwd)
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coordinator-address")
    ap.add_argument("--num-processes", type=int)
    ap.add_argument("--process-id", type=int)
    ap.add_argument("--job", choices=("first", "resume"), required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args(argv)

    from icrst_jax import distributed

    if args.job == "first":
        assert distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    else:
        from experiments import run as cli

        code = cli.main([*CLI_ARGS, "--distributed", "auto"])
        if code != 0:
            return code
    import jax

    from icrst_jax.train import fit

    work = Path(args.work)
    say = distributed.tag_progress(lambda line: print(line, file=sys.stderr, flush=True))
    saved = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
    }
    cfg, x, y, mean, std, x_enc, points = mlp_run()
    if args.job == "first":
        mlp = fit(cfg, x, y, points=points, mean=mean, std=std, checkpoint_dir=work / "mlp_ckpt",
                  stop_after_epoch=1, progress=say)
    else:
        mlp = fit(cfg, x, y, points=points, mean=mean, std=std, checkpoint_dir=work / "mlp_ckpt", progress=say)
    saved["mlp_mesh_size"] = mlp.engine.mesh.devices.size
    saved["mlp_resumed_from"] = -1 if mlp.resumed_from is None else mlp.resumed_from
    saved.update({f"mlp_{k}": v for k, v in outputs(mlp, x_enc, mean, std).items()})
    if args.job == "first":
        cfg, x, y, mean, std, x_enc, points = conv_run()
        conv = fit(cfg, x, y, points=points, mean=mean, std=std, progress=say)
        saved["conv_mesh_size"] = conv.engine.mesh.devices.size
        saved.update({f"conv_{k}": v for k, v in outputs(conv, x_enc, mean, std).items()})
    else:
        saved["agreement"] = np.array(agreement_cases(work, jax.process_index()))
    np.savez(work / f"{args.job}_process{jax.process_index()}.npz", **saved)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
