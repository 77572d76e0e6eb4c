"""Smoke test of the benchmark suite (``python -m benchmarks.run --quick``).

The suite runs in a subprocess with a clean copy of the environment: this test
session has 4 fake CPU devices (conftest), while the suite must start JAX with
its own device count (its devices benchmark starts yet another child with 4).

Only structure is asserted (exit status, well-formed JSON, benchmark names,
numeric fields), never a timing: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_env

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ("pairing", "training", "seeds", "utilisation", "profile", "breast_cancer_e2e", "devices", "study")


def run_suite(out: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out), *args],
        cwd=ROOT, env=env or child_env(), capture_output=True, text=True, timeout=600,
    )


def strict_load(path: Path) -> dict:
    """json.load that refuses NaN / Infinity (not standard JSON)."""

    def bad_constant(name):
        raise ValueError(f"non-standard JSON constant {name}")

    with open(path) as f:
        return json.load(f, parse_constant=bad_constant)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def assert_stats(d: dict, what: str) -> None:
    """A ``{"median", "min", "max", "n"}`` block of positive numbers in order."""
    assert isinstance(d, dict), f"{what}: {d!r}"
    for k in ("median", "min", "max", "n"):
        assert is_number(d.get(k)), f"{what}.{k} = {d.get(k)!r}"
    assert 0 < d["min"] <= d["median"] <= d["max"], f"{what}: {d}"
    assert d["n"] >= 1


def assert_warm_cache(e2e: dict) -> None:
    """The e2e benchmark's warm-cache child: timings, and every timed program came from its fresh disk cache."""
    assert_stats(e2e["jax_one_seed"]["wall_s"], "e2e one seed")
    assert is_number(e2e["seeds_vs_one_seed_e2e"])
    w = e2e["jax_warm_cache"]
    for k in ("wall_s", "epochs_s", "compile_s", "other_s"):
        assert_stats(w[k], f"e2e warm {k}")
    for k in ("wall_s", "epochs_s", "compile_s", "other_s"):
        assert is_number(w["populate"][k]), k
    c = w["cache"]
    assert c["dir_was_fresh"] is True
    assert c["entries"] > 0 and c["fill_misses"] == c["entries"] and c["fill_hits"] == 0
    assert c["timed_hits"] > 0 and c["timed_misses"] == 0 and c["entries_after"] == c["entries"]
    assert w["final_loss_equal_to_fill"] is True
    assert is_number(e2e["warm_vs_cold"])


def torch_entry_ok(entry, what: str) -> bool:
    """True if torch results are present; False if recorded as skipped (torch absent)."""
    if isinstance(entry, str):
        assert entry.startswith("skipped"), f"{what}: {entry!r}"
        return False
    assert isinstance(entry, dict), f"{what}: {entry!r}"
    return True


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = run_suite(out)
    return proc, out


def test_quick_suite_exits_zero_and_prints_tables(quick):
    proc, out = quick
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
    for title in ("== pairing", "== training", "== seeds", "== utilisation", "== profile", "== Breast Cancer",
                  "== devices"):
        assert title in proc.stdout
    assert "[" in proc.stderr  # progress lines go to stderr


def test_quick_json_is_well_formed(quick):
    _, out = quick
    data = strict_load(out)
    assert set(data) == {"meta", "benchmarks"}
    meta = data["meta"]
    for key in ("device", "jax", "date", "argv", "cpu", "torch"):
        assert meta.get(key), key
    assert meta["quick"] is True and "--quick" in meta["argv"]
    assert meta["failed"] == []
    assert set(data["benchmarks"]) == set(EXPECTED)
    for name, bench in data["benchmarks"].items():
        assert "error" not in bench, f"{name}: {bench.get('error')}"
        assert is_number(bench["seconds"])


