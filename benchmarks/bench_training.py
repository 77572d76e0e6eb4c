"""Benchmarks 2 and 3: training throughput of the Table D1 models, JAX vs PyTorch.

JAX (this package): the engine's compiled epoch (``compile_epoch``), ICRST with
p = 1, one seed, one device. The shuffle, the pairing, the gathers and every
optimizer step of the epoch run in one device program, so

* *per step* = epoch seconds / steps, and
* *per epoch* = samples / wall seconds of the epoch call, host fetch of the loss
  included (what ``fit`` waits for each epoch);

the two differ only by one dispatch per epoch. Compilation, initialisation and
the first epoch are reported separately and never enter a throughput.

PyTorch (:mod:`benchmarks.torch_reference`, same model, width and batch):

* *per step* = ``step_throughput``: forward, backward and Adam on ready tensors;
* *end to end* = ``train_torch``: a shuffled ``DataLoader`` over the
  ``PairedDataset`` whose ``__getitem__`` does the authors' per-sample host
  pairing, the same number of samples as the JAX epoch;
* with the faster of 1 thread and torch's default thread count, picked by a
  short probe in the same run (see :func:`pick_threads`).

Ratios are JAX / PyTorch samples per second, medians from the same run.
"""

from __future__ import annotations

import dataclasses

from benchmarks.bench_lib import (
    Context,
    RunSpec,
    format_table,
    invert,
    med_range,
    ratio,
    standardisation,
    summarize,
    synthetic_data,
    torch_or_reason,
)

# The paper's batch sizes (section 6): 512, and 64 for the second CNN of Table D1
# ("CNN2": conv_strided, CIFAR-10 / Caltech101).
PAPER_BATCH = {"conv": 512, "conv_strided": 64, "mlp": 512}
# Issue 5's CPU target: the reduced-width conv at batch 64 at least as fast as PyTorch.
TARGET_ROW = ("conv", 0.25, 64)


@dataclasses.dataclass(frozen=True)
class Row:
    """One model / width / batch to compare, with its repeat counts."""

    spec: RunSpec
    warmup: int  # extra untimed epochs after the first one
    repeats: int  # timed epochs (JAX) and timed end-to-end runs (PyTorch)
    torch_steps: int  # timed steps of torch's step_throughput
    torch_warmup: int
    # Probe torch with one thread too (see pick_threads). Off for the full-width
    # rows: their large convolutions keep both threads busy, so the contention
    # that makes the default setting bimodal matters little, and a step takes seconds.
    torch_one_thread: bool = True
    # bfloat16 rows are compared with JAX's float32 row of the same model (the
    # PyTorch reference trains in float32, as the authors did).
    torch_compare: bool = True


def plan(ctx: Context) -> list[Row]:
    """The rows for this run.

    ``--quick``: the MLP, two steps. Full, CPU: both
    conv models at width 0.25 and 1 (few steps) and the MLP. Full, accelerator:
    the paper's full widths at the paper's batch sizes, more steps.
    """
    if ctx.quick:
        # The MLP only: compiling a conv model (epoch and initialiser) takes 45-60 s
        # of CPU time on this 2-core machine, 2-3x that in wall time when it is
        # shared, which alone would break the smoke test's two-minute budget. The
        # conv rows, and the targets, are for full runs.
        return [Row(RunSpec("mlp", 1.0, PAPER_BATCH["mlp"], steps=2), 1, 3, 5, 2),
                Row(RunSpec("mlp", 1.0, PAPER_BATCH["mlp"], steps=2, dtype="bfloat16"), 1, 3, 0, 0,
                    torch_compare=False)]
    if ctx.on_accelerator:
        return [
            Row(RunSpec("conv", 0.25, 64, steps=32), 2, 5, 20, 3),
            Row(RunSpec("conv", 1.0, 512, steps=16), 2, 5, 20, 3),
            Row(RunSpec("conv", 1.0, 512, steps=16, dtype="bfloat16"), 2, 5, 0, 0, torch_compare=False),
            Row(RunSpec("conv_strided", 0.25, 64, steps=32), 2, 5, 20, 3),
            Row(RunSpec("conv_strided", 1.0, 64, steps=32), 2, 5, 20, 3),
            Row(RunSpec("mlp", 1.0, 512, steps=32), 2, 5, 50, 5),
        ]
    # CPU, full: one full-width conv step at batch 512 takes 15-60 s here in
    # either framework (more under load), so the full-width MNIST conv runs at
    # batch 64 (its throughput per sample is the same to within a few per cent on
    # a compute-bound CPU); batch 512 is in the accelerator plan. The target row
    # has one step per epoch so the seeds benchmark shares its compile.
    return [
        Row(RunSpec("conv", 0.25, 64, steps=1), 1, 5, 6, 2),
        Row(RunSpec("conv", 0.25, 64, steps=1, dtype="bfloat16"), 1, 5, 0, 0, torch_compare=False),
        Row(RunSpec("conv", 1.0, 64, steps=1), 0, 2, 2, 1, torch_one_thread=False),
        Row(RunSpec("conv_strided", 0.25, 64, steps=8), 1, 3, 10, 2),
        Row(RunSpec("conv_strided", 1.0, 64, steps=2), 1, 3, 4, 1, torch_one_thread=False),
        Row(RunSpec("mlp", 1.0, 512, steps=8), 2, 5, 50, 5),
    ]


