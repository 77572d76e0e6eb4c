"""The one-shot accelerator check: the paper's sizes on one GPU/TPU, in one call.

Usage::

    python -m benchmarks.accelerator_check --out DIR            # on the accelerator
    python -m benchmarks.accelerator_check --dry-run --out DIR  # tiny sizes, any CPU (CI)
    bash benchmarks/accelerator_check.sh                        # the device tool's command

A session that is lent an accelerator has a few minutes of device time, start-up
included, so this script is prepared to measure everything that matters in one
run and to return what it has even when it is cut short. Sections, in order of
value (each is timed on its own, guarded, and written to the JSON as soon as it
ends, so a later failure or the time budget never loses an earlier figure):

1. ``peak``: a jitted n x n matmul in float32 and bfloat16 (the dtypes' ceiling
   on this device, measured in the same run).
2. ``conv_f32`` / ``conv_bf16``: Table D1's MNIST ``conv`` at full width, batch
   512 (section 6), ICRST p = 1: samples/s per step and model FLOP/s as a
   fraction of the same dtype's peak; the float32 row against the PyTorch
   reference on the same device, per step (ready tensors) and end to end (the
   authors' DataLoader with per-sample host pairing, ``num_workers=0``).
3. ``strided_f32``: ``conv_strided`` (CIFAR-10) at full width, batch 64, with the
   same PyTorch comparison.
4. ``grid``: K runs of the narrow conv (width 0.25, batch 64) stacked on the run
   axis and vmapped in one program, against one run: the cost per epoch of K
   grid points. The run axis is the seed axis today (every grid point of a
   study is a run on it once modes and p are data).
5. ``grid_matmul``: the same runs with ``conv_impl="matmul"`` (im2col patches
   times the kernel matrix: vmapped over runs, one batched matrix product where
   XLA's convolution becomes a grouped convolution), one run, all vmapped, in
   chunks, and in bfloat16, with the final loss against the ``grid`` rows (same
   initial states, data and epochs).
6. ``conv_matmul``: the full-width ``conv`` at batch 512 with ``matmul``, one
   run, against the ``conv_f32`` row: whether one run should use it too.
7. ``grid_parts``: the ``grid`` section's K vmapped runs without dropout, and
   without BatchNorm: what the layers around the convolutions cost.
8. ``grid_profile``: a device trace of one run and of the K vmapped runs of
   ``grid`` (``benchmarks.bench_profile``): time per epoch by kind of op and the
   heaviest ops; the K-run trace is kept as ``grid_profile_trace.json.gz``.

Every throughput is a median over repeats of whole compiled epochs (the
engine's own ``compile_epoch``) with min and max; compilation is reported
separately. Output: ``DIR/accelerator_check.json`` (``{"meta", "sections"}``)
and ``DIR/accelerator_check.txt`` (the tables). Exit status 1 if a section
failed (its entry holds the error), 0 otherwise; sections left out by the time
budget say so.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

# Leave device memory to the PyTorch reference that runs in the same process
# (JAX would otherwise take 75 % of it before torch allocates anything).
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.6")

from benchmarks.bench_lib import (  # noqa: E402  (after the environment)
    Context,
    RunSpec,
    environment,
    format_table,
    invert,
    med_range,
    model_flops_per_sample,
    peak,
    profile_run,
    ratio,
    standardisation,
    summarize,
    synthetic_data,
    torch_or_reason,
    write_json,
)

SECTIONS = ("peak", "conv_f32", "conv_bf16", "strided_f32", "grid", "grid_matmul", "conv_matmul", "grid_parts", "grid_profile")
TARGET_GRID_K = 16
TARGET_GRID_COST = 2.0  # issue 10: 16 vmapped grid points cost at most 2x one point per epoch


def plan(dry_run: bool) -> dict:
    """The run specifications of each section: the paper's sizes, or tiny ones for
    a dry run that exercises the same code on a CPU in seconds."""
    if dry_run:
        # The MLP stands in for the conv models: a conv epoch takes 20-100 s to
        # compile on a small CPU, the MLP's a few seconds, and the check's own
        # code (sections, PyTorch comparison, JSON, table) is the same.
        conv = RunSpec("mlp", 1.0, 16, steps=2)
        strided = RunSpec("mlp", 0.5, 8, steps=2)
        grid = RunSpec("mlp", 0.25, 8, steps=2)
        return {"conv": conv, "strided": strided, "grid": grid, "grid_k": 2, "grid_chunks": (1,), "grid_matmul_extra": False,
                "warmup": 1, "repeats": 2, "profile_epochs": 1,
                "torch_steps": 2, "torch_warmup": 1}
    return {
        "conv": RunSpec("conv", 1.0, 512, steps=16),
        "strided": RunSpec("conv_strided", 1.0, 64, steps=64),
        # XLA's convolution named, not "auto": the baseline of grid_matmul whatever "auto" picks.
        "grid": RunSpec("conv", 0.25, 64, steps=16, conv_impl="xla"),
        "grid_k": TARGET_GRID_K,
        "grid_chunks": (4, 1),
        "grid_matmul_extra": True,  # grid_matmul's chunked and bfloat16 rows
        "warmup": 2,
        "repeats": 7,
        "profile_epochs": 3,
        "torch_steps": 20,
        "torch_warmup": 5,
    }


def gpu_info() -> dict:
    """nvidia-smi's view of the GPU (name, memory, driver, clocks), when there is one."""
    fields = "name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0 or not out.stdout.strip():
        return {}
    return dict(zip(fields.split(","), (v.strip() for v in out.stdout.splitlines()[0].split(","))))


