"""training: samples/s of the Table D1 models, JAX against PyTorch, and two views of the
same compiled runs, ``utilisation`` and ``profile``.

* JAX: the compiled epoch (shuffle, pairing, every step), ICRST p = 1, one seed, one
  device; per step = epoch seconds / steps. PyTorch (same model, width, batch): per step
  on ready tensors, and end to end through the authors' ``DataLoader`` with host pairing.
* ``utilisation``: FLOP/s over the matmul peak of the run's dtype, by XLA's cost analysis
  (:func:`scan_counted_once`) and by model flops. ``profile``: op self time per epoch.
"""

from __future__ import annotations

import dataclasses

from benchmarks.bench_lib import (
    BREAST_CANCER_MLP, PROFILE_COLUMNS, QUICK_MLP, Context, RunSpec, faster_torch_threads, format_table, invert,
    model_flops_per_sample, peak, profile_rows, profile_run, ratio, summarize, synthetic_data, torch_or_reason,
)


@dataclasses.dataclass(frozen=True)
class Row:
    spec: RunSpec
    warmup: int  # untimed epochs after the first
    repeats: int  # timed epochs (JAX) and end-to-end runs (PyTorch)
    torch_steps: int  # timed steps of step_throughput; 0: not compared (bfloat16 rows)
    torch_warmup: int = 1


def plan(ctx: Context) -> list[Row]:
    if ctx.quick:
        return [Row(QUICK_MLP, 1, 2, 2), Row(dataclasses.replace(QUICK_MLP, dtype="bfloat16"), 1, 2, 0)]
    if ctx.on_accelerator:  # the paper's widths and batch sizes (section 6)
        return [Row(RunSpec("conv", 0.25, 64, steps=32), 2, 5, 20, 3), Row(RunSpec("conv", 1.0, 512, steps=16), 2, 5, 20, 3),
                Row(RunSpec("conv", 1.0, 512, steps=16, dtype="bfloat16"), 2, 5, 0),
                Row(RunSpec("conv_strided", 0.25, 64, steps=32), 2, 5, 20, 3),
                Row(RunSpec("conv_strided", 1.0, 64, steps=32), 2, 5, 20, 3), Row(RunSpec("mlp", 1.0, 512, steps=32), 2, 5, 50, 5)]
    # CPU: the full-width conv at batch 64 (a batch-512 step takes a minute in either
    # framework); the narrow conv with one step per epoch shares its compile with seeds.
    return [Row(RunSpec("conv", 0.25, 64, steps=1), 1, 5, 6, 2), Row(RunSpec("conv", 0.25, 64, steps=1, dtype="bfloat16"), 1, 5, 0),
            Row(RunSpec("conv", 1.0, 64, steps=1), 0, 2, 2), Row(RunSpec("conv_strided", 0.25, 64, steps=8), 1, 3, 10, 2),
            Row(RunSpec("conv_strided", 1.0, 64, steps=2), 1, 3, 4), Row(RunSpec("mlp", 1.0, 512, steps=8), 2, 5, 50, 5)]


def torch_row(tr, row: Row) -> dict:
    """PyTorch per step and end to end for the same model and batch."""
    s = row.spec
    threads, probe = faster_torch_threads(lambda th: tr.step_throughput(
        s.model, s.batch, width=s.width, steps=2, warmup=1, num_threads=th)["median_step_seconds"])
    step = tr.step_throughput(s.model, s.batch, width=s.width, steps=row.torch_steps, warmup=row.torch_warmup,
                              num_threads=threads)
    x, y = synthetic_data(s.model, s.n)
    runs = [tr.train_torch(s.model, x, y, mode=s.mode, p=s.p, epochs=1, batch_size=s.batch, width=s.width,
                           seed=rep, num_threads=threads) for rep in range(row.repeats)]
    return {"threads": threads, "thread_probe_step_s": probe,
            "step_samples_per_s": invert(summarize(step["per_step_seconds"]), s.batch),
            "e2e_samples_per_s": summarize([r["samples_per_s"] for r in runs]),
            "e2e_data_wait_fraction": summarize([r["data_wait_seconds"] / r["seconds"] for r in runs])}


def run(ctx: Context) -> tuple[dict, str]:
    tr, skip = torch_or_reason()
    rows, table = [], []
    for row in plan(ctx):
        s = row.spec
        ctx.log(f"training {s.label()}: {s.steps} steps/epoch, {row.repeats} repeats")
        j = ctx.run(s).throughput(warmup=row.warmup, repeats=row.repeats)
        out = {"jax": j, "torch": skip}
        if not row.torch_steps:
            f32 = next(r["jax"] for r in rows if r["jax"]["label"] == dataclasses.replace(s, dtype="float32").label())
            out.update(torch="not compared: bfloat16, see ratio_vs_float32",
                       ratio_vs_float32=ratio(j["step_samples_per_s"]["median"], f32["step_samples_per_s"]["median"]))
        elif tr is not None:
            ctx.log(f"  torch {s.label()}")
            t = out["torch"] = torch_row(tr, row)
            out.update(ratio_step=ratio(j["step_samples_per_s"]["median"], t["step_samples_per_s"]["median"]),
                       ratio_e2e=ratio(j["epoch_samples_per_s"]["median"], t["e2e_samples_per_s"]["median"]))
        rows.append(out)
        t = out["torch"] if isinstance(out["torch"], dict) else {}
        table.append([s.label(), j["steps_per_epoch"], j["compile_s"], j["step_samples_per_s"],
                      j["epoch_samples_per_s"], t.get("step_samples_per_s"), t.get("e2e_samples_per_s"),
                      t.get("threads"), out.get("ratio_step", out.get("ratio_vs_float32")), out.get("ratio_e2e")])
    text = format_table("training throughput, samples/s (ICRST p=1, 1 seed, 1 device)",
                        ["config", "steps", "compile s", "JAX step", "JAX epoch", "torch step", "torch e2e",
                         "threads", "x step (bf16: vs f32)", "x e2e"], table, "" if tr else f"PyTorch: {skip}")
    return {"config": {"mode": "icrst", "p": 1.0, "seeds": 1, "devices": 1}, "rows": rows,
            "torch": "ok" if tr else skip}, text