def jax_row(ctx: Context, row: Row) -> dict:
    """Compiles (or reuses) the run and times steady-state epochs."""
    r = ctx.run(row.spec)
    epoch = r.measure(warmup=row.warmup, repeats=row.repeats)
    steps = r.engine.steps_per_epoch
    step = {k: (v / steps if k != "n" else v) for k, v in epoch.items()}
    return {
        "samples_per_epoch": r.samples_per_epoch,
        "steps_per_epoch": steps,
        "batch": r.engine.batch_size,
        "setup_s": r.setup_s,
        "init_s": r.init_s,
        "compile_s": r.compile_s,
        "first_epoch_s": r.first_epoch_s,
        "epoch_s": epoch,
        "step_s": step,
        "step_samples_per_s": invert(step, r.engine.batch_size),
        "epoch_samples_per_s": invert(epoch, r.samples_per_epoch),
        "final_loss": float(r.last_loss.mean()),
    }


def pick_threads(tr, row: Row) -> tuple[int, dict]:
    """The faster torch intra-op thread count for this row, from a short probe.

    On a shared machine torch's OpenMP threads stall whenever another process
    holds a core, which makes small steps with the default (all cores) 10-100x
    slower and bimodal; one thread is immune but slower on large convolutions.
    Each setting runs a few steps; the rest of the row uses the faster one, so
    the comparison is against PyTorch's best setting in this run.
    """
    import torch

    default = torch.get_num_threads()
    if not row.torch_one_thread or default == 1:
        return default, {}
    s = row.spec
    probe = {}
    for th in (1, default):
        r = tr.step_throughput(s.model, s.batch, width=s.width, steps=3, warmup=1, num_threads=th)
        probe[str(th)] = r["median_step_seconds"]
    return (1 if probe["1"] <= probe[str(default)] else default), probe


def torch_row(ctx: Context, tr, row: Row) -> dict:
    """Per-step and end-to-end PyTorch throughput for the same model and batch."""
    s = row.spec
    threads, probe = pick_threads(tr, row)
    step = tr.step_throughput(s.model, s.batch, width=s.width, steps=row.torch_steps, warmup=row.torch_warmup,
                              num_threads=threads)
    x, y = synthetic_data(s.model, s.n)
    mean, std = standardisation(x)
    e2e, wait = [], []
    for rep in range(row.repeats):
        out = tr.train_torch(s.model, x, y, mode=s.mode, p=s.p, epochs=1, batch_size=s.batch, width=s.width,
                             mean=mean, std=std, seed=rep, num_threads=threads)
        e2e.append(out["samples_per_s"])
        wait.append(out["data_wait_seconds"] / out["seconds"])
    return {
        "threads": threads,
        "thread_probe_step_s": probe,
        "step_samples_per_s": invert(summarize(step["per_step_seconds"]), s.batch),
        "e2e_samples_per_s": summarize(e2e),
        "e2e_data_wait_fraction": summarize(wait),
    }


