"""The one-shot accelerator check: the paper's sizes on one GPU/TPU, in one call.

Usage::

    bash benchmarks/accelerator_check.sh [OUT] [--sections NAME ...]   # the device tool's command
    python -m benchmarks.accelerator_check --out DIR [--sections NAME ...]
    python -m benchmarks.accelerator_check --dry-run --out DIR         # tiny sizes on a CPU (the tests)

Each section is timed, guarded and written to ``DIR/accelerator_check.json`` as it ends;
none starts after ``--budget-s``. Sections (``--sections``; default all but ``eval``):

* ``peak``: a jitted n x n matmul in float32 and bfloat16 (each dtype's ceiling).
* ``conv_f32`` / ``conv_bf16`` / ``strided_f32``: Table D1's full ``conv`` (batch 512) and
  ``conv_strided`` (batch 64): samples/s per step, model FLOP/s against the dtype's peak,
  float32 against PyTorch on the same device, per step and end to end.
* ``grid``: K runs of the narrow conv (width 0.25, batch 64) vmapped in one program
  (the run axis that seeds and study grid points share), and in chunks, against one run.
* ``grid_matmul`` / ``conv_matmul``: the same with ``conv_impl="matmul"`` (im2col
  times the kernel: a batched matrix product over runs), also in bfloat16; final
  losses against the ``xla`` rows (same initial states, data, epochs).
* ``grid_parts``: the K vmapped runs without dropout, and without BatchNorm.
* ``grid_profile``: a device trace of one run and of the K runs (kinds of op, heaviest
  ops; the K-run trace kept as ``grid_profile_trace.json.gz``).
* ``eval``: the paper-scale evaluation, ``evaluate_many(backend="auto")`` of 13
  synthetic grid points of 10,000 x 512 latents, ten classes, 10 folds, MLP + NB +
  SVC, cold, once: wall seconds, the JAX / scikit-learn split and fold-mean accuracies.

Exit status 1 if a section failed (its entry holds the error), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

# Leave device memory to the PyTorch reference in the same process (JAX would take 75 %).
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.6")

from benchmarks.bench_lib import (  # noqa: E402  (after the environment)
    QUICK_MLP, Context, RunSpec, cell, environment, evaluate_latents, format_table, invert,
    model_flops_per_sample, peak, profile_rows, profile_run, ratio, summarize, synthetic_data, torch_or_reason,
    write_json,
)

SECTIONS = ("peak", "conv_f32", "conv_bf16", "strided_f32", "grid", "grid_matmul", "conv_matmul", "grid_parts",
            "grid_profile", "eval")
DEFAULT_SECTIONS = SECTIONS[:-1]  # eval takes minutes of its own: asked for by name


@dataclasses.dataclass(frozen=True)
class Plan:
    conv: RunSpec
    strided: RunSpec
    grid: RunSpec
    grid_k: int
    grid_chunks: tuple[int, ...]
    matmul_extra: bool  # grid_matmul's chunked and bfloat16 rows
    warmup: int
    repeats: int
    profile_epochs: int
    torch_steps: int
    eval_points: int
    eval_rows: int
    eval_dim: int
    eval_jobs: int  # scikit-learn's workers: 1 keeps a dry run from starting a pool
    eval_classifiers: tuple[str, ...]


# The paper's sizes; grid names XLA's convolution, not "auto", as grid_matmul's baseline.
FULL = Plan(RunSpec("conv", 1.0, 512, steps=16), RunSpec("conv_strided", 1.0, 64, steps=64),
            RunSpec("conv", 0.25, 64, steps=16, conv_impl="xla"), 16, (4, 1), True, 2, 7, 3, 20, 13, 10_000, 512, -1, ("mlp", "nb", "svm"))
# One small MLP stands in for every model (a conv epoch compiles for 20-100 s on a small
# CPU), so sections share its compiled runs, and the evaluation leaves out the JAX MLP
# classifier (a compile of 10 CPU s; NB takes the same JAX path): the check's code is the same.
DRY = Plan(QUICK_MLP, QUICK_MLP, QUICK_MLP, 2, (), False, 1, 2, 1, 2, 2, 300, 16, 1, ("nb", "svm"))


def gpu_info() -> dict:
    """nvidia-smi's view of the GPU, when there is one."""
    fields = "name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(fields.split(","), (v.strip() for v in out.splitlines()[0].split(",")))) if out.strip() else {}


