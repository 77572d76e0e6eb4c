"""The reference row (untrained encoder), feature scalings and latents along training, end to end;
reruns and resumed runs that report every result.

Breast Cancer and the MLP only: they compile in seconds. Every training here is four runs
(:data:`POINTS`, or a study's four grid points) of :data:`TRAIN`: one compiled epoch program
and one initialiser for the whole file (the session's persistent cache serves them to
each new engine); only the epochs differ, and they are not part of the program.
"""

import json
import os
import shutil
import signal

import numpy as np
import pytest

from icrst_jax import data as data_lib
from icrst_jax import faults, reporting, run_identity
from icrst_jax.config import DataConfig, EvalConfig, GridPoint, ModelConfig, StudyConfig, TrainConfig
from icrst_jax.studies import run as run_experiment
from icrst_jax.train import EpochHook, Snapshots, encode, fit, init_state, make_engine

TRAIN = TrainConfig(epochs=3, batch_size=64, num_devices=1, model=ModelConfig(name="mlp"))
# Four runs: two seeds, three modes; seed 0 in two modes (their epoch-0 latents agree).
POINTS = [GridPoint("standard", 0.0, 0), GridPoint("icrst", 1.0, 1), GridPoint("trst", 0.5, 0),
          GridPoint("icrst", 1.0, 0)]


@pytest.fixture(scope="module")
def breast_cancer():
    return data_lib.load_dataset("breast_cancer")


def test_untrained_row_is_the_initial_encoder_and_the_report_shows_it(tmp_path, breast_cancer, monkeypatch):
    ds = breast_cancer
    cfg = StudyConfig(
        data=DataConfig(name="breast_cancer"),
        train=TRAIN,
        modes=("standard", "trst"),
        seeds=(0, 1),
        eval=EvalConfig(classifiers=("nb",), n_folds=2, n_jobs=1, scalings=("none", "standardised"), at_epochs=(0, 1),
                        epoch_classifiers=("nb",)),
        checkpoints=False,
        out=str(tmp_path / "run"),
    )
    panels = {}
    monkeypatch.setattr(reporting, "tsne_embeddings", lambda p, **kw: None)
    monkeypatch.setattr(reporting, "plot_tsne", lambda p, path, **kw: panels.update(p) or path)
    run_experiment(cfg, dataset=ds)
    out = tmp_path / "run"

    # The untrained row: each seed's latents are the encoder at its initial parameters.
    mean, std = ds.preprocessing.encoder_mean_std()
    engine = make_engine(cfg.train, ds.x_train.shape[1:], ds.x_train.shape[0])
    # Initialised as the study's four grid points (seeds 0, 1, 0, 1): the study's own initialiser.
    want = encode(engine, init_state(engine, cfg.grid()), ds.x_test, mean=mean, std=std)[:2]
    for s in (0, 1):
        with np.load(out / f"latents_untrained_seed{s}.npz") as z:
            np.testing.assert_array_equal(z["features"], want[s])
    # ... and differ from the trained ones.
    with np.load(out / "latents_standard_p0_seed0.npz") as z:
        assert not np.allclose(z["features"], want[0])

    results = json.loads((out / "results.json").read_text())
    recs = {r["mode"]: r for r in results["records"]}
    assert list(recs) == ["untrained", "standard", "trst"] and recs["untrained"]["seeds"] == [0, 1]
    assert results["scalings"] == ["none", "standardised"]
    for r in recs.values():
        assert r["scaling"] == "none" and r["classifiers"]["nb"]["scaling"] == "none"
        assert r["other_scalings"]["standardised"]["nb"]["scaling"] == "standardised"
        assert r["purity"]["k"] == 20 and len(r["latent_spread"]) == 2
    # Trajectory: epochs 0, 1 and the last; epoch 0 is the untrained row for every mode.
    for mode in ("standard", "trst"):
        traj = recs[mode]["trajectory"]
        assert [t["epoch"] for t in traj] == [0, 1, 3]
        assert traj[0]["classifiers"]["nb"]["accuracy"]["mean"] == recs["untrained"]["classifiers"]["nb"]["accuracy"]["mean"]
        assert traj[-1]["latent_spread"] == recs[mode]["latent_spread"]
    assert results["batch_size"] == 64
    with np.load(out / "latents_epoch1.npz") as z:
        assert z["features"].shape == (4, 114, 8) and list(z["points"]) == [pt.tag for pt in cfg.grid()]

    # The t-SNE panels, the report and the figure carry the reference row and both scalings.
    assert list(panels)[0] == "Untrained"
    np.testing.assert_array_equal(panels["Untrained"][0], want[0])
    report = (out / "report.md").read_text()
    assert "| Untrained encoder (epoch 0) | 0, 1 |" in report
    assert "## Classification: accuracy, raw latents" in report
    assert "## Classification: accuracy, latents standardised inside each fold" in report
    assert "## Side by side: accuracy, raw / standardised" in report
    assert "## Along training" in report and "| method | epoch 0 | epoch 1 | epoch 3 |" in report
    assert "kNN label purity" in report
    assert "accuracy_vs_epochs.png" in results["figures"] and (out / "accuracy_vs_epochs.png").stat().st_size > 20000


