"""The one-shot accelerator check (``benchmarks/accelerator_check.py``) on a CPU:
its ``--dry-run`` runs every section with tiny sizes, so the script a lent GPU
session runs first cannot rot between sessions. Structure only, never a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import child_env
from test_benchmarks import assert_stats, is_number, strict_load

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("peak", "conv_f32", "conv_bf16", "strided_f32", "grid", "grid_matmul", "conv_matmul", "grid_parts", "grid_profile")


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.accelerator_check", *args], cwd=ROOT,
                          env=child_env(), capture_output=True, text=True, timeout=600)


def test_dry_run_writes_every_section(tmp_path):
    # No time budget: on a loaded CPU the dry run can outlast the GPU session's default.
    proc = run_check("--dry-run", "--out", str(tmp_path), "--budget-s", "1e9")
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = strict_load(tmp_path / "accelerator_check.json")
    assert d["meta"]["dry_run"] is True and d["meta"]["failed"] == []
    assert list(d["sections"]) == list(SECTIONS)
    peaks = d["sections"]["peak"]["peaks"]
    for dt in ("float32", "bfloat16"):
        assert_stats(peaks[dt]["flops_per_s"], f"peak {dt}")
    for name in ("conv_f32", "conv_bf16", "strided_f32"):
        j = d["sections"][name]["jax"]
        assert_stats(j["step_samples_per_s"], f"{name} step")
        assert_stats(j["model_flops_per_s"], f"{name} flops")
        assert is_number(j["fraction_of_peak"]) and j["fraction_of_peak"] > 0
        assert is_number(j["compile_s"]) and is_number(j["final_loss"])
    assert d["sections"]["conv_bf16"]["jax"]["dtype"] == "bfloat16"
    assert is_number(d["sections"]["conv_bf16"]["ratio_vs_float32"])
    for name in ("conv_f32", "strided_f32"):
        t = d["sections"][name]["torch"]
        if "skipped" in t:  # CI installs no torch
            assert t["skipped"] == "skipped: torch not installed"
        else:
            assert_stats(t["step_samples_per_s"], f"{name} torch step")
            assert_stats(t["e2e_samples_per_s"], f"{name} torch e2e")
            assert is_number(t["ratio_step"]) and is_number(t["ratio_e2e"])
    g = d["sections"]["grid"]
    assert g["k"] == 2 and g["vmapped"]["seeds"] == 2 and g["one"]["seeds"] == 1
    assert set(g["chunked"]) == {"1"} and is_number(g["cost_vs_one"])
    # The vmapped runs trained: each run's samples count, so the K-run epoch
    # processes K times the samples of one run.
    assert g["vmapped"]["epoch_samples_per_s"]["median"] > 0
    assert g["target"]["judged"] is False  # a dry run is never judged
    gm = d["sections"]["grid_matmul"]
    assert gm["vmapped"]["seeds"] == 2 and gm["one"]["seeds"] == 1 and gm["target"]["judged"] is False
    # The loss comparisons are recorded, not judged here: the dry run's MLP has no
    # convolution, so they could not fail. That the matmul convolutions equal
    # XLA's, alone and vmapped over runs, is tested in test_conv.py.
    assert is_number(gm["loss_rel_diff_vs_xla"]) and is_number(gm["speedup_vs_xla_vmapped"])
    cm = d["sections"]["conv_matmul"]
    assert is_number(cm["ratio_vs_auto"]) and is_number(cm["loss_rel_diff_vs_auto"])
    parts = d["sections"]["grid_parts"]
    assert parts["all"] == g["vmapped"]  # measured once, in the grid section
    for name in ("no_dropout", "no_batch_norm"):
        assert parts[name]["seeds"] == 2 and is_number(parts[name]["share_of_epoch"])
    prof = d["sections"]["grid_profile"]
    for name in ("one", "vmapped"):
        assert prof[name]["op_s_per_epoch"] > 0 and prof[name]["top_ops"] and prof[name]["kinds"]
    assert (tmp_path / "grid_profile_trace.json.gz").stat().st_size > 0
    text = (tmp_path / "accelerator_check.txt").read_text()
    assert "accelerator check" in text and "not judged (dry run)" in text


def test_without_accelerator_refuses_in_one_line(tmp_path):
    proc = run_check("--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no accelerator found (jax.default_backend() is 'cpu'); use --dry-run on a CPU"]


def test_time_budget_skips_sections_but_writes_the_file(tmp_path):
    proc = run_check("--dry-run", "--out", str(tmp_path), "--budget-s", "0", "--sections", "peak", "grid")
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = json.loads((tmp_path / "accelerator_check.json").read_text())
    assert list(d["sections"]) == ["peak", "grid"]
    assert all(v["skipped"].startswith("time budget") for v in d["sections"].values())
