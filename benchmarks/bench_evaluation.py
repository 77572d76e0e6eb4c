"""evaluation: ``evaluate_many`` with ``backend="auto"`` (MLP and NB as JAX programs) against ``"sklearn"``.

Usage::

    python -m benchmarks.bench_evaluation --out DIR                      # paper scale: 13 points of 10,000 x 512
    python -m benchmarks.bench_evaluation --points 1 --rows 2000 --out DIR  # what a 2-core CPU affords
    python -m benchmarks.bench_evaluation --offline --out DIR            # breast_cancer, digits: accuracies
    python -m benchmarks.bench_evaluation --studies --out DIR            # the two CPU configs, whole studies

Paper scale: synthetic latent sets of ten Gaussian classes (as the full-width
encoder's latents of the MNIST test set), 10 folds, MLP + NB + SVC, one cold
``evaluate_many`` per backend (compiling included: a study pays it once).
``--offline``: the offline data sets (raw features, scalings none and standard), every
classifier, fold-mean accuracy side by side (docs/evaluation.md). ``--studies``:
``configs/cpu_breast_cancer.py`` and ``configs/cpu_digits.py`` as whole studies,
each backend cold in its own ``experiments.run`` process: wall and CPU seconds
(the child's user + system) and the study's timing. Writes ``DIR/bench_evaluation.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_lib import environment, evaluate_latents, format_table, write_json

STUDY_CONFIGS = ("configs/cpu_breast_cancer.py", "configs/cpu_digits.py")


def log(line: str) -> None:
    print("   " + line, file=sys.stderr, flush=True)


def offline(args) -> tuple[dict, str]:
    from sklearn.datasets import load_breast_cancer, load_digits

    from icrst_jax import evaluation

    out, rows = {}, []
    for name, loader in (("breast_cancer", load_breast_cancer), ("digits", load_digits)):
        x, y = loader(return_X_y=True)
        out[name] = {}
        for backend in args.backends:
            t0 = time.perf_counter()
            res = evaluation.evaluate_many([(x, y, 0, "none"), (x, y, 0, "standard")], args.classifiers, n_folds=10,
                                           n_jobs=args.n_jobs, backend=backend, fold_lines=False, progress=log)
            out[name][backend] = {"wall_s": time.perf_counter() - t0, **{
                sc: {c: {"accuracy": r[c]["accuracy"]["mean"], "low": r[c]["accuracy"]["low"],
                         "high": r[c]["accuracy"]["high"], "fitted_on": r[c]["fitted_on"],
                         "convergence_warnings": r[c]["convergence_warnings"]} for c in args.classifiers}
                for sc, r in zip(("none", "standard"), res)}}
        rows += [[name, sc, c, *(out[name][b][sc][c]["accuracy"] for b in args.backends)]
                 for sc in ("none", "standard") for c in args.classifiers]
    return out, format_table("fold-mean accuracy, 10 folds", ["data", "scaling", "classifier", *args.backends], rows)


def studies(args) -> tuple[dict, str]:
    """Each config x backend as its own cold ``experiments.run`` process."""
    out, rows = {}, []
    for config in STUDY_CONFIGS:
        out[config] = {}
        for backend in args.backends:
            folder = args.out / "studies" / f"{Path(config).stem}_{backend}"
            cmd = [sys.executable, "-m", "experiments.run", "--config", config, "--set", f"eval.backend={backend}",
                   "--no-compilation-cache", "--out", str(folder)]
            before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
            timing = json.loads((folder / "results.json").read_text()).get("timing") or {}
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            out[config][backend] = {"wall_s": wall, "cpu_s": cpu, "timing": timing, "command": " ".join(cmd)}
            rows.append([Path(config).stem, backend, wall, cpu, timing.get("evaluation_s")])
    return out, format_table("whole studies, cold, one process each",
                             ["config", "backend", "wall s", "CPU s", "evaluation s"], rows)


def paper_scale(args) -> tuple[dict, str]:
    out = {b: evaluate_latents(args.points, args.rows, args.dim, args.classifiers, b, args.n_jobs, log)
           for b in args.backends}
    rows = [[b, r["wall_s"], r["eval_seconds"]["jax_classifiers_s"], r["eval_seconds"]["sklearn_classifiers_s"],
             *(sum(r["accuracy"][c]) / len(r["accuracy"][c]) for c in args.classifiers)] for b, r in out.items()]
    return out, format_table(f"{args.points} point(s) of {args.rows} x {args.dim}, 10 folds",
                             ["backend", "wall s", "JAX s", "sklearn s", *(f"{c} acc" for c in args.classifiers)], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_evaluation", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--points", type=int, default=13, help="synthetic feature sets (grid points)")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classifiers", nargs="+", default=None)
    ap.add_argument("--backends", nargs="+", choices=("auto", "sklearn"), default=["auto", "sklearn"])
    ap.add_argument("--n-jobs", type=int, default=-1)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="breast_cancer and digits, both backends")
    mode.add_argument("--studies", action="store_true", help="the two CPU configs as whole studies, both backends")
    args = ap.parse_args(argv)
    args.classifiers = args.classifiers or (["svm", "rf", "mlp", "nb"] if args.offline else ["mlp", "nb", "svm"])
    meta = environment(["python", "-m", "benchmarks.bench_evaluation", *(sys.argv[1:] if argv is None else argv)], False)
    results, text = (studies if args.studies else offline if args.offline else paper_scale)(args)
    print(text)
    write_json(args.out / "bench_evaluation.json", {"meta": meta, "args": vars(args), "results": results})
    (args.out / "bench_evaluation.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
