"""seeds: K seeds in one program against K sequential one-seed epochs.

One epoch program for K seeds, all vmapped or in chunks of b looped inside it (entries
``(K, b)``: ``TrainConfig.seed_batch``), against the compiled one-seed epoch run K times
(no recompilation charged), timed in turn. Models: the Breast Cancer MLP and, in full
runs, the narrow conv (width 0.25, batch 64, one step).
"""

from __future__ import annotations

import dataclasses

from benchmarks.bench_lib import BREAST_CANCER_MLP, QUICK_MLP, Context, RunSpec, format_table, ratio, scale, summarize


def plan(ctx: Context) -> list[tuple[RunSpec, tuple, int, int]]:
    """(the one-seed spec, seed counts K or (K, b), warmup, repeats) per model."""
    if ctx.quick:
        return [(QUICK_MLP, (1, 2), 1, 3)]
    mlp = (BREAST_CANCER_MLP, (1, 2, 4, 8, (8, 4)), 2, 25)  # an MLP epoch is ~1 ms: many repeats are cheap
    # A CPU conv seed count is a 30-50 s compile: the target's K = 8, vmapped and as a loop.
    return [mlp, (RunSpec("conv", 0.25, 64, steps=1), (1, 2, 4, 8) if ctx.on_accelerator else (1, 8, (8, 1)), 0, 2)]


def run(ctx: Context) -> tuple[dict, str]:
    rows = []
    for base, ks, warmup, repeats in plan(ctx):
        one = ctx.run(base)
        for entry in ks:
            # An int K: all K vmapped, said explicitly (a CPU conv's default loops over seeds).
            k, sb = (entry, None if entry == 1 else entry) if isinstance(entry, int) else entry
            spec = dataclasses.replace(base, seeds=k, seed_batch=sb)
            ctx.log(f"seeds {spec.label()} ({spec.schedule})")
            r = ctx.run(spec)
            for _ in range(warmup):
                r.epoch()
            singles, seq, many = [], [], []
            for _ in range(repeats):
                times = [one.epoch() for _ in range(k)]
                singles += times
                seq.append(sum(times))
                many.append(r.epoch())
            t1, seq, tk = summarize(singles), summarize(seq), summarize(many)
            rows.append({"label": base.label(), "model": base.model, "width": base.width, "seeds": k,
                         "schedule": spec.schedule, "compile_s": r.compile_s, "one_seed_epoch_s": t1, "epoch_s": tk,
                         "per_seed_epoch_s": scale(tk, 1 / k), "sequential_s": seq,
                         "cost_vs_one_seed": ratio(tk["median"], t1["median"]),
                         "speedup_vs_sequential": ratio(seq["median"], tk["median"])})
    text = format_table(
        "seeds: K seeds in one epoch program vs K sequential 1-seed epochs (ms)",
        ["config", "K", "schedule", "compile s", "1-seed epoch", "K-seed epoch", "sequential", "cost vs K=1",
         "x vs sequential"],
        [[r["label"], r["seeds"], r["schedule"], r["compile_s"], scale(r["one_seed_epoch_s"], 1e3),
          scale(r["epoch_s"], 1e3), scale(r["sequential_s"], 1e3), r["cost_vs_one_seed"], r["speedup_vs_sequential"]]
         for r in rows])
    return {"config": {"mode": "icrst", "p": 1.0, "devices": 1}, "rows": rows}, text
