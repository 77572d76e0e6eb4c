"""Target benchmark: the Breast Cancer MLP, 10 seeds x 50 epochs, end to end.

The paper's settings (section 6, Table D1): MLP 30 -> 64 -> 8 -> 64 -> 30, batch
512, Adam 1e-3, 50 epochs, on the 80 % training split of Breast Cancer (455 of
569 samples, two classes, 62.7 % / 37.3 %); synthetic features of that shape.

* JAX: one ``fit(config, x, y, seeds=range(10))`` call, timed from the call to
  its return: engine, data transfer, ``init_state``, compilation and all epochs
  (the history's epoch seconds give the steady-state part).
* PyTorch: 10 sequential ``train_torch`` runs (DataLoader + the authors'
  per-sample host pairing), each timed from the call to its return, with the
  faster of 1 thread and the default (picked by a short probe run of each).

JAX is measured twice:

* cold (``jax``): no persistent compilation cache, every program is compiled
  (what a first run pays, and what the suite measures everywhere else). The
  target is judged on this one.
* warm cache (``jax_warm_cache``): what a repeated ``python -m experiments.run``
  pays, which turns JAX's persistent compilation cache on by default
  (:func:`icrst_jax.runtime.enable_compilation_cache`). The cache is
  process-wide JAX state, and the rest of the suite must keep compiling, so
  this runs in a child process (``python -m benchmarks.bench_e2e --warm-child``)
  with a fresh temporary cache directory: one ``fit`` fills the cache, then the
  timed ``fit`` calls run with it warm. A new ``fit`` builds new closures, so
  JAX's in-memory jit caches miss and every program is looked up on disk;
  JAX's own cache-hit/miss events (and the compile seconds) are recorded to
  show that the disk cache, not an in-memory one, saved the compilation.

``--quick`` runs 2 seeds x 3 epochs on both sides (a smoke test; the target is
only judged on the paper's settings).
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

from benchmarks.bench_lib import Context, format_table, ratio, summarize, torch_or_reason

TARGET = 50.0
TRAIN_SAMPLES = 455
FEATURES = 30
CLASS_SHARE = (0.627, 0.373)  # benign / malignant in the Wisconsin data set


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((TRAIN_SAMPLES, FEATURES), dtype=np.float32)
    y = rng.choice(2, TRAIN_SAMPLES, p=CLASS_SHARE)
    return x, y


def torch_threads(tr, x, y, epochs: int) -> tuple[int, dict]:
    """The faster of 1 thread and torch's default for this run, from one short
    run each (on a shared machine the default's OpenMP threads stall whenever
    another process holds a core; the MLP's tiny ops gain nothing from 2 threads)."""
    import torch

    default = torch.get_num_threads()
    if default == 1:
        return 1, {}
    probe = {}
    for th in (1, default):
        t0 = time.perf_counter()
        tr.train_torch("mlp", x, y, mode="icrst", p=1.0, epochs=max(1, epochs // 10), batch_size=512, width=1.0,
                       seed=0, num_threads=th)
        probe[str(th)] = time.perf_counter() - t0
    return (1 if probe["1"] <= probe[str(default)] else default), probe


def plan(quick: bool) -> tuple[int, int, int]:
    """(seeds, epochs, timed JAX repeats)."""
    return (2, 3, 1) if quick else (10, 50, 2)


def time_fits(repeats: int, seeds: int, epochs: int, log) -> tuple[dict, list]:
    """``repeats`` timed ``fit`` calls, each from the call to its return; the
    stats block of the ``jax`` entry and one ``FitResult`` per call."""
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
    out = {
        "wall_s": summarize(walls),
        "epochs_s": summarize(steady),
        "compile_s": summarize(compiles),
        "other_s": summarize([w - s - c for w, s, c in zip(walls, steady, compiles)]),
        "final_loss": float(np.mean(results[-1].final_loss)),
    }
    return out, results


def cache_entries(directory: str) -> tuple[int, int]:
    """(entries, bytes) of a JAX file cache: one ``<key>-cache`` file per program."""
    names = [n for n in os.listdir(directory) if n.endswith("-cache")]
    return len(names), sum(os.path.getsize(os.path.join(directory, n)) for n in names)


def warm_child(quick: bool, cache_dir: str, out: str) -> None:
    """Runs in the subprocess: fill a fresh persistent cache with one ``fit``, then
    time ``fit`` with the cache warm; writes JSON to ``out``."""
    from icrst_jax.runtime import enable_compilation_cache

    fresh = not os.path.exists(cache_dir) or not os.listdir(cache_dir)
    # Before any JAX work, as the command line does it.
    used = enable_compilation_cache(cache_dir)
    import jax

    events: dict[str, int] = {}
    jax.monitoring.register_event_listener(lambda event, **kw: events.__setitem__(event, events.get(event, 0) + 1))
    ctx = Context(quick, tag="e2e warm child ")
    seeds, epochs, repeats = plan(quick)
    # 1. Fill: every program is compiled and written (a cold run plus the writes).
    populate, fill_results = time_fits(1, seeds, epochs, lambda m: ctx.log(f"e2e: fill the cache, {m}"))
    fill_events = dict(events)
    entries, size = cache_entries(used)
    events.clear()
    # 2. Timed, cache warm: new closures, so the in-memory jit caches miss and
    # every program comes from disk.
    warm, results = time_fits(repeats, seeds, epochs, lambda m: ctx.log(f"e2e: JAX fit, warm cache, {m}"))
    warm["populate"] = {k: populate[k]["median"] for k in ("wall_s", "epochs_s", "compile_s", "other_s")}
    warm["cache"] = {
        "dir_was_fresh": fresh,
        "entries": entries,
        "bytes": size,
        "fill_misses": fill_events.get("/jax/compilation_cache/cache_misses", 0),
        "fill_hits": fill_events.get("/jax/compilation_cache/cache_hits", 0),
        "timed_hits": events.get("/jax/compilation_cache/cache_hits", 0),
        "timed_misses": events.get("/jax/compilation_cache/cache_misses", 0),
        "timed_fits": repeats,
        "entries_after": cache_entries(used)[0],
    }
    # Executables loaded from disk must compute what the compiled ones did.
    warm["final_loss_equal_to_fill"] = bool(np.array_equal(results[-1].final_loss, fill_results[0].final_loss))
    with open(out, "w") as f:
        json.dump(warm, f)


def run_warm_child(ctx: Context) -> dict:
    """The ``jax_warm_cache`` entry, from a child process with its own fresh cache."""
    with tempfile.TemporaryDirectory(prefix="icrst_e2e_") as tmp:
        out, cache_dir = os.path.join(tmp, "warm.json"), os.path.join(tmp, "xla")
        cmd = [sys.executable, "-m", "benchmarks.bench_e2e", "--warm-child", "--cache-dir", cache_dir, "--out", out]
        cmd += ["--quick"] if ctx.quick else []
        # Same environment (and so the same devices) as this process; the cache
        # directory is the child's argument, JAX's own variable must not override it.
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        ctx.log("e2e: warm-cache child process")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, timeout=300 if ctx.quick else 1200)
        if proc.returncode != 0:
            raise RuntimeError(f"e2e warm-cache child exited with {proc.returncode}")
        with open(out) as f:
            warm = json.load(f)
    warm["child_seconds"] = time.perf_counter() - t0
    return warm


def run(ctx: Context) -> tuple[dict, str]:
    import jax

    seeds, epochs, jax_repeats = plan(ctx.quick)
    x, y = data()
    jax_out, _ = time_fits(jax_repeats, seeds, epochs, lambda m: ctx.log(f"e2e: JAX fit, cold, {m}"))
    # Proof that "cold" was cold: this process has no persistent cache (the
    # suite never enables one; a JAX_COMPILATION_CACHE_DIR in the environment would).
    jax_out["persistent_cache_dir"] = jax.config.jax_compilation_cache_dir
    # What the seeds cost a user end to end: the same fit with one seed.
    jax_one, _ = time_fits(jax_repeats, 1, epochs, lambda m: ctx.log(f"e2e: JAX fit, cold, {m}"))
    warm = run_warm_child(ctx)
    result = {
        "config": {"model": "mlp", "width": 1.0, "samples": TRAIN_SAMPLES, "batch": 512, "epochs": epochs,
                   "seeds": seeds, "mode": "icrst", "p": 1.0, "paper_settings": not ctx.quick},
        "jax": jax_out,
        "jax_warm_cache": warm,
        "jax_one_seed": jax_one,
        "warm_vs_cold": ratio(jax_out["wall_s"]["median"], warm["wall_s"]["median"]),
        "seeds_vs_one_seed_e2e": ratio(jax_out["wall_s"]["median"], jax_one["wall_s"]["median"]),
    }
    tr, reason = torch_or_reason()
    rows = [["JAX fit, cold (all seeds, one program)", jax_out["wall_s"]["median"], jax_out["epochs_s"]["median"],
             jax_out["compile_s"]["median"], jax_out["other_s"]["median"]],
            ["JAX fit, warm compilation cache", warm["wall_s"]["median"], warm["epochs_s"]["median"],
             warm["compile_s"]["median"], warm["other_s"]["median"]],
            ["  (JAX fit filling the cache)", warm["populate"]["wall_s"], warm["populate"]["epochs_s"],
             warm["populate"]["compile_s"], warm["populate"]["other_s"]],
            ["JAX fit, cold, 1 seed", jax_one["wall_s"]["median"], jax_one["epochs_s"]["median"],
             jax_one["compile_s"]["median"], jax_one["other_s"]["median"]]]
    c = warm["cache"]
    note = (f"warm cache: {c['timed_hits']} disk-cache hits and {c['timed_misses']} misses in {c['timed_fits']} fit(s) "
            f"({c['entries']} entries, {c['bytes'] / 1e6:.1f} MB); warm vs cold {result['warm_vs_cold']:.1f}x\n"
            f"{seeds} seeds cost {result['seeds_vs_one_seed_e2e']:.2f}x one seed end to end (cold)\n")
    if tr is None:
        result["torch"] = reason
        note += f"PyTorch: {reason}"
    else:
        threads, probe = torch_threads(tr, x, y, epochs)
        runs, inner = [], []
        for s in range(seeds):
            ctx.log(f"e2e: torch run {s + 1}/{seeds} ({threads} thread(s))")
            t0 = time.perf_counter()
            out = tr.train_torch("mlp", x, y, mode="icrst", p=1.0, epochs=epochs, batch_size=512, width=1.0,
                                 seed=s, num_threads=threads)
            runs.append(time.perf_counter() - t0)
            inner.append(out["seconds"])
        total = sum(runs)
        result["torch"] = {"runs": seeds, "threads": threads, "thread_probe_s": probe, "total_s": total,
                           "per_run_s": summarize(runs), "per_run_training_loop_s": summarize(inner)}
        # speedup_e2e: cold JAX (compilation included), what the target is judged on.
        result["speedup_e2e"] = ratio(total, jax_out["wall_s"]["median"])
        result["speedup_e2e_warm_cache"] = ratio(total, warm["wall_s"]["median"])
        result["speedup_steady_state"] = ratio(total, jax_out["epochs_s"]["median"])
        met = result["speedup_e2e"] >= TARGET
        result["target"] = {
            "what": f"JAX fit of {seeds} seeds x {epochs} epochs >= {TARGET:g}x faster than {seeds} sequential "
                    "PyTorch runs (end to end, compilation included; judged cold, without a compilation cache)",
            "required": TARGET, "measured": result["speedup_e2e"],
            "measured_warm_cache": result["speedup_e2e_warm_cache"],
            "measured_steady_state": result["speedup_steady_state"],
            "met": met, "margin": result["speedup_e2e"] / TARGET,
            "met_warm_cache": result["speedup_e2e_warm_cache"] >= TARGET,
            "judged": not ctx.quick,
        }
        rows.append([f"PyTorch, {seeds} sequential runs", total, sum(inner), float("nan"), total - sum(inner)])
        note += (f"speed-up end to end: cold {result['speedup_e2e']:.1f}x (judged), warm cache "
                 f"{result['speedup_e2e_warm_cache']:.1f}x; steady state (epochs only) "
                 f"{result['speedup_steady_state']:.1f}x; target >= {TARGET:g}x end to end, cold: "
                 + ("met" if met else "MISSED") + ("" if not ctx.quick else " (quick: reduced config, not judged)"))
    text = format_table(
        f"Breast Cancer MLP end to end: {seeds} seeds x {epochs} epochs, batch 512, {TRAIN_SAMPLES} samples (s)",
        ["what", "wall s", "epochs s", "compile s", "other s"], rows, note,
    )
    return result, text


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="warm-cache child process of the breast_cancer_e2e benchmark")
    parser.add_argument("--warm-child", action="store_true", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cache-dir", required=True, help="a fresh (empty or missing) cache directory")
    parser.add_argument("--out", required=True, help="JSON result file")
    args = parser.parse_args(argv)
    warm_child(args.quick, args.cache_dir, args.out)


if __name__ == "__main__":
    _main()
