"""The one harness of the benchmarks (no benchmark imports another): timing statistics
(every figure a median over repeats with min and max), prepared training runs (compiling
timed apart from the steady state), metadata, model flops, the matmul peak, op profiles,
tables and the one JSON writer."""

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
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

import numpy as np

# Per-sample shapes of the Table D1 data sets, in the JAX layout (NHWC / features).
SAMPLE_SHAPES: dict[str, tuple[int, ...]] = {"conv": (28, 28, 1), "conv_strided": (32, 32, 3), "mlp": (30,)}


def summarize(values: Sequence[float]) -> dict:
    """``{"median", "min", "max", "n"}`` of repeated measurements."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no measurements to summarize")
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def invert(stats: dict, numerator: float) -> dict:
    """Time statistics as rate statistics (``numerator / seconds``): min and max swap."""
    return {"median": numerator / stats["median"], "min": numerator / stats["max"],
            "max": numerator / stats["min"], "n": stats["n"]}


def scale(stats: dict, factor: float) -> dict:
    """Statistics times ``factor`` (e.g. epoch seconds -> step seconds)."""
    return {k: (v * factor if k != "n" else v) for k, v in stats.items()}


def ratio(a: float, b: float) -> float:
    """``a / b``, nan instead of an error on a missing or zero ``b``."""
    try:
        return float(a) / float(b) if b else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def time_repeats(fn: Callable[[], Any], *, warmup: int, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (``fn`` blocks)."""
    for _ in range(warmup):
        fn()
    timed = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        timed.append(time.perf_counter() - t0)
    return timed


def synthetic_data(model: str, n: int, *, shape: tuple[int, ...] | None = None, seed: int = 0):
    """``n`` samples of a Table D1 data set's shape (or ``shape``): uniform [0, 1], 10 random classes."""
    rng = np.random.default_rng(seed)
    return rng.random((n, *(shape or SAMPLE_SHAPES[model])), dtype=np.float32), rng.integers(0, 10, n)


def synthetic_latents(n: int, d: int, seed: int, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float32 latents of ten overlapping Gaussian classes, and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(0.0, 0.08, (n_classes, d))
    return (centres[y] + rng.normal(0.0, 1.0, (n, d))).astype(np.float32), y


def evaluate_latents(points: int, rows: int, dim: int, classifiers: Sequence[str], backend: str,
                     n_jobs: int | None = -1, log: Callable[[str], None] | None = None) -> dict:
    """One cold ``evaluate_many`` over ``points`` synthetic latent sets of ``rows`` x ``dim``,
    10 folds: wall seconds, its split (``EvalSeconds``) and fold-mean accuracies per classifier."""
    from icrst_jax import evaluation

    jobs = [(*synthetic_latents(rows, dim, seed), seed) for seed in range(points)]
    seconds = evaluation.EvalSeconds()
    t0 = time.perf_counter()
    res = evaluation.evaluate_many(jobs, classifiers, n_folds=10, n_jobs=n_jobs, backend=backend,
                                   fold_lines=False, seconds=seconds, progress=log)
    return {"points": points, "rows": rows, "dim": dim, "backend": backend, "wall_s": time.perf_counter() - t0,
            "eval_seconds": dataclasses.asdict(seconds),
            "accuracy": {c: [float(r[c]["accuracy"]["mean"]) for r in res] for c in classifiers},
            "fit_time_sum_s": {c: float(sum(r[c]["fit_time"].sum() for r in res)) for c in classifiers}}


def torch_or_reason():
    """``(torch_reference module, None)``, or ``(None, "skipped: torch not installed")``."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, "skipped: torch not installed"
    from benchmarks.baselines import torch_reference

    return torch_reference, None


def faster_torch_threads(probe: Callable[[int], float]) -> tuple[int, dict]:
    """The faster of 1 thread and torch's default, by ``probe(threads) -> seconds`` (on a shared
    machine torch's OpenMP threads stall whenever another process holds a core)."""
    import torch

    default = torch.get_num_threads()
    if default == 1:
        return 1, {}
    times = {str(th): probe(th) for th in (1, default)}
    return (1 if times["1"] <= times[str(default)] else default), times


def _git(*args: str) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment(argv: Sequence[str], quick: bool) -> dict:
    """The ``meta`` block of a results file: device, versions, date, command, commit, load."""
    import flax
    import jax
    import optax

    try:
        import torch

        torch_version, torch_threads = torch.__version__, torch.get_num_threads()
    except ImportError:
        torch_version, torch_threads = "not installed", None
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    dev = jax.devices()[0]
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv), "quick": quick, "backend": jax.default_backend(),
        "device": f"{dev.platform}: {getattr(dev, 'device_kind', '?')}", "device_count": jax.device_count(),
        "cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
        "flax": flax.__version__, "optax": optax.__version__, "numpy": np.__version__,
        "torch": torch_version, "torch_threads": torch_threads, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        # A copy without git history (a device machine's tree): the launcher names the commit.
        "source": {"commit": _git("rev-parse", "--short", "HEAD") or os.environ.get("ICRST_SOURCE_COMMIT", "unknown"),
                   "uncommitted": _git("status", "--porcelain", "--", "icrst_jax", "benchmarks").splitlines()},
        # The machine is shared: the load tells how much of the spread is other people's work.
        "loadavg_start": list(os.getloadavg()),
    }


