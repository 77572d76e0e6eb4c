"""Shared machinery of the benchmark suite (``python -m benchmarks.run``).

* :func:`summarize` turns repeated timings into ``{"median", "min", "max", "n"}``:
  every number the suite reports is a median over repeats with its spread, never
  a single shot (the machines this runs on are shared and noisy).
* :class:`JaxRun` prepares one training configuration through the engine's own
  low-level API (``make_engine`` / ``make_train_data`` / ``init_state`` /
  ``compile_epoch``) and times whole epochs. Set-up, initialisation and
  compilation are timed separately from the steady state, so a slow compile never
  hides in a throughput number and vice versa.
* :class:`Context` is what every benchmark receives: the ``--quick`` switch, a
  cache of prepared runs (the training, seeds and utilisation benchmarks share
  compiled programs instead of compiling the same epoch three times, which on a
  2-core CPU would cost most of the ``--quick`` budget), and a logger that writes
  progress to stderr.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

# Per-sample shapes of the Table D1 data sets, in the JAX layout (NHWC / features).
SAMPLE_SHAPES: dict[str, tuple[int, ...]] = {
    "conv": (28, 28, 1),  # MNIST / Fashion-MNIST
    "conv_strided": (32, 32, 3),  # CIFAR-10 / Caltech101
    "mlp": (30,),  # Breast Cancer
}
NUM_CLASSES = 10


def summarize(values: Sequence[float]) -> dict:
    """Median, min, max and count of repeated measurements."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no measurements to summarize")
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def invert(stats: dict, numerator: float) -> dict:
    """Turns time statistics into rate statistics (``numerator / seconds``).

    The slowest repeat gives the smallest rate, so min and max swap.
    """
    return {
        "median": numerator / stats["median"],
        "min": numerator / stats["max"],
        "max": numerator / stats["min"],
        "n": stats["n"],
    }


