"""The live TensorBoard logs of a study: read back with TensorBoard's own reader and compared
with results.json and the loss history, also after an interrupted and resumed study."""

import json
import signal

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import run as cli
from icrst_jax import faults
from icrst_jax.config import DataConfig, EvalConfig, LogConfig, ModelConfig, StudyConfig, TrainConfig
from icrst_jax.live_logs import LOSS_TAG, TENSORBOARD_FOLDER, log_results, training_hooks
from icrst_jax.stages import run_pipeline

EPOCHS = 4


def _config(out) -> StudyConfig:
    return StudyConfig(
        data=DataConfig(name="breast_cancer"),
        train=TrainConfig(epochs=EPOCHS, batch_size=64, checkpoint_every=2, num_devices=1,
                          model=ModelConfig(name="mlp")),
        modes=("standard", "icrst"), p_values=(1.0,), seeds=(0,),
        eval=EvalConfig(classifiers=("nb",), scalings=("none", "standardised"), n_folds=3, at_epochs=(2,),
                        epoch_classifiers=("nb",), tsne=False, n_jobs=1),
        out=str(out),
    )


def _runs(out) -> dict[str, EventAccumulator]:
    runs = {}
    for run in sorted((out / TENSORBOARD_FOLDER).iterdir()):
        acc = EventAccumulator(str(run))
        acc.Reload()
        runs[run.name] = acc
    return runs


def _series(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A study stopped after its third epoch (checkpoint at the second), then run again to its end."""
    out = tmp_path_factory.mktemp("live") / "study"
    cfg = _config(out)

    def stop_after_three(end):
        if end.epoch == 3:
            raise faults.Interrupted(signal.SIGINT)

    with pytest.raises(faults.Interrupted):
        run_pipeline(cfg, out, hooks=[stop_after_three])
    before = {name: _series(acc, LOSS_TAG) for name, acc in _runs(out).items()}
    payload = run_pipeline(cfg, out)
    return out, before, payload


def test_one_run_per_grid_point_named_like_its_latents(resumed):
    out, before, _ = resumed
    assert sorted(before) == ["icrst_p1_seed0", "standard_p0_seed0"]
    # Live: the interrupted run had written its three epochs before the evaluation.
    assert [[s for s, _ in curve] for curve in before.values()] == [[1, 2, 3]] * 2
    assert sorted(_runs(out)) == sorted(p.name.removeprefix("latents_").removesuffix(".npz")
                                        for p in out.glob("latents_*_p*_seed*.npz"))


def test_every_scalar_equals_results_json_and_each_epoch_is_there_once(resumed):
    out, _, payload = resumed
    results = json.loads((out / "results.json").read_text())
    runs = _runs(out)
    for i, point in enumerate(results["points"]):
        acc = runs[f"{point['mode']}_p{point['p']:g}_seed{point['seed']}"]
        loss = _series(acc, LOSS_TAG)
        assert [s for s, _ in loss] == list(range(1, EPOCHS + 1))  # resumed at 2: each epoch once
        np.testing.assert_allclose([v for _, v in loss], np.float32([h["loss"][i] for h in results["history"]]),
                                   rtol=1e-6)
        np.testing.assert_allclose([v for _, v in loss], np.float32(point["loss_curve"]), rtol=1e-6)
        expected = {}
        for sc, clfs in [("none", point["classifiers"]), ("standardised", point["other_scalings"]["standardised"])]:
            for name in ("nb",):
                for m in ("accuracy", "f1_macro"):
                    expected[f"final/{name}/{sc}/{m}"] = clfs[name][m]["mean"]
        expected["final/purity"] = point["purity"]["purity"]
        finals = {t for t in acc.Tags()["scalars"] if t.startswith("final/")}
        assert finals == set(expected)
        for tag, value in expected.items():
            assert _series(acc, tag) == [(EPOCHS, pytest.approx(value, rel=1e-6))], tag
        # Along training: the untrained encoder, epoch 2 and the last, as the record's trajectory (one seed).
        record = next(r for r in results["records"] if (r["mode"], r["p"]) == (point["mode"], point["p"]))
        for sc in ("none", "standardised"):
            got = _series(acc, f"along/nb/{sc}/accuracy")
            want = [(t["epoch"], (t["classifiers"] if sc == "none" else t["other_scalings"][sc])["nb"]["accuracy"]
                     ["mean"]) for t in record["trajectory"]]
            assert [s for s, _ in got] == [0, 2, EPOCHS] == [s for s, _ in want]
            np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-6)
        assert len(_series(acc, "along/purity")) == 3
    assert payload["points"][0]["seed"] == 0


def test_hyperparameters_are_logged_with_the_final_metrics(resumed):
    from tensorboard.plugins.hparams import plugin_data_pb2

    out, _, _ = resumed
    acc = _runs(out)["icrst_p1_seed0"]
    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.summary_metadata["_hparams_/session_start_info"].plugin_data.content).session_start_info
    # Each value as its own kind (a string stays a string, a number a number).
    values = {k: (v.WhichOneof("kind"), getattr(v, v.WhichOneof("kind"))) for k, v in start.hparams.items()}
    assert values == {"mode": ("string_value", "icrst"), "p": ("number_value", 1.0), "seed": ("number_value", 0.0),
                      "data": ("string_value", "breast_cancer"), "model": ("string_value", "mlp"),
                      "batch": ("number_value", 64.0), "learning_rate": ("number_value", pytest.approx(1e-3))}
    # The final metrics are the hparams plugin's metrics of the run.
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        acc.summary_metadata["_hparams_/experiment"].plugin_data.content).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {t for t in acc.Tags()["scalars"] if t.startswith("final/")}


def test_no_tensorboard_turns_the_logs_off(tmp_path):
    args = cli.build_parser().parse_args(["--no-tensorboard"])
    assert ("--no-tensorboard", "log.tensorboard=false") in cli.flagged_overrides(args)
    cfg = _config(tmp_path).replace(log=LogConfig(tensorboard=False))
    assert training_hooks(cfg, tmp_path, cfg.grid()) == []
    log_results(cfg, tmp_path, {"points": []}, None)
    assert not (tmp_path / TENSORBOARD_FOLDER).exists()