def jax_throughput(ctx: Context, spec: RunSpec, peaks: dict, *, warmup: int, repeats: int) -> dict:
    """Compile, warm up and time whole epochs of ``spec``; FLOP/s against the dtype's peak."""
    r = ctx.run(spec)
    epoch = r.measure(warmup=warmup, repeats=repeats)
    steps = r.engine.steps_per_epoch
    step = {k: (v / steps if k != "n" else v) for k, v in epoch.items()}
    flops_sample = model_flops_per_sample(spec.model, spec.width, spec.sample_shape)
    rate = invert(epoch, flops_sample * r.samples_per_epoch)
    peak = peaks.get(spec.dtype, {}).get("flops_per_s", {}).get("median")
    return {
        "model": spec.model, "width": spec.width, "batch": r.engine.batch_size, "dtype": spec.dtype,
        "sample_shape": list(spec.sample_shape), "steps_per_epoch": steps, "seeds": spec.seeds,
        "init_s": r.init_s, "compile_s": r.compile_s, "first_epoch_s": r.first_epoch_s,
        "epoch_s": epoch, "step_s": step,
        "step_samples_per_s": invert(step, r.engine.batch_size * spec.seeds),
        "epoch_samples_per_s": invert(epoch, r.samples_per_epoch),
        "model_flops_per_sample": flops_sample,
        "model_flops_per_s": rate,
        "fraction_of_peak": ratio(rate["median"], peak) if peak else float("nan"),
        "final_loss": float(r.last_loss.mean()),
    }


def torch_throughput(spec: RunSpec, *, steps: int, warmup: int, repeats: int) -> dict:
    """The PyTorch reference on the same device: per step on ready tensors, and
    end to end through the authors' DataLoader with host pairing (same samples)."""
    tr, reason = torch_or_reason()
    if tr is None:
        return {"skipped": reason}
    import torch

    shape = spec.sample_shape
    torch_shape = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
    step = tr.step_throughput(spec.model, spec.batch, input_shape=torch_shape, width=spec.width,
                              steps=steps, warmup=warmup)
    # The authors' Lightning trainer leaves cudnn.benchmark off (the row above);
    # PyTorch's best per-step figure has cuDNN try its algorithms first.
    best = None
    if torch.cuda.is_available():
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            best = tr.step_throughput(spec.model, spec.batch, input_shape=torch_shape, width=spec.width,
                                      steps=steps, warmup=warmup)
        finally:
            torch.backends.cudnn.benchmark = previous
    x, y = synthetic_data(spec.model, spec.n, shape=shape)
    mean, std = standardisation(x)
    e2e = []
    # The first pass warms the device (cuDNN algorithm choice, allocator); not timed.
    for rep in range(repeats + 1):
        out = tr.train_torch(spec.model, x, y, mode=spec.mode, p=spec.p, epochs=1, batch_size=spec.batch,
                             width=spec.width, mean=mean, std=std, seed=rep)
        if rep:
            e2e.append(out["samples_per_s"])
    return {
        "device": tr.default_device(),
        "torch": torch.__version__,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "step_samples_per_s": invert(summarize(step["per_step_seconds"]), spec.batch),
        "e2e_samples_per_s": summarize(e2e),
        "e2e_num_workers": 0,
        "step_samples_per_s_cudnn_benchmark": (invert(summarize(best["per_step_seconds"]), spec.batch)
                                                if best else None),
    }


