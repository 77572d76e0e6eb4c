"""Step speed of two versions of the narrow conv's epoch (CPU path), in one process.

    python -m benchmarks.epoch_ab VARIANT [EPOCHS]

Both programs are traced and compiled in this one process and their epochs
interleaved (A B A B), so a change of load hits both alike; prints each
version's compile seconds, the median and min epoch time (2 steps of batch 64)
and whether the losses agree bit for bit (BENCHMARKS.md, "Cold start").
Variants (``VARIANTS``), each "A vs B":

* ``dropout_hash``: dropout's hash as JAX's primitive (``threefry2x32_p``, a
  rolled loop on a CPU) vs written out (``models.threefry2x32``);
* ``wgrad``: the weight gradient of the 3x3 layers by Winograd F(3x3, 4x4)
  where the output tiles by 4 vs F(3x3, 2x2) everywhere (``cpu_conv``).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

import jax
import numpy as np
from jax.extend.random import threefry2x32_p

import icrst_jax.models as models
from icrst_jax import cpu_conv
from icrst_jax.config import ModelConfig, TrainConfig
from icrst_jax.train import compile_epoch, init_state, make_engine, make_train_data


@contextlib.contextmanager
def _hash(fn):
    """Dropout's hash is ``fn`` while a program is traced."""
    kept = models.threefry2x32
    models.threefry2x32 = fn
    try:
        yield
    finally:
        models.threefry2x32 = kept


@contextlib.contextmanager
def _wgrad(method):
    """The CPU path's weight gradient is ``method`` (None: its own choice) while traced."""
    kept = dict(cpu_conv._FORCE)
    if method:
        cpu_conv._FORCE["wgrad"] = method
    try:
        yield
    finally:
        cpu_conv._FORCE.clear()
        cpu_conv._FORCE.update(kept)


VARIANTS = {
    "dropout_hash": {"primitive": lambda: _hash(lambda *a: threefry2x32_p.bind(*a)),
                     "written_out": lambda: _hash(models.threefry2x32)},
    "wgrad": {"wino4_where_it_tiles": lambda: _wgrad(None), "wino2": lambda: _wgrad("wino2")},
}


def build(context):
    """Engine, state, data and compiled epoch, traced inside ``context``."""
    cfg = TrainConfig(mode="icrst", p=1.0, batch_size=64, model=ModelConfig(name="conv", width=0.25, conv_impl="cpu"))
    rng = np.random.default_rng(0)
    x, y = rng.random((128, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 128)
    with context():
        engine = make_engine(cfg, (28, 28, 1), 128)
        data = make_train_data(engine, x, y)
        state = init_state(engine, [0])
        compiled, seconds = compile_epoch(engine, state, data)
    return {"compiled": compiled, "state": state, "data": data, "compile_s": seconds, "times": [], "losses": []}


def main(variant: str, epochs: int = 30):
    jax.config.update("jax_enable_compilation_cache", False)
    runs = {name: build(context) for name, context in VARIANTS[variant].items()}
    for i in range(epochs + 1):
        for r in runs.values():
            t0 = time.perf_counter()
            r["state"], metrics = r["compiled"](r["state"], r["data"])
            loss = float(np.asarray(metrics["loss"]).mean())
            if i:  # the first epoch of each is a warm-up
                r["times"].append(time.perf_counter() - t0)
                r["losses"].append(loss)
    for name, r in runs.items():
        print(f"{name:22s} compile {r['compile_s']:.1f} s  epoch median {statistics.median(r['times']):.4f} s  "
              f"min {min(r['times']):.4f} s  (n={len(r['times'])})")
    a, b = runs.values()
    print("losses equal:", a["losses"] == b["losses"],
          f"(last: {a['losses'][-1]!r} vs {b['losses'][-1]!r})")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python -m benchmarks.epoch_ab {{{','.join(VARIANTS)}}} [EPOCHS]")
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
