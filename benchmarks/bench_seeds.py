"""Benchmark 4: K seeds in one vmapped program vs K sequential one-seed runs.

For K = 1, 2, 4, 8 the engine compiles one epoch for a stack of K seeds
(``jax.vmap`` over the state, or chunks of b seeds in a loop inside the
program for the entries written (K, b): ``TrainConfig.seed_batch``) and the
epoch is timed; "sequential" runs the
already-compiled one-seed epoch K times in a row, so it is charged no extra
compilation (a real sequence of ``fit`` calls would also recompile each time,
which makes this comparison favour the sequential side). The two are timed
in turn (see :func:`interleaved`), and "cost vs K=1" divides by the one-seed
epochs of the same loop.

Models: the Breast Cancer MLP at the paper's settings (455 training samples,
batch 512 -> one step per epoch) and the narrow conv (width 0.25, batch 64,
one step per epoch; full runs only, K = 1 and 8 (vmapped and a loop over
seeds) on a CPU: with ``--quick`` the MLP alone keeps the smoke test short).
"""

from __future__ import annotations

from benchmarks.bench_lib import BREAST_CANCER_MLP, Context, RunSpec, format_table, med_range, ratio, summarize

TARGET_K = 8
TARGET_COST = 3.0  # 8 vmapped seeds cost at most 3x one seed


def plan(ctx: Context) -> list[tuple[RunSpec, tuple, int, int]]:
    """(spec for K=1, seed counts, warmup, repeats) per model.

    A seed count is K (all K seeds vmapped) or (K, b): chunks of b seeds in a
    loop inside the program (``TrainConfig.seed_batch``)."""
    # An MLP epoch is about a millisecond: many interleaved repeats cost little.
    mlp = (BREAST_CANCER_MLP, (1, 2, 4, 8, (8, 4)),
           2, 5 if ctx.quick else 25)
    if ctx.quick:
        # Each conv seed count is another ~20 s compile on a 2-core CPU: the smoke
        # test exercises the same code path with the MLP only.
        return [mlp]
    # The same conv spec as the training benchmark's target row: its 1-seed compile
    # is shared. On a CPU every conv seed count costs a 30-50 s compile and the
    # work grows with K, so only the target's K = 8 is compiled there.
    # Chunks of one seed are the CPU's schedule for the convs: one seed already
    # keeps both cores busy, and vmapped conv kernels cost more per seed.
    ks = (1, 2, 4, 8) if ctx.on_accelerator else (1, 8, (8, 1))
    return [mlp, (RunSpec("conv", 0.25, 64, steps=1), ks, 0, 2)]


def prepare(ctx: Context) -> None:
    """Initialise these models for the largest K once (the pool is sliced for smaller K)."""
    for spec, ks, _, _ in plan(ctx):
        ctx.reserve_seeds(spec, max(_k(k)[0] for k in ks))


def _k(k) -> tuple[int, int | None]:
    """A plan entry as (seeds, seed_batch): an int K means all K vmapped, said
    explicitly (the engine's default on a CPU loops over a conv model's seeds)."""
    if isinstance(k, int):
        return (k, None if k == 1 else k)  # one seed: the training benchmark's run, shared
    return (int(k[0]), int(k[1]))


def interleaved(one, rk, k: int, *, warmup: int, repeats: int) -> tuple[dict, dict, dict]:
    """Times K one-seed epochs and one K-seed epoch in turn, ``repeats`` times.

    Interleaving puts both sides under the same background load (the machine is
    shared: a burst of someone else's work would otherwise land on one side
    only). Returns statistics of (one one-seed epoch, K one-seed epochs in a
    row, one K-seed epoch).
    """
    for _ in range(warmup):
        rk.epoch()
    singles, seq, vmapped = [], [], []
    for _ in range(repeats):
        times = [one.epoch() for _ in range(k)]
        singles.extend(times)
        seq.append(sum(times))
        vmapped.append(rk.epoch())
    return summarize(singles), summarize(seq), summarize(vmapped)


def run(ctx: Context) -> tuple[dict, str]:
    import dataclasses

    rows, table_rows, targets = [], [], {}
    for base, ks, warmup, repeats in plan(ctx):
        one = ctx.run(base)
        for entry in ks:
            k, sb = _k(entry)
            spec = dataclasses.replace(base, seeds=k, seed_batch=sb)
            ctx.log(f"seeds {base.label()} K={k} ({spec.schedule})")
            r = ctx.run(spec)
            t1, seq, tk = interleaved(one, r, k, warmup=warmup, repeats=repeats)
            row = {
                "model": base.model, "width": base.width, "batch": r.engine.batch_size, "samples": base.n,
                "steps_per_epoch": r.engine.steps_per_epoch, "seeds": k, "schedule": spec.schedule,
                "compile_s": r.compile_s,
                "one_seed_epoch_s": t1,
                "epoch_s": tk,
                "per_seed_epoch_s": {key: (v / k if key != "n" else v) for key, v in tk.items()},
                "sequential_s": seq,
                "cost_vs_one_seed": ratio(tk["median"], t1["median"]),
                "speedup_vs_sequential": ratio(seq["median"], tk["median"]),
            }
            rows.append(row)
            table_rows.append([
                base.label(), k, spec.schedule, r.compile_s, med_range(t1, 1e3), med_range(tk, 1e3),
                med_range(row["per_seed_epoch_s"], 1e3), med_range(seq, 1e3), row["cost_vs_one_seed"],
                row["speedup_vs_sequential"],
            ])
        # Judged on the faster schedule for K = 8 (the user picks it with seed_batch).
        costs = [(r["cost_vs_one_seed"], r["schedule"]) for r in rows
                 if r["model"] == base.model and r["width"] == base.width and r["seeds"] == TARGET_K]
        if costs:
            cost, schedule = min(costs)
            targets[base.label()] = {
                "required_max": TARGET_COST, "measured": cost, "schedule": schedule, "met": cost <= TARGET_COST,
                "margin": TARGET_COST / cost,
            }
    notes = [
        f"target {TARGET_K} seeds <= {TARGET_COST:g}x one seed, {name}: "
        f"{'met' if t['met'] else 'MISSED'} ({t['measured']:.2f}x, {t['schedule']})"
        for name, t in targets.items()
    ]
    result = {
        "config": {"mode": "icrst", "p": 1.0, "devices": 1,
                   "sequential": "the compiled 1-seed epoch run K times (no recompilation charged)"},
        "rows": rows,
        "target": targets,
    }
    text = format_table(
        "seeds: K seeds in one vmapped epoch vs K sequential 1-seed epochs (times in ms)",
        ["config", "K", "schedule", "compile s", "1-seed epoch ms", "K-seed epoch ms", "per seed-epoch ms", "sequential ms",
         "cost vs K=1", "x vs sequential"],
        table_rows, "\n".join(notes),
    )
    return result, text
