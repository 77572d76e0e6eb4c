"""Run identity and faults: a folder holds one study, faults end in one line.

CLI behaviour (interrupts, exit codes, refusals) runs the command line; the
rest calls the library. Every run is the Breast Cancer MLP for a few epochs.
"""

import gc
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import child_env
from experiments import run as cli
from icrst_jax import faults, run_identity
from icrst_jax.checkpoint import NoIntactCheckpoint
from icrst_jax.config import (EvalConfig, GridPoint, ModelConfig, StudyConfig, TrainConfig, apply_override, apply_overrides,
                              config_paths)
from icrst_jax.train import fit

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return ((x - x.min(0)) / (x.max(0) - x.min(0))).astype(np.float32), y


TINY = ["--dataset", "breast_cancer", "--mode", "standard", "--classifiers", "nb", "--folds", "2", "--no-tsne",
        "--num-devices", "1"]


# ---------------------------------------------------------------------------
# Fingerprint and default folders
# ---------------------------------------------------------------------------


def test_fingerprint_is_every_deciding_config_field():
    cfg = StudyConfig()
    fields = run_identity.fingerprint(cfg)
    # An empty latent-size axis is left out, so that studies keep the fingerprints they had before it.
    # So is an unset data.source (own data), with its label column.
    unused = {"latent_sizes", "data.target", "data.source", "data.label_column"} | {
        p for p in config_paths(cfg) if p.startswith("adapt.")}
    # The kNN vote's settings only where knn is among the classifiers (not by default).
    unused |= {"eval.knn_k", "eval.knn_temperature"}
    assert set(fields) == set(config_paths(cfg)) - set(run_identity.NOT_DECIDING) - unused
    with_knn = StudyConfig(eval=EvalConfig(classifiers=("nb", "knn")))
    assert run_identity.fingerprint(with_knn)["eval.knn_k"] == 20
    # A study scored by scikit-learn alone keeps the fingerprint it had before eval.backend existed.
    assert "eval.backend" in fields and "eval.backend" not in run_identity.fingerprint(
        apply_override(cfg, "eval.backend=sklearn"))
    adapt = run_identity.fingerprint(apply_overrides(cfg, ["data.name=digits", "data.target=mnist5k",
                                                           "modes=standard,cross_icrst"]))
    assert adapt["data.target"] == "mnist5k" and "adapt.threshold" in adapt
    assert "latent_sizes" in run_identity.fingerprint(apply_override(cfg, "latent_sizes=4,8"))
    # Data set, split, image size, model and grid all change the fingerprint and the folder.
    for changes in (["data.name=digits", "train.model.name=conv"], ["data.test_fraction=0.5"], ["data.split_seed=1"],
                    ["data.input_scheme=unit"], ["train.model.width=0.5"], ["seeds=0,1"], ["p_values=0.5"],
                    ["train.learning_rate=0.01"]):
        other = apply_overrides(cfg, changes)
        key = changes[0].split("=")[0]
        assert run_identity.first_difference(fields, run_identity.fingerprint(other))[0] == key, changes
        assert run_identity.default_out(other) != run_identity.default_out(cfg), changes
    # Where and how it runs does not.
    same = apply_override(apply_override(cfg, "train.num_devices=2"), "train.seed_batch=1")
    assert run_identity.default_out(same) == run_identity.default_out(cfg)
    assert run_identity.default_out(cfg).startswith("runs/breast_cancer-")
    # The paper's batch left implicit (None) is the same training as the number written out.
    assert cfg.train.batch_size is None
    explicit = apply_override(cfg, "train.batch_size=512")
    assert run_identity.fingerprint(explicit) == fields
    assert run_identity.fingerprint(apply_override(cfg, "train.batch_size=64")) != fields
    # More epochs continue the same training; they get their own default folder all the same.
    longer = apply_override(cfg, "train.epochs=60")
    assert run_identity.first_difference(fields, run_identity.fingerprint(longer)) is None
    assert run_identity.default_out(longer) != run_identity.default_out(cfg)


