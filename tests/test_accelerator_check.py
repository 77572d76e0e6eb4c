"""The one-shot accelerator check (``benchmarks/accelerator_check.py``) on a CPU, in this
process: its ``--dry-run`` runs every section, ``eval`` included, with one small MLP
standing in for the models, so the script a lent GPU session runs first cannot rot
between sessions. Structure and consistency only, never a timing."""

from __future__ import annotations

import pytest
from test_benchmarks import assert_stats, has_torch, is_number, quick_context, strict_load

from benchmarks import accelerator_check


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("accel")
    # No time budget: on a loaded CPU the dry run can outlast the GPU session's default.
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
