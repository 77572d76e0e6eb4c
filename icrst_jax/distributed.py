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

import contextlib
import errno
import json
import math
import operator
import os
import re
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from icrst_jax import faults, run_identity
from icrst_jax.config import config_paths
from icrst_jax.jsonable import to_jsonable
from icrst_jax.log import bar_of

# jax is imported inside the functions (start-up time): the command line imports
# this module for its defaults, and --help or a bad flag should not load jax.

#: Values of ``--distributed``.
DISTRIBUTED_CHOICES = ("auto",)

_ADDRESS = re.compile(r"^\[?[^\s\[\]]+\]?:(\d{1,5})$")
#: How long a process waits for all the others to join (``--join-timeout``) by default.
DEFAULT_JOIN_TIMEOUT_S = 120
# Seconds between two "waiting" lines while processes join.
_WAIT_LINE_EVERY_S = 10
# JAX's own join deadline lies this far behind ours, so ours ends the wait in
# one line before JAX aborts the process with a native stack trace.
_JAX_DEADLINE_MARGIN_S = 15


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    join_timeout: float = DEFAULT_JOIN_TIMEOUT_S,
    say: Callable[[str], None] | None = None,
) -> bool:
    """Joins a multi-process run; call before any JAX work.

    With ``auto=False`` either none of the three is given (a one-process run:
    nothing happens) or all three are (the same address ``HOST:PORT`` and
    process count N on every process, ``process_id`` 0..N-1, process 0 on
    HOST). With ``auto=True`` ``jax.distributed.initialize`` reads whatever is
    not given from the environment of a cluster launcher it knows (SLURM,
    Open MPI, Cloud TPU, ...).

    While the processes join, ``say`` gets a line naming the coordinator and
    the seconds left, every few seconds; a process still alone after
    ``join_timeout`` seconds prints one line and exits with status 1 (JAX's
    own deadline, which would abort with a native stack trace, lies behind
    it). Once joined, a process that stops answering is declared dead after
    ``join_timeout`` seconds too (JAX's heartbeat timeout), which ends the
    others instead of leaving them waiting in a collective. A signal while
    waiting ends the process at once (exit 130 / 143).

    Returns:
      True when this process joined a multi-process run, False when nothing was done.

    Raises:
      ValueError: an incomplete or inconsistent set of arguments, a port out of
        range or already in use on process 0's host (one line); with
        ``auto=True``, no cluster environment found (JAX's message).
      RuntimeError: JAX already used a device in this process.
    """
    if not auto and coordinator_address is None and num_processes is None and process_id is None:
        return False
    _check_arguments(coordinator_address, num_processes, process_id, auto=auto, join_timeout=join_timeout)
    if process_id == 0 and coordinator_address is not None:
        _check_port_free(coordinator_address)

    import jax

    if jax.distributed.is_initialized():
        raise RuntimeError("jax.distributed is already initialized in this process")
    # Cross-process collectives on CPU devices need an implementation; gloo
    # ships with jaxlib. (Its default in jax 0.10; a choice made through
    # JAX_CPU_COLLECTIVES_IMPLEMENTATION is kept.) GPUs use NCCL regardless.
    if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's preemption service installs its own SIGTERM handler, which would
    # take SIGTERM away from icrst_jax.faults (stop at an epoch boundary with
    # a checkpoint); this package does not use the service.
    jax.config.update("jax_enable_preemption_service", False)
    who = f"process {process_id}/{num_processes}" if process_id is not None else "this process"
    where = coordinator_address or "the address from the cluster environment"
    seconds = int(math.ceil(join_timeout))
    with faults.exit_on_signal(f"while {who} waited for the others to join at {where}"), \
            _JoinWatch(who, where, num_processes, join_timeout, say or (lambda line: None)):
        jax.distributed.initialize(
            coordinator_address, num_processes, process_id,
            initialization_timeout=seconds + _JAX_DEADLINE_MARGIN_S,
            heartbeat_timeout_seconds=seconds,
        )
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


def _check_arguments(coordinator_address, num_processes, process_id, *, auto: bool, join_timeout: float) -> None:
    """:func:`initialize`'s arguments, each refused in one line if it cannot be right."""
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes, "process_id": process_id}
    if not auto and None in given.values():
        raise ValueError("coordinator_address, num_processes and process_id go together (or auto=True); got only "
                         + " and ".join(k for k, v in given.items() if v is not None))
    if coordinator_address is not None and not 1 <= (coordinator_port(coordinator_address) or 0) <= 65535:
        raise ValueError(f"coordinator_address must be HOST:PORT with a port in 1..65535, got {coordinator_address!r}")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if process_id is not None and not 0 <= process_id < (num_processes or math.inf):
        bound = "" if num_processes is None else f" and below num_processes ({num_processes})"
        raise ValueError(f"process_id must be >= 0{bound}, got {process_id}")
    if not join_timeout > 0:
        raise ValueError(f"join_timeout must be > 0 seconds, got {join_timeout}")


def coordinator_port(address: str) -> int | None:
    """The port of a ``HOST:PORT`` address (``[v6 address]:PORT`` too), or None if it is not one."""
    match = _ADDRESS.match(address)
    return int(match.group(1)) if match else None


def _check_port_free(coordinator_address: str) -> None:
    """Process 0 is about to listen on the coordinator's port (on the host and port of
    ``JAX_COORDINATOR_BIND_ADDRESS`` if set): a port already in use is one line now."""
    bind = os.environ.get("JAX_COORDINATOR_BIND_ADDRESS") or f"0.0.0.0:{coordinator_address.rsplit(':', 1)[1]}"
    host, port = bind.rsplit(":", 1)
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's listener does
        try:
            s.bind((host, int(port)))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ValueError(f"coordinator address: port {port} is already in use on this host "
                                 f"(process 0 listens there); pick another free port") from None


