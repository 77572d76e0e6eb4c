"""The command line end to end on an offline data set, its files and its errors."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import child_env
from experiments import run as cli
from icrst_jax.config import ModelConfig, TrainConfig
from icrst_jax.evaluation import evaluate_classifiers
from icrst_jax.train import encode, fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_cli_end_to_end_files(tmp_path, capsys):
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
    # The evaluation by part (auto backend: NB as a JAX program, the forest by scikit-learn; tabular: no MI).
    for part in ("jax_classifiers_s", "sklearn_classifiers_s", "purity_s"):
        assert 0 < timing[part] <= timing["evaluation_s"]
    assert timing["mi_s"] == 0.0
    assert (out / "checkpoints").is_dir() and not (out / "checkpoints" / "icrst_p1").exists()
    # The terminal: the table fits 100 columns and the run ends with the paths it really wrote;
    # the whole log (quiet here) is in log.txt, with the optimizer steps and the early-stop warning.
    printed = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 100 for line in printed[:-1])
    wrote = printed[-1].removeprefix("wrote: ").split(", ")
    assert printed[-1].startswith("wrote: ") and all((tmp_path / w).is_file() or (out / w).is_file() for w in wrote)
    assert set(wrote) >= {str(out / "results.json"), str(out / "report.md"), str(out / "log.txt")}
    log = (out / "log.txt").read_text()
    assert "trained: 24 optimizer steps per run" in log and "epoch   3/3" in log
    assert "warning: only 24 optimizer steps per run (fewer than 300)" in log
    assert log.rstrip().endswith(printed[-1])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--p", "1.5"], "p must be in [0, 1]"),
        (["--classifiers", "logreg"], "unknown classifier"),
        (["--seeds"], "seed list is empty"),
        (["--dataset", "digits", "--width", "0.001"], "channels"),
        (["--dataset", "nope"], "invalid choice"),
        (["--p-grid", "0,x"], "comma-separated"),
        (["--seed-batch", "0"], "seed_batch must be"),
        (["--no-c"], "unrecognized arguments: --no-c"),  # no abbreviations: --no-checkpoints? --no-compilation-cache?
        (["--out", "/dev/null/run"], "--out /dev/null/run cannot be created: /dev/null is a file, not a folder; "
                                     "pick a folder you can write with --out DIR"),
    ],
)
def test_cli_errors_are_one_line(argv, message, tmp_path, capsys):
    try:
        status = cli.main(["--out", str(tmp_path / "never"), *argv])  # a later --out wins
    except SystemExit as e:  # argparse's own errors (a flag's type or choices)
        status = e.code
    assert status == 2
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if l]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error:") and message in lines[0], lines[0]
    assert not (tmp_path / "never").exists() and not list(tmp_path.iterdir())


def test_no_traceback_reaches_the_terminal():
    """The one command-line error run in a child process (the others run in-process): what
    the terminal shows is the one line, with exit status 2, for a mistake found deep in
    JAX's start-up (a platform this machine lacks)."""
    missing = "tpu" if shutil.which("nvidia-smi") else "cuda"  # a platform this machine lacks
    proc = subprocess.run([sys.executable, "-m", "experiments.run", "--dry-run"], capture_output=True, text=True,
                          timeout=120, env=child_env(JAX_PLATFORMS=missing))
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: JAX cannot start platform '{missing}'") and "cpu" in proc.stderr


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
    # A kNN vote reads the memorised labels as well as a forest does (about 0.55 on the training latents), far cheaper.
    train_acc = evaluate_classifiers(encode(result.engine, result.state, x[:n])[0], y[:n], ("knn",), n_folds=5)["knn"]["accuracy"]["mean"]
    test_acc = evaluate_classifiers(encode(result.engine, result.state, x[n:])[0], y[n:], ("knn",), n_folds=5)["knn"]["accuracy"]["mean"]
    assert train_acc > 0.3, train_acc  # chance is 0.1
    assert test_acc < 0.2, test_acc


# ---------------------------------------------------------------------------
# The stages that do no I/O, on hand-made inputs
# ---------------------------------------------------------------------------


def _scores(acc, spread=1.0):
    from icrst_jax.stages import SetScores

    summary = {"mean": acc, "low": acc - 0.1, "high": acc + 0.1, "std": 0.05, "n": 2}
    clf = {"nb": {"accuracy": summary, "f1_macro": summary}, "rf": {"accuracy": summary, "f1_macro": summary}}
    return SetScores(classifiers={"none": clf}, mi=None, purity=None, latent_spread=spread)


def test_pooled_scores_and_the_trajectory_classifiers():
    from icrst_jax.stages import pooled

    one = pooled([_scores(0.8, 2.0)], ("none",))
    assert one.classifiers["nb"]["accuracy"]["mean"] == 0.8 and one.latent_spread == [2.0]
    assert one.other_scalings == {} and one.mi is None and one.purity is None
    only = _scores(0.8).only(("nb",))
    assert list(only.classifiers["none"]) == ["nb"]
    assert list(_scores(0.8).classifiers["none"]) == ["nb", "rf"]  # frozen: the original is kept