def write_json(path, payload: dict) -> None:
    """The one writer of results files: strict JSON (NaN as null), atomic."""
    from pathlib import Path

    from icrst_jax.reporting.results_json import write_results_json

    write_results_json(Path(path), payload)


def print_and_save(name: str, result: dict, text: str, json_path, argv: Sequence[str] | None, quick: bool) -> int:
    """A section run on its own (``python -m benchmarks.bench_<name>``): its table printed and,
    with ``--json FILE``, ``{"meta": ..., name: result}`` written; the exit code 0."""
    print(text)
    if json_path:
        module = f"benchmarks.bench_{name}"
        write_json(json_path, {"meta": environment(["python", "-m", module, *(argv or [])], quick), name: result})
    return 0


def cell(v) -> str:
    """A table cell: rounded numbers, statistics as ``median [min, max]``."""
    if isinstance(v, dict) and "median" in v:
        return f"{cell(v['median'])} [{cell(v['min'])}, {cell(v['max'])}]"
    if isinstance(v, (bool, int)) or not isinstance(v, float):
        return "-" if v is None else str(v)
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    a = abs(v)
    return f"{v:,.0f}" if a >= 1e5 else f"{v:.0f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3g}"


def format_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> str:
    """A plain-text table for stdout (cells through :func:`cell`)."""
    body = [[cell(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in body)]) for i, c in enumerate(columns)]
    line = "  ".join(c.rjust(w) for c, w in zip(columns, widths))
    out = [f"== {title} ==", line, "-" * len(line), *("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in body)]
    return "\n".join(out + ([note] if note else []))


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training configuration to time: model, width, batch, steps per epoch and the
    engine's options. The training set has ``steps * batch`` synthetic samples unless
    ``num_samples`` is given (the Breast Cancer split: 455 samples, one short batch of 512)."""

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
    seed_batch: int | None = None  # TrainConfig.seed_batch: None = the engine's default
    conv_impl: str = "auto"
    dropout: float = 0.2  # Table D1's rate; 0 to see what dropout costs
    batch_norm: bool = True
    shape: tuple[int, ...] | None = None  # None: the Table D1 data set's sample shape

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape or SAMPLE_SHAPES[self.model]

    @property
    def n(self) -> int:
        return self.num_samples if self.num_samples is not None else self.steps * self.batch

    @property
    def schedule(self) -> str:
        """How the seeds run: all vmapped, or chunks of ``seed_batch`` in a loop."""
        if self.seeds == 1 or (self.seed_batch is not None and self.seed_batch >= self.seeds):
            return "vmap"
        return "default" if self.seed_batch is None else f"chunks of {self.seed_batch}"

    def label(self) -> str:
        return (f"{self.model} w{self.width:g} b{self.batch}" + ("" if self.dtype == "float32" else " bf16")
                + ("" if self.conv_impl == "auto" else f" {self.conv_impl}")
                + ("" if self.dropout == 0.2 else f" dropout {self.dropout:g}")
                + ("" if self.batch_norm else " no BN") + ("" if self.seeds == 1 else f" x{self.seeds}"))


# The Breast Cancer MLP as the paper trains it: 455 samples in one batch of 512.
BREAST_CANCER_MLP = RunSpec("mlp", 1.0, 512, steps=1, num_samples=455)
# The one model of --quick (a conv compile alone is 20-60 s on a 2-core CPU), shared
# by the training, seeds, utilisation, profile and devices benchmarks.
QUICK_MLP = RunSpec("mlp", 1.0, 64, steps=2)


class JaxRun:
    """The compiled epoch of one :class:`RunSpec`, warmed up by one epoch, ready to time.

    Seconds: ``setup_s`` (engine, data on the device), ``init_s`` (``init_state``,
    compiling the initialiser), ``compile_s`` (the epoch program), ``first_epoch_s``.
    """

    def __init__(self, spec: RunSpec, log: Callable[[str], None] = lambda s: None):
        import jax

        from icrst_jax.config import ModelConfig, TrainConfig
        from icrst_jax.train import compile_epoch, init_state, make_engine, make_train_data

        self.spec = spec
        cfg = TrainConfig(mode=spec.mode, p=spec.p, epochs=1, batch_size=spec.batch, num_devices=spec.devices,
                          seed_batch=spec.seed_batch,
                          model=ModelConfig(name=spec.model, width=spec.width, dtype=spec.dtype,
                                            conv_impl=spec.conv_impl, dropout=spec.dropout,
                                            batch_norm=spec.batch_norm))
        x, y = synthetic_data(spec.model, spec.n, shape=spec.sample_shape)
        t0 = time.perf_counter()
        self.engine = make_engine(cfg, x.shape[1:], x.shape[0])
        self.data = jax.block_until_ready(make_train_data(self.engine, x, y))
        t1 = time.perf_counter()
        self.state = jax.block_until_ready(init_state(self.engine, list(range(spec.seeds))))
        self.setup_s, self.init_s = t1 - t0, time.perf_counter() - t1
        self.compiled, self.compile_s = compile_epoch(self.engine, self.state, self.data)
        log(f"  compiled {spec.label()} dev={spec.devices} ({self.engine.steps_per_epoch} steps of "
            f"{self.engine.batch_size}) in {self.compile_s:.1f}s")
        self.last_loss = None
        self.first_epoch_s = self.epoch()
        self.stats: dict | None = None

    @property
    def samples_per_epoch(self) -> int:
        """Samples processed by one call: all seeds together."""
        return self.engine.num_samples * self.spec.seeds

    def epoch(self) -> float:
        """One epoch of all seeds; wall seconds including the host fetch of the loss (what ``fit`` waits for)."""
        t0 = time.perf_counter()
        self.state, metrics = self.compiled(self.state, self.data)
        self.last_loss = np.asarray(metrics["loss"])
        return time.perf_counter() - t0

    def measure(self, *, warmup: int, repeats: int) -> dict:
        """Steady-state epoch seconds, cached on the run (benchmarks share it)."""
        if self.stats is None or self.stats["n"] < repeats:
            self.stats = summarize(time_repeats(self.epoch, warmup=warmup, repeats=repeats))
        return self.stats

    def throughput(self, *, warmup: int, repeats: int) -> dict:
        """Epoch and step seconds, samples/s per step and per epoch, and the compile times."""
        epoch = self.measure(warmup=warmup, repeats=repeats)
        step = scale(epoch, 1 / self.engine.steps_per_epoch)
        return {"label": self.spec.label(), "model": self.spec.model, "width": self.spec.width,
                "batch": self.engine.batch_size, "dtype": self.spec.dtype, "seeds": self.spec.seeds,
                "steps_per_epoch": self.engine.steps_per_epoch, "setup_s": self.setup_s, "init_s": self.init_s,
                "compile_s": self.compile_s, "first_epoch_s": self.first_epoch_s, "epoch_s": epoch, "step_s": step,
                "step_samples_per_s": invert(step, self.engine.batch_size * self.spec.seeds),
                "epoch_samples_per_s": invert(epoch, self.samples_per_epoch),
                "final_loss": float(self.last_loss.mean())}

    def reported_flops(self) -> float:
        """``flops`` of the compiled epoch in XLA's cost analysis."""
        ca = self.compiled.cost_analysis()
        return float((ca[0] if isinstance(ca, (list, tuple)) else ca).get("flops", float("nan")))


class Context:
    """What every benchmark receives: ``quick``, the backend, a cache of prepared runs
    (benchmarks share compiled programs instead of compiling one epoch three times)
    and a logger to stderr."""

    def __init__(self, quick: bool, *, tag: str = ""):
        import jax

        self.quick = quick
        self.on_accelerator = jax.default_backend() != "cpu"
        self.runs: dict[RunSpec, JaxRun] = {}
        self._t0, self._tag = time.perf_counter(), tag

    def log(self, msg: str) -> None:
        print(f"[{self._tag}{time.perf_counter() - self._t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def run(self, spec: RunSpec) -> JaxRun:
        """The prepared run of ``spec``, compiled once per suite."""
        if spec.model == "mlp":  # no convolution, BatchNorm or dropout: those options leave its program as it is
            spec = dataclasses.replace(spec, conv_impl="auto", dropout=0.2, batch_norm=True)
        if spec not in self.runs:
            self.runs[spec] = JaxRun(spec, log=self.log)
        return self.runs[spec]


def model_flops_per_sample(model: str, width: float, shape: tuple[int, ...] | None = None) -> float:
    """Training flops of one sample of a Table D1 model, direct-convolution count.

    Multiply-adds: a convolution out_h * out_w * k * k * cin * cout, a transposed one
    in_h * in_w * k * k * cin * cout, a dense layer in * out; x2 (multiply, add) x3
    (forward, input gradient, weight gradient). BatchNorm, activations, Adam uncounted.
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
            h, c = h + 2, sc(co)
        macs += h * h * c * cin  # 1x1 head
    elif model == "conv_strided":
        c = cin
        for co, stride in zip(m.STRIDED_ENCODER, m.STRIDED_STRIDES):  # 3x3, padding 1
            h //= stride
            macs += h * h * 9 * c * sc(co)
            c = sc(co)
        for (co, transposed), stride in zip(m.STRIDED_DECODER, m.STRIDED_STRIDES):
            co = cin if co is None else sc(co)
            macs += h * h * 9 * c * co
            h, c = (h * stride if transposed else h), co
    else:
        sizes = [shape[0], *map(sc, m.MLP_ENCODER), *map(sc, m.MLP_DECODER), shape[0]]
        macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 6.0 * macs


def peak(ctx: Context, dtype: str = "float32") -> dict:
    """Matmul throughput (flop/s) of this device in ``dtype``: the ceiling a run of that dtype is compared with."""
    import jax
    import jax.numpy as jnp

    n = 8192 if ctx.on_accelerator else (512 if ctx.quick else 2048)
    a, b = (jax.random.normal(k, (n, n), jnp.float32).astype(dtype) for k in jax.random.split(jax.random.key(0)))
    t0 = time.perf_counter()
    f = jax.jit(jnp.dot).lower(a, b).compile()
    compile_s = time.perf_counter() - t0
    secs = summarize(time_repeats(lambda: f(a, b).block_until_ready(), warmup=2, repeats=3 if ctx.quick else 10))
    return {"n": n, "dtype": dtype, "compile_s": compile_s, "seconds": secs, "flops_per_s": invert(secs, 2.0 * n**3)}


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
_DEVICE_PROCESS = re.compile(r"/device:(GPU|TPU)")


def kind_of(name: str) -> str:
    return next((kind for kind, pattern in _KINDS if pattern.search(name)), "other")


def op_self_times(trace_path: str) -> tuple[dict[str, float], dict[str, int]]:
    """Self time (us) and call count of every HLO-op event in a Perfetto trace.

    Events nest per thread (a ``while`` holds its body's ops): a stack per thread
    subtracts each child from its parent. Where the trace has device processes
    (``/device:GPU:0``), only their events count, named by ``args.hlo_op`` when
    present (the host's launch events would count every op twice).
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


def profile_run(run: JaxRun, epochs: int, top: int = 8, keep_trace: str | None = None) -> dict:
    """Op self time per epoch of ``epochs`` traced epochs: the heaviest ops and the share per kind.

    On a CPU ops on different threads overlap (``op_over_wall`` above 1); ``keep_trace``
    copies the Perfetto trace there (for ui.perfetto.dev).
    """
    import shutil

    import jax

    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            wall = sum(run.epoch() for _ in range(epochs))
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
    share = lambda us: us / total if total else float("nan")  # noqa: E731
    return {
        "epochs": epochs, "wall_s_per_epoch": wall / epochs, "op_s_per_epoch": total / 1e6 / epochs,
        "op_over_wall": ratio(total / 1e6, wall),
        "kinds": {k: {"s_per_epoch": v / 1e6 / epochs, "share": share(v)}
                  for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
        "top_ops": [{"op": n, "kind": kind_of(n), "calls_per_epoch": calls[n] / epochs,
                     "s_per_epoch": us / 1e6 / epochs, "share": share(us)}
                    for n, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:top]],
    }


def profile_rows(label: str, prof: dict, kinds: int = 5, ops: int = 5) -> list[list]:
    """Table rows of :func:`profile_run`'s result: kinds, heaviest ops, total."""
    rows = [[label, "kind", k, v["s_per_epoch"] * 1e3, v["share"]] for k, v in list(prof["kinds"].items())[:kinds]]
    rows += [[label, "op", f"{op['op'][:40]} x{op['calls_per_epoch']:g}", op["s_per_epoch"] * 1e3, op["share"]]
             for op in prof["top_ops"][:ops]]
    return rows + [[label, "total", f"wall {prof['wall_s_per_epoch'] * 1e3:.2f} ms", prof["op_s_per_epoch"] * 1e3,
                    prof["op_over_wall"]]]


PROFILE_COLUMNS = ("run", "level", "op / kind", "ms/epoch", "share of op time")
