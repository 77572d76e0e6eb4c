"""The benchmarks at their smallest settings (``--quick``), in this process.

Every benchmark module runs end to end once, through ``benchmarks.run.run_all`` with
one shared context (as ``python -m benchmarks.run --quick`` shares compiled runs);
the devices benchmark measures the test process's 4 fake CPU devices in-process, and
the e2e benchmark's warm-cache child is the one subprocess (the persistent cache is
process-wide state). Structure and consistency are asserted, never a timing.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import sys

import pytest

from benchmarks import accelerator_check, bench_evaluation, bench_training, run
from benchmarks.bench_lib import Context, kind_of, model_flops_per_sample, op_self_times
from icrst_jax.runtime import enable_compilation_cache


@pytest.fixture(scope="module", autouse=True)
def cold_compilation():
    """The benchmarks measure cold compilation: the run's shared cache is off in this file."""
    enable_compilation_cache("off")
    yield
    enable_compilation_cache(os.environ["ICRST_JAX_CACHE_DIR"])


def strict_load(path) -> dict:
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
    assert 0 < d["min"] <= d["median"] <= d["max"] and d["n"] >= 1, f"{what}: {d}"


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


_SHARED: list[Context] = []


def quick_context() -> Context:
    """One quick context per test process: this file's benchmarks and the accelerator dry
    run (at the end of this file) train the same small MLP runs, compiled once."""
    if not _SHARED:
        _SHARED.append(Context(quick=True))
    return _SHARED[0]


@pytest.fixture(scope="module")
def ctx():
    return quick_context()


@pytest.fixture(scope="module")
def suite(ctx, tmp_path_factory):
    """``run_all`` of every benchmark: (failed names, the strict JSON, the printed tables)."""
    import io

    path = tmp_path_factory.mktemp("bench") / "quick.json"
    out = io.StringIO()
    failed = run.run_all(ctx, list(run.BENCHMARKS), {"meta": {}, "benchmarks": {}}, str(path), out=out)
    return failed, strict_load(path)["benchmarks"], out.getvalue()


def test_every_benchmark_runs_and_prints_its_table(suite):
    failed, b, text = suite
    assert failed == [], {n: b[n]["error"] for n in failed}
    assert set(b) == set(run.BENCHMARKS)
    for title in ("== pairing", "== training", "== seeds", "== utilisation", "== profile", "== Breast Cancer",
                  "== devices", "== study", "== first hour"):
        assert title in text
    assert all(is_number(r["seconds"]) for r in b.values())


def test_pairing(suite):
    rows = suite[1]["pairing"]["rows"]
    assert [(r["mode"], r["p"]) for r in rows] == [("icrst", 1.0), ("icrst", 0.5), ("trst", 1.0)]
    for r in rows:
        assert_stats(r["device_pairs_per_s"], "device")
        assert_stats(r["host_pairs_per_s"], "host")
        assert r["speedup"] == pytest.approx(r["device_pairs_per_s"]["median"] / r["host_pairs_per_s"]["median"])
    assert_stats(rows[0]["device_pairs_per_s_batch512"], "batch 512")


def test_training_rows_are_consistent(suite):
    rows = suite[1]["training"]["rows"]
    assert [r["jax"]["dtype"] for r in rows] == ["float32", "bfloat16"]
    for r in rows:
        j = r["jax"]
        for k in ("step_samples_per_s", "epoch_samples_per_s", "epoch_s", "step_s"):
            assert_stats(j[k], k)
        # samples/s per epoch is the epoch's samples over the same median epoch time
        assert j["epoch_samples_per_s"]["median"] == pytest.approx(j["batch"] * j["steps_per_epoch"] / j["epoch_s"]["median"])
        assert j["step_s"]["median"] == pytest.approx(j["epoch_s"]["median"] / j["steps_per_epoch"])
        assert is_number(j["compile_s"]) and j["final_loss"] > 0
    f32, bf16 = rows
    assert bf16["torch"].startswith("not compared") and bf16["ratio_vs_float32"] == pytest.approx(
        bf16["jax"]["step_samples_per_s"]["median"] / f32["jax"]["step_samples_per_s"]["median"])
    if has_torch():
        assert_stats(f32["torch"]["step_samples_per_s"], "torch step")
        assert_stats(f32["torch"]["e2e_samples_per_s"], "torch e2e")
        assert f32["torch"]["threads"] >= 1 and is_number(f32["ratio_step"]) and is_number(f32["ratio_e2e"])
    else:
        assert f32["torch"] == "skipped: torch not installed"