def test_record_to_dict_is_the_results_json_form():
    from icrst_jax.stages import pooled
    from icrst_jax.reporting import EpochScores, Record

    scores = pooled([_scores(0.8)], ("none",))
    untrained = Record(mode="untrained", p=None, seeds=(0,), epoch=0, scores=scores, latents=("u0.npz",))
    assert list(untrained.to_dict()) == ["mode", "p", "seeds", "epoch", "scaling", "classifiers", "other_scalings",
                                         "mi", "purity", "latent_spread", "latents"]
    trained = Record(mode="dae", p=0.0, seeds=(0, 1), epoch=3, scores=scores, latents=("a", "b"), final_loss=(0.1, 0.2),
                     diverged=("seed 1: loss rose",), dae_sigma=0.5, trajectory=(EpochScores(0, scores),))
    d = trained.to_dict()
    assert list(d)[-5:] == ["final_loss", "latents", "diverged", "dae_sigma", "trajectory"]
    assert d["seeds"] == [0, 1] and d["trajectory"][0]["epoch"] == 0 and d["trajectory"][0]["classifiers"] == scores.classifiers


def test_tsne_panels_show_the_untrained_encoder_and_each_mode_at_its_largest_p():
    from icrst_jax.config import GridPoint, StudyConfig
    from icrst_jax.stages import Latents, tsne_panels

    cfg = StudyConfig(modes=("standard", "icrst"), p_values=(0.5, 1.0), seeds=(3,))
    points = cfg.grid()
    assert points == [GridPoint("standard", 0.0, 3), GridPoint("icrst", 0.5, 3), GridPoint("icrst", 1.0, 3)]
    final = np.arange(3 * 5 * 2, dtype=np.float32).reshape(3, 5, 2)
    untrained = -np.ones((1, 5, 2), np.float32)
    latents = Latents(points=points, final=final, untrained=untrained, along={}, missing_epochs=(),
                      loss_curves=[[1.0]] * 3, diverged=[None] * 3)
    y = np.arange(5)
    panels = tsne_panels(cfg, latents, y)
    assert list(panels) == ["Untrained", "Standard", "ICRST (p=1)"]
    np.testing.assert_array_equal(panels["Untrained"][0], untrained[0])
    np.testing.assert_array_equal(panels["ICRST (p=1)"][0], final[2])
    assert panels["Standard"][1] is y


def test_comparison_table_shows_each_scaling_and_the_corrected_mi():
    """The terminal table: raw and standardised accuracy side by side, and the bias-corrected MI
    (the plug-in MI ranks the untrained encoder first on digits)."""
    from icrst_jax.reporting.console import comparison_table

    def acc(mean):
        return {"accuracy": {"mean": mean, "low": mean - 0.05, "high": mean + 0.05}}

    def rec(mode, raw, std, mi, corrected):
        return {"mode": mode, "p": None, "classifiers": {"svm": acc(raw)}, "other_scalings": {"standardised": {"svm": acc(std)}},
                "mi": {"mi": mi, "corrected": {"mi": corrected}}}

    payload = {"dataset": "digits", "metric": "accuracy", "scalings": ["none", "standardised"],
               "records": [rec("untrained", 0.5, 0.6, 0.883, 0.011), rec("standard", 0.7, 0.8, 0.412, 0.123)]}
    lines = comparison_table(payload).splitlines()
    assert "SVM" in lines[0] and "raw" in lines[1] and "standardised" in lines[1] and "MI corrected" in lines[1]
    assert "standard " not in lines[0].replace("standardised", "")  # a scaling is never called "standard"
    row = lines[3].split()
    assert row[0] == "standard" and row[1:4] == ["0.700", "[0.65,", "0.75]"] and row[4] == "0.800"
    assert row[-1] == "0.123" and max(len(line) for line in lines) <= 100
    assert "0.883" not in lines[2] and "0.011" in lines[2]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert cli.main(["--out", str(locked / "run"), "--epochs", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: --out {locked / 'run'} cannot be created: {locked} is not writable; "
                       "pick a folder you can write with --out DIR")
        assert cli.main(["--out", str(locked), "--epochs", "1"]) == 2
        assert "is not writable; pick a folder" in capsys.readouterr().err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
def test_an_out_folder_on_a_file_system_that_refuses_it_is_refused_also_for_root(capsys):
    """os.access says yes to root everywhere; /sys refuses new folders to everyone (the
    check makes one to find out, and removes it): one line, exit 2, before any work."""
    out = Path("/sys/icrst-jax-out")
    assert cli.main(["--out", str(out), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {out} cannot be created") and "\n" not in err, err
    assert err.endswith("pick a folder you can write with --out DIR"), err
    assert not out.exists()


def test_a_message_of_several_lines_is_fitted_line_by_line():
    """The study's timing is two lines; each is wrapped to the terminal on its own."""
    from icrst_jax.log import fit_width
    from icrst_jax.reporting.records import Timing

    timing = Timing(wall_s=16, loading_s=1.3, compiling_s=2.6, training_s=1.6, setup_s=2.4, evaluation_s=8.4,
                    jax_classifiers_s=5.1, sklearn_classifiers_s=3.5, tsne_s=1.2)
    pieces = fit_width(timing.line(), 100)
    assert all(len(p) <= 100 for p in pieces)
    assert pieces[0].startswith("study 16 s: training 1.6 s")
    starts = [p for p in pieces if not p.startswith("    ")]
    assert starts == [pieces[0], next(p for p in pieces if p.startswith("evaluation 8.4 s: classifiers"))]
