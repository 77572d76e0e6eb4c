"""The benchmark suite of icrst-jax.

Usage::

    python -m benchmarks.run [--quick] [--json FILE] [--only NAME ...]

Benchmarks (see each module's docstring and BENCHMARKS.md):

==================  ==========================================================
pairing             on-device ``pair_indices`` vs the authors' host pairing
training            samples/s per step and per epoch, Table D1 models, JAX vs PyTorch
seeds               K = 1, 2, 4, 8 seeds in one vmapped program vs K sequential runs
utilisation         epoch FLOP/s (XLA cost analysis) as a fraction of a matmul peak
profile             XLA op self time per epoch (Perfetto trace) of the target runs
breast_cancer_e2e   10 seeds x 50 epochs of the MLP, JAX ``fit`` vs 10 PyTorch runs
devices             1, 2, 4 data-parallel devices (child process, forced host devices on a CPU)
study               one study (modes x p x seeds, one program) vs its per-point runs, cold, end to end
==================  ==========================================================

Every benchmark compiles and warms up before it times, reports compilation
separately, repeats, and gives the median with min and max; every comparison
is a ratio of two measurements taken in the same run. ``--quick`` shrinks
sizes and repeats so the whole suite is a CI smoke test (under two minutes on a
2-core CPU). PyTorch is optional: without it the comparisons record
``"skipped: torch not installed"``.

Tables go to stdout, progress lines to stderr; ``--json`` writes
``{"meta": {...}, "benchmarks": {name: {...}}}`` (NaN written as null). The
exit status is 1 if any benchmark failed (its entry then holds ``error``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from benchmarks import bench_devices, bench_e2e, bench_pairing, bench_seeds, bench_study, bench_training
from benchmarks.bench_lib import Context, environment, write_json

# name: (run(ctx) -> (result, text), prepare(ctx) or None). Run order matters only
# for speed: training compiles the runs that seeds, utilisation and profile
# reuse; the devices child process goes last.
BENCHMARKS = {
    "pairing": (bench_pairing.run, None),
    "training": (bench_training.run, None),
    "seeds": (bench_seeds.run, bench_seeds.prepare),
    "utilisation": (bench_training.run_utilisation, None),
    "profile": (bench_training.run_profile, bench_training.prepare_profile),
    "breast_cancer_e2e": (bench_e2e.run, None),
    "devices": (bench_devices.run, None),
    "study": (bench_study.run, None),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (CI smoke test)")
    parser.add_argument("--json", metavar="FILE", help="write all results to FILE")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(BENCHMARKS),
                        help=f"run only these benchmarks ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    names = [n for n in BENCHMARKS if args.only is None or n in args.only]

    ctx = Context(args.quick)
    meta = environment(["python", "-m", "benchmarks.run", *argv], args.quick)
    payload = {"meta": meta, "benchmarks": {}}
    print(f"icrst-jax benchmarks ({'quick' if args.quick else 'full'}): {meta['device']} x{meta['device_count']}, "
          f"CPU {meta['cpu']} ({meta['cpu_count']} cores), jax {meta['jax']}, torch {meta['torch']}, "
          f"{meta['date']}", flush=True)
    for name in names:
        prepare = BENCHMARKS[name][1]
        if prepare is not None:
            prepare(ctx)
    failed = []
    t_start = time.perf_counter()
    for name in names:
        ctx.log(f"--- {name}")
        t0 = time.perf_counter()
        try:
            result, text = BENCHMARKS[name][0](ctx)
        except Exception as exc:  # one broken benchmark must not hide the others' results
            traceback.print_exc(file=sys.stderr)
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            text = f"== {name} ==\nFAILED: {type(exc).__name__}: {exc}"
            failed.append(name)
        result["seconds"] = time.perf_counter() - t0
        payload["benchmarks"][name] = result
        print(f"\n{text}\n({name}: {result['seconds']:.1f}s)", flush=True)
        if args.json:
            write_json(args.json, payload)
    payload["meta"]["total_seconds"] = time.perf_counter() - t_start
    payload["meta"]["failed"] = failed
    payload["meta"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if args.json:
        write_json(args.json, payload)
    ctx.log(f"done in {payload['meta']['total_seconds']:.1f}s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