class Check:
    """The sections of one check, sharing the context's compiled runs and the measured peaks."""

    def __init__(self, ctx: Context, plan: Plan, out: Path):
        self.ctx, self.p, self.out, self.peaks, self.f32, self.grid = ctx, plan, out, {}, {}, {}

    def jax(self, spec: RunSpec) -> dict:
        """Throughput of ``spec``, with model FLOP/s against the peak of its dtype."""
        j = self.ctx.run(spec).throughput(warmup=self.p.warmup, repeats=self.p.repeats)
        flops = model_flops_per_sample(spec.model, spec.width, spec.sample_shape)
        rate = invert(j["epoch_s"], flops * self.ctx.run(spec).samples_per_epoch)
        pk = self.peaks.get(spec.dtype, {}).get("flops_per_s", {}).get("median")
        return dict(j, model_flops_per_sample=flops, model_flops_per_s=rate,
                    fraction_of_peak=ratio(rate["median"], pk) if pk else float("nan"))

    @staticmethod
    def row(label, j: dict, torch: dict | None = None, note: str = "") -> list:
        t = torch or {}
        tflops = {k: v / 1e12 for k, v in j["model_flops_per_s"].items()}
        return [label, j["compile_s"], j["step_samples_per_s"], f"{cell(tflops)} ({cell(j['fraction_of_peak'])})",
                t.get("skipped") or (f"{cell(t['step_samples_per_s'])} | e2e {cell(t['e2e_samples_per_s'])}" if t else "-"),
                f"{t['ratio_step']:.2f} | e2e {t['ratio_e2e']:.2f}" if "ratio_step" in t else note or "-"]

    def peak(self):
        self.peaks = {dt: peak(self.ctx, dt) for dt in ("float32", "bfloat16")}
        return {"peaks": self.peaks}, [[f"matmul {p['n']} {dt}", p["compile_s"], "-",
                                        cell({k: v / 1e12 for k, v in p["flops_per_s"].items()}), "-", "-"]
                                       for dt, p in self.peaks.items()]

    def torch(self, spec: RunSpec) -> dict:
        """The PyTorch reference on the same device: per step on ready tensors (also with
        ``cudnn.benchmark``, which the authors' trainer leaves off), and end to end."""
        tr, reason = torch_or_reason()
        if tr is None:
            return {"skipped": reason}
        import torch

        shape = spec.sample_shape
        torch_shape = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
        step = lambda: tr.step_throughput(spec.model, spec.batch, input_shape=torch_shape, width=spec.width,  # noqa: E731
                                          steps=self.p.torch_steps, warmup=max(1, self.p.torch_steps // 4))
        out = {"device": tr.default_device(), "torch": torch.__version__,
               "step_samples_per_s": invert(summarize(step()["per_step_seconds"]), spec.batch)}
        if torch.cuda.is_available():
            torch.backends.cudnn.benchmark = True
            out["step_samples_per_s_cudnn_benchmark"] = invert(summarize(step()["per_step_seconds"]), spec.batch)
            torch.backends.cudnn.benchmark = False
        x, y = synthetic_data(spec.model, spec.n, shape=shape)
        # The first epoch warms the device (cuDNN's algorithm choice, the allocator): not timed.
        e2e = [tr.train_torch(spec.model, x, y, mode=spec.mode, p=spec.p, batch_size=spec.batch, width=spec.width,
                              seed=rep)["samples_per_s"] for rep in range(min(self.p.repeats, 3) + 1)][1:]
        return dict(out, e2e_samples_per_s=summarize(e2e), e2e_num_workers=0)

    def model(self, spec: RunSpec, compare_torch: bool = False):
        j = self.jax(spec)
        out, t = {"jax": j}, None
        if compare_torch:
            self.ctx.log(f"  torch {spec.label()}")
            t = out["torch"] = self.torch(spec)
            if "skipped" not in t:
                t["ratio_step"] = ratio(j["step_samples_per_s"]["median"], t["step_samples_per_s"]["median"])
                t["ratio_e2e"] = ratio(j["epoch_samples_per_s"]["median"], t["e2e_samples_per_s"]["median"])
        key = (spec.model, spec.width, spec.batch)
        if spec.dtype == "float32" and spec.conv_impl == "auto":
            self.f32[key] = j
        elif key in self.f32:  # bfloat16 or another convolution: against the float32 "auto" row
            base = self.f32[key]
            out["ratio_vs_float32_auto"] = ratio(j["step_samples_per_s"]["median"], base["step_samples_per_s"]["median"])
            out["loss_rel_diff_vs_float32_auto"] = abs(j["final_loss"] - base["final_loss"]) / abs(base["final_loss"])
        note = f"{out['ratio_vs_float32_auto']:.2f}x f32 auto" if "ratio_vs_float32_auto" in out else ""
        return out, [self.row(spec.label(), j, t, note)]

    def runs(self, spec: RunSpec, schedules: dict) -> tuple[dict, list]:
        """One run of ``spec`` and K runs per ``{name: seed_batch}``, each with its cost per epoch against one run."""
        k = self.p.grid_k
        out = {"k": k, "one": self.jax(spec)}
        rows = [self.row(f"{spec.label()}", out["one"])]
        for name, sb in schedules.items():
            j = self.jax(dataclasses.replace(spec, seeds=k, seed_batch=sb))
            out[name] = dict(j, cost_vs_one=ratio(j["epoch_s"]["median"], out["one"]["epoch_s"]["median"]))
            rows.append(self.row(f"{spec.label()} x{k} {name}", j, note=f"cost {out[name]['cost_vs_one']:.2f}x one"))
        return out, rows

    def grid_section(self):
        out, rows = self.runs(self.p.grid, {"vmapped": self.p.grid_k, **{f"chunks of {b}": b for b in self.p.grid_chunks}})
        self.grid = out
        return out, rows

    def grid_matmul(self):
        mm = dataclasses.replace(self.p.grid, conv_impl="matmul")
        sched = {"vmapped": self.p.grid_k, **({f"chunks of {self.p.grid_chunks[0]}": self.p.grid_chunks[0]}
                                              if self.p.matmul_extra else {})}
        out, rows = self.runs(mm, sched)
        if self.p.matmul_extra:
            bf = self.jax(dataclasses.replace(mm, dtype="bfloat16", seeds=self.p.grid_k, seed_batch=self.p.grid_k))
            out["vmapped bf16"] = bf
            rows.append(self.row(f"{mm.label()} bf16 x{self.p.grid_k} vmapped", bf))
        if self.grid:  # against XLA's convolution: the same K runs from the same initial states
            xla = self.grid["vmapped"]
            out["speedup_vs_xla_vmapped"] = ratio(xla["epoch_s"]["median"], out["vmapped"]["epoch_s"]["median"])
            out["loss_rel_diff_vs_xla"] = abs(out["vmapped"]["final_loss"] - xla["final_loss"]) / abs(xla["final_loss"])
            out["best_cost_vs_xla_one"] = ratio(min(v["epoch_s"]["median"] for v in out.values()
                                                    if isinstance(v, dict) and v.get("seeds") == self.p.grid_k),
                                                self.grid["one"]["epoch_s"]["median"])
        return out, rows

    def grid_parts(self):
        many = dataclasses.replace(self.p.grid, seeds=self.p.grid_k, seed_batch=self.p.grid_k)
        base = self.jax(many)  # the grid section's run when it ran first
        out, rows = {"k": self.p.grid_k, "all": base}, []
        for name, variant in (("no_dropout", dataclasses.replace(many, dropout=0.0)),
                              ("no_batch_norm", dataclasses.replace(many, batch_norm=False))):
            j = self.jax(variant)
            out[name] = dict(j, share_of_epoch=1.0 - ratio(j["epoch_s"]["median"], base["epoch_s"]["median"]))
            rows.append(self.row(variant.label(), j, note=f"{out[name]['share_of_epoch']:.0%} of the epoch"))
        return out, rows

    def grid_profile(self):
        out, rows = {"k": self.p.grid_k}, []
        for name, sp in (("one", self.p.grid), ("vmapped", dataclasses.replace(
                self.p.grid, seeds=self.p.grid_k, seed_batch=self.p.grid_k))):
            keep = str(self.out / "grid_profile_trace.json.gz") if name == "vmapped" else None
            out[name] = profile_run(self.ctx.run(sp), self.p.profile_epochs, top=12, keep_trace=keep)
            rows += [[*r, "-"] for r in profile_rows(sp.label(), out[name], kinds=6, ops=4)]
        return out, rows

    def eval(self):
        p = self.p
        r = evaluate_latents(p.eval_points, p.eval_rows, p.eval_dim, p.eval_classifiers, "auto", p.eval_jobs,
                             log=lambda line: self.ctx.log("  " + line))
        s = r["eval_seconds"]
        return r, [[f"eval {p.eval_points} x {p.eval_rows} x {p.eval_dim} auto", "-", f"{r['wall_s']:.1f} s wall",
                    f"JAX {s['jax_classifiers_s']:.1f} s | sklearn {s['sklearn_classifiers_s']:.1f} s", "-",
                    " ".join(f"{c} {sum(a) / len(a):.3f}" for c, a in r["accuracy"].items())]]


def main(argv: list[str] | None = None, ctx: Context | None = None) -> int:
    """The command line; ``ctx``: a context whose compiled runs to share (the tests' dry run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.accelerator_check", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "runs/accelerator_check",
                    help="folder for accelerator_check.json and .txt (default: $OUT, else runs/accelerator_check)")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on a CPU: the same code, no figures worth reading")
    ap.add_argument("--budget-s", type=float, default=330.0, help="start no section after this many seconds")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(DEFAULT_SECTIONS), metavar="NAME",
                    help=f"sections to run, in this order: {', '.join(SECTIONS)} (default: all but eval)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        ap.exit(2, f"error: cannot create --out {out}: {exc.strerror}\n")
    t_start = time.perf_counter()
    ctx = ctx or Context(quick=args.dry_run, tag="accel ")
    if not args.dry_run and not ctx.on_accelerator:
        ap.exit(2, "error: no accelerator found (jax.default_backend() is 'cpu'); use --dry-run on a CPU\n")
    meta = environment(["python", "-m", "benchmarks.accelerator_check", *argv], args.dry_run)
    meta.update(dry_run=args.dry_run, gpu=gpu_info(), budget_s=args.budget_s)
    payload = {"meta": meta, "sections": {}}
    c = Check(ctx, DRY if args.dry_run else FULL, out)
    p = c.p
    run = {"peak": c.peak, "conv_f32": lambda: c.model(p.conv, compare_torch=True),
           "conv_bf16": lambda: c.model(dataclasses.replace(p.conv, dtype="bfloat16")),
           "strided_f32": lambda: c.model(p.strided, compare_torch=True), "grid": c.grid_section,
           "grid_matmul": c.grid_matmul, "conv_matmul": lambda: c.model(dataclasses.replace(p.conv, conv_impl="matmul")),
           "grid_parts": c.grid_parts, "grid_profile": c.grid_profile, "eval": c.eval}
    ctx.log(f"{meta['device']} x{meta['device_count']} {meta['gpu'].get('name', '')}, jax {meta['jax']}, "
            f"torch {meta['torch']}, {'dry run' if args.dry_run else 'full'}")
    table, failed = [], []
    for name in (s for s in SECTIONS if s in args.sections):
        elapsed = time.perf_counter() - t_start
        t0 = time.perf_counter()
        if elapsed > args.budget_s:
            result = {"skipped": f"time budget: {elapsed:.0f}s > --budget-s {args.budget_s:g}"}
            table.append([name, "skipped (time budget)", "-", "-", "-", "-"])
        else:
            ctx.log(f"--- {name}")
            try:
                result, rows = run[name]()
                table += rows
            except Exception as exc:  # one broken section must not lose the others' figures
                traceback.print_exc(file=sys.stderr)
                result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                table.append([name, "FAILED", result["error"][:80], "-", "-", "-"])
                failed.append(name)
        payload["sections"][name] = dict(result, seconds=time.perf_counter() - t0)
        meta.update(total_seconds=time.perf_counter() - t_start, failed=failed)
        write_json(out / "accelerator_check.json", payload)
    text = format_table(
        f"accelerator check: {meta['device']} {meta['gpu'].get('name', '')}, jax {meta['jax']}, torch {meta['torch']}, "
        f"{meta['date']}, commit {meta['source']['commit']}" + (" (dry run: figures not worth reading)" if args.dry_run else ""),
        ["config", "compile s", "JAX samples/s per step", "model TFLOP/s (fraction of dtype peak)",
         "PyTorch samples/s: step | e2e", "JAX / PyTorch, or note"], table)
    (out / "accelerator_check.txt").write_text(text + "\n")
    print(text, flush=True)
    ctx.log(f"done in {time.perf_counter() - t_start:.1f}s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
