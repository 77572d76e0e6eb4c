"""Step speed of the narrow conv (CPU path) with dropout's hash as JAX's primitive
(``threefry2x32_p``, a rolled loop on a CPU) vs written out (``models.threefry2x32``).

    python -m benchmarks.dropout_hash_ab [EPOCHS]

Both programs are compiled in this one process and their epochs interleaved
(A B A B), so a change of load hits both alike; prints each version's compile
seconds, the median and min epoch time (2 steps of batch 64) and whether the
losses agree bit for bit (BENCHMARKS.md, "Cold start").
"""

from __future__ import annotations

import statistics
import sys
import time

import jax
import numpy as np
from jax.extend.random import threefry2x32_p

import icrst_jax.models as models
from icrst_jax.config import ModelConfig, TrainConfig
from icrst_jax.train import compile_epoch, init_state, make_engine, make_train_data


def build(hash_fn):
    """Engine, state, data and compiled epoch with ``hash_fn`` as dropout's hash (traced now)."""
    models.threefry2x32 = hash_fn
    cfg = TrainConfig(mode="icrst", p=1.0, batch_size=64, model=ModelConfig(name="conv", width=0.25, conv_impl="cpu"))
    rng = np.random.default_rng(0)
    x, y = rng.random((128, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 128)
    engine = make_engine(cfg, (28, 28, 1), 128)
    data = make_train_data(engine, x, y)
    state = init_state(engine, [0])
    compiled, seconds = compile_epoch(engine, state, data)
    return {"compiled": compiled, "state": state, "data": data, "compile_s": seconds, "times": [], "losses": []}


def main(epochs: int = 30):
    jax.config.update("jax_enable_compilation_cache", False)
    written_out = models.threefry2x32
    try:
        runs = {"primitive": build(lambda *a: threefry2x32_p.bind(*a)), "written_out": build(written_out)}
    finally:
        models.threefry2x32 = written_out
    for i in range(epochs + 1):
        for r in runs.values():
            t0 = time.perf_counter()
            r["state"], metrics = r["compiled"](r["state"], r["data"])
            loss = float(np.asarray(metrics["loss"]).mean())
            if i:  # the first epoch of each is a warm-up
                r["times"].append(time.perf_counter() - t0)
                r["losses"].append(loss)
    for name, r in runs.items():
        print(f"{name:12s} compile {r['compile_s']:.1f} s  epoch median {statistics.median(r['times']):.4f} s  "
              f"min {min(r['times']):.4f} s  (n={len(r['times'])})")
    print("losses equal:", runs["primitive"]["losses"] == runs["written_out"]["losses"])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
