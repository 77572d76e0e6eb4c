"""Benchmarks 2 and 3: training throughput of the Table D1 models, JAX vs PyTorch.

JAX (this package): the engine's compiled epoch (``compile_epoch``), ICRST with
p = 1, one seed, one device. The shuffle, the pairing, the gathers and every
optimizer step of the epoch run in one device program, so

* *per step* = epoch seconds / steps, and
* *per epoch* = samples / wall seconds of the epoch call, host fetch of the loss
  included (what ``fit`` waits for each epoch);

the two differ only by one dispatch per epoch. Compilation, initialisation and
the first epoch are reported separately and never enter a throughput.

PyTorch (:mod:`benchmarks.baselines.torch_reference`, same model, width and batch):

* *per step* = ``step_throughput``: forward, backward and Adam on ready tensors;
* *end to end* = ``train_torch``: a shuffled ``DataLoader`` over the
  ``PairedDataset`` whose ``__getitem__`` does the authors' per-sample host
  pairing, the same number of samples as the JAX epoch;
* with the faster of 1 thread and torch's default thread count, picked by a
  short probe in the same run (see :func:`pick_threads`).

Ratios are JAX / PyTorch samples per second, medians from the same run.

Two more views of the same compiled runs (benchmarks ``utilisation`` and
``profile`` of the suite):

**Utilisation** (:func:`run_utilisation`). Peak: a jitted float32 ``jnp.dot`` of two n x n matrices (2 n^3 flops), timed in
the same run on the same device.

Achieved, two ways, for each configuration of the training benchmark (the
compiled programs and timings are shared with it), over its steady-state
median epoch time:

* *XLA flops*: ``compiled.cost_analysis()["flops"]`` of the epoch program. XLA
  counts the body of a ``while`` loop once, whatever the trip count. The epoch
  is a ``lax.scan`` over its steps: the suite checks this in the same run (the
  MLP epoch compiled with one step and with several) and, when the reported
  flops do not grow with the steps, multiplies by the steps per epoch. Loops
  *inside* a step (the CPU conv kernels of :mod:`icrst_jax.cpu_conv` use
  ``fori_loop``) stay under-counted, and Winograd convolutions execute fewer
  multiplications than a direct convolution: this figure depends on the
  implementation.
* *Model flops* (the "MFU" convention): the direct-convolution / dense
  multiply-adds of the Table D1 layers, x2 (multiply and add) x3 (forward,
  input gradient, weight gradient), per sample, from the layer shapes alone.
  Independent of the implementation; an implementation that does fewer
  multiplications (Winograd) can exceed the matmul peak on this measure.

**Profile** (:func:`run_profile`). Where an epoch's time goes: an op-level profile of compiled training epochs.

Runs a few steady-state epochs of already-compiled runs under
``jax.profiler.trace(create_perfetto_trace=True)``, reads the Perfetto trace and
sums the *self* time of every XLA op (HLO instruction: ``dot.41``,
``convolution.3``, ``sort.0``, ``ynn_fusion.8``...; time spent in ops nested
inside a ``while`` is charged to them, not to the loop). The result is the
heaviest ops and a breakdown by kind (matmul/conv, RNG loops, sort = the epoch's
shuffle, gathers, elementwise fusions, copies), as shares of the total op time.

On the CPU the op events come from XLA's thunk executor; ops that run
concurrently on different threads each count in full, so shares are of op time,
and ``op_s / wall_s`` above 1 means ops overlapped. On a GPU or TPU the trace
also holds the kernels the device ran, in processes named ``/device:GPU:0``
(and so on): only those count, each under the HLO op that launched it
(``args.hlo_op``) where the trace names one, else under its kernel name.
"""

from __future__ import annotations

import dataclasses

from benchmarks.bench_lib import (
    BREAST_CANCER_MLP,
    Context,
    RunSpec,
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
)

# The paper's batch sizes (section 6): 512, and 64 for the second CNN of Table D1
# ("CNN2": conv_strided, CIFAR-10 / Caltech101).
PAPER_BATCH = {"conv": 512, "conv_strided": 64, "mlp": 512}
# Issue 5's CPU target: the reduced-width conv at batch 64 at least as fast as PyTorch.
TARGET_ROW = ("conv", 0.25, 64)