def _measure(ctx: Context, state: dict, p: dict, spec: RunSpec) -> dict:
    """:func:`jax_throughput` of ``spec`` with the plan's repeats, against the measured peaks."""
    return jax_throughput(ctx, spec, state.get("peaks", {}), warmup=p["warmup"], repeats=p["repeats"])


def section_peak(ctx: Context, state: dict) -> tuple[dict, list[list]]:
    peaks = {dt: peak(ctx, dt) for dt in ("float32", "bfloat16")}
    state["peaks"] = peaks
    rows = [[f"matmul {p['n']}x{p['n']} {dt}", "-", med_range(p["flops_per_s"], 1e-12), "-", "-", "-"]
            for dt, p in peaks.items()]
    return {"peaks": peaks}, rows


def _row_cells(label: str, j: dict, t: dict | None) -> list:
    cells = [label, f"{j['compile_s']:.1f}", med_range(j["step_samples_per_s"]),
             f"{med_range(j['model_flops_per_s'], 1e-12)} ({j['fraction_of_peak']:.2f})"]
    if t is None:
        return cells + ["-", "-"]
    if "skipped" in t:
        return cells + [t["skipped"], "-"]
    best = t.get("step_samples_per_s_cudnn_benchmark")
    return cells + [f"{med_range(t['step_samples_per_s'])} | e2e {med_range(t['e2e_samples_per_s'])}"
                    + (f" | cudnn.benchmark {best['median']:.0f}" if best else ""),
                    f"{t['ratio_step']:.2f} | e2e {t['ratio_e2e']:.2f}"
                    + (f" | {t['ratio_step_cudnn_benchmark']:.2f}" if best else "")]


def section_model(ctx: Context, state: dict, spec: RunSpec, p: dict, *, compare_torch: bool):
    j = _measure(ctx, state, p, spec)
    out = {"jax": j}
    t = None
    if compare_torch:
        ctx.log(f"  torch {spec.label()}")
        t = torch_throughput(spec, steps=p["torch_steps"], warmup=p["torch_warmup"], repeats=min(p["repeats"], 3))
        if "skipped" not in t:
            t["ratio_step"] = ratio(j["step_samples_per_s"]["median"], t["step_samples_per_s"]["median"])
            t["ratio_e2e"] = ratio(j["epoch_samples_per_s"]["median"], t["e2e_samples_per_s"]["median"])
            if t["step_samples_per_s_cudnn_benchmark"]:
                t["ratio_step_cudnn_benchmark"] = ratio(j["step_samples_per_s"]["median"],
                                                        t["step_samples_per_s_cudnn_benchmark"]["median"])
        out["torch"] = t
    f32 = state.get(("f32", spec.model, spec.width, spec.batch))
    if spec.conv_impl != "auto":
        if f32 is not None:  # against the same model with the backend's own convolution
            out["ratio_vs_auto"] = ratio(j["step_samples_per_s"]["median"], f32["step_samples_per_s"]["median"])
            out["loss_rel_diff_vs_auto"] = abs(j["final_loss"] - f32["final_loss"]) / abs(f32["final_loss"])
    elif spec.dtype != "float32":
        if f32 is not None:
            out["ratio_vs_float32"] = ratio(j["step_samples_per_s"]["median"], f32["step_samples_per_s"]["median"])
    else:
        state[("f32", spec.model, spec.width, spec.batch)] = j
    return out, [_row_cells(spec.label(), j, t)]