def test_readme_and_config_commands_get_distinct_folders():
    """The README's examples (and the shipped configs) never share a default folder."""
    ap = cli.build_parser()
    commands = [
        [],
        ["--config", "configs/cpu_breast_cancer.py"],
        ["--config", "configs/cpu_digits.py"],
        ["--config", "configs/cpu_digits.py", "--set", "p_values=0,0.2,0.4,0.6,0.8,1", "--set", "seeds=0,1,2"],
        ["--dataset", "digits", "--mode", "all", "--p-grid", "0.5,1", "--seeds", "0", "1", "--width", "0.125",
         "--image-size", "16"],
    ] + [["--config", str(p)] for p in sorted((ROOT / "configs").glob("*.py"))]
    folders = [run_identity.out_dir(cli.config_from_args(ap.parse_args([a if not a.startswith("configs/") else
                                                                        str(ROOT / a) for a in c])))
               for c in commands]
    assert len(set(folders[:5])) == 5
    assert len(set(folders[5:])) == len(folders) - 5


# ---------------------------------------------------------------------------
# Folder checks and the lock
# ---------------------------------------------------------------------------


def test_folder_of_another_study_is_refused_naming_the_field(tmp_path):
    cfg = StudyConfig(out=str(tmp_path))
    run_identity.check_folder(tmp_path, cfg)  # empty: fine
    run_identity.write_identity(tmp_path, cfg)
    # A run that failed before writing results (data not found) does not hold the folder.
    run_identity.check_folder(tmp_path, apply_override(cfg, "data.test_fraction=0.5"))
    (tmp_path / "results.json").write_text("{}")
    run_identity.check_folder(tmp_path, apply_override(cfg, "eval.n_folds=3"))  # re-evaluating is fine
    with pytest.raises(run_identity.RunMismatch) as e:
        run_identity.check_folder(tmp_path, apply_override(cfg, "data.test_fraction=0.5"))
    msg = str(e.value)
    assert "\n" not in msg and "data.test_fraction was 0.2 there, 0.5 now" in msg and "--out" in msg
    # A checkpoint ahead of the requested epochs would report a longer run as a shorter one.
    (tmp_path / "checkpoints" / "60").mkdir(parents=True)
    with pytest.raises(run_identity.RunMismatch, match="checkpoint at epoch 60, ahead of the requested 50 epochs"):
        run_identity.check_folder(tmp_path, cfg)
    run_identity.check_folder(tmp_path, apply_override(cfg, "train.epochs=60"))
    # Files of a run that recorded no identity are not continued blindly.
    (tmp_path / run_identity.IDENTITY_FILE).unlink()
    with pytest.raises(run_identity.RunMismatch, match="recorded no run.json"):
        run_identity.check_folder(tmp_path, cfg)
    # An --out that is a file.
    (tmp_path / "f").write_text("x")
    with pytest.raises(run_identity.RunMismatch, match="is a file"):
        run_identity.check_folder(tmp_path / "f", cfg)