def time_repeats(fn: Callable[[], Any], *, warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    """Calls ``fn`` ``warmup`` times, then ``repeats`` times; returns (warmup, timed) seconds.

    ``fn`` must block until its work is done (``block_until_ready`` or a host fetch).
    """
    warm, timed = [], []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        fn()
        (warm if i < warmup else timed).append(time.perf_counter() - t0)
    return warm, timed


def synthetic_data(model: str, n: int, *, seed: int = 0, num_classes: int = NUM_CLASSES,
                   shape: tuple[int, ...] | None = None):
    """Random data of a Table D1 data set's shape (or ``shape``): uniform in [0, 1], random labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *(shape or SAMPLE_SHAPES[model])), dtype=np.float32)
    y = rng.integers(0, num_classes, n)
    return x, y


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean/std for images, identity for feature vectors (section 6).

    Both implementations get the same statistics; the value does not affect speed.
    """
    if x.ndim == 4:
        return x.mean(axis=(0, 1, 2)).astype(np.float32), np.maximum(x.std(axis=(0, 1, 2)), 1e-8).astype(np.float32)
    return np.zeros(x.shape[-1], np.float32), np.ones(x.shape[-1], np.float32)


def torch_or_reason():
    """``(torch_reference module, None)`` or ``(None, "skipped: torch not installed")``.

    Torch is optional: the suite records the skip and carries on without it.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, "skipped: torch not installed"
    from benchmarks import torch_reference

    return torch_reference, None


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (falls back to ``platform``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_state() -> dict:
    """Which code was measured: the git commit and the uncommitted changes to the
    engine and the benchmarks (colleagues work in the same checkout)."""
    import hashlib
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    try:
        out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                       text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "icrst_jax", "benchmarks"], cwd=root,
                                capture_output=True, text=True, timeout=10).stdout.splitlines()
        out["uncommitted"] = [line.strip() for line in status]
    except (OSError, subprocess.SubprocessError):
        pass
    if not out.get("commit"):
        # A copy without git history (e.g. a device machine's working tree): the
        # launcher names the commit it sent.
        out["commit"] = os.environ.get("ICRST_SOURCE_COMMIT", "unknown")
    digests = {}
    for rel in ("icrst_jax/cpu_conv.py", "icrst_jax/train.py", "icrst_jax/models.py"):
        try:
            with open(os.path.join(root, rel), "rb") as f:
                digests[rel] = hashlib.sha256(f.read()).hexdigest()[:12]
        except OSError:
            digests[rel] = "missing"
    out["sha256"] = digests
    return out


def environment(argv: Sequence[str], quick: bool) -> dict:
    """The ``meta`` block of the JSON: device, versions, date, command line."""
    import flax
    import jax
    import jaxlib
    import optax

    devices = jax.devices()
    torch_version = None
    torch_threads = None
    try:
        import torch

        torch_version = torch.__version__
        torch_threads = torch.get_num_threads()
    except ImportError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "quick": quick,
        "backend": jax.default_backend(),
        "device": f"{devices[0].platform}: {getattr(devices[0], 'device_kind', '?')}",
        "device_count": len(devices),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "torch": torch_version or "not installed",
        "torch_threads": torch_threads,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "source": source_state(),
        # The machine is shared: the load when the run started (and, in run.py,
        # ended) tells how much of the spread is other people's work.
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def format_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> str:
    """A plain-text table (right-aligned numbers) for stdout."""

    def cell(v):
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            a = abs(v)
            if a >= 1e5:
                return f"{v:,.0f}"
            if a >= 100:
                return f"{v:.0f}"
            if a >= 1:
                return f"{v:.2f}"
            return f"{v:.3g}"
        return str(v)

    body = [[cell(v) for v in r] for r in rows]
    widths = [max(len(str(c)), *(len(r[i]) for r in body)) if body else len(str(c)) for i, c in enumerate(columns)]
    line = "  ".join(str(c).rjust(w) for c, w in zip(columns, widths))
    out = [f"== {title} ==", line, "-" * len(line)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in body]
    if note:
        out.append(note)
    return "\n".join(out)


def med_range(stats: dict, scale: float = 1.0) -> str:
    """``median [min, max]`` of a stats dict, for table cells."""
    f = lambda v: format_table("", ["x"], [[v * scale]]).splitlines()[-1].strip()  # noqa: E731
    return f"{f(stats['median'])} [{f(stats['min'])}, {f(stats['max'])}]"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training configuration for :class:`JaxRun`.

    ``steps`` optimizer steps of ``batch`` samples make one epoch: the synthetic
    training set has ``steps * batch`` samples unless ``num_samples`` is given
    (e.g. the Breast Cancer split, 455 samples, where a batch of 512 becomes one
    short step as in the paper).
    """

    model: str
    width: float
    batch: int
    steps: int = 2
    seeds: int = 1
    devices: int = 1
    mode: str = "icrst"
    p: float = 1.0
    num_samples: int | None = None
    dtype: str = "float32"
    seed_batch: int | None = None  # TrainConfig.seed_batch: None = all seeds vmapped
    conv_impl: str = "auto"  # ModelConfig.conv_impl
    dropout: float = 0.2  # ModelConfig.dropout (Table D1's rate); 0 to see what dropout costs
    batch_norm: bool = True  # ModelConfig.batch_norm
    # Per-sample shape; None = the Table D1 data set's (SAMPLE_SHAPES). Smaller
    # images let a dry run exercise the same code in seconds.
    shape: tuple[int, ...] | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape or SAMPLE_SHAPES[self.model]

    @property
    def schedule(self) -> str:
        """How the seeds run: all vmapped, or chunks of ``seed_batch`` in a loop."""
        if self.seeds == 1 or (self.seed_batch is not None and self.seed_batch >= self.seeds):
            return "vmap"
        return "default" if self.seed_batch is None else f"chunks of {self.seed_batch}"

    @property
    def n(self) -> int:
        return self.num_samples if self.num_samples is not None else self.steps * self.batch

    def label(self) -> str:
        return (f"{self.model} w{self.width:g} b{self.batch}" + ("" if self.dtype == "float32" else " bf16")
                + ("" if self.conv_impl == "auto" else f" {self.conv_impl}")
                + ("" if self.dropout == 0.2 else f" dropout {self.dropout:g}")
                + ("" if self.batch_norm else " no BN"))


class JaxRun:
    """A compiled epoch of one :class:`RunSpec`, ready to be timed.

    Attributes (seconds): ``setup_s`` (engine + data on the device), ``init_s``
    (``init_state``, which compiles the initialiser), ``compile_s`` (the epoch
    program, from ``compile_epoch``), ``first_epoch_s`` (the first call, not part
    of any steady-state figure).
    """

    def __init__(self, spec: RunSpec, *, initial_state=None, log: Callable[[str], None] = lambda s: None):
        import jax

        from icrst_jax.config import ModelConfig, TrainConfig
        from icrst_jax.train import compile_epoch, init_state, make_engine, make_train_data

        self.spec = spec
        cfg = TrainConfig(
            mode=spec.mode,
            p=spec.p,
            epochs=1,
            batch_size=spec.batch,
            num_devices=spec.devices,
            seed_batch=spec.seed_batch,
            model=ModelConfig(name=spec.model, width=spec.width, dtype=spec.dtype, conv_impl=spec.conv_impl,
                              dropout=spec.dropout, batch_norm=spec.batch_norm),
        )
        x, y = synthetic_data(spec.model, spec.n, shape=spec.sample_shape)
        mean, std = standardisation(x)
        t0 = time.perf_counter()
        self.engine = make_engine(cfg, x.shape[1:], x.shape[0])
        self.data = make_train_data(self.engine, x, y, mean=mean, std=std)
        jax.block_until_ready(self.data)
        self.setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if initial_state is None:
            self.state = init_state(self.engine, list(range(spec.seeds)))
            jax.block_until_ready(self.state)
            self.init_s = time.perf_counter() - t0
        else:
            # A slice of a bigger seed stack (see Context.initial_state): the vmapped
            # initialiser is per seed, so seeds[:K] of K_max seeds is init_state(seeds[:K]).
            from jax.sharding import NamedSharding, PartitionSpec

            self.state = jax.device_put(initial_state, NamedSharding(self.engine.mesh, PartitionSpec()))
            self.init_s = float("nan")
        self.compiled, self.compile_s = compile_epoch(self.engine, self.state, self.data)
        log(
            f"  compiled {spec.label()} K={spec.seeds} dev={spec.devices} "
            f"({self.engine.steps_per_epoch} steps of {self.engine.batch_size}) in {self.compile_s:.1f}s"
        )
        self.first_epoch_s = self.epoch()
        self.stats: dict | None = None
        self.last_loss = None

    @property
    def samples_per_epoch(self) -> int:
        """Samples processed by one call: all seeds together."""
        return self.engine.num_samples * self.spec.seeds

    def epoch(self) -> float:
        """Runs one epoch for all seeds; returns wall seconds, host fetch of the loss included
        (what :func:`icrst_jax.train.fit` waits for every epoch)."""
        t0 = time.perf_counter()
        self.state, metrics = self.compiled(self.state, self.data)
        self.last_loss = np.asarray(metrics["loss"])
        return time.perf_counter() - t0

    def measure(self, *, warmup: int, repeats: int) -> dict:
        """Steady-state epoch seconds (after ``warmup`` more epochs); cached on the run."""
        if self.stats is None or self.stats["n"] < repeats:
            _, timed = time_repeats(self.epoch, warmup=warmup, repeats=repeats)
            self.stats = summarize(timed)
        return self.stats

    def reported_flops(self) -> float:
        """``flops`` of the compiled epoch as XLA's cost analysis reports it."""
        ca = self.compiled.cost_analysis()
        if isinstance(ca, (list, tuple)):
            ca = ca[0]
        return float(ca.get("flops", float("nan")))


class Context:
    """Shared state of one suite run: mode, caches, logger."""

    def __init__(self, quick: bool, *, stream=sys.stderr, tag: str = ""):
        import jax

        self.quick = quick
        self.backend = jax.default_backend()
        self.on_accelerator = self.backend != "cpu"
        self._runs: dict[RunSpec, JaxRun] = {}
        self._states: dict[tuple, tuple[int, Any]] = {}
        self._stream = stream
        self._t0 = time.perf_counter()
        self._tag = tag
        # Model configurations the seeds benchmark vmaps up to this many seeds:
        # their initial state is made once for all K and sliced.
        self.seed_pool: dict[tuple, int] = {}

    def log(self, msg: str) -> None:
        print(f"[{self._tag}{time.perf_counter() - self._t0:6.1f}s] {msg}", file=self._stream, flush=True)

    @staticmethod
    def _pool_key(spec: RunSpec) -> tuple:
        return (spec.model, spec.width, spec.dtype, spec.sample_shape, spec.batch_norm)

    def reserve_seeds(self, spec: RunSpec, seeds: int) -> None:
        """Initialise ``spec``'s model for at least ``seeds`` seeds when it is first needed."""
        key = self._pool_key(spec)
        self.seed_pool[key] = max(self.seed_pool.get(key, 1), seeds)

    def initial_state(self, spec: RunSpec):
        """Initial TrainState for ``spec.seeds`` seeds, from a per-model pool.

        ``init_state`` compiles a vmapped initialiser every call (seconds on a CPU,
        see BENCHMARKS.md); initialising the largest seed count once and slicing
        keeps that cost out of the suite's budget without changing the state.
        """
        import jax

        from icrst_jax.config import ModelConfig, TrainConfig
        from icrst_jax.train import init_state, make_engine

        key = self._pool_key(spec)
        want = max(spec.seeds, self.seed_pool.get(key, 1))
        have = self._states.get(key)
        if have is None or have[0] < spec.seeds:
            cfg = TrainConfig(batch_size=spec.batch, num_devices=1,
                              model=ModelConfig(name=spec.model, width=spec.width, dtype=spec.dtype,
                                                batch_norm=spec.batch_norm))
            engine = make_engine(cfg, spec.sample_shape, spec.n)
            t0 = time.perf_counter()
            state = init_state(engine, list(range(want)))
            jax.block_until_ready(state)
            dt = time.perf_counter() - t0
            self.log(f"  init_state {spec.model} w{spec.width:g} for {want} seeds in {dt:.1f}s")
            have = (want, state, dt)
            self._states[key] = have
        import jax.numpy as jnp

        k = spec.seeds
        # Fresh buffers: the compiled epoch donates its input state, the pool must survive.
        return jax.tree_util.tree_map(lambda a: jnp.array(a[:k], copy=True), have[1]), have[2]

    def run(self, spec: RunSpec) -> JaxRun:
        """The prepared (compiled, warmed-up) run of ``spec``, shared between benchmarks."""
        if spec not in self._runs:
            state, init_s = self.initial_state(spec)
            r = JaxRun(spec, initial_state=state, log=self.log)
            r.init_s = init_s
            self._runs[spec] = r
        return self._runs[spec]


def ratio(a: float, b: float) -> float:
    """``a / b`` that gives nan instead of raising on a missing or zero ``b``."""
    try:
        return float(a) / float(b) if b else float("nan")
    except (TypeError, ValueError):
        return float("nan")