def test_quick_numeric_fields(quick):
    _, out = quick
    b = strict_load(out)["benchmarks"]

    rows = b["pairing"]["rows"]
    assert {(r["mode"], r["p"]) for r in rows} >= {("icrst", 1.0), ("trst", 1.0)}
    for r in rows:
        assert_stats(r["device_pairs_per_s"], "pairing device")
        assert_stats(r["host_pairs_per_s"], "pairing host")
        assert is_number(r["speedup"]) and is_number(r["device_compile_s"])
    assert isinstance(b["pairing"]["target"]["met"], bool)

    rows = b["training"]["rows"]
    assert "mlp" in {r["model"] for r in rows}
    assert {r["dtype"] for r in rows} == {"float32", "bfloat16"}
    for r in rows:
        j = r["jax"]
        for k in ("step_samples_per_s", "epoch_samples_per_s", "epoch_s", "step_s"):
            assert_stats(j[k], f"training {r['model']} {k}")
        for k in ("compile_s", "init_s", "first_epoch_s", "final_loss"):
            assert is_number(j[k]), k
        if r["dtype"] == "bfloat16":  # compared with the float32 row, not with PyTorch
            assert r["torch"].startswith("not compared") and is_number(r["ratio_vs_float32"])
            continue
        if torch_entry_ok(r["torch"], "training torch"):
            assert_stats(r["torch"]["step_samples_per_s"], "torch step")
            assert_stats(r["torch"]["e2e_samples_per_s"], "torch e2e")
            assert is_number(r["ratio_step"]) and is_number(r["ratio_e2e"])

    rows = b["seeds"]["rows"]
    assert {r["seeds"] for r in rows if r["model"] == "mlp"} == {1, 2, 4, 8}
    assert {r["schedule"] for r in rows if r["seeds"] == 8} == {"vmap", "chunks of 4"}
    for r in rows:
        assert_stats(r["epoch_s"], "seeds epoch")
        assert_stats(r["one_seed_epoch_s"], "seeds one-seed epoch")
        assert_stats(r["sequential_s"], "seeds sequential")
        assert is_number(r["cost_vs_one_seed"]) and is_number(r["speedup_vs_sequential"])

    u = b["utilisation"]
    assert_stats(u["peak"]["flops_per_s"], "peak")
    assert set(u["peaks"]) == {"float32", "bfloat16"}
    assert {r["peak_dtype"] for r in u["rows"]} == {"float32", "bfloat16"}
    assert isinstance(u["cost_analysis"]["body_counted_once"], bool)
    for r in u["rows"]:
        assert is_number(r["flops_per_epoch"]) and r["flops_per_epoch"] > 0
        assert is_number(r["fraction_of_peak"])
        assert is_number(r["model_flops_per_sample"]) and r["model_flops_per_sample"] > 0
        assert_stats(r["model_flops_per_s"], "model flop/s")

    for r in b["profile"]["rows"]:
        assert is_number(r["op_s_per_epoch"]) and r["op_s_per_epoch"] > 0
        assert r["top_ops"] and all(is_number(op["s_per_epoch"]) for op in r["top_ops"])
        assert abs(sum(k["share"] for k in r["kinds"].values()) - 1.0) < 1e-6

    e = b["breast_cancer_e2e"]
    assert_stats(e["jax"]["wall_s"], "e2e jax wall")
    assert e["jax"]["persistent_cache_dir"] is None  # cold really was cold
    assert_warm_cache(e)
    if torch_entry_ok(e["torch"], "e2e torch"):
        assert is_number(e["torch"]["total_s"]) and is_number(e["speedup_e2e"])
        assert is_number(e["speedup_e2e_warm_cache"])
        assert e["target"]["measured"] == e["speedup_e2e"]  # judged cold
        assert e["target"]["measured_warm_cache"] == e["speedup_e2e_warm_cache"]

    d = b["devices"]
    assert d["config"]["child_device_count"] == 4  # forced host devices reached the child
    assert [r["devices"] for r in d["rows"]] == [1, 2, 4]
    for r in d["rows"]:
        assert_stats(r["epoch_s"], "devices epoch")
        assert is_number(r["efficiency"])

    s = b["study"]["rows"]["breast_cancer_quick"]
    assert s["grid_points"] == 2 and len(s["per_point_s"]) == 2
    assert is_number(s["study_s"]) and is_number(s["per_point_total_s"]) and is_number(s["speedup"])
    assert s["same_final_losses"], s["mismatched_points"]  # each point of the study equals its own run


