"""pairing: ``jax.jit(pair_indices)`` pairs/s against the authors' per-sample host pairing.

Device: one large batch of anchors over an MNIST-sized label table (60,000
samples, 10 classes), ``block_until_ready``; a 512-anchor batch shows the
per-call floor (dispatch included). Host: :mod:`benchmarks.baselines.host_pairing`
(a scipy Bernoulli draw and ``np.random.choice`` over a Python list per sample).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.bench_lib import Context, format_table, invert, ratio, summarize, time_repeats

NUM_LABELS = 60000


def run(ctx: Context) -> tuple[dict, str]:
    import jax
    import jax.numpy as jnp

    from benchmarks.baselines.host_pairing import host_pairs_per_second
    from icrst_jax.pairing import build_pairing_table, pair_indices

    quick = ctx.quick
    big = 1 << (24 if ctx.on_accelerator and not quick else 14 if quick else 20)
    warmup, repeats, host_repeats = (1, 3, 2) if quick else (2, 5, 3)
    # (mode, p, host samples per repeat); TRST's host side rebuilds list(range(N)) per draw: slow.
    cases = [("icrst", 1.0, 500 if quick else 10000), ("icrst", 0.5, 500 if quick else 10000),
             ("trst", 1.0, 50 if quick else 1000)]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, NUM_LABELS)
    table = build_pairing_table(labels)
    fn = jax.jit(pair_indices, static_argnames="mode")
    # A fresh key per call, made before any timing, from integer seeds: one small compiled
    # program (iterating over a split array of keys compiles an unstack of all of them).
    keys = iter([jax.random.key(i) for i in range(100)])
    programs: dict[tuple[str, int], tuple] = {}  # p is data: one program per (mode, batch)

    def device_rate(mode: str, p: float, batch: int) -> tuple[dict, float]:
        idx, pp = jnp.asarray(rng.integers(0, NUM_LABELS, batch), jnp.int32), jnp.float32(p)
        if (mode, batch) not in programs:
            t0 = time.perf_counter()
            programs[mode, batch] = fn.lower(next(keys), table, idx, mode=mode, p=pp).compile(), time.perf_counter() - t0
        compiled, compile_s = programs[mode, batch]
        partner = compiled(next(keys), table, idx, p=pp)
        if mode == "icrst" and p == 1.0:  # it checks what it times: partners stay in the anchor's class
            assert np.array_equal(labels[np.asarray(partner)], labels[np.asarray(idx)]), "pair_indices left the class"
        timed = time_repeats(lambda: compiled(next(keys), table, idx, p=pp).block_until_ready(),
                             warmup=warmup, repeats=repeats)
        return invert(summarize(timed), batch), compile_s

    rows = []
    for mode, p, host_n in cases:
        ctx.log(f"pairing {mode} p={p:g}: device batch {big}, host {host_n} samples x {host_repeats}")
        dev, compile_s = device_rate(mode, p, big)
        host = summarize([host_pairs_per_second(labels, mode, p, host_n, seed=r) for r in range(host_repeats)])
        row = {"mode": mode, "p": p, "device_batch": big, "device_pairs_per_s": dev, "device_compile_s": compile_s,
               "host_samples": host_n, "host_pairs_per_s": host, "speedup": ratio(dev["median"], host["median"])}
        if mode == "icrst" and p == 1.0:
            step, _ = device_rate(mode, p, 512)
            row.update(device_pairs_per_s_batch512=step, speedup_batch512=ratio(step["median"], host["median"]))
        rows.append(row)
    text = format_table(
        f"pairing: pairs/s, device (jit, batch {big}) vs host (the authors' per-sample __getitem__)",
        ["mode", "p", "device pairs/s", "host pairs/s", "x", "x (batch 512)"],
        [[r["mode"], r["p"], r["device_pairs_per_s"], r["host_pairs_per_s"], r["speedup"],
          r.get("speedup_batch512")] for r in rows])
    return {"config": {"num_labels": NUM_LABELS, "classes": 10, "warmup": warmup, "repeats": repeats}, "rows": rows}, text