def test_second_run_into_a_locked_folder_refuses_at_once(tmp_path, capsys):
    with run_identity.FolderLock(tmp_path):
        with pytest.raises(run_identity.FolderBusy, match=f"in use by another run .pid {os.getpid()}"):
            with run_identity.FolderLock(tmp_path):
                pass
        # The command line refuses in one line, before loading anything (flock is per open
        # file, so this process's second open of the lock conflicts like another process's).
        assert cli.main([*TINY, "--out", str(tmp_path), "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "in use by another run" in lines[0], lines
    with run_identity.FolderLock(tmp_path):  # released
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()  # the lock file goes with the lock


def test_a_failed_start_leaves_no_folder_and_a_run_no_lock_file(tmp_path):
    cfg = StudyConfig()
    out = tmp_path / "runs" / "study"
    with pytest.raises(RuntimeError, match="data not found"):
        with run_identity.claim_folder(out, cfg):
            assert json.loads((out / "run.json").read_text())["fields"] == run_identity.fingerprint(cfg)
            raise RuntimeError("data not found")
    assert not out.exists()
    assert not out.parent.exists()  # nor the runs/ folder it made on the way
    # A folder that existed before, or that holds results, stays.
    out.mkdir(parents=True)
    with pytest.raises(RuntimeError):
        with run_identity.claim_folder(out, cfg):
            raise RuntimeError("data not found")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]
    with run_identity.claim_folder(out, cfg):
        (out / "results.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "run.json"]


def test_device_count_is_refused_before_any_file(tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main([*TINY, "--num-devices", "5", "--out", str(out), "--quiet"]) == 2  # the test process has 4 devices
    assert capsys.readouterr().err.strip() == "error: num_devices=5 but 4 devices are available"
    assert not out.exists()


# ---------------------------------------------------------------------------
# Validation before any work, in flag names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr", "nan"], "--lr: learning_rate must be a finite number"),
        (["--lr", "inf"], "--lr: learning_rate must be a finite number"),
        (["--negative-slope", "nan"], "--negative-slope: negative_slope must be a finite number"),
        (["--negative-slope", "2"], "--negative-slope: negative_slope must be in [0, 1]"),
        (["--width", "inf"], "--width: width must be a finite number"),
        (["--dae-sigma", "nan"], "--dae-sigma: dae_sigma must be a finite number"),
        (["--test-fraction", "nan"], "--test-fraction: test_fraction must be in (0, 1)"),
        (["--dropout", "1.5"], "--dropout: dropout must be in [0, 1)"),
        (["--seeds", "-1"], "--seeds: seeds must be an integer in 0..4294967295"),
        (["--seeds", "4294967296"], "--seeds: seeds must be an integer in 0..4294967295"),
        (["--mi-k", "0"], "--mi-k: mi_k must be >= 1"),
        (["--mi-samples", "0"], "--mi-samples: mi_samples must be >= 1"),
        (["--n-jobs", "0"], "--n-jobs: n_jobs must be >= 1, or -1"),
        (["--num-devices", "0"], "--num-devices: num_devices must be"),
        (["--image-size", "0", "--dataset", "digits"], "--image-size: image_size must be >= 1"),
        (["--mode", "icrst", "--p-grid", "0.5,0.5"], "--p-grid: p values must be distinct"),
        (["--epochs", "0"], "--epochs: epochs must be >= 1"),
        (["--set", "data.split_seed=-2"], "--set data.split_seed=-2: split_seed must be an integer"),
    ],
)
def test_bad_flags_fail_in_one_line_before_any_work(argv, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: {err[0][7:]}" and message in err[0], err
    assert not out.exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert cli.main([*TINY, "--out", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {tmp_path / 'f'} is a file, not a folder"


def test_help_prints_one_default_per_option():
    text = " ".join(cli.build_parser().format_help().split())
    for flag in ("--model", "--seed-batch", "--n-jobs", "--out"):
        start = text.index(flag + " ")
        segment = text[start:text.index(" --", start + len(flag) + 1)]
        assert segment.count("[default:") <= 1, segment


# ---------------------------------------------------------------------------
# A run, its files and a rerun into its folder
# ---------------------------------------------------------------------------


def test_run_files_rerun_refusals_and_divergence(tmp_path, capsys):
    """One diverging CLI run (lr 1e6) checks the files; reruns into its folder check the refusals."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "tsne.png").write_bytes(b"an earlier run's figure")
    argv = [*TINY, "--lr", "1e6", "--epochs", "3", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "DIVERGED" in stdout
    results = json.loads((out / "results.json").read_text())
    # Divergence: named per grid point, in results.json and report.md.
    (bad,) = results["diverged"]
    assert (bad["mode"], bad["seed"]) == ("standard", 0) and ("loss rose" in bad["reason"] or "latents" in bad["reason"])
    standard = next(r for r in results["records"] if r["mode"] == "standard")  # after the untrained row
    assert standard["diverged"] and results["points"][0]["diverged"] == bad["reason"]
    report = (out / "report.md").read_text()
    assert "## Warning" in report and "DIVERGED" in report
    # The command as typed, the fingerprint, no stale figure, one file mode for every output.
    assert results["command"].startswith("python -m experiments.run --dataset breast_cancer")
    assert results["fingerprint"] == json.loads((out / "run.json").read_text())["fingerprint"]
    assert not (out / "tsne.png").exists()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    assert len(set(modes.values())) == 1, modes
    # A rerun of another study into this folder: one line naming the field, before loading anything.
    assert cli.main([*argv, "--test-fraction", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.test_fraction was 0.2 there, 0.5 now" in err[0], err
    assert cli.main([*TINY, "--lr", "1e6", "--epochs", "2", "--out", str(out), "--quiet"]) == 2
    assert "ahead of the requested 2 epochs" in capsys.readouterr().err
    # The same study resumes its finished checkpoint: the whole loss curve, no new epoch.
    assert cli.main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["points"][0]["loss_curve"] == results["points"][0]["loss_curve"]
    assert len(again["points"][0]["loss_curve"]) == 3 and [h["epoch"] for h in again["history"]] == [1, 2, 3]
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in results["history"]]


def test_non_finite_loss_stops_in_one_line(tmp_path, capsys):
    assert cli.main([*TINY, "--lr", "1e30", "--epochs", "5", "--out", str(tmp_path / "nan"), "--quiet"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "training loss became" in lines[0] and "at epoch" in lines[0] and "standard p=0 seed 0" in lines[0]
    assert "--lr" in lines[0]
    assert not (tmp_path / "nan" / "results.json").exists()


def test_non_finite_loss_names_the_grid_points():
    msg = faults.non_finite_message(4, [0.1, np.nan, np.inf], [GridPoint("standard", 0.0, 0),
                                                                GridPoint("icrst", 0.5, 1), GridPoint("trst", 1.0, 2)])
    assert "at epoch 4 for icrst p=0.5 seed 1, trst p=1 seed 2;" in msg and "standard" not in msg


def test_divergence_rules():
    z = np.ones((5, 2))
    assert faults.divergence([0.1, 0.09], z) is None
    assert "loss rose" in faults.divergence([0.1, 0.5], z)
    assert "latents reach" in faults.divergence([0.1, 0.09], z * 1e9)
    assert faults.divergence([0.1, 0.09], z * np.nan) == faults.NON_FINITE_LATENTS


# ---------------------------------------------------------------------------
# Interrupts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_at_an_epoch_keeps_a_checkpoint_and_resumes(signum, status, tmp_path):
    out = tmp_path / "run"
    # -v: the epoch lines it waits for are detail lines.
    argv = [sys.executable, "-m", "experiments.run", *TINY, "-v", "--epochs", "20000", "--out", str(out)]
    # The run's shared compilation cache: what is under test is the signal, not compiling,
    # so the second child (and the in-process rerun) load the first one's programs.
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=child_env(ICRST_JAX_CACHE_DIR=os.environ["ICRST_JAX_TEST_XLA_CACHE"]))
    for line in proc.stderr:
        if line.split()[:2] == ["epoch", "3/20000"]:
            proc.send_signal(signum)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == status
    assert "Traceback" not in rest, rest
    last = rest.strip().splitlines()[-1]
    epoch = run_identity.checkpoint_steps(out)[-1]
    assert last == (f"interrupted by {signal.Signals(signum).name}; checkpoint at epoch {epoch} kept in "
                    f"{out}/checkpoints: rerun the same command to resume")
    assert not list(out.rglob("*tmp*")), list(out.rglob("*tmp*"))
    if signum == signal.SIGINT:  # a rerun resumes it (asked for just those epochs: the test stays short)
        assert cli.main([*TINY, "--epochs", str(epoch), "--out", str(out), "--quiet"]) == 0  # in-process
        assert not (out / ".lock").exists()
        results = json.loads((out / "results.json").read_text())
        assert len(results["points"][0]["loss_curve"]) == epoch
        assert [h["epoch"] for h in results["history"]] == list(range(1, epoch + 1))  # from the checkpoint


def test_a_second_signal_ends_a_process_its_main_thread_cannot_stop(monkeypatch):
    """The watcher thread ends the process (here: records the exit) when the main thread
    does not act on a second signal in time, as when blocked in a collective, and at the
    first signal inside an exit_on_signal section (joining processes)."""
    exits = []
    monkeypatch.setattr(faults, "hard_exit", lambda status, line: exits.append((status, line)))
    monkeypatch.setattr(faults, "SECOND_SIGNAL_GRACE_S", 0.2)
    # What this process had: Python's handler, or SIG_IGN when started in the background by
    # a non-interactive shell (which ignores SIGINT in background jobs).
    sigint_before = signal.getsignal(signal.SIGINT)

    def wait_for(n):
        deadline = time.monotonic() + 10
        while len(exits) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    with faults.handle_interrupts():
        with faults.deferred():
            os.kill(os.getpid(), signal.SIGTERM)  # first: honoured at the next epoch boundary
            time.sleep(0.5)
            assert faults.stop_requested() and exits == []
            with pytest.raises(faults.Interrupted):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            wait_for(1)  # still inside after the grace: the main thread did not get out
        assert exits == [(143, "interrupted by SIGTERM a second time: stopped at once "
                                "(checkpoints written so far are kept)")]
    with faults.handle_interrupts():
        with faults.exit_on_signal("while joining"):
            with pytest.raises(faults.Interrupted):  # hard_exit only records here: the handler goes on
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            wait_for(3)  # the handler in the main thread and the watcher: whichever comes first ends it
    assert exits[1:] == [(130, "interrupted by SIGINT while joining")] * 2
    # Left: the handlers and the wakeup fd are the ones from before.
    assert signal.getsignal(signal.SIGINT) is sigint_before
    assert signal.set_wakeup_fd(-1) == -1


# ---------------------------------------------------------------------------
# Damaged checkpoints
# ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_damaged_checkpoints_are_skipped_then_refused(cancer, tmp_path, caplog):
    """Each damaged checkpoint is one warning line: the reads orbax abandons when one array
    fails print nothing (no unraisable exceptions, no asyncio error records)."""
    x, y = cancer
    cfg = TrainConfig(mode="standard", epochs=3, batch_size=512, num_devices=1, checkpoint_every=1,
                      model=ModelConfig(name="mlp"))
    ck = tmp_path / "ckpt"
    full = fit(cfg, x, y, checkpoint_dir=ck, progress=False)
    # Epoch 3: a truncated array file; epoch 2: its state item gone.
    for f in (ck / "3" / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[:3])
    import shutil

    shutil.rmtree(ck / "2" / "state")
    lines = []
    resumed = fit(cfg, x, y, checkpoint_dir=ck, progress=lines.append, engine=full.engine)  # its programs
    warnings = [line for line in lines if line.startswith("warning:")]
    assert [w.split()[4] for w in warnings] == [str(ck / "3"), str(ck / "2")], warnings
    assert resumed.resumed_from == 1 and [h["epoch"] for h in resumed.history] == [2, 3]
    assert [h["epoch"] for h in resumed.full_history] == [1, 2, 3]
    np.testing.assert_array_equal(resumed.final_loss, full.final_loss)  # resume is exact
    gc.collect()  # abandoned reads report their errors when collected
    assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    # Nothing intact: one line naming the folder and the fix.
    for step in (1, 2, 3):
        shutil.rmtree(ck / str(step) / "state")
    with pytest.raises(NoIntactCheckpoint) as e:
        fit(cfg, x, y, checkpoint_dir=ck, progress=False, engine=full.engine)
    assert "\n" not in str(e.value) and str(ck) in str(e.value) and "delete that folder" in str(e.value)
