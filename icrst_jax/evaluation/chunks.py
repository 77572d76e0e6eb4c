"""Many fits of one compiled classifier program, run chunk by chunk.

The JAX classifiers (:mod:`~icrst_jax.evaluation.jax_classifiers`,
:mod:`~icrst_jax.evaluation.jax_svc`) fit ``G`` folds of ``S`` feature sets as
rows of a leading "fit" axis. :func:`run_chunked` calls such a program on
chunks of a fixed number of fits, so that every call of a study has one shape
(one compilation per classifier and data shape) and memory stays bounded
(:func:`fits_within_budget`). With several local devices a chunk's fits are
split over them (data parallel); on one CPU device :func:`chunk_threads`
chunks run at once, each from its own thread, in the caller's
``jax.enable_x64`` setting.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# The fit axis of every program call is padded to this many fits (or fewer where memory
# demands): the calls of a study (final and untrained sets, then the along-training
# sets) and every chunk of them then share one compiled program per classifier and shape.
# On a CPU a fit costs the same in chunks of 32 as of 128 (BENCHMARKS.md), and small
# chunks waste less on the padding of the last one; an accelerator wants wide calls.
FIT_CHUNK = {"cpu": 32, "accelerator": 1024}


def host_cores() -> int:
    """The CPU cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def fits_within_budget(bytes_per_fit: int) -> int:
    """Fits per program call: :data:`FIT_CHUNK`, fewer where the chunk's ``bytes_per_fit``
    would pass 1 GiB on a CPU backend (shared by the calls at once, one per core) or
    16 GiB on an accelerator."""
    cpu = jax.default_backend() == "cpu"
    budget = 2**30 // host_cores() if cpu else 2**34
    return int(min(FIT_CHUNK["cpu" if cpu else "accelerator"], max(1, budget // bytes_per_fit)))


def chunk_threads() -> int:
    """Chunks of fits :func:`run_chunked` runs at once: on a CPU backend one per core, on an accelerator one.

    Calls of these fit programs (while loops of small matmuls) from one thread
    run at well under two cores' worth; two at a time ran a study's MLP fits 2.2x
    faster on a 2-core CPU, also beside scikit-learn's pool (BENCHMARKS.md,
    "Evaluation"). An accelerator runs one call on all of itself.
    """
    return 1 if jax.default_backend() != "cpu" else host_cores()


def run_chunked(program, x_sets, y_sets, set_idx, train_mask, chunk, *extra):
    """``program(x, y, local_idx, train_mask, *extra)`` over chunks of ``chunk`` fits (the last padded).

    Each chunk gets its fits' own rows of ``x_sets`` / ``y_sets`` (``(chunk, N, D)``
    / ``(chunk, N)``, ``local_idx = arange(chunk)``), so every call has the same
    shapes whatever the number of sets and fits: one compiled program. ``extra``
    are arrays or pytrees with the same leading fit axis; ``chunk=None`` is one
    chunk of all fits. Fewer fits than ``chunk`` are one call of their own size
    (not padded: a small evaluation does not pay for a study-sized chunk).
    With several local devices the fit axis is split over them (data parallel:
    each device fits its share of the chunk); chunks are then rounded up to a
    multiple of the device count. On one CPU device, :func:`chunk_threads`
    chunks run at once, each from its own thread.

    Args:
      program: a function of ``(x (C, N, D), y (C, N), local_idx (C,), train_mask
        (C, N), *extra)`` returning a pytree of arrays with a leading ``(C,)`` axis.
      x_sets: ``(S, N, D)`` feature sets; y_sets: ``(S, N)`` their labels.
      set_idx: ``(G,)`` the set of each fit; train_mask: ``(G, N)`` its training rows.
      chunk: fits per call, or ``None`` for all.
      *extra: further per-fit arrays or pytrees, leading axis ``(G,)``.

    Returns:
      ``program``'s pytree with a leading ``(G,)`` axis, as numpy arrays, in fit order.
    """
    g = len(set_idx)
    devices = jax.local_devices()
    size = g if chunk is None else min(chunk, g)
    size = -(-size // len(devices)) * len(devices)
    sharding = None
    if len(devices) > 1:
        sharding = NamedSharding(Mesh(np.array(devices), ("fits",)), PartitionSpec("fits"))
    local = np.arange(size, dtype=np.int32)

    def run(start):
        stop = min(start + size, g)
        pad = size - (stop - start)

        def take(a):
            a = np.asarray(a)[start:stop]
            return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a

        idx, *args = jax.tree.map(take, (set_idx, train_mask, *extra))
        call = (x_sets[idx], y_sets[idx], local, *args)
        if sharding is not None:
            call = jax.device_put(call, sharding)
        out = jax.device_get(program(*call))
        return jax.tree.map(lambda a: a[: size - pad], out)

    starts = list(range(0, g, size))
    if sharding is not None or chunk_threads() == 1 or len(starts) == 1:
        outs = [run(start) for start in starts]
    else:
        outs = _run_side_by_side(run, starts)
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


def _run_side_by_side(run, starts: list[int]) -> list:
    """``[run(s) for s in starts]``, :func:`chunk_threads` calls at a time, each from its own thread.

    ``jax.enable_x64`` is a per-thread setting: the caller's (float64 NB) is set again in
    each worker, or its programs would be traced in float32.
    """
    x64 = bool(jax.config.jax_enable_x64)

    def in_callers_precision(start):
        with jax.enable_x64(x64):
            return run(start)

    with ThreadPoolExecutor(chunk_threads()) as pool:
        return list(pool.map(in_callers_precision, starts))
