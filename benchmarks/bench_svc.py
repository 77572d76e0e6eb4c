"""The JAX SVC (``icrst_jax/jax_svc.py``) against scikit-learn's ``SVC()``, per fold, cold and warm.

Usage::

    python -m benchmarks.bench_svc --out DIR                 # breast_cancer, digits, 2000 x 512 synthetic
    python -m benchmarks.bench_svc --sets digits synthetic_5000x512 --out DIR

Each set: 10 ``StratifiedKFold`` folds (seed 0), raw features; ``synthetic_<rows>x<dim>`` is
``bench_evaluation.synthetic_latents`` (ten overlapping Gaussian classes). JAX: the 10 fits as one
program call (``jax_svc.svc``), ``cold`` = the first call in the process (compiling
included), ``warm`` = the best of ``--repeats`` further calls; scikit-learn: ``SVC()``
fit + predict of each fold in turn on one BLAS thread, the best of ``--repeats`` passes.
Times are per fold (a call's time / 10). The agreement column is the share of test
points where both predict the same class (the worst fold). Writes ``DIR/bench_svc.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_evaluation import synthetic_latents
from benchmarks.bench_lib import environment, format_table

SETS = ("breast_cancer", "digits", "synthetic_2000x512")


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "digits":
        return load_digits(return_X_y=True)
    rows, dim = map(int, name.removeprefix("synthetic_").split("x"))
    return synthetic_latents(rows, dim, seed=0)


def one_set(name: str, repeats: int) -> dict:
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    from icrst_jax import jax_svc as js

    x, y = load(name)
    k = len(np.unique(y))
    splits = list(StratifiedKFold(10, shuffle=True, random_state=0).split(x, y))
    mask = np.zeros((10, len(y)), bool)
    for f, (tr, _) in enumerate(splits):
        mask[f, tr] = True

    def jax_call():
        chunk = js.svc_fits_per_chunk(x.shape[0], x.shape[1], k, js.class_size(y[None], np.zeros(10, int), mask, k))
        return js.svc(x[None], y[None], np.zeros(10, np.int32), mask, n_classes=k, scaled=False, chunk=chunk)

    t0 = time.perf_counter()
    res = jax_call()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax_call()
        warm.append(time.perf_counter() - t0)
    sk, preds = [], []
    with threadpool_limits(1):
        for _ in range(repeats):
            t0 = time.perf_counter()
            preds = [SVC().fit(x[tr], y[tr]).predict(x[te]) for tr, te in splits]
            sk.append(time.perf_counter() - t0)
    agree = [float(np.mean(res.pred[f, te] == p)) for f, ((_, te), p) in enumerate(zip(splits, preds))]
    out = {"rows": int(x.shape[0]), "features": int(x.shape[1]), "classes": k, "jax_cold_per_fold_s": cold / 10,
           "jax_warm_per_fold_s": min(warm) / 10, "sklearn_per_fold_s": min(sk) / 10,
           "min_fold_agreement": min(agree), "max_smo_iterations": int(res.n_iter.max()),
           "converged": bool(res.converged.all())}
    print(f"{name}: {out}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=list(SETS), help=f"default: {' '.join(SETS)}")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    meta = environment(sys.argv if argv is None else argv, quick=False)
    results = {name: one_set(name, args.repeats) for name in args.sets}
    rows = [[n, r["jax_cold_per_fold_s"], r["jax_warm_per_fold_s"], r["sklearn_per_fold_s"], r["min_fold_agreement"]]
            for n, r in results.items()]
    text = format_table("SVC() per fold, 10 folds", ["set", "jax cold s", "jax warm s", "sklearn s",
                                                     "agreement (worst fold)"], rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_svc.json").write_text(json.dumps({"meta": meta, "args": {"sets": args.sets,
                                                                                "repeats": args.repeats},
                                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