def section_grid(ctx: Context, state: dict, spec: RunSpec, p: dict):
    import dataclasses

    k = p["grid_k"]
    ctx.reserve_seeds(spec, k)  # one initialiser for both rows
    one = _measure(ctx, state, p, spec)
    many_spec = dataclasses.replace(spec, seeds=k, seed_batch=k)
    many = _measure(ctx, state, p, many_spec)
    cost = ratio(many["epoch_s"]["median"], one["epoch_s"]["median"])
    # The same K runs in chunks of b inside the program (lax.map over vmapped
    # chunks, TrainConfig.seed_batch): where vmapping all K is not the fastest.
    chunked = {}
    for b in p["grid_chunks"]:
        c = _measure(ctx, state, p, dataclasses.replace(spec, seeds=k, seed_batch=b))
        chunked[str(b)] = dict(c, cost_vs_one=ratio(c["epoch_s"]["median"], one["epoch_s"]["median"]))
    out = {"one": one, "vmapped": many, "chunked": chunked, "k": k, "cost_vs_one": cost,
           "per_point_speedup": ratio(k * one["epoch_s"]["median"], many["epoch_s"]["median"]),
           "target": {"what": f"{TARGET_GRID_K} grid points vmapped cost <= {TARGET_GRID_COST:g}x one point per epoch",
                      "required_max": TARGET_GRID_COST, "measured": cost,
                      "met": cost <= TARGET_GRID_COST, "judged": ctx.on_accelerator and k == TARGET_GRID_K}}
    state["grid"] = {"one": one, "vmapped": many}
    rows = [_row_cells(f"{spec.label()} x1", one, None),
            _row_cells(f"{spec.label()} x{k} vmapped", many, None)]
    rows[-1][-1] = f"cost {cost:.2f}x one"
    for b, c in chunked.items():
        rows.append(_row_cells(f"{spec.label()} x{k} chunks of {b}", c, None))
        rows[-1][-1] = f"cost {c['cost_vs_one']:.2f}x one"
    return out, rows


def section_grid_matmul(ctx: Context, state: dict, spec: RunSpec, p: dict):
    """The ``grid`` section's runs with ``conv_impl="matmul"``, judged against its target."""
    import dataclasses

    k = p["grid_k"]
    mm = dataclasses.replace(spec, conv_impl="matmul")
    ctx.reserve_seeds(mm, k)
    measure = lambda sp: _measure(ctx, state, p, sp)  # noqa: E731
    one = measure(mm)
    many = measure(dataclasses.replace(mm, seeds=k, seed_batch=k))
    cost = ratio(many["epoch_s"]["median"], one["epoch_s"]["median"])
    out = {"one": one, "vmapped": many, "k": k, "cost_vs_one": cost, "chunked": {}}
    rows = [_row_cells(f"{mm.label()} x1", one, None), _row_cells(f"{mm.label()} x{k} vmapped", many, None)]
    xla = state.get("grid")
    if xla:
        # Against XLA's convolution: the same K runs, and one run the way "auto" runs it.
        out["cost_vs_xla_one"] = ratio(many["epoch_s"]["median"], xla["one"]["epoch_s"]["median"])
        out["speedup_vs_xla_vmapped"] = ratio(xla["vmapped"]["epoch_s"]["median"], many["epoch_s"]["median"])
        out["loss_rel_diff_vs_xla"] = abs(many["final_loss"] - xla["vmapped"]["final_loss"]) / abs(xla["vmapped"]["final_loss"])
        rows[-1][-1] = f"cost {out['cost_vs_xla_one']:.2f}x one xla"
    else:
        rows[-1][-1] = f"cost {cost:.2f}x one"
    if p["grid_matmul_extra"]:
        b = p["grid_chunks"][0]
        c = measure(dataclasses.replace(mm, seeds=k, seed_batch=b))
        out["chunked"][str(b)] = dict(c, cost_vs_one=ratio(c["epoch_s"]["median"], one["epoch_s"]["median"]))
        rows.append(_row_cells(f"{mm.label()} x{k} chunks of {b}", c, None))
        bf = measure(dataclasses.replace(_bf16(mm), seeds=k, seed_batch=k))
        out["vmapped_bf16"] = bf
        rows.append(_row_cells(f"{_bf16(mm).label()} x{k} vmapped", bf, None))
    best = min([r["epoch_s"]["median"] for r in (many, out.get("vmapped_bf16")) if r]
               + [c["epoch_s"]["median"] for c in out["chunked"].values()])
    base = (xla or out)["one"]["epoch_s"]["median"]
    out["target"] = {"what": f"{TARGET_GRID_K} grid points cost <= {TARGET_GRID_COST:g}x one point per epoch (best matmul schedule vs one xla point)",
                     "required_max": TARGET_GRID_COST, "measured": ratio(best, base),
                     "met": ratio(best, base) <= TARGET_GRID_COST, "judged": ctx.on_accelerator and k == TARGET_GRID_K}
    return out, rows


