"""Cold start: how long the training programs take to trace, lower and compile.

    python -m benchmarks.bench_compile [--cases conv_cpu conv_xla ...] [--repeats 3]
                                       [--src DIR ...] [--epochs 5] [--json FILE]

Every measurement runs in a fresh child process with JAX's persistent
compilation cache off, so nothing compiled earlier is reused. For each case the
child times, separately:

* ``init``: the vmapped initialiser (``init_state``, which lowers and compiles
  it itself): wall seconds of the whole call;
* ``trace_lower_s``: ``jax.jit(epoch).lower(state, data)`` (tracing, JVP and
  transposition, StableHLO);
* ``compile_s``: ``.compile()`` of that lowering (XLA's passes and LLVM);
* ``epoch_s``: with ``--epochs E``, the median of E compiled epochs after one
  warm-up (step speed must not change when compile time does).

Cases (``CASES``): the narrow conv of Table D1 (width 0.25, batch 64, 28x28x1,
one step per epoch, as in the training benchmark) on the CPU path and the XLA
path, each with and without dropout, and the Breast Cancer MLP (455 x 30,
batch 512). Repeats are interleaved (round r runs every case once), and with
several ``--src`` trees (e.g. a checkout of the code before a change) every
case runs in each tree within the same round: A B A B, so a change of load
hits both sides alike. Reported: min and median per (src, case), and the load
average at the start and end.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time

# name: (model, width, batch, samples, sample shape, ModelConfig overrides)
CASES = {
    "conv_cpu": ("conv", 0.25, 64, 64, (28, 28, 1), {"conv_impl": "cpu"}),
    "conv_cpu_nodrop": ("conv", 0.25, 64, 64, (28, 28, 1), {"conv_impl": "cpu", "dropout": 0.0}),
    "conv_xla": ("conv", 0.25, 64, 64, (28, 28, 1), {"conv_impl": "xla"}),
    "conv_xla_nodrop": ("conv", 0.25, 64, 64, (28, 28, 1), {"conv_impl": "xla", "dropout": 0.0}),
    "mlp": ("mlp", 1.0, 512, 455, (30,), {}),
}


def child(case: str, epochs: int, options: dict | None = None) -> dict:
    """One cold measurement of ``case`` in this (fresh) process."""
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    import numpy as np

    from icrst_jax.config import ModelConfig, TrainConfig
    from icrst_jax.train import init_state, make_engine, make_train_data, seed_parallel

    model, width, batch, n, shape, over = CASES[case]
    cfg = TrainConfig(mode="icrst", p=1.0, batch_size=batch, model=ModelConfig(name=model, width=width, **over))
    rng = np.random.default_rng(0)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, 10, n)
    engine = make_engine(cfg, shape, n)
    data = make_train_data(engine, x, y)
    t0 = time.perf_counter()
    state = init_state(engine, [0])
    jax.block_until_ready(state)
    init_s = time.perf_counter() - t0
    # compile_epoch's program, built here to time lowering and compiling apart,
    # from names that the older trees under --src have too.
    fn = jax.jit(seed_parallel(engine, state), donate_argnums=(0,))
    t0 = time.perf_counter()
    lowered = fn.lower(state, data)
    trace_lower_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = lowered.compile(compiler_options=options or None)
    compile_s = time.perf_counter() - t0
    out = {"case": case, "init_s": init_s, "trace_lower_s": trace_lower_s, "compile_s": compile_s}
    if epochs and over.get("conv_impl") == "xla":
        epochs = 0  # XLA's own convolutions take tens of seconds per step on a CPU: not the CPU path's speed
    if epochs:
        times = []
        for i in range(epochs + 1):
            t0 = time.perf_counter()
            state, metrics = compiled(state, data)
            loss = float(np.asarray(metrics["loss"]).mean())
            if i:
                times.append(time.perf_counter() - t0)
        out["epoch_s"] = statistics.median(times)
        out["epoch_s_all"] = times
        out["loss_after"] = loss
    return out


def run_child(src: str, case: str, epochs: int, options: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=src, JAX_ENABLE_COMPILATION_CACHE="false")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    here = os.path.abspath(__file__)
    extra = ["--options", options] if options else []
    proc = subprocess.run([sys.executable, here, "--child", case, "--epochs", str(epochs), *extra], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{case} in {src} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    from benchmarks.bench_lib import summarize  # here: a --child process runs another tree's code

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5, help="compiled epochs to time after compiling (0: none)")
    ap.add_argument("--src", nargs="+", default=None,
                    help="source trees (PYTHONPATH) to compare, interleaved; default: this checkout")
    ap.add_argument("--json", default=None)
    ap.add_argument("--options", default=None,
                    help="XLA compiler options for the epoch's compile, JSON, e.g. '{\"xla_cpu_...\": true}'")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.epochs, json.loads(args.options) if args.options else None)))
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    srcs = [os.path.abspath(s) for s in (args.src or [root])]
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
            "srcs": srcs, "cpu_count": os.cpu_count(), "loadavg_start": list(os.getloadavg())}
    rows = []
    for r in range(args.repeats):
        for case in args.cases:
            for src in srcs:
                res = run_child(src, case, args.epochs, args.options)
                res.update(src=src, round=r, loadavg=os.getloadavg()[0])
                rows.append(res)
                print(f"round {r} {case:16s} {os.path.basename(src):12s} init {res['init_s']:6.2f}s  "
                      f"trace+lower {res['trace_lower_s']:6.2f}s  compile {res['compile_s']:6.2f}s"
                      + (f"  epoch {res['epoch_s'] * 1e3:7.1f}ms" if "epoch_s" in res else "")
                      + f"  load {res['loadavg']:.2f}", file=sys.stderr, flush=True)
    meta["loadavg_end"] = list(os.getloadavg())
    table = {}
    for src in srcs:
        for case in args.cases:
            rs = [x for x in rows if x["src"] == src and x["case"] == case]
            table[f"{src}:{case}"] = {k: summarize([x[k] for x in rs])
                                      for k in ("init_s", "trace_lower_s", "compile_s", "epoch_s") if k in rs[0]}
    print(f"load average start {meta['loadavg_start']}, end {meta['loadavg_end']}")
    print(f"{'src:case':60s} {'init s':>14s} {'trace+lower s':>14s} {'compile s':>14s} {'epoch ms':>14s}  (min / median)")
    for key, t in table.items():
        cell = lambda k, s=1.0: f"{t[k]['min'] * s:6.2f}/{t[k]['median'] * s:6.2f}" if k in t else "-"  # noqa: E731
        print(f"{key[-60:]:60s} {cell('init_s'):>14s} {cell('trace_lower_s'):>14s} {cell('compile_s'):>14s} "
              f"{cell('epoch_s', 1e3):>14s}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "summary": table, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
