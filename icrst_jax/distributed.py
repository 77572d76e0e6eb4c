"""Multi-process runs: joining one, and what only process 0 does.

JAX runs one Python process per host (or per GPU); :func:`initialize` joins
them through ``jax.distributed`` before anything touches a device. From then
on ``jax.devices()`` lists every device of every process, so the training mesh
of :func:`icrst_jax.train.make_mesh` spans all of them and one global batch is
split over all of them (the training set is replicated, assembled on each
process from its own identical host copy).

Every process runs the same program: the same data, the same training, the
same latents (gathered back to every process by :func:`to_host`), the same
evaluation. Keeping them in step matters because every collective waits for
all processes, and only so long (see :func:`initialize` for the tightest
case). Only process 0 writes the run's files (latents, results, report,
figures); orbax checkpointing is collective: every process calls it and writes
its part into the shared checkpoint directory, process 0 the metadata and the
commit.
"""

from __future__ import annotations

import re
from typing import Any, Callable

#: Values of ``--distributed``.
DISTRIBUTED_CHOICES = ("auto",)

_ADDRESS = re.compile(r"^\[?[^\s\[\]]+\]?:\d{1,5}$")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Joins a multi-process run; call before any JAX work.

    With ``auto=False`` either none of the three is given (a one-process run:
    nothing happens) or all three are (``--coordinator-address HOST:PORT
    --num-processes N --process-id I``, the same address and N on every
    process, I = 0..N-1, process 0 on HOST). With ``auto=True``
    (``--distributed auto``) ``jax.distributed.initialize`` reads whatever is
    not given from the environment of a cluster launcher it knows (SLURM,
    Open MPI, Cloud TPU, ...).

    Returns:
      True when this process joined a multi-process run, False when nothing
      was done.

    Raises:
      ValueError: an incomplete or inconsistent set of options (one line).
      RuntimeError: JAX already used a device in this process.
    """
    given = {
        "--coordinator-address": coordinator_address,
        "--num-processes": num_processes,
        "--process-id": process_id,
    }
    if not auto and all(v is None for v in given.values()):
        return False
    if not auto:
        missing = [k for k, v in given.items() if v is None]
        if missing:
            have = ", ".join(k for k, v in given.items() if v is not None)
            raise ValueError(
                f"{have} given without {' and '.join(missing)}: a multi-process run needs all three of "
                "--coordinator-address, --num-processes and --process-id (or --distributed auto under a "
                "cluster launcher such as SLURM)"
            )
    if coordinator_address is not None and not _ADDRESS.match(coordinator_address):
        raise ValueError(f"--coordinator-address must be HOST:PORT, got {coordinator_address!r}")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}")
    if process_id is not None:
        if process_id < 0:
            raise ValueError(f"--process-id must be >= 0, got {process_id}")
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(f"--process-id must be below --num-processes ({num_processes}), got {process_id}")

    import jax

    if jax.distributed.is_initialized():
        raise RuntimeError("jax.distributed is already initialized in this process")
    # Cross-process collectives on CPU devices need an implementation; gloo
    # ships with jaxlib. (Its default in jax 0.10; a choice made through
    # JAX_CPU_COLLECTIVES_IMPLEMENTATION is kept.) GPUs use NCCL regardless.
    if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except ValueError as e:
        if auto:
            raise ValueError(
                f"--distributed auto: {e} (no cluster environment found; outside SLURM, Open MPI or "
                "Cloud TPU give --coordinator-address, --num-processes and --process-id)"
            ) from None
        raise
    # The processes are in step right now (initialize returns once all have
    # connected). On CPU devices the first collective over a group of devices
    # also opens gloo's connections for that group, and that opening fails
    # when one process arrives later than gloo's short rendezvous timeout
    # after another, e.g. because it compiled the first epoch more slowly;
    # once open, collectives of any later program over the same group wait
    # far longer for a late process. So open them now, over the group every
    # training step uses: all devices.
    _open_collectives()
    return True


def _open_collectives() -> None:
    """Runs one all-reduce and one all-gather over all devices of all processes."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()), ("all",))
    ones = np.ones(len(jax.devices()), np.float32)
    x = jax.make_array_from_callback(ones.shape, NamedSharding(mesh, P("all")), lambda idx: ones[idx])
    replicated = NamedSharding(mesh, P())
    total, gathered = jax.jit(lambda v: (jnp.sum(v), v), out_shardings=(replicated, replicated))(x)
    if float(total) != len(ones) or not np.all(np.asarray(gathered) == 1):
        raise RuntimeError(f"a cross-process sum over {len(ones)} devices gave {float(total)}")


def process_index() -> int:
    import jax

    return jax.process_index()


def process_count() -> int:
    import jax

    return jax.process_count()


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0; always so in a one-process run)."""
    return process_index() == 0


def tag_progress(say: Callable[[str], None]) -> Callable[[str], None]:
    """``say`` with ``[process I/N] `` before each line in a multi-process run, unchanged otherwise.

    The process count is read at the first line, not here, so that wrapping a
    printer does not start JAX's backends (which must wait for :func:`initialize`).
    """

    def tagged(line: str) -> None:
        n = process_count()
        say(line if n == 1 else f"[process {process_index()}/{n}] {line}")

    return tagged


def to_host(tree: Any) -> Any:
    """Numpy copies of a pytree of arrays, complete on every process.

    An array whose shards all live in this process, or that is replicated
    (every process holds a full copy), is read locally; one split over several
    processes is gathered (``multihost_utils.process_allgather``: a collective,
    so every process must call this at the same point). ``np.asarray`` alone
    fails on the latter.
    """
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    def get(a):
        if not isinstance(a, jax.Array):
            return np.asarray(a)
        if a.is_fully_addressable:
            return np.asarray(a)
        if a.is_fully_replicated:
            return np.asarray(a.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(a, tiled=True))

    return jax.tree_util.tree_map(get, tree)