class _JoinWatch:
    """While the ``with`` body joins: a "waiting" line every few seconds with the
    time left, and at the deadline one line and exit status 1 (from a thread:
    the main thread is blocked inside JAX)."""

    def __init__(self, who, where, num_processes, timeout, say):
        self.done = threading.Event()
        self.who, self.where, self.n, self.timeout, self.say = who, where, num_processes, timeout, say
        self.thread = threading.Thread(target=self._watch, name="icrst-join-watch", daemon=True)

    def _watch(self):
        deadline = time.monotonic() + self.timeout
        count = f"all {self.n} processes" if self.n else "the other processes"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                faults.hard_exit(1, (
                    f"error: {self.who}: not {count} joined at {self.where} within {self.timeout:g} s "
                    f"(--join-timeout): start every process with the same --coordinator-address and "
                    f"--num-processes, process 0 on that host, and check that the port is reachable"))
                return
            self.say(f"[{self.who}] waiting for {count} to join at {self.where} ({left:.0f} s left)")
            if self.done.wait(min(_WAIT_LINE_EVERY_S, left)):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        return False


def _open_collectives() -> None:
    """Runs one all-reduce and one all-gather over all devices of all processes."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()), ("all",))
    ones = np.ones(len(jax.devices()), np.float32)
    x = jax.make_array_from_callback(ones.shape, NamedSharding(mesh, P("all")), lambda idx: ones[idx])
    replicated = NamedSharding(mesh, P())
    total, gathered = jax.jit(lambda v: (jnp.sum(v), v), out_shardings=(replicated, replicated))(x)
    if float(total) != len(ones) or not np.all(np.asarray(gathered) == 1):
        raise RuntimeError(f"a cross-process sum over {len(ones)} devices gave {float(total)}")


def check_same_study(cfg) -> None:
    """Collective, before any training: the processes run one study into one folder.

    Every process sends its whole config and output folder; a field that
    differs between processes (as when they were started with different
    options, or on hosts whose default folders differ) ends every process
    with the same line naming the field and the processes. Process 0 also
    checks that the folder can take the run (not another study's, not busy).
    With checkpoints on, every process writes its part of each checkpoint
    into that folder, so process 0 leaves a token there and every other
    process must read it back: a folder that is not on a filesystem they
    share is refused in one line. Nothing happens in a one-process run.

    Raises:
      ValueError: the same one line on every process.
    """
    if process_count() == 1:
        return
    out = run_identity.out_dir(cfg)
    primary = is_primary()
    fields = to_jsonable({k: operator.attrgetter(k)(cfg) for k in config_paths(cfg) if k != "out"})
    problem, token, created = None, None, False
    if primary:
        try:
            run_identity.check_can_claim(out, cfg)
            if cfg.checkpoints:
                created = not out.exists()
                out.mkdir(parents=True, exist_ok=True)
                token = secrets.token_hex(8)
                probe = out / f".shared-{token}"
                probe.write_text(token)
        except (ValueError, OSError) as e:
            problem = str(e)
    mine = {"fields": fields, "out": str(out), "problem": problem, "token": token}
    every = _gather_json(mine)
    try:
        first = every[0]
        if first["problem"]:
            raise ValueError(first["problem"])
        for key in ["out", *first["fields"]]:
            values = [p["out"] if key == "out" else p["fields"].get(key) for p in every]
            if any(v != values[0] for v in values):
                differ = ", ".join(f"process {i} has {json.dumps(v)}" for i, v in enumerate(values) if v != values[0])
                what = "the output folder (--out)" if key == "out" else key
                raise ValueError(
                    f"the processes disagree on {what}: process 0 has {json.dumps(values[0])}, {differ}; "
                    f"start every process with the same options")
        if cfg.checkpoints:
            token = first["token"]
            mine_probe = out / f".shared-{token}"
            sees = primary or (mine_probe.is_file() and mine_probe.read_text() == token)
            blind = [i for i, ok in enumerate(_gather_json(bool(sees))) if not ok]
            if blind:
                raise ValueError(
                    f"process {', '.join(map(str, blind))} cannot see process 0's output folder {out}: every "
                    f"process writes its part of each checkpoint there, so it must be on a filesystem they all "
                    f"share (give --out a shared path, or --no-checkpoints)")
    finally:
        if primary and token:
            probe.unlink(missing_ok=True)
            if created:
                with contextlib.suppress(OSError):
                    Path(out).rmdir()


def _gather_json(obj) -> list:
    """Every process's ``obj`` (JSON-able), in process order; a collective."""
    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(obj).encode(), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([data.size], np.int32))).reshape(-1)
    # Rounded up, so that gathers of similar sizes share one compiled program.
    padded = np.zeros(-(-int(sizes.max()) // 1024) * 1024, np.uint8)
    padded[: data.size] = data
    rows = np.asarray(multihost_utils.process_allgather(padded))
    return [json.loads(bytes(row[:n]).decode()) for row, n in zip(rows, sizes)]


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

    def prefixed(line: str) -> str:
        n = process_count()
        return line if n == 1 else f"[process {process_index()}/{n}] {line}"

    def tagged(line: str) -> None:
        say(prefixed(line))

    if hasattr(say, "detail"):  # a Log: its levels and bars stay (icrst_jax.log)
        tagged.detail = lambda line: say.detail(prefixed(line))
        tagged.bar = lambda total, desc: bar_of(say, total, desc)
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
