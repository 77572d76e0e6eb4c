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
import threading
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


def _rows_and_sharding(g: int, rows: int | None):
    """Rows per call for ``g`` fits (``rows``, or all; a multiple of the local devices) and the
    sharding that splits them over the devices (None on one)."""
    devices = jax.local_devices()
    size = g if rows is None else min(rows, g)
    size = -(-size // len(devices)) * len(devices)
    if len(devices) == 1:
        return size, None
    return size, NamedSharding(Mesh(np.array(devices), ("fits",)), PartitionSpec("fits"))


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
    size, sharding = _rows_and_sharding(g, chunk)
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


def run_in_slots(program, empty, x_sets, y_sets, set_idx, train_mask, slots, *extra):
    """Fits that stop at different times through a fixed number of slots, a finished fit's slot refilled.

    A program of fits with early stops (the MLP) keeps every row of its fit axis
    busy until the slowest row stops; in chunks of fits, a chunk of early
    stoppers waits for its last fit. Here the fit axis is ``slots`` rows of a
    carried state: each call starts the queue's next fits in the free rows,
    runs until at least a quarter of the rows hold a finished fit (or every fit
    has finished, when none waits), and hands back the finished ones; the
    calls have one shape, so one compiled program. A fit's result depends on
    its own data only, not on its row or neighbours. On one CPU device,
    :func:`chunk_threads` such loops share the queue, each from its own thread;
    with several local devices the rows are split over them.

    Args:
      program: a function of ``(state, refill (C,), live (C,), need (), x (C, N, D),
        y (C, N), train_mask (C, N), *extra)`` returning ``(state, done (C,), out)``:
        rows where ``refill`` start the fit given by this call's data (their
        state dropped), ``live`` rows hold a fit not handed back yet, and the call
        returns once at least ``need`` live rows are ``done`` (or none runs);
        ``out`` is a pytree with a leading ``(C,)`` axis, final for done rows.
      empty: ``empty(C)``, the state of ``C`` rows before any fit (any values: every
        row is refilled by the first call).
      x_sets, y_sets, set_idx, train_mask, *extra: as in :func:`run_chunked`.
      slots: rows of the state, ``C`` (rounded up to a multiple of the local
        devices; fewer fits than that: one row per fit), or ``None`` for one per fit.

    Returns:
      ``out`` with a leading ``(G,)`` axis, as numpy arrays, in fit order.
    """
    g = len(set_idx)
    size, sharding = _rows_and_sharding(g, slots)
    first = empty(size)
    queue = _Queue(g)
    per_fit = (np.asarray(set_idx), np.asarray(train_mask), *extra)
    results: list = [None] * g

    def loop():
        state, holder = first, np.full(size, -1)
        while True:
            free = np.flatnonzero(holder < 0)
            new = queue.take(len(free))
            refill = np.zeros(size, bool)
            refill[free[: len(new)]] = True
            holder[free[: len(new)]] = new
            live = holder >= 0
            if not live.any():
                return
            # Rows without a fit read the first live fit's data (refilled, never waited for).
            rows = np.where(live, holder, holder[live][0])
            refill |= ~live
            idx, *args = jax.tree.map(lambda a: np.asarray(a)[rows], per_fit)
            need = int(live.sum()) if queue.empty() else min(int(live.sum()), max(1, size // 4))
            call = (state, refill, live, x_sets[idx], y_sets[idx], *args)
            if sharding is not None:
                # The state is placed with the first call's data (it stays split over the devices after).
                call = jax.device_put(call, sharding) if state is first else (state, *jax.device_put(call[1:], sharding))
            state, done, out = program(*call[:3], np.int32(need), *call[3:])
            done, out = jax.device_get((done, out))
            for row in np.flatnonzero(live & done):
                results[holder[row]] = jax.tree.map(lambda a: a[row], out)
                holder[row] = -1

    n_loops = 1 if sharding is not None else min(chunk_threads(), -(-g // size))
    if n_loops == 1:
        loop()
    else:
        x64 = bool(jax.config.jax_enable_x64)

        def in_callers_precision(_):
            with jax.enable_x64(x64):
                loop()

        with ThreadPoolExecutor(n_loops) as pool:
            list(pool.map(in_callers_precision, range(n_loops)))
    return jax.tree.map(lambda *a: np.stack(a), *results)


class _Queue:
    """The fits ``0..g-1`` in order, taken by the slot loops of :func:`run_in_slots` under a lock."""

    def __init__(self, g: int):
        self._next, self._g, self._lock = 0, g, threading.Lock()

    def take(self, k: int) -> list[int]:
        with self._lock:
            out = list(range(self._next, min(self._next + k, self._g)))
            self._next += len(out)
            return out

    def empty(self) -> bool:
        with self._lock:
            return self._next >= self._g
