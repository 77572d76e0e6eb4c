"""Evaluation at accelerator speed (issue 19): ``evaluate_many`` with ``backend="auto"`` against ``"sklearn"``.

Usage::

    python -m benchmarks.bench_evaluation --out DIR                      # paper scale: 13 points of 10,000 x 512
    python -m benchmarks.bench_evaluation --points 1 --rows 2000 --out DIR  # what a 2-core CPU affords
    python -m benchmarks.bench_evaluation --offline --out DIR            # breast_cancer, digits: both backends
    python -m benchmarks.bench_evaluation --studies --out DIR            # the two CPU configs, whole studies

Paper scale (default): ``--points`` synthetic latent sets of ``--rows`` x 512 features
(ten Gaussian classes, float32, as the full-width encoder's latents of the MNIST test
set), 10 folds, MLP + NB + SVC, one cold ``evaluate_many`` call per backend (compiling
included: a study pays it once). ``--offline``: the offline data sets (raw features),
10 folds, every classifier, both backends: fold-mean accuracy side by side (the
docs/evaluation.md table). ``--studies``: ``configs/cpu_breast_cancer.py`` and
``configs/cpu_digits.py`` as whole studies (``python -m experiments.run``, t-SNE
included, no compilation cache), each backend cold in its own process, back to back:
wall and CPU seconds (the child's user + system) and the study's own timing line. Writes ``DIR/bench_evaluation.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_lib import environment, format_table

BACKENDS = ("auto", "sklearn")


def synthetic_latents(n: int, d: int, seed: int, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float32 latents of ten overlapping Gaussian classes and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(0.0, 0.08, (n_classes, d))
    return (centres[y] + rng.normal(0.0, 1.0, (n, d))).astype(np.float32), y


def _run(jobs, classifiers, backend, n_jobs) -> tuple[float, list]:
    from icrst_jax import evaluation

    t0 = time.perf_counter()
    res = evaluation.evaluate_many(jobs, classifiers, n_folds=10, n_jobs=n_jobs, backend=backend,
                                   fold_lines=False, progress=lambda line: print("   " + line, file=sys.stderr))
    return time.perf_counter() - t0, res


def paper_scale(args) -> dict:
    jobs = [(*synthetic_latents(args.rows, args.dim, seed), seed) for seed in range(args.points)]
    out = {}
    for backend in args.backends:
        wall, res = _run(jobs, args.classifiers, backend, args.n_jobs)
        out[backend] = {
            "wall_s": wall,
            "accuracy": {c: [r[c]["accuracy"]["mean"] for r in res] for c in args.classifiers},
            "fit_time_sum_s": {c: float(sum(r[c]["fit_time"].sum() for r in res)) for c in args.classifiers},
        }
        print(f"{backend}: {wall:.1f} s", file=sys.stderr)
    return out


def offline(args) -> dict:
    from sklearn.datasets import load_breast_cancer, load_digits

    out = {}
    for name, loader in (("breast_cancer", load_breast_cancer), ("digits", load_digits)):
        x, y = loader(return_X_y=True)
        jobs = [(x, y, 0, sc) for sc in ("none", "standard")]
        out[name] = {}
        for backend in args.backends:
            wall, res = _run(jobs, args.classifiers, backend, args.n_jobs)
            out[name][backend] = {"wall_s": wall, **{
                sc: {c: {"accuracy": r[c]["accuracy"]["mean"], "low": r[c]["accuracy"]["low"],
                         "high": r[c]["accuracy"]["high"], "fitted_on": r[c]["fitted_on"],
                         "convergence_warnings": r[c]["convergence_warnings"]} for c in args.classifiers}
                for sc, r in zip(("none", "standard"), res)}}
    return out


STUDY_CONFIGS = ("configs/cpu_breast_cancer.py", "configs/cpu_digits.py")


def studies(args) -> dict:
    """Each config x backend as its own cold ``experiments.run`` process: wall, CPU, timing."""
    import resource
    import subprocess

    out = {}
    for config in STUDY_CONFIGS:
        out[config] = {}
        for backend in args.backends:
            folder = args.out / "studies" / f"{Path(config).stem}_{backend}"
            cmd = [sys.executable, "-m", "experiments.run", "--config", config, "--set", f"eval.backend={backend}",
                   "--no-compilation-cache", "--out", str(folder)]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            timing = json.loads((folder / "results.json").read_text()).get("timing")
            out[config][backend] = {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime)
                                    + (after.ru_stime - before.ru_stime), "timing": timing, "command": " ".join(cmd)}
            print(f"{config} {backend}: {wall:.1f} s wall", file=sys.stderr)
    return out


def tables(payload: dict) -> str:
    res, args = payload["results"], payload["args"]
    if args.get("studies"):
        rows = [[Path(c).stem, b, r["wall_s"], r["cpu_s"], (r["timing"] or {}).get("evaluation_s")]
                for c, per in res.items() for b, r in per.items()]
        return format_table("whole studies, cold, one process each", ["config", "backend", "wall s", "CPU s",
                                                                       "evaluation s"], rows)
    if args["offline"]:
        rows = []
        for data, per in res.items():
            for sc in ("none", "standard"):
                for c in args["classifiers"]:
                    rows.append([data, sc, c, *(per[b][sc][c]["accuracy"] for b in args["backends"])])
        walls = ", ".join(f"{d} {b} {per[b]['wall_s']:.0f} s" for d, per in res.items() for b in args["backends"])
        return format_table("fold-mean accuracy, 10 folds", ["data", "scaling", "classifier", *args["backends"]],
                            rows, note=f"wall: {walls}")
    rows = [[b, r["wall_s"], *(r["fit_time_sum_s"][c] for c in args["classifiers"]),
             *(float(np.mean(r["accuracy"][c])) for c in args["classifiers"])] for b, r in res.items()]
    cols = ["backend", "wall s", *(f"{c} fit s" for c in args["classifiers"]), *(f"{c} acc" for c in args["classifiers"])]
    return format_table(f"{args['points']} point(s) of {args['rows']} x {args['dim']}, 10 folds", cols, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--points", type=int, default=13, help="synthetic feature sets (grid points)")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classifiers", nargs="+", default=None)
    ap.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    ap.add_argument("--n-jobs", type=int, default=-1)
    ap.add_argument("--offline", action="store_true", help="breast_cancer and digits, both backends")
    ap.add_argument("--studies", action="store_true", help="the two CPU configs as whole studies, both backends")
    args = ap.parse_args(argv)
    if args.classifiers is None:
        args.classifiers = ["svm", "rf", "mlp", "nb"] if args.offline else ["mlp", "nb", "svm"]
    meta = environment(sys.argv if argv is None else argv, quick=False)
    args.out.mkdir(parents=True, exist_ok=True)
    results = studies(args) if args.studies else offline(args) if args.offline else paper_scale(args)
    payload = {"meta": meta, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "results": results}
    text = tables(payload)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_evaluation.json").write_text(json.dumps(payload, indent=1))
    (args.out / "bench_evaluation.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
