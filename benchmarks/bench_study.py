"""study: one study of R grid points against the R per-point runs it replaces, cold, end to end.

Each side is ``run_experiment`` (data loading, training, latents, cross-validation,
results.json and report.md) with no persistent compilation cache:

* study: one :class:`StudyConfig` of modes x p x seeds, all grid points trained
  in one compiled epoch program and evaluated in one pool of workers;
* per point: the same config restricted to one grid point, once per point, as a
  tool without studies runs them (each compiles its own programs: a new engine
  is a new jitted function, so nothing compiled for one point serves the next).

Both sides use the same classifiers, folds and workers; t-SNE and MI are off on
both (per-point runs would redo them R times, which would flatter the study).
The study runs first, so one-time costs (imports, the worker pool's start) land
on it. Each point's final training loss must match between the two sides (the
study's equality with separate runs, checked here end to end).

Grids (the issue's target: the study at least 3x faster end to end on a 2-core CPU):

* digits, the narrow conv (width 1/8, 16x16 images, batch 128, 3 epochs):
  standard, ICRST and TRST at p = 0.2, 0.6, 1.0, seeds 0 and 1: 14 points;
* Breast Cancer, the paper's grid (``configs/paper_breast_cancer.py``: 50
  epochs, p = 0, 0.2, ..., 1.0): 13 points.

``--quick``: Breast Cancer, standard and ICRST p = 1, one seed, 2 epochs, one
classifier and 2 folds (2 points; a smoke test of the machinery, not a measurement).

Standalone: ``python -m benchmarks.bench_study [--quick] [--grid digits|breast_cancer]``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from benchmarks.bench_lib import Context, format_table, ratio, write_json

TARGET_SPEEDUP = 3.0
ROOT = Path(__file__).resolve().parents[1]


def plan(ctx: Context) -> dict:
    from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig, load_config

    no_extras = dict(mi=False, tsne=False)
    if ctx.quick:
        return {
            "breast_cancer_quick": StudyConfig(
                train=TrainConfig(epochs=2, model=ModelConfig(name="mlp")),
                modes=("standard", "icrst"), p_values=(1.0,), seeds=(0,),
                eval=EvalConfig(classifiers=("nb",), n_folds=2, **no_extras), checkpoints=False,
            )
        }
    paper = load_config(ROOT / "configs" / "paper_breast_cancer.py")
    return {
        "digits": StudyConfig(
            data=DataConfig(name="digits", image_size=16),
            train=TrainConfig(epochs=3, batch_size=128, model=ModelConfig(name="conv", width=0.125)),
            modes=("standard", "icrst", "trst"), p_values=(0.2, 0.6, 1.0), seeds=(0, 1),
            eval=EvalConfig(**no_extras), checkpoints=False,
        ),
        "breast_cancer": paper.replace(eval=dataclasses.replace(paper.eval, **no_extras), checkpoints=False),
    }


def _timed(cfg, dataset) -> tuple[float, dict]:
    from icrst_jax.experiment import run_experiment

    t0 = time.perf_counter()
    payload = run_experiment(cfg, dataset=dataset)
    return time.perf_counter() - t0, payload


def run_grid(ctx: Context, name: str, cfg) -> dict:
    from icrst_jax import data as data_lib
    from icrst_jax.experiment import setup_compilation_cache

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
    parts = ("training_s", "compiling_s", "evaluation_s")
    return {
        "grid_points": len(points),
        "config": study["config"],
        "study_s": study_s,
        "study_timing": study["timing"],
        "per_point_s": per_point_s,
        "per_point_total_s": total,
        "per_point_timing_sum": {k: sum(t[k] for t in per_point_timing) for k in parts},
        "speedup": ratio(total, study_s),
        "same_final_losses": not mismatched,
        "mismatched_points": mismatched,
    }


def run(ctx: Context, only: str | None = None) -> tuple[dict, str]:
    grids = {k: v for k, v in plan(ctx).items() if only is None or k == only}
    rows, table = {}, []
    for name, cfg in grids.items():
        r = run_grid(ctx, name, cfg)
        rows[name] = r
        st, pp = r["study_timing"], r["per_point_timing_sum"]
        table.append([
            name, r["grid_points"], r["study_s"], st["compiling_s"], st["training_s"], st["evaluation_s"],
            r["per_point_total_s"], pp["compiling_s"], pp["training_s"], pp["evaluation_s"], r["speedup"],
            "yes" if r["same_final_losses"] else "NO",
        ])
    target = None
    if not ctx.quick and not ctx.on_accelerator and rows:
        worst = min(r["speedup"] for r in rows.values())
        target = {"required_min": TARGET_SPEEDUP, "measured": worst, "met": worst >= TARGET_SPEEDUP}
    note = (f"target (2-core CPU): study >= {TARGET_SPEEDUP:g}x faster end to end: "
            f"{'met' if target['met'] else 'MISSED'} (worst {target['measured']:.2f}x)" if target else
            "quick: a smoke test; no target judged")
    text = format_table(
        "study: one study vs its per-point runs, cold, end to end (seconds)",
        ["grid", "points", "study s", "compile", "train", "eval", "per-point s", "compile", "train", "eval",
         "speedup", "same losses"],
        table, note,
    )
    return {"rows": rows, "target": target}, text


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
        write_json(args.json, {"benchmarks": {"study": result}})