def section_grid_parts(ctx: Context, state: dict, spec: RunSpec, p: dict):
    """The K vmapped runs of ``grid`` with dropout off, and with BatchNorm off."""
    import dataclasses

    k = p["grid_k"]
    many = dataclasses.replace(spec, seeds=k, seed_batch=k)
    measure = lambda sp: _measure(ctx, state, p, sp)  # noqa: E731
    base = (state.get("grid") or {}).get("vmapped") or measure(many)
    out, rows = {"k": k, "all": base}, []
    for name, variant in (("no_dropout", dataclasses.replace(many, dropout=0.0)),
                          ("no_batch_norm", dataclasses.replace(many, batch_norm=False))):
        r = measure(variant)
        out[name] = dict(r, share_of_epoch=1.0 - ratio(r["epoch_s"]["median"], base["epoch_s"]["median"]))
        rows.append(_row_cells(f"{variant.label()} x{k} vmapped", r, None))
        rows[-1][-1] = f"{out[name]['share_of_epoch']:.0%} of the epoch"
    return out, rows


def section_grid_profile(ctx: Context, state: dict, spec: RunSpec, p: dict, out_dir: Path):
    """Where the epoch of one run and of K vmapped runs goes, from a device trace."""
    import dataclasses

    k = p["grid_k"]
    ctx.reserve_seeds(spec, k)
    out, rows = {"k": k}, []
    for name, sp in (("one", spec), ("vmapped", dataclasses.replace(spec, seeds=k, seed_batch=k))):
        r = ctx.run(sp)  # the grid section's compiled run when it ran first
        keep = str(out_dir / "grid_profile_trace.json.gz") if name == "vmapped" else None
        prof = profile_run(ctx, r, p["profile_epochs"], top=12, keep_trace=keep)
        out[name] = prof
        label = f"{sp.label()} x{sp.seeds}"
        for kind, v in list(prof["kinds"].items())[:6]:
            rows.append([f"{label} {kind}", "-", f"{v['s_per_epoch'] * 1e3:.2f} ms/epoch", f"{v['share']:.0%}", "-", "-"])
        for op in prof["top_ops"][:4]:
            rows.append([f"{label} {op['op'][:40]}", "-", f"{op['s_per_epoch'] * 1e3:.2f} ms/epoch",
                         f"{op['share']:.0%}", f"x{op['calls_per_epoch']:g}", "-"])
        rows.append([f"{label} all ops", "-", f"{prof['op_s_per_epoch'] * 1e3:.2f} ms/epoch",
                     f"wall {prof['wall_s_per_epoch'] * 1e3:.2f} ms", "-", "-"])
    return out, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.accelerator_check", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "runs/accelerator_check",
                    help="folder for accelerator_check.json and .txt (default: $OUT, else runs/accelerator_check)")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, for a CPU (CI): same code, no figures worth reading")
    ap.add_argument("--budget-s", type=float, default=330.0,
                    help="start no new section after this many seconds (the device call's limit leaves room for one rerun)")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="NAME",
                    help=f"run only these sections ({', '.join(SECTIONS)}; default: all)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        ap.exit(2, f"error: cannot create --out {out}: {exc.strerror}\n")

    t_start = time.perf_counter()
    ctx = Context(quick=args.dry_run, tag="accel ")
    if not args.dry_run and not ctx.on_accelerator:
        ap.exit(2, "error: no accelerator found (jax.default_backend() is 'cpu'); use --dry-run on a CPU\n")
    p = plan(args.dry_run)
    meta = environment(["python", "-m", "benchmarks.accelerator_check", *(argv or sys.argv[1:])], args.dry_run)
    meta.update(dry_run=args.dry_run, gpu=gpu_info(), budget_s=args.budget_s)
    payload = {"meta": meta, "sections": {}}
    state: dict = {}
    sections = [
        ("peak", lambda: section_peak(ctx, state)),
        ("conv_f32", lambda: section_model(ctx, state, p["conv"], p, compare_torch=True)),
        ("conv_bf16", lambda: section_model(ctx, state, _bf16(p["conv"]), p, compare_torch=False)),
        ("strided_f32", lambda: section_model(ctx, state, p["strided"], p, compare_torch=True)),
        ("grid", lambda: section_grid(ctx, state, p["grid"], p)),
        ("grid_matmul", lambda: section_grid_matmul(ctx, state, p["grid"], p)),
        ("conv_matmul", lambda: section_model(ctx, state, _matmul(p["conv"]), p, compare_torch=False)),
        ("grid_parts", lambda: section_grid_parts(ctx, state, p["grid"], p)),
        ("grid_profile", lambda: section_grid_profile(ctx, state, p["grid"], p, out)),
    ]
    ctx.log(f"{meta['device']} x{meta['device_count']} {meta['gpu'].get('name', '')}, jax {meta['jax']}, "
            f"torch {meta['torch']}, {'dry run' if args.dry_run else 'full'}")
    table, failed = [], []
    for name, fn in sections:
        if name not in args.sections:
            continue
        elapsed = time.perf_counter() - t_start
        if elapsed > args.budget_s:
            result = {"skipped": f"time budget: {elapsed:.0f}s > --budget-s {args.budget_s:g}"}
            ctx.log(f"--- {name}: skipped (time budget)")
        else:
            ctx.log(f"--- {name}")
            t0 = time.perf_counter()
            try:
                result, rows = fn()
                table += rows
            except Exception as exc:  # one broken section must not lose the others' figures
                traceback.print_exc(file=sys.stderr)
                result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                table.append([name, "FAILED", f"{type(exc).__name__}: {exc}"[:80], "-", "-", "-"])
                failed.append(name)
            result["seconds"] = time.perf_counter() - t0
        payload["sections"][name] = result
        payload["meta"]["total_seconds"] = time.perf_counter() - t_start
        payload["meta"]["failed"] = failed
        write_json(str(out / "accelerator_check.json"), payload)
    text = format_table(
        f"accelerator check: {meta['device']} {meta['gpu'].get('name', '')}, jax {meta['jax']}, "
        f"torch {meta['torch']}, {meta['date']}, commit {meta['source'].get('commit')}",
        ["config", "compile s", "JAX samples/s per step med [min, max]",
         "model TFLOP/s (fraction of dtype peak)", "PyTorch samples/s: step | e2e", "JAX / PyTorch"],
        table, _notes(payload))
    (out / "accelerator_check.txt").write_text(text + "\n")
    print(text, flush=True)
    ctx.log(f"done in {time.perf_counter() - t_start:.1f}s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _matmul(spec: RunSpec) -> RunSpec:
    import dataclasses

    return dataclasses.replace(spec, conv_impl="matmul")


def _bf16(spec: RunSpec) -> RunSpec:
    import dataclasses

    return dataclasses.replace(spec, dtype="bfloat16")


def _notes(payload: dict) -> str:
    s = payload["sections"]
    notes = []
    bf = s.get("conv_bf16", {})
    if "ratio_vs_float32" in bf:
        notes.append(f"conv bf16 / f32 per step: {bf['ratio_vs_float32']:.2f}x")
    g = s.get("grid", {})
    if "target" in g:
        t = g["target"]
        verdict = ("met" if t["met"] else "MISSED") if t["judged"] else "not judged (dry run)"
        notes.append(f"grid: {g['k']} points vmapped cost {g['cost_vs_one']:.2f}x one point per epoch "
                     f"(target <= {t['required_max']:g}x: {verdict})")
    gm = s.get("grid_matmul", {})
    if "target" in gm:
        t = gm["target"]
        verdict = ("met" if t["met"] else "MISSED") if t["judged"] else "not judged (dry run)"
        extra = (f"; {gm['speedup_vs_xla_vmapped']:.2f}x faster than xla vmapped, final loss within "
                 f"{gm['loss_rel_diff_vs_xla']:.1e}" if "speedup_vs_xla_vmapped" in gm else "")
        notes.append(f"grid matmul: {gm['k']} points cost {t['measured']:.2f}x one point per epoch, best schedule "
                     f"(target <= {t['required_max']:g}x: {verdict}){extra}")
    cm = s.get("conv_matmul", {})
    if "ratio_vs_auto" in cm:
        notes.append(f"conv matmul / auto per step (one run): {cm['ratio_vs_auto']:.2f}x, "
                     f"final loss within {cm['loss_rel_diff_vs_auto']:.1e}")
    for name, v in s.items():
        if "skipped" in v:
            notes.append(f"{name}: {v['skipped']}")
    return "\n".join(notes)


if __name__ == "__main__":
    sys.exit(main())