def run(ctx: Context) -> tuple[dict, str]:
    tr, skip_reason = torch_or_reason()
    rows, table_rows = [], []
    for row in plan(ctx):
        s = row.spec
        ctx.log(f"training {s.label()}: {s.steps} steps/epoch, {row.repeats} repeats")
        out = {"model": s.model, "width": s.width, "batch": s.batch, "samples": s.n, "mode": s.mode, "p": s.p,
               "jax": jax_row(ctx, row)}
        f32 = next((r for r in rows if (r["model"], r["width"], r["batch"], r.get("dtype", "float32"))
                    == (s.model, s.width, s.batch, "float32")), None)
        out["dtype"] = s.dtype
        if not row.torch_compare:
            out["torch"] = "not compared: a bfloat16 row, see ratio_vs_float32"
            if f32 is not None:
                out["ratio_vs_float32"] = ratio(out["jax"]["step_samples_per_s"]["median"],
                                                f32["jax"]["step_samples_per_s"]["median"])
        elif tr is None:
            out["torch"] = skip_reason
        else:
            ctx.log(f"  torch {s.label()}")
            t = torch_row(ctx, tr, row)
            out["torch"] = t
            out["ratio_step"] = ratio(out["jax"]["step_samples_per_s"]["median"], t["step_samples_per_s"]["median"])
            out["ratio_e2e"] = ratio(out["jax"]["epoch_samples_per_s"]["median"], t["e2e_samples_per_s"]["median"])
        rows.append(out)
        j = out["jax"]
        if not row.torch_compare:
            torch_cells = [f'JAX bf16 / f32 step: {out.get("ratio_vs_float32", float("nan")):.2f}x', "-",
                           float("nan"), float("nan")]
        elif tr is not None:
            torch_cells = [f'{med_range(out["torch"]["step_samples_per_s"])} {out["torch"]["threads"]}t',
                           f'{med_range(out["torch"]["e2e_samples_per_s"])} {out["torch"]["threads"]}t',
                           out["ratio_step"], out["ratio_e2e"]]
        else:
            torch_cells = ["skipped", "skipped", float("nan"), float("nan")]
        table_rows.append([
            s.label(), j["steps_per_epoch"], j["compile_s"], med_range(j["step_samples_per_s"]),
            med_range(j["epoch_samples_per_s"]), *torch_cells,
        ])
    result = {"config": {"mode": "icrst", "p": 1.0, "seeds": 1, "devices": 1,
                         "data": "synthetic: uniform [0,1], 10 random classes"},
              "rows": rows, "torch": "ok" if tr is not None else skip_reason}
    note = ""
    target_rows = [r for r in rows if (r["model"], r["width"], r["batch"], r["dtype"]) == (*TARGET_ROW, "float32")]
    if tr is not None and target_rows:
        t = target_rows[0]
        met = t["ratio_step"] >= 1.0
        result["target"] = {
            "what": "conv width 0.25 batch 64: JAX samples/s >= PyTorch on the same CPU (per step; "
                    "end to end reported alongside)",
            "required": 1.0,
            "measured": t["ratio_step"],
            "measured_e2e": t["ratio_e2e"],
            "met": met,
            "margin": t["ratio_step"] / 1.0,
            # The target is a CPU one: on an accelerator JAX runs on it and torch on the CPU.
            "judged": not ctx.on_accelerator,
        }
        note = (f"target conv w0.25 b64 JAX >= PyTorch: {'met' if met else 'MISSED'} "
                f"(per step {t['ratio_step']:.2f}x, end to end {t['ratio_e2e']:.2f}x)")
    elif tr is None:
        note = f"PyTorch: {skip_reason}"
    text = format_table(
        "training throughput, samples/s (ICRST p=1, 1 seed, 1 device)",
        ["config", "steps", "compile s", "JAX step med [min, max]", "JAX epoch med [min, max]",
         "torch step med [min, max] thr", "torch e2e med [min, max] thr", "x step", "x e2e"],
        table_rows, note + "\n(torch threads: the faster of 1 and the default in a short probe, marked 1t / 2t)",
    )
    return result, text
