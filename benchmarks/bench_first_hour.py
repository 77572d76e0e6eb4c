"""first_hour: what a newcomer waits for, each job run as the user runs it, cold.

The README's main job (``configs/cpu_breast_cancer.py``) and its image example
(``configs/cpu_digits.py`` at the workload it shipped with: narrow conv at 16x16,
5 epochs of batch 128, 10 grid points, held-out latents after epochs 0, 1 and 3),
each in a fresh process (``python -m experiments.run ... --no-compilation-cache``)
into a fresh folder. Reports the process's wall time and the study's own split
(``results.json``'s ``timing``): loading, compiling, training, setup, evaluation
(of which the JAX classifiers and scikit-learn's fits, which run side by side),
and ``start`` = the process's wall time minus the study's (Python, imports, JAX
start-up, the config). ``--quick``: a 2-epoch, one-classifier Breast Cancer job,
in this process (a smoke test of the harness, not a measure).

Standalone: ``python -m benchmarks.bench_first_hour [--quick] [--json FILE] [--baseline DIR]``;
``--baseline DIR`` runs each job again from another checkout (``git worktree add DIR COMMIT``), right
after this code's run, so that a change is measured against its baseline in the same hour.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_lib import Context, format_table, print_and_save

ROOT = Path(__file__).resolve().parents[1]
# The digits example's workload, pinned: a change of the shipped config must not change what is compared.
DIGITS_WORKLOAD = ["--set", "train.epochs=5", "--set", "train.batch_size=128", "--set", "eval.at_epochs=0,1,3",
                   "--set", "p_values=0.5,1", "--set", "seeds=0,1"]
JOBS = {
    "main job (cpu_breast_cancer)": ["--config", "configs/cpu_breast_cancer.py"],
    "digits example (cpu_digits)": ["--config", "configs/cpu_digits.py", *DIGITS_WORKLOAD],
}
QUICK_JOB = {"quick Breast Cancer job": ["--dataset", "breast_cancer", "--mode", "icrst", "--epochs", "2",
                                         "--classifiers", "nb", "--no-tsne", "--set", "eval.n_folds=2",
                                         "--set", "eval.untrained=false", "--set", "eval.purity=false"]}
PARTS = ("loading_s", "compiling_s", "training_s", "setup_s", "evaluation_s", "jax_classifiers_s",
         "sklearn_classifiers_s")


def run_job(args: list[str], out: Path, *, in_process: bool, checkout: Path = ROOT) -> dict:
    """One job into ``out``, run from ``checkout``'s code: its wall time, exit status and the study's timing split."""
    argv = [*args, "--no-compilation-cache", "--quiet", "--out", str(out)]
    t0 = time.perf_counter()
    if in_process:
        from experiments import run as cli

        rc = cli.main(argv)
    else:
        # From the checkout's folder, `python -m` imports that checkout's packages first.
        rc = subprocess.run([sys.executable, "-m", "experiments.run", *argv], cwd=checkout, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True).returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"experiments.run {' '.join(argv)} exited with {rc}")
    timing = json.loads((out / "results.json").read_text())["timing"]
    return {"wall_s": wall, "start_s": wall - timing["wall_s"], **{k: timing[k] for k in ("wall_s", *PARTS)},
            "command": "python -m experiments.run " + " ".join(argv[:-2] + ["--out", "DIR"])}


def run(ctx: Context, baseline: Path | None = None) -> tuple[dict, str]:
    """Each job cold; with ``baseline`` (another checkout's folder, e.g. a ``git worktree`` of an
    earlier commit) each job also runs from that code, right after this code's run."""
    jobs = QUICK_JOB if ctx.quick else JOBS
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, args) in enumerate(jobs.items()):
            ctx.log(f"first_hour: {name}")
            result[name] = run_job(args, Path(tmp) / f"job{i}", in_process=ctx.quick)
            if baseline is not None:
                ctx.log(f"first_hour: {name}, from {baseline}")
                result[f"{name}, baseline"] = run_job(args, Path(tmp) / f"base{i}", in_process=False,
                                                      checkout=baseline)
    columns = ["job", "process s", "start", "load", "compile", "train", "setup", "evaluate", "(JAX fits)",
               "(sklearn fits)"]
    rows = [[name, r["wall_s"], r["start_s"], r["loading_s"], r["compiling_s"], r["training_s"], r["setup_s"],
             r["evaluation_s"], r["jax_classifiers_s"], r["sklearn_classifiers_s"]] for name, r in result.items()]
    note = ("each job a fresh process, no compilation cache; evaluation includes the JAX and scikit-learn fits, "
            "which run side by side" if not ctx.quick else "quick: in this process (a smoke test)")
    return {"jobs": result}, format_table("first hour: the README's jobs, cold (seconds)", columns, rows, note)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_first_hour", description=__doc__.splitlines()[0],
                                 allow_abbrev=False)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also run each job from the checkout in DIR (an earlier commit), beside this one")
    args = ap.parse_args(argv)
    result, text = run(Context(args.quick), baseline=args.baseline)
    return print_and_save("first_hour", result, text, args.json, argv, args.quick)


if __name__ == "__main__":
    sys.exit(main())
