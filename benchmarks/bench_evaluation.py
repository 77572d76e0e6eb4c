"""evaluation: ``evaluate_many`` with ``backend="auto"`` (MLP and NB as JAX programs) against ``"sklearn"``.

Usage::

    python -m benchmarks.bench_evaluation --out DIR                      # paper scale: 13 points of 10,000 x 512
    python -m benchmarks.bench_evaluation --points 1 --rows 2000 --out DIR  # what a 2-core CPU affords
    python -m benchmarks.bench_evaluation --offline --out DIR            # breast_cancer, digits: accuracies
    python -m benchmarks.bench_evaluation --offline --jax-on-cpu --classifiers svm rf mlp nb knn linear --out DIR
    python -m benchmarks.bench_evaluation --studies --out DIR            # the two CPU configs, whole studies
    python -m benchmarks.bench_evaluation --svc [--sets digits synthetic_5000x512] --out DIR  # SVC per fold
    python -m benchmarks.bench_evaluation --saved RUN --config configs/cpu_digits.py --out DIR  # a study's latents

Paper scale: synthetic latent sets of ten Gaussian classes (as the full-width
encoder's latents of the MNIST test set), 10 folds, MLP + NB + SVC + the kNN vote +
the linear probe, one cold
``evaluate_many`` per backend (compiling included: a study pays it once).
``--offline``: the offline data sets (raw features, scalings none and standard), every
classifier, fold-mean accuracy side by side (docs/evaluation.md quotes its table from the
file, :mod:`icrst_jax.reporting.backends`); ``--jax-on-cpu`` has ``auto`` run every classifier
it can as a JAX program on a CPU too (the SVM, the kNN vote and the linear probe stay with
scikit-learn there by default), so that the two columns compare the programs with scikit-learn. ``--studies``:
``configs/cpu_breast_cancer_paper_batch.py`` and ``configs/cpu_digits.py`` as whole studies,
each backend cold in its own ``experiments.run`` process: wall and CPU seconds
(the child's user + system) and the study's timing. ``--svc``: the JAX SVC
(``icrst_jax/evaluation/jax_svc.py``, 10 fits as one call: cold = the first call, warm = the best of
``--repeats`` more) against ``SVC()`` fit + predict per fold on one BLAS thread, seconds per
fold, and the share of equal predictions (worst fold). ``--saved RUN``: the evaluate stage
of a finished study (``RUN`` its output folder, ``--config`` its config) on its saved latents,
cold, without retraining: the stage's sets and classifiers (``--classifiers`` keeps those
named, e.g. ``mlp nb``, the JAX programs alone), the MI left out (it needs the images); wall
and CPU seconds of this process (the JAX programs; scikit-learn's pool runs in child
processes) and the stage's timing split. Writes ``DIR/bench_evaluation.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_lib import environment, evaluate_latents, format_table, synthetic_latents, write_json

# The Breast Cancer workload the benchmark has always timed (the paper's batch), not the main job's.
STUDY_CONFIGS = ("configs/cpu_breast_cancer_paper_batch.py", "configs/cpu_digits.py")
# The paper's three JAX-run classifiers and the two representation-learning protocols: the kNN vote
# (auto: the JAX program; sklearn: the numpy reference) and the linear probe (LogisticRegression()).
PAPER_SCALE_CLASSIFIERS = ["mlp", "nb", "svm", "knn", "linear"]
# --offline: the paper's 10-fold protocol on the raw offline sets.
OFFLINE_FOLDS = 10


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
            res = evaluation.evaluate_many([(x, y, 0, "none"), (x, y, 0, "standardised")], args.classifiers,
                                           n_folds=OFFLINE_FOLDS, n_jobs=args.n_jobs, backend=backend,
                                           fold_lines=False, progress=log)
            out[name][backend] = {"wall_s": time.perf_counter() - t0, "rows": len(y), "folds": OFFLINE_FOLDS, **{
                sc: {c: {"accuracy": r[c]["accuracy"]["mean"], "low": r[c]["accuracy"]["low"],
                         "high": r[c]["accuracy"]["high"], "fitted_on": r[c]["fitted_on"],
                         "convergence_warnings": r[c]["convergence_warnings"]} for c in args.classifiers}
                for sc, r in zip(("none", "standardised"), res)}}
        rows += [[name, sc, c, *(out[name][b][sc][c]["accuracy"] for b in args.backends)]
                 for sc in ("none", "standardised") for c in args.classifiers]
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


def svc(args) -> tuple[dict, str]:
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    from icrst_jax.evaluation import jax_svc as js

    out = {}
    for name in args.sets:  # breast_cancer, digits or synthetic_<rows>x<dim>
        if name in ("breast_cancer", "digits"):
            x, y = (load_breast_cancer if name == "breast_cancer" else load_digits)(return_X_y=True)
        else:
            x, y = synthetic_latents(*map(int, name.removeprefix("synthetic_").split("x")), seed=0)
        k, splits = len(np.unique(y)), list(StratifiedKFold(10, shuffle=True, random_state=0).split(x, y))
        mask = np.zeros((10, len(y)), bool)
        for f, (tr, _) in enumerate(splits):
            mask[f, tr] = True
        chunk = js.svc_fits_per_chunk(x.shape[0], x.shape[1], k, js.class_size(y[None], np.zeros(10, int), mask, k))
        call = lambda: js.svc(x[None], y[None], np.zeros(10, np.int32), mask, n_classes=k, scaled=False, chunk=chunk)  # noqa: E731
        cold, res = time_it(call)
        warm = min(time_it(call)[0] for _ in range(args.repeats))
        with threadpool_limits(1):
            sk = [time_it(lambda: [SVC().fit(x[tr], y[tr]).predict(x[te]) for tr, te in splits]) for _ in range(args.repeats)]
        agree = [float(np.mean(res.pred[f, te] == p)) for f, ((_, te), p) in enumerate(zip(splits, sk[-1][1]))]
        out[name] = {"rows": x.shape[0], "features": x.shape[1], "classes": k, "jax_cold_per_fold_s": cold / 10,
                     "jax_warm_per_fold_s": warm / 10, "sklearn_per_fold_s": min(t for t, _ in sk) / 10,
                     "min_fold_agreement": min(agree), "max_smo_iterations": int(res.n_iter.max()),
                     "converged": bool(res.converged.all())}
    return out, format_table("SVC() per fold, 10 folds", ["set", "jax cold s", "jax warm s", "sklearn s", "agreement"],
                             [[n, r["jax_cold_per_fold_s"], r["jax_warm_per_fold_s"], r["sklearn_per_fold_s"],
                               r["min_fold_agreement"]] for n, r in out.items()])


def time_it(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def saved(args) -> tuple[dict, str]:
    from icrst_jax import stages
    from icrst_jax.config.loading import load_config
    from icrst_jax.evaluation import EvalSeconds
    from icrst_jax.runtime import setup_compilation_cache

    setup_compilation_cache(enabled=False)
    cfg = load_config(args.config)
    ev = cfg.eval
    epochs = sorted(int(p.stem.removeprefix("latents_epoch")) for p in args.saved.glob("latents_epoch*.npz"))
    with np.load(args.saved / f"latents_epoch{epochs[0]}.npz") as z:
        tags, labels = list(z["points"]), z["labels"]
    sets = [(np.load(args.saved / f"latents_{tag}.npz")["features"], int(tag.rsplit("seed", 1)[1])) for tag in tags]
    sets += [(np.load(args.saved / f"latents_untrained_seed{s}.npz")["features"], s) for s in cfg.seeds]
    per_set = [ev.classifiers] * len(sets)
    for e in epochs:
        with np.load(args.saved / f"latents_epoch{e}.npz") as z:
            sets += [(f, int(tag.rsplit("seed", 1)[1])) for f, tag in zip(z["features"], tags)]
        per_set += [ev.epoch_classifiers] * len(tags)
    if args.classifiers_given:
        per_set = [tuple(c for c in cs if c in args.classifiers) for cs in per_set]
    seconds = EvalSeconds()
    t0, c0 = time.perf_counter(), time.process_time()
    stages.evaluate_sets(sets, labels, labels, ev, per_set, lambda line: None, seconds)
    out = {"sets": len(sets), "classifiers": sorted({c for cs in per_set for c in cs}),
           "wall_s": time.perf_counter() - t0, "process_cpu_s": time.process_time() - c0,
           "eval_seconds": dataclasses.asdict(seconds)}
    log(json.dumps(out))
    return out, format_table(f"evaluate stage of {args.saved} ({len(sets)} sets), cold",
                             ["wall s", "process CPU s", "JAX s", "sklearn s"],
                             [[out["wall_s"], out["process_cpu_s"], seconds.jax_classifiers_s,
                               seconds.sklearn_classifiers_s]])


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
    ap.add_argument("--jax-on-cpu", action="store_true",
                    help="auto: the SVM, kNN vote and linear probe as JAX programs on a CPU too")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="breast_cancer and digits, both backends")
    mode.add_argument("--studies", action="store_true", help="the two CPU configs as whole studies, both backends")
    mode.add_argument("--svc", action="store_true", help="the JAX SVC against SVC() per fold, on --sets")
    mode.add_argument("--saved", type=Path, help="a finished study's folder: its evaluate stage on its latents")
    ap.add_argument("--config", type=Path, help="--saved: the study's config file")
    ap.add_argument("--sets", nargs="+", default=["breast_cancer", "digits", "synthetic_2000x512"])
    ap.add_argument("--repeats", type=int, default=2, help="--svc: warm calls and scikit-learn passes")
    args = ap.parse_args(argv)
    args.classifiers_given = args.classifiers is not None
    args.classifiers = args.classifiers or (["svm", "rf", "mlp", "nb"] if args.offline else PAPER_SCALE_CLASSIFIERS)
    if args.jax_on_cpu:
        from icrst_jax.evaluation import auto_backend

        auto_backend.JAX_SVC_ON_CPU = auto_backend.JAX_KNN_LINEAR_ON_CPU = True
    meta = environment(["python", "-m", "benchmarks.bench_evaluation", *(sys.argv[1:] if argv is None else argv)], False)
    results, text = (studies if args.studies else offline if args.offline else svc if args.svc
                     else saved if args.saved else paper_scale)(args)
    print(text)
    write_json(args.out / "bench_evaluation.json", {"meta": meta, "args": vars(args), "results": results})
    (args.out / "bench_evaluation.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