@dataclasses.dataclass(frozen=True)
class Row:
    """One model / width / batch to compare, with its repeat counts."""

    spec: RunSpec
    warmup: int  # extra untimed epochs after the first one
    repeats: int  # timed epochs (JAX) and timed end-to-end runs (PyTorch)
    torch_steps: int  # timed steps of torch's step_throughput
    torch_warmup: int
    # Probe torch with one thread too (see pick_threads). Off for the full-width
    # rows: their large convolutions keep both threads busy, so the contention
    # that makes the default setting bimodal matters little, and a step takes seconds.
    torch_one_thread: bool = True
    # bfloat16 rows are compared with JAX's float32 row of the same model (the
    # PyTorch reference trains in float32, as the authors did).
    torch_compare: bool = True


def plan(ctx: Context) -> list[Row]:
    """The rows for this run.

    ``--quick``: the MLP, two steps. Full, CPU: both
    conv models at width 0.25 and 1 (few steps) and the MLP. Full, accelerator:
    the paper's full widths at the paper's batch sizes, more steps.
    """
    if ctx.quick:
        # The MLP only: compiling a conv model (epoch and initialiser) takes 45-60 s
        # of CPU time on this 2-core machine, 2-3x that in wall time when it is
        # shared, which alone would break the smoke test's two-minute budget. The
        # conv rows, and the targets, are for full runs.
        return [Row(RunSpec("mlp", 1.0, PAPER_BATCH["mlp"], steps=2), 1, 3, 5, 2),
                Row(RunSpec("mlp", 1.0, PAPER_BATCH["mlp"], steps=2, dtype="bfloat16"), 1, 3, 0, 0,
                    torch_compare=False)]
    if ctx.on_accelerator:
        return [
            Row(RunSpec("conv", 0.25, 64, steps=32), 2, 5, 20, 3),
            Row(RunSpec("conv", 1.0, 512, steps=16), 2, 5, 20, 3),
            Row(RunSpec("conv", 1.0, 512, steps=16, dtype="bfloat16"), 2, 5, 0, 0, torch_compare=False),
            Row(RunSpec("conv_strided", 0.25, 64, steps=32), 2, 5, 20, 3),
            Row(RunSpec("conv_strided", 1.0, 64, steps=32), 2, 5, 20, 3),
            Row(RunSpec("mlp", 1.0, 512, steps=32), 2, 5, 50, 5),
        ]
    # CPU, full: one full-width conv step at batch 512 takes 15-60 s here in
    # either framework (more under load), so the full-width MNIST conv runs at
    # batch 64 (its throughput per sample is the same to within a few per cent on
    # a compute-bound CPU); batch 512 is in the accelerator plan. The target row
    # has one step per epoch so the seeds benchmark shares its compile.
    return [
        Row(RunSpec("conv", 0.25, 64, steps=1), 1, 5, 6, 2),
        Row(RunSpec("conv", 0.25, 64, steps=1, dtype="bfloat16"), 1, 5, 0, 0, torch_compare=False),
        Row(RunSpec("conv", 1.0, 64, steps=1), 0, 2, 2, 1, torch_one_thread=False),
        Row(RunSpec("conv_strided", 0.25, 64, steps=8), 1, 3, 10, 2),
        Row(RunSpec("conv_strided", 1.0, 64, steps=2), 1, 3, 4, 1, torch_one_thread=False),
        Row(RunSpec("mlp", 1.0, 512, steps=8), 2, 5, 50, 5),
    ]


def jax_row(ctx: Context, row: Row) -> dict:
    """Compiles (or reuses) the run and times steady-state epochs."""
    r = ctx.run(row.spec)
    epoch = r.measure(warmup=row.warmup, repeats=row.repeats)
    steps = r.engine.steps_per_epoch
    step = {k: (v / steps if k != "n" else v) for k, v in epoch.items()}
    return {
        "samples_per_epoch": r.samples_per_epoch,
        "steps_per_epoch": steps,
        "batch": r.engine.batch_size,
        "setup_s": r.setup_s,
        "init_s": r.init_s,
        "compile_s": r.compile_s,
        "first_epoch_s": r.first_epoch_s,
        "epoch_s": epoch,
        "step_s": step,
        "step_samples_per_s": invert(step, r.engine.batch_size),
        "epoch_samples_per_s": invert(epoch, r.samples_per_epoch),
        "final_loss": float(r.last_loss.mean()),
    }


