"""breast_cancer_e2e: the Breast Cancer MLP, 10 seeds x 50 epochs, end to end (section 6:
batch 512, Adam 1e-3, 455 samples of 30 features; synthetic, 62.7 % / 37.3 % classes).

JAX: one ``fit(config, x, y, seeds=range(10))`` from call to return, cold and with one
seed; and with a warm persistent cache (a repeated ``experiments.run``): a child process
(``python -m benchmarks.bench_e2e --cache-dir DIR --out FILE``) fills a fresh cache with
one ``fit``, then times ``fit`` warm, JAX's cache events showing the disk cache served it.
PyTorch: 10 sequential ``train_torch`` runs. ``--quick``: 1 seed x 3 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.bench_lib import Context, faster_torch_threads, format_table, ratio, summarize, torch_or_reason, write_json

TRAIN_SAMPLES, FEATURES = 455, 30


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((TRAIN_SAMPLES, FEATURES), dtype=np.float32), rng.choice(2, TRAIN_SAMPLES, p=(0.627, 0.373))


def plan(quick: bool) -> tuple[int, int, int]:
    """(seeds, epochs, timed JAX repeats)."""
    return (1, 3, 1) if quick else (10, 50, 2)


def time_fits(repeats: int, seeds: int, epochs: int, log) -> tuple[dict, list]:
    """``repeats`` timed ``fit`` calls: wall, epochs, compile and other seconds, and the results."""
    import jax

    from icrst_jax.config import ModelConfig, TrainConfig
    from icrst_jax.train import fit

    x, y = data()
    cfg = TrainConfig(mode="icrst", p=1.0, epochs=epochs, batch_size=512, learning_rate=1e-3, num_devices=1,
                      model=ModelConfig(name="mlp", width=1.0))
    walls, steady, compiles, results = [], [], [], []
    for rep in range(repeats):
        log(f"{seeds} seeds x {epochs} epochs (repeat {rep + 1}/{repeats})")
        t0 = time.perf_counter()
        res = fit(cfg, x, y, seeds=list(range(seeds)), progress=False)
        jax.block_until_ready(res.state)
        walls.append(time.perf_counter() - t0)
        steady.append(sum(h["seconds"] for h in res.history))
        compiles.append(res.compile_seconds)
        results.append(res)
    return {"wall_s": summarize(walls), "epochs_s": summarize(steady), "compile_s": summarize(compiles),
            "other_s": summarize([w - s - c for w, s, c in zip(walls, steady, compiles)]),
            "final_loss": float(np.mean(results[-1].final_loss))}, results


def warm_child(quick: bool, cache_dir: str, out: str) -> None:
    """In the child: fill a fresh persistent cache with one ``fit``, then time ``fit`` with it warm."""
    from icrst_jax.runtime import enable_compilation_cache

    fresh = not os.path.exists(cache_dir) or not os.listdir(cache_dir)
    used = enable_compilation_cache(cache_dir)  # before any JAX work, as the command line does it
    import jax

    events: dict[str, int] = {}
    jax.monitoring.register_event_listener(lambda event, **kw: events.__setitem__(event, events.get(event, 0) + 1))
    ctx = Context(quick, tag="e2e warm child ")
    seeds, epochs, repeats = plan(quick)
    fill, fill_results = time_fits(1, seeds, epochs, lambda m: ctx.log(f"e2e: fill the cache, {m}"))
    fill_events, entries = dict(events), [n for n in os.listdir(used) if n.endswith("-cache")]
    events.clear()
    # New closures: the in-memory jit caches miss and every program comes from disk.
    warm, results = time_fits(repeats, seeds, epochs, lambda m: ctx.log(f"e2e: JAX fit, warm cache, {m}"))
    hits, misses = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"
    warm["populate"] = {k: fill[k]["median"] for k in ("wall_s", "epochs_s", "compile_s", "other_s")}
    warm["cache"] = {"dir_was_fresh": fresh, "entries": len(entries),
                     "bytes": sum(os.path.getsize(os.path.join(used, n)) for n in entries),
                     "fill_misses": fill_events.get(misses, 0), "fill_hits": fill_events.get(hits, 0),
                     "timed_hits": events.get(hits, 0), "timed_misses": events.get(misses, 0), "timed_fits": repeats}
    # Executables loaded from disk must compute what the compiled ones did.
    warm["final_loss_equal_to_fill"] = bool(np.array_equal(results[-1].final_loss, fill_results[0].final_loss))
    write_json(out, warm)


def run(ctx: Context) -> tuple[dict, str]:
    import jax

    seeds, epochs, repeats = plan(ctx.quick)
    cold, _ = time_fits(repeats, seeds, epochs, lambda m: ctx.log(f"e2e: JAX fit, cold, {m}"))
    # Proof that cold was cold: no persistent cache in this process.
    cold["persistent_cache_dir"] = jax.config.jax_compilation_cache_dir
    one = cold if seeds == 1 else time_fits(repeats, 1, epochs, lambda m: ctx.log(f"e2e: JAX fit, cold, {m}"))[0]
    with tempfile.TemporaryDirectory(prefix="icrst_e2e_") as tmp:
        out = os.path.join(tmp, "warm.json")
        cmd = [sys.executable, "-m", "benchmarks.bench_e2e", "--cache-dir", os.path.join(tmp, "xla"), "--out", out,
               *(["--quick"] if ctx.quick else [])]
        # The cache directory is the child's argument: JAX's own variable must not override it.
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        ctx.log("e2e: warm-cache child process")
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, timeout=1200).returncode != 0:
            raise RuntimeError("e2e warm-cache child process failed")
        with open(out) as f:
            warm = json.load(f)
    result = {"config": {"model": "mlp", "samples": TRAIN_SAMPLES, "batch": 512, "epochs": epochs, "seeds": seeds,
                         "mode": "icrst", "p": 1.0},
              "jax": cold, "jax_warm_cache": warm, "jax_one_seed": one,
              "warm_vs_cold": ratio(cold["wall_s"]["median"], warm["wall_s"]["median"]),
              "seeds_vs_one_seed_e2e": ratio(cold["wall_s"]["median"], one["wall_s"]["median"])}
    rows = [[f"JAX fit, cold, {seeds} seeds in one program", cold], ["JAX fit, warm compilation cache", warm],
            ["  (the fit filling the cache)", {k: {"median": v} for k, v in warm["populate"].items()}],
            ["JAX fit, cold, 1 seed", one]]
    rows = [[name, *(d[k]["median"] for k in ("wall_s", "epochs_s", "compile_s", "other_s"))] for name, d in rows]
    tr, reason = torch_or_reason()
    result["torch"] = reason
    if tr is not None:
        x, y = data()

        def train(seed: int, threads: int, n_epochs: int) -> tuple[float, float]:
            t0 = time.perf_counter()
            out = tr.train_torch("mlp", x, y, mode="icrst", p=1.0, epochs=n_epochs, batch_size=512, seed=seed,
                                 num_threads=threads)
            return time.perf_counter() - t0, out["seconds"]

        threads, probe = faster_torch_threads(lambda th: train(0, th, max(1, epochs // 10))[0])
        runs = [train(s, threads, epochs) for s in range(seeds)]
        total = sum(w for w, _ in runs)
        result["torch"] = {"runs": seeds, "threads": threads, "thread_probe_s": probe, "total_s": total,
                           "per_run_s": summarize([w for w, _ in runs]),
                           "per_run_training_loop_s": summarize([t for _, t in runs])}
        result.update(speedup_e2e=ratio(total, cold["wall_s"]["median"]),
                      speedup_e2e_warm_cache=ratio(total, warm["wall_s"]["median"]),
                      speedup_steady_state=ratio(total, cold["epochs_s"]["median"]))
        rows.append([f"PyTorch, {seeds} sequential runs", total, sum(t for _, t in runs), None,
                     total - sum(t for _, t in runs)])
    c = warm["cache"]
    text = format_table(
        f"Breast Cancer MLP end to end: {seeds} seeds x {epochs} epochs, batch 512, {TRAIN_SAMPLES} samples (s)",
        ["what", "wall s", "epochs s", "compile s", "other s"], rows,
        f"warm cache: {c['timed_hits']} disk-cache hits, {c['timed_misses']} misses; warm vs cold "
        f"{result['warm_vs_cold']:.1f}x; {seeds} seeds cost {result['seeds_vs_one_seed_e2e']:.2f}x one seed\n"
        + (f"PyTorch / JAX: cold {result['speedup_e2e']:.1f}x, warm cache {result['speedup_e2e_warm_cache']:.1f}x, "
           f"epochs only {result['speedup_steady_state']:.1f}x" if tr is not None else f"PyTorch: {reason}"))
    return result, text


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="warm-cache child process of the breast_cancer_e2e benchmark")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cache-dir", required=True, help="a fresh (empty or missing) cache directory")
    ap.add_argument("--out", required=True, help="JSON result file")
    args = ap.parse_args()
    warm_child(args.quick, args.cache_dir, args.out)