def test_seeds_and_profile_share_runs(suite, ctx):
    b = suite[1]
    rows = b["seeds"]["rows"]
    assert [(r["seeds"], r["schedule"]) for r in rows] == [(1, "vmap"), (2, "vmap")]
    for r in rows:
        for k in ("epoch_s", "one_seed_epoch_s", "sequential_s"):
            assert_stats(r[k], k)
        assert r["cost_vs_one_seed"] == pytest.approx(r["epoch_s"]["median"] / r["one_seed_epoch_s"]["median"])
    for r in b["profile"]["rows"]:
        assert r["op_s_per_epoch"] > 0 and r["top_ops"]
        assert sum(k["share"] for k in r["kinds"].values()) == pytest.approx(1.0)
    # training, seeds, utilisation, profile, devices (1 device) and the accelerator dry run
    # compiled the quick MLP once
    assert len(ctx.runs) == 4, list(ctx.runs)  # f32, bf16, 2 seeds, 4 devices


def test_utilisation_counts_each_step(suite):
    u = suite[1]["utilisation"]
    assert set(u["peaks"]) == {"float32", "bfloat16"}
    assert_stats(u["peaks"]["float32"]["flops_per_s"], "peak")
    assert isinstance(u["cost_analysis"]["body_counted_once"], bool)
    for r in u["rows"]:
        # With the scan's steps counted, XLA's flops are the model's (dense layers, no
        # convolution rewrite) up to the activations and the loss.
        assert 0.8 < r["flops_per_sample"] / r["model_flops_per_sample"] < 1.25, r
        assert_stats(r["model_flops_per_s"], "model flop/s") and is_number(r["fraction_of_peak"])


def test_e2e_warm_cache_child_loads_every_program_from_disk(suite):
    e = suite[1]["breast_cancer_e2e"]
    assert e["jax"]["persistent_cache_dir"] is None  # cold really was cold
    for k in ("wall_s", "epochs_s", "compile_s", "other_s"):
        assert_stats(e["jax"][k], f"cold {k}")
        assert_stats(e["jax_warm_cache"][k], f"warm {k}")
    assert_stats(e["jax_one_seed"]["wall_s"], "one seed")
    c = e["jax_warm_cache"]["cache"]
    assert c["dir_was_fresh"] and c["entries"] > 0 and c["fill_misses"] == c["entries"] and c["fill_hits"] == 0
    assert c["timed_hits"] > 0 and c["timed_misses"] == 0
    assert e["jax_warm_cache"]["final_loss_equal_to_fill"] is True
    assert e["warm_vs_cold"] == pytest.approx(e["jax"]["wall_s"]["median"] / e["jax_warm_cache"]["wall_s"]["median"])
    if has_torch():
        assert e["speedup_e2e"] == pytest.approx(e["torch"]["total_s"] / e["jax"]["wall_s"]["median"])


def test_devices_in_process_on_the_sessions_four_devices(suite):
    d = suite[1]["devices"]
    assert d["device_count"] == 4 and d["forced_host_devices"] is True
    assert [r["devices"] for r in d["rows"]] == [1, 4]
    assert d["rows"][0]["speedup"] == 1.0
    for r in d["rows"]:
        assert_stats(r["epoch_s"], "devices epoch")
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["devices"])


def test_study_equals_its_per_point_runs(suite):
    s = suite[1]["study"]["rows"]["breast_cancer_quick"]
    assert s["grid_points"] == 2 and len(s["per_point_s"]) == 2
    assert s["same_final_losses"], s["mismatched_points"]
    assert s["speedup"] == pytest.approx(s["per_point_total_s"] / s["study_s"])


