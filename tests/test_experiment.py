"""The command line end to end on an offline data set, its files and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import child_env
from experiments import run as cli
from icrst_jax.config import ModelConfig, TrainConfig
from icrst_jax.evaluation import evaluate_classifiers
from icrst_jax.train import encode, fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_cli_end_to_end_files(tmp_path):
    out = tmp_path / "run"
    argv = [
        "--dataset", "breast_cancer", "--mode", "standard", "--mode", "icrst", "--p-grid", "0.5,1",
        "--seeds", "0", "1", "--epochs", "3", "--batch-size", "64", "--classifiers", "nb", "rf",
        "--folds", "3", "--num-devices", "1", "--out", str(out), "--quiet",
    ]
    assert cli.main(argv) == 0
    # Latents: one file per (mode, p, seed), features (N, 8) and labels (N,).
    names = sorted(p.name for p in out.glob("latents_*.npz"))
    assert names == [
        "latents_icrst_p0.5_seed0.npz", "latents_icrst_p0.5_seed1.npz",
        "latents_icrst_p1_seed0.npz", "latents_icrst_p1_seed1.npz",
        "latents_standard_p0_seed0.npz", "latents_standard_p0_seed1.npz",
        "latents_untrained_seed0.npz", "latents_untrained_seed1.npz",
    ]
    with np.load(out / "latents_icrst_p1_seed1.npz") as z:
        assert z["features"].shape == (114, 8) and z["features"].dtype == np.float32
        assert z["labels"].shape == (114,)
        assert np.all(np.isfinite(z["features"]))
    # Different seeds give different latents.
    with np.load(out / "latents_icrst_p1_seed0.npz") as a, np.load(out / "latents_icrst_p1_seed1.npz") as b:
        assert not np.allclose(a["features"], b["features"])
    results = json.loads((out / "results.json").read_text())
    for key in ("dataset", "config", "seeds", "records", "versions", "wall_seconds", "figures", "preprocessing", "split"):
        assert key in results
    assert [(r["mode"], r["p"]) for r in results["records"]] == [
        ("untrained", None), ("standard", 0.0), ("icrst", 0.5), ("icrst", 1.0)]
    rec = results["records"][-1]
    assert set(rec["classifiers"]) == {"nb", "rf"}
    acc = rec["classifiers"]["rf"]["accuracy"]
    assert 0.5 < acc["mean"] <= 1.0 and acc["low"] <= acc["mean"] <= acc["high"]
    assert rec["seeds"] == [0, 1]
    # Figures: t-SNE and the accuracy-vs-p curve, real PNG images.
    assert set(results["figures"]) == {"tsne.png", "accuracy_vs_p_icrst.png"}
    for fig in results["figures"]:
        data = (out / fig).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    import matplotlib.image

    img = matplotlib.image.imread(out / "tsne.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    report = (out / "report.md").read_text()
    assert "ICRST" in report and "paper" in report.lower()
    # One study: every grid point in results.json with its seed, scores and loss
    # curve; one checkpoint folder; the wall time split into its parts.
    assert [(pt["mode"], pt["p"], pt["seed"]) for pt in results["points"]] == [
        ("standard", 0.0, 0), ("standard", 0.0, 1), ("icrst", 0.5, 0), ("icrst", 0.5, 1), ("icrst", 1.0, 0), ("icrst", 1.0, 1),
    ]
    assert all(len(pt["loss_curve"]) == 3 and set(pt["classifiers"]) == {"nb", "rf"} for pt in results["points"])
    assert results["config"]["modes"] == ["standard", "icrst"] and results["config"]["train"]["epochs"] == 3
    timing = results["timing"]
    for part in ("training_s", "compiling_s", "evaluation_s"):
        assert 0 < timing[part] < timing["wall_s"]
    assert (out / "checkpoints").is_dir() and not (out / "checkpoints" / "icrst_p1").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--p", "1.5"], "p must be in [0, 1]"),
        (["--classifiers", "knn"], "unknown classifier"),
        (["--seeds"], "seed list is empty"),
        (["--dataset", "digits", "--width", "0.001"], "channels"),
        (["--dataset", "nope"], "invalid choice"),
        (["--p-grid", "0,x"], "comma-separated"),
        (["--seed-batch", "0"], "seed_batch must be"),
    ],
)
def test_cli_errors_are_one_line(argv, message, tmp_path, capsys):
    try:
        status = cli.main([*argv, "--out", str(tmp_path / "never")])
    except SystemExit as e:  # argparse's own errors (a flag's type or choices)
        status = e.code
    assert status == 2
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if l]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error:") and message in lines[0], lines[0]
    assert not (tmp_path / "never").exists()


def test_no_traceback_reaches_the_terminal():
    """The one command-line error run in a child process (the others run in-process): what
    the terminal shows is the one line, with exit status 2, for a mistake found deep in
    JAX's start-up (a platform this machine lacks)."""
    proc = subprocess.run([sys.executable, "-m", "experiments.run", "--dry-run"], capture_output=True, text=True,
                          timeout=120, env=child_env(JAX_PLATFORMS="cuda"))
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: JAX cannot start platform 'cuda'") and "available here: cpu" in proc.stderr


def test_training_split_latents_would_leak_labels():
    """Why the classifiers are judged on held-out latents (section 6 protocol).

    With random labels, ICRST memorises the training labels into the latent
    space: cross-validation on *training* latents classifies far above chance,
    while the held-out split's latents (what we report) stay at chance.
    """
    rng = np.random.default_rng(0)
    n, classes = 400, 10
    x = rng.uniform(0, 1, (2 * n, 30)).astype(np.float32)
    y = np.tile(np.arange(classes), 2 * n // classes)
    cfg = TrainConfig(mode="icrst", p=1.0, epochs=200, batch_size=40, num_devices=1, model=ModelConfig(name="mlp", width=2))
    result = fit(cfg, x[:n], y[:n], progress=False)
    train_acc = evaluate_classifiers(encode(result.engine, result.state, x[:n])[0], y[:n], ("rf",), n_folds=5)["rf"]["accuracy"]["mean"]
    test_acc = evaluate_classifiers(encode(result.engine, result.state, x[n:])[0], y[n:], ("rf",), n_folds=5)["rf"]["accuracy"]["mean"]
    assert train_acc > 0.3, train_acc  # chance is 0.1
    assert test_acc < 0.2, test_acc
