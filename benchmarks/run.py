"""The benchmark suite: ``python -m benchmarks.run [--quick] [--json FILE] [--only NAME ...]``.

One module per question (BENCHMARKS.md has a section per name); ``--quick`` shrinks
sizes and repeats to a smoke test. Tables go to stdout, progress to stderr, and
``--json`` writes ``{"meta", "benchmarks": {name: result}}`` after each benchmark.
Exit status 1 if a benchmark failed (its entry then holds ``error``). The
evaluation benchmark has its own command (``python -m benchmarks.bench_evaluation``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from benchmarks import (bench_cold_compile, bench_devices, bench_e2e, bench_first_hour, bench_own_data, bench_pairing,
                        bench_seeds, bench_study, bench_training)
from benchmarks.bench_lib import Context, environment, write_json

# Order matters for speed only: training compiles the runs that seeds, utilisation
# and profile reuse.
BENCHMARKS = {
    "pairing": bench_pairing.run,
    "training": bench_training.run,
    "seeds": bench_seeds.run,
    "utilisation": bench_training.run_utilisation,
    "profile": bench_training.run_profile,
    "breast_cancer_e2e": bench_e2e.run,
    "devices": bench_devices.run,
    "study": bench_study.run,
    "first_hour": bench_first_hour.run,
    "cold_compile": bench_cold_compile.run,
    "own_data": bench_own_data.run,
}


def run_all(ctx: Context, names, payload: dict, json_path: str | None = None, out=None) -> list[str]:
    """Runs ``names`` into ``payload["benchmarks"]``; returns the names that failed."""
    failed = []
    for name in names:
        ctx.log(f"--- {name}")
        t0 = time.perf_counter()
        try:
            result, text = BENCHMARKS[name](ctx)
        except Exception as exc:  # one broken benchmark must not hide the others' results
            traceback.print_exc(file=sys.stderr)
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            text = f"== {name} ==\nFAILED: {result['error']}"
            failed.append(name)
        result["seconds"] = time.perf_counter() - t0
        payload["benchmarks"][name] = result
        print(f"\n{text}\n({name}: {result['seconds']:.1f}s)", file=out or sys.stdout, flush=True)
        if json_path:
            write_json(json_path, payload)
    return failed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (smoke test)")
    ap.add_argument("--json", metavar="FILE", help="write all results to FILE")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=list(BENCHMARKS),
                    help=f"run only these ({', '.join(BENCHMARKS)})")
    args = ap.parse_args(argv)
    ctx = Context(args.quick)
    meta = environment(["python", "-m", "benchmarks.run", *argv], args.quick)
    print(f"icrst-jax benchmarks ({'quick' if args.quick else 'full'}): {meta['device']} x{meta['device_count']}, "
          f"CPU {meta['cpu']} ({meta['cpu_count']} cores), jax {meta['jax']}, torch {meta['torch']}, {meta['date']}")
    payload = {"meta": meta, "benchmarks": {}}
    t0 = time.perf_counter()
    failed = run_all(ctx, [n for n in BENCHMARKS if args.only is None or n in args.only], payload, args.json)
    meta.update(total_seconds=time.perf_counter() - t0, failed=failed, loadavg_end=list(os.getloadavg()))
    if args.json:
        write_json(args.json, payload)
    ctx.log(f"done in {meta['total_seconds']:.1f}s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