def test_latents_at_epoch_e_equal_a_run_trained_for_e_epochs(breast_cancer):
    ds = breast_cancer
    mean, std = ds.preprocessing.encoder_mean_std()
    points = POINTS
    seen = {}

    def on_epoch(epoch, engine, state):
        seen[epoch] = encode(engine, state, ds.x_test, mean=mean, std=std)

    long = fit(TRAIN.replace(epochs=5), ds.x_train, ds.y_train, points=points, mean=mean, std=std,
               progress=False, hooks=[Snapshots((0, 2, 5), on_epoch)])
    assert sorted(seen) == [0, 2, 5]
    short = fit(TRAIN.replace(epochs=2), ds.x_train, ds.y_train, points=points, mean=mean, std=std, progress=False,
                engine=long.engine)  # the same compiled programs: the epochs alone differ
    np.testing.assert_array_equal(seen[2], encode(short.engine, short.state, ds.x_test, mean=mean, std=std))
    np.testing.assert_array_equal(seen[5], encode(long.engine, long.state, ds.x_test, mean=mean, std=std))
    # Epoch 0: the initial parameters depend on the seed only, not on the mode.
    np.testing.assert_array_equal(seen[0][0], seen[0][2])
    assert not np.array_equal(seen[0][0], seen[0][1])
    assert not np.allclose(seen[0], seen[2])


def test_a_resumed_run_reports_the_epochs_it_cannot_encode(breast_cancer, tmp_path):
    ds = breast_cancer
    mean, std = ds.preprocessing.encoder_mean_std()
    cfg = TRAIN.replace(epochs=4)
    first = fit(cfg, ds.x_train, ds.y_train, points=POINTS, mean=mean, std=std, progress=False,
                checkpoint_dir=tmp_path / "ckpt", stop_after_epoch=2)
    seen = {}
    snapshots = Snapshots((0, 1, 2, 4), lambda e, engine, state: seen.setdefault(
        e, encode(engine, state, ds.x_test, mean=mean, std=std)))
    resumed = fit(cfg, ds.x_train, ds.y_train, points=POINTS, mean=mean, std=std, progress=False,
                  engine=first.engine, checkpoint_dir=tmp_path / "ckpt", hooks=[snapshots])
    assert resumed.resumed_from == 2 and sorted(seen) == [0, 2, 4] and snapshots.missed == [1]
    whole = fit(cfg.replace(epochs=2), ds.x_train, ds.y_train, points=POINTS, mean=mean, std=std, progress=False,
                engine=first.engine)
    np.testing.assert_array_equal(seen[2], encode(whole.engine, whole.state, ds.x_test, mean=mean, std=std))


# ---------------------------------------------------------------------------
# A rerun never loses a result
# ---------------------------------------------------------------------------

RERUN = StudyConfig(
    data=DataConfig(name="breast_cancer"),
    train=TRAIN.replace(epochs=4),
    modes=("standard", "icrst"),
    p_values=(1.0,),
    seeds=(0, 1),  # four runs: the file's one training program
    eval=EvalConfig(classifiers=("nb",), n_folds=2, n_jobs=1, at_epochs=(0, 1, 3), epoch_classifiers=("nb",),
                    tsne=False),
)
# What differs between two runs of the same study: wall times (of the study, the epochs, the classifiers' fits).
TIMING = {"timing", "wall_seconds", "seconds", "fit_time", "score_time"}


def _without_timing(tree):
    if isinstance(tree, dict):
        return {k: _without_timing(v) for k, v in tree.items() if k not in TIMING}
    return [_without_timing(v) for v in tree] if isinstance(tree, list) else tree


def _outputs(out):
    """results.json without its timing and folder, and report.md."""
    results = _without_timing(json.loads((out / "results.json").read_text()))
    results["config"].pop("out")
    return results, (out / "report.md").read_text()


class _InterruptAfter(EpochHook):
    """Sends this process a SIGINT after ``epoch``: the real signal path of a Ctrl-C."""

    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, end):
        if end.epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, breast_cancer):
    out = tmp_path_factory.mktemp("rerun") / "run"
    run_experiment(RERUN.replace(out=str(out)), dataset=breast_cancer)
    return out


def test_a_rerun_keeps_every_result(first_run, breast_cancer):
    before = _outputs(first_run)
    results = before[0]
    assert [h["epoch"] for h in results["history"]] == [1, 2, 3, 4]
    assert all([t["epoch"] for t in r["trajectory"]] == [0, 1, 3, 4] for r in results["records"][1:])
    assert "| method | epoch 0 | epoch 1 | epoch 3 | epoch 4 |" in before[1] and "Warning" not in before[1]
    # The rerun resumes the finished checkpoint: no epoch trained, epochs 1 and 3 come back from their files.
    run_experiment(RERUN.replace(out=str(first_run)), dataset=breast_cancer)
    assert _outputs(first_run) == before


def test_an_interrupted_run_resumes_to_the_same_results(first_run, breast_cancer, tmp_path):
    out = tmp_path / "run"
    cfg = RERUN.replace(out=str(out))
    with faults.handle_interrupts(), pytest.raises(faults.Interrupted):
        run_experiment(cfg, dataset=breast_cancer, hooks=[_InterruptAfter(2)])
    assert run_identity.checkpoint_steps(out)[-1] == 2 and (out / "latents_epoch1.npz").exists()
    run_experiment(cfg, dataset=breast_cancer)  # resumes at epoch 2: epoch 1's latents come from its file
    assert _outputs(out) == _outputs(first_run)


def test_a_result_that_cannot_be_made_is_reported_and_fails_the_run(first_run, breast_cancer, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(first_run, out)
    (out / "latents_epoch1.npz").unlink()
    with pytest.raises(faults.MissingResults, match=r"after epoch\(s\) 1: this run resumed from the checkpoint at epoch 4 and latents_epoch1.npz is not in"):
        run_experiment(RERUN.replace(out=str(out)), dataset=breast_cancer)
    results, report = _outputs(out)
    assert results["missing_epochs"] == [1]
    assert "## Warning" in report and "after epoch(s) 1:" in report.split("## Warning")[1].split("##")[0]
    assert all([t["epoch"] for t in r["trajectory"]] == [0, 3, 4] for r in results["records"][1:])