def pick_threads(tr, row: Row) -> tuple[int, dict]:
    """The faster torch intra-op thread count for this row, from a short probe.

    On a shared machine torch's OpenMP threads stall whenever another process
    holds a core, which makes small steps with the default (all cores) 10-100x
    slower and bimodal; one thread is immune but slower on large convolutions.
    Each setting runs a few steps; the rest of the row uses the faster one, so
    the comparison is against PyTorch's best setting in this run.
    """
    import torch

    default = torch.get_num_threads()
    if not row.torch_one_thread or default == 1:
        return default, {}
    s = row.spec
    probe = {}
    for th in (1, default):
        r = tr.step_throughput(s.model, s.batch, width=s.width, steps=3, warmup=1, num_threads=th)
        probe[str(th)] = r["median_step_seconds"]
    return (1 if probe["1"] <= probe[str(default)] else default), probe


def torch_row(ctx: Context, tr, row: Row) -> dict:
    """Per-step and end-to-end PyTorch throughput for the same model and batch."""
    s = row.spec
    threads, probe = pick_threads(tr, row)
    step = tr.step_throughput(s.model, s.batch, width=s.width, steps=row.torch_steps, warmup=row.torch_warmup,
                              num_threads=threads)
    x, y = synthetic_data(s.model, s.n)
    mean, std = standardisation(x)
    e2e, wait = [], []
    for rep in range(row.repeats):
        out = tr.train_torch(s.model, x, y, mode=s.mode, p=s.p, epochs=1, batch_size=s.batch, width=s.width,
                             mean=mean, std=std, seed=rep, num_threads=threads)
        e2e.append(out["samples_per_s"])
        wait.append(out["data_wait_seconds"] / out["seconds"])
    return {
        "threads": threads,
        "thread_probe_step_s": probe,
        "step_samples_per_s": invert(summarize(step["per_step_seconds"]), s.batch),
        "e2e_samples_per_s": summarize(e2e),
        "e2e_data_wait_fraction": summarize(wait),
    }


