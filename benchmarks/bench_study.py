"""study: one study of R grid points against the R per-point runs it replaces, cold, end to end.

Each side is ``icrst_jax.studies.run`` end to end without a persistent compilation cache: the
study trains all points in one program; per point, each compiles its own. t-SNE and MI
off on both; the study runs first (one-time costs land on it); every point's final loss
must match its own run. Grids: ``digits`` (narrow conv, width 1/8, 16x16, batch 128, 3 epochs;
standard, ICRST and TRST at p = 0.2, 0.6, 1; seeds 0, 1: 14 points) and
``breast_cancer`` (``configs/paper_breast_cancer.py``: 13 points, 50 epochs);
``--quick``: 2 Breast Cancer points, 2 epochs, NB, 2 folds (a smoke test).

Standalone: ``python -m benchmarks.bench_study [--quick] [--grid digits|breast_cancer] [--json FILE]``.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_lib import Context, environment, format_table, ratio, write_json

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("compiling_s", "training_s", "evaluation_s")


def plan(ctx: Context) -> dict:
    from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig, load_config

    no_extras = dict(mi=False, tsne=False)
    if ctx.quick:
        return {"breast_cancer_quick": StudyConfig(
            train=TrainConfig(epochs=2, model=ModelConfig(name="mlp")), modes=("standard", "icrst"), p_values=(1.0,),
            seeds=(0,), eval=EvalConfig(classifiers=("nb",), n_folds=2, backend="sklearn", untrained=False, purity=False,
                                         n_jobs=1, **no_extras),
            checkpoints=False)}
    paper = load_config(ROOT / "configs" / "paper_breast_cancer.py")
    return {"digits": StudyConfig(
                data=DataConfig(name="digits", image_size=16), modes=("standard", "icrst", "trst"),
                train=TrainConfig(epochs=3, batch_size=128, model=ModelConfig(name="conv", width=0.125)),
                p_values=(0.2, 0.6, 1.0), seeds=(0, 1), eval=EvalConfig(**no_extras), checkpoints=False),
            "breast_cancer": paper.replace(eval=dataclasses.replace(paper.eval, **no_extras), checkpoints=False)}


def run_grid(ctx: Context, name: str, cfg) -> dict:
    from icrst_jax import data as data_lib
    from icrst_jax import studies
    from icrst_jax.runtime import setup_compilation_cache

    def _timed(cfg, dataset) -> tuple[float, dict]:
        t0 = time.perf_counter()
        payload = studies.run(cfg, dataset=dataset)
        return time.perf_counter() - t0, payload

    setup_compilation_cache(enabled=False)  # cold: every program compiles
    dataset = data_lib.load_dataset(cfg.data.name, image_size=cfg.data.image_size)
    points = cfg.grid()
    with tempfile.TemporaryDirectory() as tmp:
        ctx.log(f"study {name}: {len(points)} grid points in one program")
        study_s, study = _timed(cfg.replace(out=f"{tmp}/study"), dataset)
        per_point_s, per_point_timing, mismatched = [], [], []
        for i, pt in enumerate(points):
            ctx.log(f"study {name}: per-point run {i + 1}/{len(points)} ({pt.tag})")
            one = cfg.replace(modes=(pt.mode,), p_values=(pt.p if pt.mode in ("icrst", "trst") else 1.0,),
                              seeds=(pt.seed,), out=f"{tmp}/{pt.tag}")
            s, payload = _timed(one, dataset)
            per_point_s.append(s)
            per_point_timing.append(payload["timing"])
            a, b = payload["points"][0]["final_loss"], study["points"][i]["final_loss"]
            if abs(a - b) > 1e-4 * abs(b):
                mismatched.append(pt.tag)
    total = sum(per_point_s)
    return {"grid_points": len(points), "config": study["config"], "study_s": study_s, "study_timing": study["timing"],
            "per_point_s": per_point_s, "per_point_total_s": total,
            "per_point_timing_sum": {k: sum(t[k] for t in per_point_timing) for k in PARTS},
            "speedup": ratio(total, study_s), "same_final_losses": not mismatched, "mismatched_points": mismatched}


def run(ctx: Context, only: str | None = None) -> tuple[dict, str]:
    rows = {name: run_grid(ctx, name, cfg) for name, cfg in plan(ctx).items() if only is None or name == only}
    table = [[name, r["grid_points"], r["study_s"], *(r["study_timing"][k] for k in PARTS), r["per_point_total_s"],
              *(r["per_point_timing_sum"][k] for k in PARTS), r["speedup"], r["same_final_losses"]]
             for name, r in rows.items()]
    text = format_table("study: one study vs its per-point runs, cold, end to end (seconds)",
                        ["grid", "points", "study s", "compile", "train", "eval", "per-point s", "compile", "train",
                         "eval", "speedup", "same losses"], table)
    return {"rows": rows}, text


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_study")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--grid", choices=("digits", "breast_cancer", "breast_cancer_quick"), default=None)
    ap.add_argument("--json", default=None, help="write the result here")
    args = ap.parse_args()
    result, text = run(Context(args.quick), only=args.grid)
    print(text)
    if args.json:
        write_json(args.json, {"meta": environment(sys.argv, args.quick), "benchmarks": {"study": result}})