def test_without_torch_the_comparisons_say_skipped(suite, ctx, monkeypatch):
    """With torch unimportable the training benchmark (its runs already compiled)
    records the skip and the metadata says so."""
    from benchmarks.bench_lib import environment

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result, text = bench_training.run(ctx)
    assert result["torch"] == "skipped: torch not installed"
    assert result["rows"][0]["torch"] == "skipped: torch not installed" and "PyTorch: skipped" in text
    assert environment([], True)["torch"] == "not installed"


def test_command_line_writes_strict_json(tmp_path, capsys):
    out = tmp_path / "pairing.json"
    assert run.main(["--quick", "--only", "pairing", "--json", str(out)]) == 0
    d = strict_load(out)
    assert d["meta"]["quick"] is True and d["meta"]["failed"] == [] and list(d["benchmarks"]) == ["pairing"]
    assert d["meta"]["source"]["commit"] and "== pairing" in capsys.readouterr().out


def test_evaluation_benchmark_both_backends(tmp_path):
    args = ["--points", "2", "--rows", "300", "--dim", "16", "--classifiers", "nb", "svm", "--n-jobs", "1"]
    assert bench_evaluation.main([*args, "--out", str(tmp_path)]) == 0
    res = strict_load(tmp_path / "bench_evaluation.json")["results"]
    for backend in ("auto", "sklearn"):
        assert len(res[backend]["accuracy"]["nb"]) == 2 and res[backend]["wall_s"] > 0
    assert res["auto"]["eval_seconds"]["jax_classifiers_s"] > 0  # NB ran as a JAX program
    assert res["sklearn"]["eval_seconds"]["jax_classifiers_s"] == 0
    # The same folds and the same SVC on both sides: the same accuracies.
    assert res["auto"]["accuracy"]["svm"] == res["sklearn"]["accuracy"]["svm"]
    assert res["auto"]["accuracy"]["nb"] == pytest.approx(res["sklearn"]["accuracy"]["nb"], abs=0.01)
    assert bench_evaluation.main(["--offline", "--classifiers", "nb", "--backends", "sklearn", "--n-jobs", "1",
                                  "--out", str(tmp_path / "offline")]) == 0
    off = strict_load(tmp_path / "offline" / "bench_evaluation.json")["results"]
    assert 0.9 < off["breast_cancer"]["sklearn"]["standardised"]["nb"]["accuracy"] < 1.0  # GaussianNB: ~0.93
    assert 0.75 < off["digits"]["sklearn"]["none"]["nb"]["accuracy"] < 0.9  # ~0.81
    assert bench_evaluation.main(["--svc", "--sets", "synthetic_300x16", "--repeats", "1", "--out", str(tmp_path / "svc")]) == 0
    r = strict_load(tmp_path / "svc" / "bench_evaluation.json")["results"]["synthetic_300x16"]
    assert (r["rows"], r["features"], r["classes"]) == (300, 16, 10) and r["converged"]
    assert r["min_fold_agreement"] > 0.9 and r["jax_warm_per_fold_s"] > 0 and r["sklearn_per_fold_s"] > 0


def test_model_flops_match_hand_counts():
    """The utilisation benchmark's model-flop counts, checked against layer-by-layer sums."""
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


def _trace(tmp_path, events):
    path = tmp_path / "trace.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": events}, f)
    return op_self_times(str(path))


