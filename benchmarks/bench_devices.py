"""Benchmark 5: data-parallel throughput on 1, 2 and 4 devices.

The engine splits every global batch over a 1-D ``data`` mesh
(``TrainConfig.num_devices``). The device count of a JAX process is fixed when
JAX starts, so this benchmark runs in a child process: on a CPU the parent sets
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` in the child's
environment before it imports JAX; on an accelerator the child uses the real
devices (counts above what is present are recorded as skipped).

Scaling efficiency = (epoch time on 1 device / epoch time on n) / n for the
same global batch. Forced host devices on a CPU share the same cores (one
device already uses every core through XLA's intra-op threads), so on a CPU
this measures the partitioning overhead, not a speed-up.

Child entry point: ``python -m benchmarks.bench_devices [--quick] --out FILE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_lib import Context, RunSpec, format_table, invert, med_range, ratio

COUNTS = (1, 2, 4)
FORCE_FLAG = "--xla_force_host_platform_device_count"


def plan(quick: bool, on_accelerator: bool) -> list[tuple[RunSpec, int, int]]:
    """(spec, warmup, repeats); the batch divides by 4 so every count splits it evenly."""
    if quick:
        return [(RunSpec("mlp", 1.0, 512, steps=2), 1, 3)]
    if not on_accelerator:
        # Forced host devices add no compute, and each conv device count is a
        # ~30 s compile here: the MLP shows the partitioning overhead alone.
        return [(RunSpec("mlp", 1.0, 512, steps=8), 2, 5)]
    return [
        (RunSpec("mlp", 1.0, 512, steps=8), 2, 5),
        (RunSpec("conv", 1.0, 512, steps=8), 1, 3),
    ]


def child(quick: bool, out: str) -> None:
    """Runs in the subprocess: measure every (model, device count) and write JSON."""
    import jax

    ctx = Context(quick, tag="devices child ")
    available = jax.device_count()
    rows = []
    for spec, warmup, repeats in plan(quick, ctx.on_accelerator):
        base = None
        for n in COUNTS:
            if n > available:
                rows.append({"model": spec.model, "width": spec.width, "batch": spec.batch, "devices": n,
                             "skipped": f"only {available} device(s)"})
                continue
            ctx.log(f"devices {spec.label()} on {n} device(s)")
            r = ctx.run(dataclasses.replace(spec, devices=n))
            t = r.measure(warmup=warmup, repeats=repeats)
            base = t if n == 1 else base
            speedup = ratio(base["median"], t["median"]) if base else float("nan")
            rows.append({
                "model": spec.model, "width": spec.width, "batch": r.engine.batch_size, "samples": spec.n,
                "devices": n, "compile_s": r.compile_s, "epoch_s": t,
                "samples_per_s": invert(t, r.samples_per_epoch),
                "speedup": speedup, "efficiency": speedup / n,
            })
    with open(out, "w") as f:
        json.dump({"device_count": available, "backend": jax.default_backend(),
                   "device": str(jax.devices()[0].device_kind), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                   "rows": rows}, f)


def child_env(on_accelerator: bool) -> dict:
    """A copy of this environment for the child; on a CPU, with 4 forced host devices."""
    env = dict(os.environ)
    if not on_accelerator:
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(FORCE_FLAG)]
        env["XLA_FLAGS"] = " ".join([*flags, f"{FORCE_FLAG}={max(COUNTS)}"])
        env["JAX_PLATFORMS"] = "cpu"
    return env


def run(ctx: Context) -> tuple[dict, str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "devices.json")
        cmd = [sys.executable, "-m", "benchmarks.bench_devices", "--out", out] + (["--quick"] if ctx.quick else [])
        env = child_env(ctx.on_accelerator)
        ctx.log(f"devices: child process with XLA_FLAGS={env.get('XLA_FLAGS', '')!r}")
        t0 = time.perf_counter()
        # The child's progress lines go straight to our stderr; its stdout is unused.
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, timeout=300 if ctx.quick else 1200)
        if proc.returncode != 0:
            raise RuntimeError(f"devices child exited with {proc.returncode}")
        with open(out) as f:
            child_result = json.load(f)
    rows = child_result["rows"]
    table_rows = []
    for r in rows:
        if "skipped" in r:
            table_rows.append([f"{r['model']} w{r['width']:g} b{r['batch']}", r["devices"], r["skipped"],
                               "", "", float("nan"), float("nan")])
        else:
            table_rows.append([f"{r['model']} w{r['width']:g} b{r['batch']}", r["devices"], r["compile_s"],
                               med_range(r["epoch_s"], 1e3), med_range(r["samples_per_s"]), r["speedup"],
                               r["efficiency"]])
    note = ("forced host devices share the same CPU cores: efficiency here is partitioning overhead, "
            "not a speed-up" if not ctx.on_accelerator else "")
    result = {
        "config": {"mode": "icrst", "p": 1.0, "seeds": 1, "counts": list(COUNTS),
                   "child_xla_flags": child_result["xla_flags"], "child_device_count": child_result["device_count"],
                   "forced_host_devices": not ctx.on_accelerator},
        "rows": rows,
        "child_seconds": time.perf_counter() - t0,
        "note": note,
    }
    text = format_table(
        "devices: data-parallel epoch, same global batch on n devices",
        ["config", "devices", "compile s", "epoch ms med [min, max]", "samples/s med [min, max]", "speedup",
         "efficiency"],
        table_rows, note,
    )
    return result, text


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="child process of the devices benchmark")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    child(args.quick, args.out)


if __name__ == "__main__":
    _main()
