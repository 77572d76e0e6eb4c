"""devices: the same global batch split over 1, 2 and 4 data-parallel devices.

Efficiency = (epoch time on 1 device / on n) / n. On a CPU with fewer than 4 devices it
runs in a child process (``python -m benchmarks.bench_devices --out FILE [--quick]``)
with 4 forced host devices, which share the cores: partitioning overhead, not a speed-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.bench_lib import QUICK_MLP, Context, RunSpec, format_table, invert, ratio, scale, write_json

COUNTS = (1, 2, 4)
FORCE_FLAG = "--xla_force_host_platform_device_count"


def measure(ctx: Context) -> dict:
    """Every (model, device count) in this process; counts above the devices present are skipped."""
    import jax

    specs = [(QUICK_MLP, 1, 2) if ctx.quick else (RunSpec("mlp", 1.0, 512, steps=8), 2, 5)]
    if ctx.on_accelerator and not ctx.quick:
        specs.append((RunSpec("conv", 1.0, 512, steps=8), 1, 3))
    rows = []
    for spec, warmup, repeats in specs:
        base = None
        for n in (1, max(COUNTS)) if ctx.quick else COUNTS:
            if n > jax.device_count():
                rows.append({"label": spec.label(), "devices": n, "skipped": f"only {jax.device_count()} device(s)"})
                continue
            ctx.log(f"devices {spec.label()} on {n} device(s)")
            r = ctx.run(dataclasses.replace(spec, devices=n))
            t = r.measure(warmup=warmup, repeats=repeats)
            base = base or t
            speedup = ratio(base["median"], t["median"])
            rows.append({"label": spec.label(), "devices": n, "compile_s": r.compile_s, "epoch_s": t,
                         "samples_per_s": invert(t, r.samples_per_epoch), "speedup": speedup, "efficiency": speedup / n})
    return {"device_count": jax.device_count(), "backend": jax.default_backend(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "rows": rows}


def run(ctx: Context) -> tuple[dict, str]:
    import jax

    if ctx.on_accelerator or jax.device_count() >= max(COUNTS):
        result = measure(ctx)
    else:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(FORCE_FLAG)]
        env["XLA_FLAGS"] = " ".join([*flags, f"{FORCE_FLAG}={max(COUNTS)}"])
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "devices.json")
            ctx.log(f"devices: child process with XLA_FLAGS={env['XLA_FLAGS']!r}")
            cmd = [sys.executable, "-m", "benchmarks.bench_devices", "--out", out, *(["--quick"] if ctx.quick else [])]
            # The child's progress lines go to our stderr.
            if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, timeout=1200).returncode != 0:
                raise RuntimeError("devices child process failed")
            with open(out) as f:
                result = json.load(f)
    result["forced_host_devices"] = FORCE_FLAG in result["xla_flags"]
    text = format_table(
        "devices: data-parallel epoch, same global batch on n devices",
        ["config", "devices", "compile s", "epoch ms", "samples/s", "speedup", "efficiency"],
        [[r["label"], r["devices"], r.get("compile_s", r.get("skipped")), scale(r["epoch_s"], 1e3) if "epoch_s" in r
          else None, r.get("samples_per_s"), r.get("speedup"), r.get("efficiency")] for r in result["rows"]],
        "forced host devices share the CPU's cores: partitioning overhead, not a speed-up"
        if result["forced_host_devices"] else "")
    return result, text


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="child process of the devices benchmark")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    write_json(args.out, measure(Context(args.quick, tag="devices child ")))
