"""The latent-size study (icrst_jax.latent_size_study): one grid per latent size, a side-by-side report."""

import json

import numpy as np
import pytest

from icrst_jax import latent_size_study
from icrst_jax.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig, apply_override
from icrst_jax.evaluation.intervals import bootstrap_mean_interval
from icrst_jax.reporting.console import comparison_table
from icrst_jax.studies import run as run_experiment
from icrst_jax.run_identity import fingerprint


def _study(out) -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="breast_cancer"),
        train=TrainConfig(epochs=3, batch_size=64, num_devices=1, model=ModelConfig(name="mlp")),
        modes=("standard", "trst"),
        p_values=(1.0,),
        seeds=(0, 1),
        latent_sizes=(1, 4),
        eval=EvalConfig(classifiers=("nb",), n_folds=3, tsne=False, n_jobs=1),
        out=str(out),
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("bottleneck") / "study"
    cfg = _study(out)
    return cfg, out, run_experiment(cfg)


def test_each_latent_size_is_its_own_study(swept):
    cfg, out, combined = swept
    for size in (1, 4):
        sub = latent_size_study.size_dir(out, size)
        result = json.loads((sub / "results.json").read_text())
        assert result["model"]["latent_size"] == size
        with np.load(sub / "latents_trst_p1_seed1.npz") as z:
            assert z["features"].shape == (114, size)
        with np.load(sub / "latents_untrained_seed0.npz") as z:
            assert z["features"].shape == (114, size)
    # Each width's folder is that width's grid: its own fingerprint, a rerun resumes it.
    stored = json.loads((latent_size_study.size_dir(out, 4) / "run.json").read_text())["fields"]
    assert stored == fingerprint(latent_size_study.size_config(cfg, 4, out))
    assert stored["train.model.latent_size"] == 4 and "latent_sizes" not in stored
    assert json.loads((out / "run.json").read_text())["fields"]["latent_sizes"] == [1, 4]


def test_combined_report_holds_every_widths_numbers(swept):
    cfg, out, combined = swept
    assert combined == json.loads((out / "results.json").read_text())
    assert combined["latent_sizes"] == [1, 4]
    first = json.loads((latent_size_study.size_dir(out, 1) / "results.json").read_text())
    assert combined["versions"] == first["versions"] and combined["versions"]["icrst_jax_commit"]
    assert [(r["mode"], r["latent_size"]) for r in combined["records"]] == [
        ("untrained", 1), ("standard", 1), ("trst", 1), ("untrained", 4), ("standard", 4), ("trst", 4)]
    table = (out / "latent_sizes.md").read_text()
    for size in (1, 4):
        rec = next(r for r in json.loads((latent_size_study.size_dir(out, size) / "results.json").read_text())["records"]
                   if r["mode"] == "trst")
        acc = rec["classifiers"]["nb"]["accuracy"]
        # The TRST row of the NB table carries each width's own score, in column order.
        row = next(line for line in table.splitlines() if line.startswith("| TRST (p=1)"))
        cell = row.split(" | ")[1 + (1, 4).index(size)]
        assert cell.strip(" |") == f"{acc['mean']:.3f} [{acc['low']:.3f}, {acc['high']:.3f}]"
        losses = rec["final_loss"]
        assert f"{np.mean(losses):.4f} ± {np.std(losses, ddof=1):.4f}" in table
    # TRST minus Standard, paired over each seed's folds (the same folds for every mode of a seed).
    recs = {r["mode"]: r for r in json.loads((latent_size_study.size_dir(out, 4) / "results.json").read_text())["records"]}
    diff = np.subtract(recs["trst"]["classifiers"]["nb"]["accuracy"]["folds"],
                       recs["standard"]["classifiers"]["nb"]["accuracy"]["folds"])
    assert len(diff) == 2 * 3
    row = next(line for line in table.splitlines() if line.startswith("| Gaussian NB: TRST (p=1)"))
    # The interval of the mean difference: the two seeds resampled, then each one's folds.
    low, high = bootstrap_mean_interval([diff[:3], diff[3:]])
    assert high - low < np.ptp(diff)
    assert row.split(" | ")[2].rstrip(" |") == f"{diff.mean():+.3f} [{low:+.3f}, {high:+.3f}]"
    assert (out / "accuracy_vs_latent_size.png").read_bytes().startswith(b"\x89PNG")
    assert "trst p=1 L=4" in comparison_table(combined)
    # Wider bottleneck, more information kept: the 4-unit standard AE's latents
    # classify at least as well as the 1-unit ones (NB, pooled over seeds).
    std = {r["latent_size"]: r["classifiers"]["nb"]["accuracy"]["mean"] for r in combined["records"]
           if r["mode"] == "standard"}
    assert std[4] >= std[1] - 0.02, std


def test_latent_sizes_validation():
    base = StudyConfig()
    assert apply_override(base, "latent_sizes=2,8").latent_sizes == (2, 8)
    for text, message in (("0", "latent_sizes must be a positive integer"), ("2,2", "latent_sizes must be distinct")):
        with pytest.raises(ValueError, match=message):
            apply_override(base, f"latent_sizes={text}")
    with pytest.raises(ValueError, match="latent_sizes sweeps train.model.latent_size: set that to none"):
        apply_override(apply_override(base, "train.model.latent_size=3"), "latent_sizes=2,8")
    # A study without the axis keeps the fingerprint it had before the field existed.
    assert "latent_sizes" not in fingerprint(base)
    assert fingerprint(apply_override(base, "latent_sizes=2"))["latent_sizes"] == [2]


def test_combine_needs_every_width(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.json for latent size 3"):
        latent_size_study.combine(tmp_path, [3])
