"""Benchmark 6: achieved FLOP/s of a training epoch as a fraction of a measured peak.

Peak: a jitted float32 ``jnp.dot`` of two n x n matrices (2 n^3 flops), timed in
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
"""

from __future__ import annotations

import dataclasses
import time

from benchmarks import bench_training
from benchmarks.bench_lib import SAMPLE_SHAPES, Context, format_table, invert, med_range, ratio, summarize, time_repeats


def model_flops_per_sample(model: str, width: float, shape: tuple[int, ...] | None = None) -> float:
    """Training flops of one sample for a Table D1 model (direct convolution count),
    on its data set's sample shape or ``shape`` (square images / features).

    A convolution costs out_h * out_w * k * k * cin * cout multiply-adds, a
    transposed convolution in_h * in_w * k * k * cin * cout (each input pixel
    scatters a k x k x cout patch), a dense layer in * out. Training = 3 x forward
    (the backward pass is an input gradient and a weight gradient of the same
    size); BatchNorm, activations and Adam are not counted.
    """
    from icrst_jax import models as m

    def sc(c):
        return m.scaled_channels(c, width, "a layer")

    shape = tuple(shape or SAMPLE_SHAPES[model])
    h, _, cin = shape if model != "mlp" else (0, 0, 0)
    macs = 0
    if model == "conv":
        c = cin
        for co in m.CONV_ENCODER:  # 3x3, stride 1, no padding
            h -= 2
            macs += h * h * 9 * c * sc(co)
            c = sc(co)
        for co in m.CONV_DECODER:  # transposed 3x3, stride 1, no padding
            macs += h * h * 9 * c * sc(co)
            h += 2
            c = sc(co)
        macs += h * h * c * cin  # 1x1 head
    elif model == "conv_strided":
        c = cin
        for co, stride in zip(m.STRIDED_ENCODER, m.STRIDED_STRIDES):  # 3x3, padding 1
            h //= stride
            macs += h * h * 9 * c * sc(co)
            c = sc(co)
        for (co, transposed), stride in zip(m.STRIDED_DECODER, m.STRIDED_STRIDES):
            co = cin if co is None else sc(co)
            if transposed:
                macs += h * h * 9 * c * co
                h *= stride
            else:
                macs += h * h * 9 * c * co
            c = co
    else:
        sizes = [shape[0], *map(sc, m.MLP_ENCODER), *map(sc, m.MLP_DECODER), shape[0]]
        macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2.0 * 3.0 * macs


def peak(ctx: Context, dtype: str = "float32") -> dict:
    """Matmul throughput (flop/s) of this device in ``dtype`` (float32 or bfloat16):
    a training run is compared with the peak of its own compute dtype."""
    import jax
    import jax.numpy as jnp

    n = 8192 if ctx.on_accelerator else (1024 if ctx.quick else 2048)
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
    t0 = time.perf_counter()
    f = jax.jit(jnp.dot).lower(a, b).compile()
    compile_s = time.perf_counter() - t0
    _, timed = time_repeats(lambda: f(a, b).block_until_ready(), warmup=2, repeats=5 if ctx.quick else 10)
    flops = 2.0 * n**3
    return {"n": n, "dtype": dtype, "flops": flops, "compile_s": compile_s, "seconds": summarize(timed),
            "flops_per_s": invert(summarize(timed), flops)}


def scan_counted_once(ctx: Context) -> dict:
    """Whether cost_analysis counts the epoch's scan body once: the training
    benchmark's MLP epoch (several steps) against the same epoch with one step."""
    many_spec = next(r.spec for r in bench_training.plan(ctx) if r.spec.model == "mlp")
    many = ctx.run(many_spec)
    one = ctx.run(dataclasses.replace(many_spec, steps=1))
    f1, fs = one.reported_flops(), many.reported_flops()
    steps = many.engine.steps_per_epoch
    return {"flops_1_step": f1, "flops_many_steps": fs, "many_steps": steps,
            "body_counted_once": fs < 0.5 * (1 + steps) * f1}


def run(ctx: Context) -> tuple[dict, str]:
    ctx.log("utilisation: matmul peak")
    plan = bench_training.plan(ctx)
    peaks = {dt: peak(ctx, dt) for dt in sorted({"float32", *(row.spec.dtype for row in plan)})}
    pk = peaks["float32"]
    calib = scan_counted_once(ctx)
    rows, table_rows = [], []
    for row in plan:
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