def scan_counted_once(steps: int = 8) -> dict:
    """Whether XLA's cost analysis counts a ``lax.scan`` body (the epoch's loop over
    steps) once: the flops of a scan of matrix products at 1 and at ``steps`` iterations."""
    import jax
    import jax.numpy as jnp

    def flops(n: int) -> float:
        f = lambda x: jax.lax.scan(lambda c, _: (jnp.tanh(c @ c), None), x, None, length=n)[0]  # noqa: E731
        ca = jax.jit(f).lower(jnp.ones((64, 64))).compile().cost_analysis()
        return float((ca[0] if isinstance(ca, (list, tuple)) else ca)["flops"])

    f1, fs = flops(1), flops(steps)
    return {"flops_1_step": f1, "flops_many_steps": fs, "many_steps": steps, "body_counted_once": fs < 0.5 * (1 + steps) * f1}


def run_utilisation(ctx: Context) -> tuple[dict, str]:
    rows_plan = plan(ctx)
    peaks = {dt: peak(ctx, dt) for dt in sorted({"float32", *(row.spec.dtype for row in rows_plan)})}
    calib = scan_counted_once()
    rows = []
    for row in rows_plan:
        s, r = row.spec, ctx.run(row.spec)
        epoch = r.measure(warmup=row.warmup, repeats=row.repeats)
        pk = peaks[s.dtype]["flops_per_s"]["median"]
        flops = r.reported_flops() * (r.engine.steps_per_epoch if calib["body_counted_once"] else 1)
        model_sample = model_flops_per_sample(s.model, s.width, s.sample_shape)
        xla_rate, model_rate = invert(epoch, flops), invert(epoch, model_sample * r.samples_per_epoch)
        rows.append({"label": s.label(), "model": s.model, "width": s.width, "batch": s.batch, "dtype": s.dtype,
                     "flops_per_epoch": flops, "flops_per_sample": flops / r.samples_per_epoch, "epoch_s": epoch,
                     "flops_per_s": xla_rate, "fraction_of_peak": ratio(xla_rate["median"], pk),
                     "model_flops_per_sample": model_sample, "model_flops_per_s": model_rate,
                     "model_fraction_of_peak": ratio(model_rate["median"], pk)})
    text = format_table(
        "utilisation: epoch FLOP/s vs the matmul peak of its dtype (XLA cost analysis | model flops)",
        ["config", "XLA MFLOP/sample", "XLA GFLOP/s", "frac", "model MFLOP/sample", "model GFLOP/s", "frac"],
        [[r["label"], r["flops_per_sample"] / 1e6, {k: v / 1e9 for k, v in r["flops_per_s"].items()},
          r["fraction_of_peak"], r["model_flops_per_sample"] / 1e6,
          {k: v / 1e9 for k, v in r["model_flops_per_s"].items()}, r["model_fraction_of_peak"]] for r in rows],
        "; ".join(f"{dt} peak ({p['n']}x{p['n']} matmul) {p['flops_per_s']['median'] / 1e9:.1f} GFLOP/s"
                  for dt, p in peaks.items()) + f"; scan body counted once: {calib['body_counted_once']}")
    return {"peaks": peaks, "cost_analysis": calib, "rows": rows}, text


def run_profile(ctx: Context) -> tuple[dict, str]:
    """The narrow conv of the CPU plan (full runs), the Breast Cancer MLP at 1 and 8 (quick: 2) vmapped seeds."""
    conv = [r.spec for r in plan(ctx) if (r.spec.model, r.spec.width, r.spec.dtype) == ("conv", 0.25, "float32")]
    rows, table = [], []
    mlp, k = (QUICK_MLP, 2) if ctx.quick else (BREAST_CANCER_MLP, 8)  # the seeds benchmark's runs, shared
    for spec in [*conv[:1], mlp, dataclasses.replace(mlp, seeds=k, seed_batch=k)]:
        ctx.log(f"profile {spec.label()}")
        # An MLP epoch is about a millisecond: several are averaged; a conv epoch is seconds on a CPU.
        prof = profile_run(ctx.run(spec), 3 if ctx.quick or spec.model != "mlp" else 20)
        rows.append({"label": spec.label(), "samples": spec.n, **prof})
        table += profile_rows(spec.label(), prof)
    return {"rows": rows}, format_table("profile: XLA op self time per epoch (Perfetto trace)", PROFILE_COLUMNS, table)