def test_missing_torch_is_recorded_as_skipped(quick, tmp_path):
    """With torch unimportable the comparisons say so and the suite still exits 0.

    Where torch is not installed (CI) the quick suite above already ran without
    it; elsewhere the e2e benchmark runs again with torch hidden."""
    proc, out = quick
    if strict_load(out)["meta"]["torch"] != "not installed":
        shadow = tmp_path / "shadow"
        (shadow / "torch").mkdir(parents=True)
        (shadow / "torch" / "__init__.py").write_text('raise ImportError("torch hidden by test_benchmarks")\n')
        env = child_env(PYTHONPATH=os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")])))
        out = tmp_path / "no_torch.json"
        proc = run_suite(out, "--only", "breast_cancer_e2e", env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = strict_load(out)
    assert data["meta"]["torch"] == "not installed"
    e2e = data["benchmarks"]["breast_cancer_e2e"]
    assert e2e["torch"] == "skipped: torch not installed"
    assert_stats(e2e["jax"]["wall_s"], "e2e jax wall")
    assert_warm_cache(e2e)


def test_model_flops_match_hand_counts():
    """The utilisation benchmark's model-flop counts, checked against layer-by-layer sums."""
    from benchmarks.bench_lib import model_flops_per_sample

    # MLP 30 -> 64 -> 8 -> 64 -> 30: multiply-adds x 2 (mul + add) x 3 (fwd, dgrad, wgrad).
    assert model_flops_per_sample("mlp", 1.0) == 6 * (30 * 64 + 64 * 8 + 8 * 64 + 64 * 30)
    # conv, width 1: unpadded 3x3 encoder 28 -> 18, transposed decoder 18 -> 28, 1x1 head.
    enc = [(26, 1, 32), (24, 32, 64), (22, 64, 128), (20, 128, 256), (18, 256, 512)]
    dec = [(18, 512, 512), (20, 512, 256), (22, 256, 128), (24, 128, 64), (26, 64, 32)]  # input sizes
    macs = sum(h * h * 9 * ci * co for h, ci, co in enc + dec) + 28 * 28 * 32 * 1
    assert model_flops_per_sample("conv", 1.0) == 6 * macs
    # conv_strided, width 1: 32 -> 4 with strides 2,1,2,1,2 and back.
    enc = [(16, 3, 64), (16, 64, 64), (8, 64, 128), (8, 128, 128), (4, 128, 256)]  # output sizes
    dec = [(4, 256, 256), (8, 256, 128), (8, 128, 128), (16, 128, 64), (16, 64, 3)]  # input sizes
    macs = sum(h * h * 9 * ci * co for h, ci, co in enc + dec)
    assert model_flops_per_sample("conv_strided", 1.0) == 6 * macs
    # Width scales the channels (and the flops about quadratically).
    assert 0.05 < model_flops_per_sample("conv", 0.25) / model_flops_per_sample("conv", 1.0) < 0.07


def test_profile_self_time_subtracts_nested_ops(tmp_path):
    """A while loop's own time excludes the ops nested in it; runtime events are ignored."""
    import gzip

    from benchmarks.bench_lib import kind_of, op_self_times

    events = [
        {"ph": "X", "name": "while.3", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
        {"ph": "X", "name": "dot.1", "ts": 10, "dur": 30, "pid": 1, "tid": 1},
        {"ph": "X", "name": "add_fusion.2", "ts": 50, "dur": 20, "pid": 1, "tid": 1},
        {"ph": "X", "name": "dot.1", "ts": 200, "dur": 5, "pid": 1, "tid": 2},
        {"ph": "X", "name": "ThunkExecutor::Execute", "ts": 0, "dur": 300, "pid": 1, "tid": 1},
        {"ph": "X", "name": "$profiler.py:1 trace", "ts": 0, "dur": 400, "pid": 1, "tid": 3},
    ]
    path = tmp_path / "trace.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": events}, f)
    self_us, calls = op_self_times(str(path))
    assert self_us == {"while.3": 50.0, "dot.1": 35.0, "add_fusion.2": 20.0}
    assert calls == {"while.3": 1, "dot.1": 2, "add_fusion.2": 1}
    assert kind_of("dot.1") == "matmul/conv" and kind_of("sort.0") == "sort (shuffle)"
    assert kind_of("add_fusion.2") == "elementwise fusion" and kind_of("while.3") == "rng/while loops"


def test_profile_of_a_device_trace_counts_device_kernels_by_hlo_op(tmp_path):
    """A GPU trace: the host's launch events are left out, the kernels count under
    the HLO op that launched them, or under their own name without one."""
    import gzip

    from benchmarks.bench_lib import kind_of, op_self_times

    events = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/host:CPU"}},
        {"ph": "M", "name": "process_name", "pid": 7, "args": {"name": "/device:GPU:0 (NVIDIA H200)"}},
        {"ph": "X", "name": "fusion.3", "ts": 0, "dur": 50, "pid": 1, "tid": 1},  # host launch
        {"ph": "X", "name": "loop_add_fusion", "ts": 5, "dur": 12, "pid": 7, "tid": 3, "args": {"hlo_op": "fusion.3"}},
        {"ph": "X", "name": "sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n", "ts": 20, "dur": 30, "pid": 7, "tid": 3},
        {"ph": "X", "name": "loop_add_fusion", "ts": 60, "dur": 8, "pid": 7, "tid": 3, "args": {"hlo_op": "fusion.3"}},
    ]
    path = tmp_path / "trace.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": events}, f)
    self_us, calls = op_self_times(str(path))
    assert self_us == {"fusion.3": 20.0, "sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n": 30.0}
    assert calls == {"fusion.3": 2, "sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n": 1}
    assert kind_of("sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n") == "matmul/conv"
    assert kind_of("cudnn_convolution.2") == "matmul/conv" and kind_of("fusion.3") == "elementwise fusion"
