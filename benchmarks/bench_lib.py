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
* :func:`model_flops_per_sample` and :func:`peak` (utilisation) and
  :func:`profile_run` (op self times from a Perfetto trace) measure a prepared run.
* :func:`write_json` is the one writer of results files (``icrst_jax.jsonable``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as _dt
import glob
import gzip
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
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
    from benchmarks.baselines import torch_reference

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


# The Breast Cancer MLP as the paper trains it: the 455-sample training split
# in one batch of 512 (one short step per epoch). Shared by the seeds benchmark
# and the profile, which reuse its compiled programs.
BREAST_CANCER_TRAIN = 455
BREAST_CANCER_MLP = RunSpec("mlp", 1.0, 512, steps=1, num_samples=BREAST_CANCER_TRAIN)


@dataclasses.dataclass
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


def write_json(path: str, payload: dict) -> None:
    """Strict JSON (NaN as null, ``to_jsonable``), written atomically (temporary
    file + rename) so that a reader never sees half a file."""
    from icrst_jax.jsonable import to_jsonable

    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(to_jsonable(payload), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def model_flops_per_sample(model: str, width: float, shape: tuple[int, ...] | None = None) -> float:
    """Training flops of one sample for a Table D1 model (direct convolution count),
    on its data set's sample shape or ``shape`` (square images / features).

    A convolution costs out_h * out_w * k * k * cin * cout multiply-adds, a
    transposed convolution in_h * in_w * k * k * cin * cout (each input pixel
    scatters a k x k x cout patch), a dense layer in * out. Training = 3 x forward
    (the backward pass is an input gradient and a weight gradient of the same
    size); BatchNorm, activations and Adam are not counted.
    """
    from icrst_jax import models as m

    def sc(c):
        return m.scaled_channels(c, width, "a layer")

    shape = tuple(shape or SAMPLE_SHAPES[model])
    h, _, cin = shape if model != "mlp" else (0, 0, 0)
    macs = 0
    if model in m.CONV_LAYERS:
        encoder, decoder = m.CONV_LAYERS[model]
        c = cin
        for co in encoder:  # 3x3, stride 1, no padding
            h -= 2
            macs += h * h * 9 * c * sc(co)
            c = sc(co)
        for co in decoder:  # transposed 3x3, stride 1, no padding
            macs += h * h * 9 * c * sc(co)
            h += 2
            c = sc(co)
        macs += h * h * c * cin  # 1x1 head
    elif model == "conv_strided":
        c = cin
        for co, stride in zip(m.STRIDED_ENCODER, m.STRIDED_STRIDES):  # 3x3, padding 1
            h //= stride
            macs += h * h * 9 * c * sc(co)
            c = sc(co)
        for (co, transposed), stride in zip(m.STRIDED_DECODER, m.STRIDED_STRIDES):
            co = cin if co is None else sc(co)
            if transposed:
                macs += h * h * 9 * c * co
                h *= stride
            else:
                macs += h * h * 9 * c * co
            c = co
    else:
        sizes = [shape[0], *map(sc, m.MLP_ENCODER), *map(sc, m.MLP_DECODER), shape[0]]
        macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2.0 * 3.0 * macs


def peak(ctx: Context, dtype: str = "float32") -> dict:
    """Matmul throughput (flop/s) of this device in ``dtype`` (float32 or bfloat16):
    a training run is compared with the peak of its own compute dtype."""
    import jax
    import jax.numpy as jnp

    n = 8192 if ctx.on_accelerator else (1024 if ctx.quick else 2048)
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
    t0 = time.perf_counter()
    f = jax.jit(jnp.dot).lower(a, b).compile()
    compile_s = time.perf_counter() - t0
    _, timed = time_repeats(lambda: f(a, b).block_until_ready(), warmup=2, repeats=5 if ctx.quick else 10)
    flops = 2.0 * n**3
    return {"n": n, "dtype": dtype, "flops": flops, "compile_s": compile_s, "seconds": summarize(timed),
            "flops_per_s": invert(summarize(timed), flops)}


# An HLO instruction name: "dot.41", "ynn_fusion", "broadcast_add_fusion.15", "custom-call.2".
_HLO_NAME = re.compile(r"^[a-z][a-z0-9_\-]*(\.\d+)?$")
_KINDS = (  # first match wins
    ("matmul/conv", re.compile(r"^(dot|convolution|conv|ynn_fusion|onednn|custom-call|__onednn|matmul|gemm"
                               r"|cublas|cudnn|cutlass|sm\d+_|triton_gemm)")),
    ("rng/while loops", re.compile(r"^(while|rng|threefry|call)")),
    ("sort (shuffle)", re.compile(r"^sort")),
    ("gather/scatter/slice", re.compile(r"^(gather|scatter|dynamic|slice|pad|concatenate)")),
    ("copy/transpose", re.compile(r"^(copy|transpose|bitcast|reshape)")),
    ("reduce", re.compile(r"^reduce")),
    ("elementwise fusion", re.compile(r"fusion")),
)


def kind_of(name: str) -> str:
    for kind, pattern in _KINDS:
        if pattern.search(name):
            return kind
    return "other"


_DEVICE_PROCESS = re.compile(r"/device:(GPU|TPU)")


def op_self_times(trace_path: str) -> tuple[dict[str, float], dict[str, int]]:
    """Self time (us) and call count of every HLO-op event in a Perfetto trace.

    Events nest per thread (a ``while`` contains its body's ops); a stack per
    thread subtracts each child's duration from its parent. Where the trace has
    device processes (``/device:GPU:0``...), only their events count, named by
    their ``args.hlo_op`` when present (the host's launch events would count
    every op a second time).
    """
    with gzip.open(trace_path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    device_pids = {e.get("pid") for e in events if e.get("ph") == "M" and e.get("name") == "process_name"
                   and _DEVICE_PROCESS.search(str((e.get("args") or {}).get("name", "")))}
    per_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") != "X" or "dur" not in e or (device_pids and e.get("pid") not in device_pids):
            continue
        name = str((e.get("args") or {}).get("hlo_op") or e.get("name", "")) if device_pids else str(e.get("name", ""))
        if _HLO_NAME.match(name):
            per_thread[(e.get("pid"), e.get("tid"))].append((float(e["ts"]), float(e["dur"]), name))
    self_us: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.defaultdict(int)
    for evs in per_thread.values():
        evs.sort(key=lambda t: (t[0], -t[1]))
        stack: list[list] = []  # [end, name]
        for ts, dur, name in evs:
            while stack and ts >= stack[-1][0]:
                stack.pop()
            if stack:
                self_us[stack[-1][1]] -= dur
            self_us[name] += dur
            calls[name] += 1
            stack.append([ts + dur, name])
    return dict(self_us), dict(calls)


def profile_run(ctx: Context, run, epochs: int, top: int = 8, keep_trace: str | None = None) -> dict:
    """Traces ``epochs`` epochs of a compiled run; returns top ops and kinds per epoch.

    ``keep_trace``: a path to copy the Perfetto trace (``.json.gz``) to, for a
    closer look (ui.perfetto.dev) than the sums here.
    """
    import shutil

    import jax

    with tempfile.TemporaryDirectory() as tmp:
        walls = []
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            for _ in range(epochs):
                walls.append(run.epoch())
        paths = glob.glob(os.path.join(tmp, "**", "perfetto_trace.json.gz"), recursive=True)
        if not paths:
            raise RuntimeError("jax.profiler wrote no perfetto_trace.json.gz")
        self_us, calls = op_self_times(paths[0])
        if keep_trace:
            shutil.copyfile(paths[0], keep_trace)
    total = sum(self_us.values())
    kinds: dict[str, float] = collections.defaultdict(float)
    for name, us in self_us.items():
        kinds[kind_of(name)] += us
    ranked = sorted(self_us.items(), key=lambda kv: -kv[1])[:top]
    wall = sum(walls)
    return {
        "epochs": epochs,
        "wall_s_per_epoch": wall / epochs,
        "op_s_per_epoch": total / 1e6 / epochs,
        "op_over_wall": total / 1e6 / wall if wall else float("nan"),
        "kinds": {k: {"s_per_epoch": v / 1e6 / epochs, "share": v / total if total else float("nan")}
                  for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
        "top_ops": [{"op": n, "kind": kind_of(n), "calls_per_epoch": calls[n] / epochs,
                     "s_per_epoch": us / 1e6 / epochs, "share": us / total if total else float("nan")}
                    for n, us in ranked],
    }
