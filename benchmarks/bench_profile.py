"""Where an epoch's time goes: an op-level profile of compiled training epochs.

Runs a few steady-state epochs of already-compiled runs under
``jax.profiler.trace(create_perfetto_trace=True)``, reads the Perfetto trace and
sums the *self* time of every XLA op (HLO instruction: ``dot.41``,
``convolution.3``, ``sort.0``, ``ynn_fusion.8``...; time spent in ops nested
inside a ``while`` is charged to them, not to the loop). The result is the
heaviest ops and a breakdown by kind (matmul/conv, RNG loops, sort = the epoch's
shuffle, gathers, elementwise fusions, copies), as shares of the total op time.

On the CPU the op events come from XLA's thunk executor; ops that run
concurrently on different threads each count in full, so shares are of op time,
and ``op_s / wall_s`` above 1 means ops overlapped. On a GPU or TPU the trace
also holds the kernels the device ran, in processes named ``/device:GPU:0``
(and so on): only those count, each under the HLO op that launched it
(``args.hlo_op``) where the trace names one, else under its kernel name.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import tempfile

from benchmarks import bench_training
from benchmarks.bench_lib import Context, RunSpec, format_table

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


def plan(ctx: Context) -> list[RunSpec]:
    """The target rows: the narrow conv of the training benchmark, the Breast Cancer
    MLP at 1 and at 8 vmapped seeds (what grows with K)."""
    from benchmarks import bench_seeds

    mlp = bench_seeds.plan(ctx)[0][0]
    # The conv target row of the training benchmark (absent with --quick).
    conv = [s for s in (r.spec for r in bench_training.plan(ctx))
            if (s.model, s.width, s.batch, s.dtype) == (*bench_training.TARGET_ROW, "float32")]
    return [*conv, mlp, dataclasses.replace(mlp, seeds=8, seed_batch=8)]  # the seeds benchmark's run


def prepare(ctx: Context) -> None:
    for spec in plan(ctx):
        ctx.reserve_seeds(spec, spec.seeds)


def run(ctx: Context) -> tuple[dict, str]:
    rows, table_rows = [], []
    for spec in plan(ctx):
        ctx.log(f"profile {spec.label()} K={spec.seeds}")
        r = ctx.run(spec)
        # An MLP epoch is ~1 ms: average several; a conv epoch is seconds on a CPU.
        epochs = 20 if spec.model == "mlp" else (1 if ctx.quick else 3)
        prof = profile_run(ctx, r, epochs)
        rows.append({"model": spec.model, "width": spec.width, "batch": spec.batch, "seeds": spec.seeds,
                     "samples": spec.n, **prof})
        label = f"{spec.label()} K={spec.seeds}"
        for k, v in list(prof["kinds"].items())[:5]:
            table_rows.append([label, "kind", k, v["s_per_epoch"] * 1e3, v["share"]])
        for op in prof["top_ops"][:5]:
            table_rows.append([label, "op", f"{op['op']} x{op['calls_per_epoch']:g}", op["s_per_epoch"] * 1e3,
                               op["share"]])
        table_rows.append([label, "total", f"ops {prof['op_s_per_epoch'] * 1e3:.2f} ms vs wall "
                           f"{prof['wall_s_per_epoch'] * 1e3:.2f} ms per epoch", float("nan"), float("nan")])
    text = format_table("profile: XLA op self time per epoch (Perfetto trace)",
                        ["run", "level", "op / kind", "ms/epoch", "share of op time"], table_rows)
    return {"rows": rows}, text