def run(ctx: Context) -> tuple[dict, str]:
    tr, skip_reason = torch_or_reason()
    rows, table_rows = [], []
    for row in plan(ctx):
        s = row.spec
        ctx.log(f"training {s.label()}: {s.steps} steps/epoch, {row.repeats} repeats")
        out = {"model": s.model, "width": s.width, "batch": s.batch, "samples": s.n, "mode": s.mode, "p": s.p,
               "jax": jax_row(ctx, row)}
        f32 = next((r for r in rows if (r["model"], r["width"], r["batch"], r.get("dtype", "float32"))
                    == (s.model, s.width, s.batch, "float32")), None)
        out["dtype"] = s.dtype
        if not row.torch_compare:
            out["torch"] = "not compared: a bfloat16 row, see ratio_vs_float32"
            if f32 is not None:
                out["ratio_vs_float32"] = ratio(out["jax"]["step_samples_per_s"]["median"],
                                                f32["jax"]["step_samples_per_s"]["median"])
        elif tr is None:
            out["torch"] = skip_reason
        else:
            ctx.log(f"  torch {s.label()}")
            t = torch_row(ctx, tr, row)
            out["torch"] = t
            out["ratio_step"] = ratio(out["jax"]["step_samples_per_s"]["median"], t["step_samples_per_s"]["median"])
            out["ratio_e2e"] = ratio(out["jax"]["epoch_samples_per_s"]["median"], t["e2e_samples_per_s"]["median"])
        rows.append(out)
        j = out["jax"]
        if not row.torch_compare:
            torch_cells = [f'JAX bf16 / f32 step: {out.get("ratio_vs_float32", float("nan")):.2f}x', "-",
                           float("nan"), float("nan")]
        elif tr is not None:
            torch_cells = [f'{med_range(out["torch"]["step_samples_per_s"])} {out["torch"]["threads"]}t',
                           f'{med_range(out["torch"]["e2e_samples_per_s"])} {out["torch"]["threads"]}t',
                           out["ratio_step"], out["ratio_e2e"]]
        else:
            torch_cells = ["skipped", "skipped", float("nan"), float("nan")]
        table_rows.append([
            s.label(), j["steps_per_epoch"], j["compile_s"], med_range(j["step_samples_per_s"]),
            med_range(j["epoch_samples_per_s"]), *torch_cells,
        ])
    result = {"config": {"mode": "icrst", "p": 1.0, "seeds": 1, "devices": 1,
                         "data": "synthetic: uniform [0,1], 10 random classes"},
              "rows": rows, "torch": "ok" if tr is not None else skip_reason}
    note = ""
    target_rows = [r for r in rows if (r["model"], r["width"], r["batch"], r["dtype"]) == (*TARGET_ROW, "float32")]
    if tr is not None and target_rows:
        t = target_rows[0]
        met = t["ratio_step"] >= 1.0
        result["target"] = {
            "what": "conv width 0.25 batch 64: JAX samples/s >= PyTorch on the same CPU (per step; "
                    "end to end reported alongside)",
            "required": 1.0,
            "measured": t["ratio_step"],
            "measured_e2e": t["ratio_e2e"],
            "met": met,
            "margin": t["ratio_step"] / 1.0,
            # The target is a CPU one: on an accelerator JAX runs on it and torch on the CPU.
            "judged": not ctx.on_accelerator,
        }
        note = (f"target conv w0.25 b64 JAX >= PyTorch: {'met' if met else 'MISSED'} "
                f"(per step {t['ratio_step']:.2f}x, end to end {t['ratio_e2e']:.2f}x)")
    elif tr is None:
        note = f"PyTorch: {skip_reason}"
    text = format_table(
        "training throughput, samples/s (ICRST p=1, 1 seed, 1 device)",
        ["config", "steps", "compile s", "JAX step med [min, max]", "JAX epoch med [min, max]",
         "torch step med [min, max] thr", "torch e2e med [min, max] thr", "x step", "x e2e"],
        table_rows, note + "\n(torch threads: the faster of 1 and the default in a short probe, marked 1t / 2t)",
    )
    return result, text


def scan_counted_once(ctx: Context) -> dict:
    """Whether cost_analysis counts the epoch's scan body once: the training
    benchmark's MLP epoch (several steps) against the same epoch with one step."""
    many_spec = next(r.spec for r in plan(ctx) if r.spec.model == "mlp")
    many = ctx.run(many_spec)
    one = ctx.run(dataclasses.replace(many_spec, steps=1))
    f1, fs = one.reported_flops(), many.reported_flops()
    steps = many.engine.steps_per_epoch
    return {"flops_1_step": f1, "flops_many_steps": fs, "many_steps": steps,
            "body_counted_once": fs < 0.5 * (1 + steps) * f1}