def test_profile_self_time_subtracts_nested_ops(tmp_path):
    """A while loop's own time excludes the ops nested in it; runtime events are ignored."""
    self_us, calls = _trace(tmp_path, [
        {"ph": "X", "name": "while.3", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
        {"ph": "X", "name": "dot.1", "ts": 10, "dur": 30, "pid": 1, "tid": 1},
        {"ph": "X", "name": "add_fusion.2", "ts": 50, "dur": 20, "pid": 1, "tid": 1},
        {"ph": "X", "name": "dot.1", "ts": 200, "dur": 5, "pid": 1, "tid": 2},
        {"ph": "X", "name": "ThunkExecutor::Execute", "ts": 0, "dur": 300, "pid": 1, "tid": 1},
        {"ph": "X", "name": "$profiler.py:1 trace", "ts": 0, "dur": 400, "pid": 1, "tid": 3},
    ])
    assert self_us == {"while.3": 50.0, "dot.1": 35.0, "add_fusion.2": 20.0}
    assert calls == {"while.3": 1, "dot.1": 2, "add_fusion.2": 1}
    assert kind_of("dot.1") == "matmul/conv" and kind_of("sort.0") == "sort (shuffle)"
    assert kind_of("add_fusion.2") == "elementwise fusion" and kind_of("while.3") == "rng/while loops"


def test_profile_of_a_device_trace_counts_device_kernels_by_hlo_op(tmp_path):
    """A GPU trace: the host's launch events are left out, the kernels count under
    the HLO op that launched them, or under their own name without one."""
    gemm = "sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n"
    self_us, calls = _trace(tmp_path, [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/host:CPU"}},
        {"ph": "M", "name": "process_name", "pid": 7, "args": {"name": "/device:GPU:0 (NVIDIA H200)"}},
        {"ph": "X", "name": "fusion.3", "ts": 0, "dur": 50, "pid": 1, "tid": 1},  # host launch
        {"ph": "X", "name": "loop_add_fusion", "ts": 5, "dur": 12, "pid": 7, "tid": 3, "args": {"hlo_op": "fusion.3"}},
        {"ph": "X", "name": gemm, "ts": 20, "dur": 30, "pid": 7, "tid": 3},
        {"ph": "X", "name": "loop_add_fusion", "ts": 60, "dur": 8, "pid": 7, "tid": 3, "args": {"hlo_op": "fusion.3"}},
    ])
    assert self_us == {"fusion.3": 20.0, gemm: 30.0} and calls == {"fusion.3": 2, gemm: 1}
    assert kind_of(gemm) == "matmul/conv" and kind_of("cudnn_convolution.2") == "matmul/conv"
    assert kind_of("fusion.3") == "elementwise fusion"


# ---------------------------------------------------------------------------
# The one-shot accelerator check (benchmarks/accelerator_check.py) on a CPU, in this
# process: its --dry-run runs every section, eval included, with one small MLP standing
# in for the models (sharing this file's quick context), so the script that runs first on
# a GPU, when one is available, cannot rot in between. Structure and consistency only.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("accel")
    # No time budget: on a loaded CPU the dry run can outlast the default GPU time budget.
    rc = accelerator_check.main(["--dry-run", "--out", str(out), "--budget-s", "1e9",
                                 "--sections", *accelerator_check.SECTIONS], ctx=quick_context())
    return rc, strict_load(out / "accelerator_check.json"), out


def test_dry_run_writes_every_section(dry):
    rc, d, out = dry
    assert rc == 0 and d["meta"]["dry_run"] is True and d["meta"]["failed"] == []
    assert list(d["sections"]) == list(accelerator_check.SECTIONS)
    assert "accelerator check" in (out / "accelerator_check.txt").read_text()


def test_models_against_their_peak_and_pytorch(dry):
    s = dry[1]["sections"]
    for dt in ("float32", "bfloat16"):
        assert_stats(s["peak"]["peaks"][dt]["flops_per_s"], f"peak {dt}")
    for name in ("conv_f32", "conv_bf16", "strided_f32", "conv_matmul"):
        j = s[name]["jax"]
        assert_stats(j["step_samples_per_s"], f"{name} step")
        peak = s["peak"]["peaks"][j["dtype"]]["flops_per_s"]["median"]
        assert j["fraction_of_peak"] == pytest.approx(j["model_flops_per_s"]["median"] / peak)
    assert s["conv_bf16"]["jax"]["dtype"] == "bfloat16" and is_number(s["conv_bf16"]["ratio_vs_float32_auto"])
    assert is_number(s["conv_matmul"]["ratio_vs_float32_auto"])
    for name in ("conv_f32", "strided_f32"):
        t = s[name]["torch"]
        if has_torch():
            assert_stats(t["step_samples_per_s"], f"{name} torch step")
            assert_stats(t["e2e_samples_per_s"], f"{name} torch e2e")
            assert t["ratio_step"] == pytest.approx(s[name]["jax"]["step_samples_per_s"]["median"]
                                                    / t["step_samples_per_s"]["median"])
        else:
            assert t == {"skipped": "skipped: torch not installed"}


def test_grid_sections(dry):
    s = dry[1]["sections"]
    g = s["grid"]
    assert g["k"] == 2 and g["one"]["seeds"] == 1
    for name in ("vmapped",):
        assert g[name]["seeds"] == 2
        assert g[name]["cost_vs_one"] == pytest.approx(g[name]["epoch_s"]["median"] / g["one"]["epoch_s"]["median"])
        # each of the K runs counts its samples
        assert g[name]["epoch_samples_per_s"]["median"] == pytest.approx(
            2 * g["one"]["batch"] * g["one"]["steps_per_epoch"] / g[name]["epoch_s"]["median"])
    # Losses of matmul against xla convolutions are not compared here: the stand-in
    # MLP has none (tests/test_conv.py checks them, alone and vmapped over runs).
    gm = s["grid_matmul"]
    assert gm["vmapped"]["seeds"] == 2 and is_number(gm["speedup_vs_xla_vmapped"]) and is_number(gm["best_cost_vs_xla_one"])
    parts = s["grid_parts"]
    for name in ("no_dropout", "no_batch_norm"):
        assert parts[name]["seeds"] == 2 and is_number(parts[name]["share_of_epoch"])
    prof = s["grid_profile"]
    for name in ("one", "vmapped"):
        assert prof[name]["op_s_per_epoch"] > 0 and prof[name]["top_ops"]
        assert sum(k["share"] for k in prof[name]["kinds"].values()) == pytest.approx(1.0)
    assert (dry[2] / "grid_profile_trace.json.gz").stat().st_size > 0


def test_eval_section_records_the_split_and_accuracies(dry):
    e = dry[1]["sections"]["eval"]
    assert (e["points"], e["rows"], e["dim"], e["backend"]) == (2, 300, 16, "auto")
    assert e["eval_seconds"]["jax_classifiers_s"] > 0 and e["eval_seconds"]["sklearn_classifiers_s"] > 0  # NB | SVC
    assert 0 < e["eval_seconds"]["jax_classifiers_s"] <= e["wall_s"]
    for clf in ("nb", "svm"):
        assert len(e["accuracy"][clf]) == 2 and all(0 <= a <= 1 for a in e["accuracy"][clf])


def test_eval_runs_only_when_asked_for():
    assert "eval" in accelerator_check.SECTIONS and "eval" not in accelerator_check.DEFAULT_SECTIONS


def test_without_accelerator_refuses_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        accelerator_check.main(["--out", str(tmp_path)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: no accelerator found (jax.default_backend() is 'cpu'); use --dry-run on a CPU"]


def test_time_budget_skips_sections_but_writes_the_file(tmp_path):
    rc = accelerator_check.main(["--dry-run", "--out", str(tmp_path), "--budget-s", "0", "--sections", "peak", "grid"])
    d = strict_load(tmp_path / "accelerator_check.json")
    assert rc == 0 and list(d["sections"]) == ["peak", "grid"]
    assert all(v["skipped"].startswith("time budget") for v in d["sections"].values())


def test_cold_compile_resolves_auto_by_the_step_count(suite):
    """A one-step program's ``auto`` is ``matmul`` on a CPU; the break-even of ``cpu`` against ``matmul``."""
    from benchmarks.bench_cold_compile import break_even

    auto = suite[1]["cold_compile"]["cases"]["auto"]
    assert auto["resolved"] == "matmul"
    assert all(auto[k] > 0 for k in ("init_s", "trace_lower_s", "compile_s", "step_s")), auto
    assert 0 < auto["loss"] < 1
    rows = {"cpu": {"compile_s": 30.0, "step_s": 0.1}, "matmul": {"compile_s": 10.0, "step_s": 0.15}}
    assert break_even(rows) == pytest.approx(400.0)
    assert break_even({"cpu": rows["cpu"]}) is None
    assert break_even(rows, "cpu_") is None
