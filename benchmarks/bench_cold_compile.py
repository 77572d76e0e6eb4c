"""cold_compile: how long the narrow conv's training program takes to compile, cold.

The narrow conv of Table D1 (width 0.25, batch 64, 28x28x1, one step per epoch,
ICRST p = 1, one run), each case in a fresh process with the persistent
compilation cache off, so nothing compiled earlier is reused. Cases: the
default (``conv_impl="auto"``, which a one-step program resolves to
``matmul`` on a CPU) and each ``conv_impl``. Per case, separately:

* ``init_s``: the initialiser (``init_state``, which compiles it itself);
* ``trace_lower_s``: ``jax.jit(epoch).lower(state, data)``;
* ``compile_s``: ``.compile()`` of that lowering with the engine's options, as
  ``compile_epoch`` compiles it (XLA's passes and LLVM; ``loop_emitters``: this
  one-step program gets XLA's CPU loop emitters, :data:`icrst_jax.train.LOOP_EMITTERS_MAX_STEPS`);
  ``compile_cpu_s`` its CPU seconds;
* ``step_s``: the median of a few compiled one-step epochs after a warm-up
  (not for ``xla``, whose CPU convolutions take seconds a step); ``step_cpu_s``
  their CPU seconds.

From ``cpu`` and ``matmul``: ``break_even_steps``, the optimizer steps after
which the CPU path's faster steps pay back its longer compile (the rule of
``auto``: :data:`icrst_jax.conv.AUTO_CPU_PATH_MIN_STEPS`). ``--quick``: the
test model ``conv_tiny`` at 12x12, ``auto`` only, in this process (a smoke test of the
harness, not a measure).

Standalone: ``python -m benchmarks.bench_cold_compile [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_lib import Context, format_table, print_and_save

ROOT = Path(__file__).resolve().parents[1]
CASES = ("auto", "cpu", "matmul", "xla")
# (model, width, batch, samples, image side) of the measured and of the quick workload.
FULL = ("conv", 0.25, 64, 64, 28)
QUICK = ("conv_tiny", 0.125, 16, 16, 12)
STEP_REPEATS = 5


def measure(case: str, workload=FULL, steps: int = STEP_REPEATS) -> dict:
    """One cold measurement of ``case`` in this process (the cache must be off)."""
    import jax
    import numpy as np

    from icrst_jax.config import ModelConfig, TrainConfig
    from icrst_jax.train import init_state, make_engine, make_train_data, seed_parallel

    name, width, batch, n, side = workload
    cfg = TrainConfig(mode="icrst", p=1.0, epochs=1, batch_size=batch,
                      model=ModelConfig(name=name, width=width, conv_impl=case))
    rng = np.random.default_rng(0)
    x = rng.random((n, side, side, 1), dtype=np.float32)
    engine = make_engine(cfg, x.shape[1:], n)
    data = make_train_data(engine, x, rng.integers(0, 10, n))
    t0 = time.perf_counter()
    state = jax.block_until_ready(init_state(engine, [0]))
    init_s = time.perf_counter() - t0
    # compile_epoch's program and options, built here to time lowering and compiling apart.
    fn = jax.jit(seed_parallel(engine, state), donate_argnums=(0,))
    t0 = time.perf_counter()
    lowered = fn.lower(state, data)
    trace_lower_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = lowered.compile(compiler_options=engine.compiler_options)
    out = {"case": case, "resolved": engine.model.config.conv_impl, "init_s": init_s,
           "loop_emitters": bool(engine.compiler_options),
           "trace_lower_s": trace_lower_s, "compile_s": time.perf_counter() - t0,
           "compile_cpu_s": time.process_time() - c0}
    if case == "xla" and jax.default_backend() == "cpu":
        steps = 0  # XLA's CPU convolutions: seconds a step, not what a CPU user runs
    times = []
    for i in range(steps + 1 if steps else 0):
        t0, c0 = time.perf_counter(), time.process_time()
        state, metrics = compiled(state, data)
        out["loss"] = float(np.asarray(metrics["loss"]).mean())
        if i:
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    if times:
        out["step_s"] = statistics.median(t for t, _ in times)
        out["step_cpu_s"] = statistics.median(c for _, c in times)
    return out


def _child(case: str) -> dict:
    """``measure(case)`` in a fresh process, persistent cache off."""
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_cold_compile", "--child", case], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"cold_compile {case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def break_even(rows: dict, clock: str = "") -> float | None:
    """Optimizer steps at which ``cpu``'s compile minus ``matmul``'s equals what its faster steps save.

    ``clock``: ``""`` wall seconds, ``"cpu_"`` CPU seconds of the process (steady
    on a shared machine; a step runs on every core, a compile mostly on one).
    """
    cpu, mm = rows.get("cpu", {}), rows.get("matmul", {})
    step, comp = f"step_{clock}s", f"compile_{clock}s"
    if step not in cpu or step not in mm or mm[step] <= cpu[step]:
        return None
    return (cpu[comp] - mm[comp]) / (mm[step] - cpu[step])


def run(ctx: Context) -> tuple[dict, str]:
    rows = {}
    for case in CASES if not ctx.quick else ("auto",):
        ctx.log(f"cold_compile: {case}")
        rows[case] = measure(case, QUICK, steps=1) if ctx.quick else _child(case)
    result = {"cases": rows, "break_even_steps": break_even(rows), "break_even_steps_cpu": break_even(rows, "cpu_"),
              "workload": dict(zip(("model", "width", "batch", "samples", "side"), QUICK if ctx.quick else FULL))}
    table = [[f"{c} ({r['resolved']})", r["trace_lower_s"], r["compile_s"], r["compile_cpu_s"], r["init_s"],
              r["step_s"] * 1e3 if "step_s" in r else "-", r["step_cpu_s"] * 1e3 if "step_s" in r else "-"]
             for c, r in rows.items()]
    note = ("each case a fresh process, persistent cache off; one run, one step per epoch"
            if not ctx.quick else "quick: conv_tiny in this process (a smoke test)")
    if result["break_even_steps"] is not None:
        note += (f"; cpu pays back its compile after {result['break_even_steps']:.0f} steps "
                 f"({result['break_even_steps_cpu'] or float('nan'):.0f} in CPU seconds)")
    return result, format_table("cold compile: narrow conv epoch (seconds)",
                                ["conv_impl", "trace + lower", "compile", "(CPU s)", "init", "step ms", "(CPU ms)"],
                                table, note)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_cold_compile", description=__doc__.splitlines()[0],
                                 allow_abbrev=False)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        import jax

        jax.config.update("jax_enable_compilation_cache", False)
        print(json.dumps(measure(args.child)))
        return 0
    result, text = run(Context(args.quick))
    return print_and_save("cold_compile", result, text, args.json, argv, args.quick)


if __name__ == "__main__":
    sys.exit(main())