def run_utilisation(ctx: Context) -> tuple[dict, str]:
    ctx.log("utilisation: matmul peak")
    rows_plan = plan(ctx)
    peaks = {dt: peak(ctx, dt) for dt in sorted({"float32", *(row.spec.dtype for row in rows_plan)})}
    pk = peaks["float32"]
    calib = scan_counted_once(ctx)
    rows, table_rows = [], []
    for row in rows_plan:
        spec = row.spec
        peak_med = peaks[spec.dtype]["flops_per_s"]["median"]
        ctx.log(f"utilisation {spec.label()}")
        r = ctx.run(spec)
        epoch = r.measure(warmup=row.warmup, repeats=row.repeats)
        reported = r.reported_flops()
        steps = r.engine.steps_per_epoch
        flops = reported * steps if calib["body_counted_once"] else reported
        achieved = invert(epoch, flops)
        model_sample = model_flops_per_sample(spec.model, spec.width, spec.sample_shape)
        model_rate = invert(epoch, model_sample * r.samples_per_epoch)
        out = {
            "model": spec.model, "width": spec.width, "batch": spec.batch, "dtype": spec.dtype,
            "peak_dtype": spec.dtype, "steps_per_epoch": steps,
            "reported_flops": reported, "flops_per_epoch": flops,
            "flops_per_sample": flops / r.samples_per_epoch,
            "epoch_s": epoch, "flops_per_s": achieved,
            "fraction_of_peak": ratio(achieved["median"], peak_med),
            "model_flops_per_sample": model_sample,
            "model_flops_per_s": model_rate,
            "model_fraction_of_peak": ratio(model_rate["median"], peak_med),
        }
        rows.append(out)
        table_rows.append([spec.label(), steps, flops / r.samples_per_epoch / 1e6, med_range(achieved, 1e-9),
                           out["fraction_of_peak"], model_sample / 1e6, med_range(model_rate, 1e-9),
                           out["model_fraction_of_peak"]])
    result = {"peak": pk, "peaks": peaks, "cost_analysis": calib, "rows": rows}
    other = "".join(f"; {dt} peak {med_range(p['flops_per_s'], 1e-9)} GFLOP/s" for dt, p in peaks.items()
                    if dt != "float32")
    text = format_table(
        "utilisation: epoch FLOP/s vs the matmul peak of its dtype (XLA cost analysis | model flops)",
        ["config", "steps", "XLA MFLOP/sample", "XLA GFLOP/s med [min, max]", "XLA frac", "model MFLOP/sample",
         "model GFLOP/s med [min, max]", "model frac"],
        table_rows,
        f"peak: {pk['n']}x{pk['n']} f32 matmul {med_range(pk['flops_per_s'], 1e-9)} GFLOP/s{other}; "
        f"scan body counted once by cost_analysis: {calib['body_counted_once']} "
        f"(1 step {calib['flops_1_step']:.3g}, {calib['many_steps']} steps {calib['flops_many_steps']:.3g} flops)",
    )
    return result, text


def profile_plan(ctx: Context) -> list[RunSpec]:
    """The target rows: the narrow conv of the training benchmark, the Breast Cancer
    MLP at 1 and at 8 vmapped seeds (what grows with K)."""
    mlp = BREAST_CANCER_MLP
    # The conv target row of the training benchmark (absent with --quick).
    conv = [s for s in (r.spec for r in plan(ctx))
            if (s.model, s.width, s.batch, s.dtype) == (*TARGET_ROW, "float32")]
    return [*conv, mlp, dataclasses.replace(mlp, seeds=8, seed_batch=8)]  # the seeds benchmark's run


def prepare_profile(ctx: Context) -> None:
    for spec in profile_plan(ctx):
        ctx.reserve_seeds(spec, spec.seeds)


def run_profile(ctx: Context) -> tuple[dict, str]:
    rows, table_rows = [], []
    for spec in profile_plan(ctx):
        ctx.log(f"profile {spec.label()} K={spec.seeds}")
        r = ctx.run(spec)
        # An MLP epoch is ~1 ms: average several; a conv epoch is seconds on a CPU.
        epochs = 20 if spec.model == "mlp" else (1 if ctx.quick else 3)
        prof = profile_run(ctx, r, epochs)
        rows.append({"model": spec.model, "width": spec.width, "batch": spec.batch, "seeds": spec.seeds,
                     "samples": spec.n, **prof})
        label = f"{spec.label()} K={spec.seeds}"
        for k, v in list(prof["kinds"].items())[:5]:
            table_rows.append([label, "kind", k, v["s_per_epoch"] * 1e3, v["share"]])
        for op in prof["top_ops"][:5]:
            table_rows.append([label, "op", f"{op['op']} x{op['calls_per_epoch']:g}", op["s_per_epoch"] * 1e3,
                               op["share"]])
        table_rows.append([label, "total", f"ops {prof['op_s_per_epoch'] * 1e3:.2f} ms vs wall "
                           f"{prof['wall_s_per_epoch'] * 1e3:.2f} ms per epoch", float("nan"), float("nan")])
    text = format_table("profile: XLA op self time per epoch (Perfetto trace)",
                        ["run", "level", "op / kind", "ms/epoch", "share of op time"], table_rows)
    return {"rows": rows}, text
