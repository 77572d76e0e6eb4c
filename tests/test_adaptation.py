"""The adaptation study (icrst_jax.adaptation): the target domain's labels never reach training, the
pseudo-label refresh, the adaptation protocol on planted latents, the latents it writes."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from icrst_jax import adaptation, live_logs
from icrst_jax.config import (AdaptConfig, DataConfig, EvalConfig, LogConfig, ModelConfig, StudyConfig, TrainConfig,
                              apply_override)
from icrst_jax.live_logs import LOSS_TAG, TENSORBOARD_FOLDER

EPOCHS, EVERY = 5, 2  # refreshes before epochs 0, 2 and 4


def _domain(rng, n, shift):
    """n samples of 3 classes: (n, 4, 4, 1) images in [0, 1] whose class brightens one quadrant."""
    y = rng.permutation(np.arange(n) % 3)
    x = rng.uniform(0, 0.3, (n, 4, 4, 1)) + shift
    for c, (r, q) in enumerate([(0, 0), (0, 2), (2, 0)]):
        x[y == c, r : r + 2, q : q + 2] += 0.5
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int32)


def _pair():
    rng = np.random.default_rng(0)
    src = [*_domain(rng, 90, 0.0), *_domain(rng, 30, 0.0)]
    tgt = [*_domain(rng, 90, 0.2), *_domain(rng, 30, 0.2)]
    make = lambda a: SimpleNamespace(x_train=a[0], y_train=a[1], x_test=a[2], y_test=a[3])  # noqa: E731
    return make(src), make(tgt)


CFG = StudyConfig(
    data=DataConfig(name="digits", target="mnist5k", image_size=16),
    train=TrainConfig(epochs=EPOCHS, batch_size=32, model=ModelConfig(name="mlp", width=0.25, latent_size=3)),
    modes=("standard", "icrst", "cross_icrst"),
    p_values=(1.0,),
    seeds=(0,),
    adapt=AdaptConfig(refresh_every=EVERY, threshold=0.6),
    eval=EvalConfig(classifiers=("nb",), n_folds=2, purity_k=5, untrained=False),
)


@pytest.fixture(scope="module")
def planted():
    """The study run twice: with the target's labels, and with them replaced by random ones."""
    source, target = _pair()
    runs = []
    for labels in (target.y_train, np.random.default_rng(1).integers(0, 3, target.y_train.size)):
        caught = []
        real = adaptation.train_adaptation

        def spy(*args, **kwargs):  # keeps what training returned; the second run reuses the compiled programs
            caught.append(real(*args, engine=runs[0][1].engine if runs else None, **kwargs))
            return caught[-1]

        adaptation.train_adaptation = spy
        try:
            t = SimpleNamespace(**{**vars(target), "y_train": labels.astype(np.int32),
                                   "y_test": np.random.default_rng(2).permutation(target.y_test)
                                   if runs else target.y_test})
            payload = adaptation.run_adaptation(CFG, source, t)
        finally:
            adaptation.train_adaptation = real
        runs.append((payload, caught[0]))
    return runs


def test_target_labels_never_reach_training(planted):
    (a, ta), (b, tb) = planted
    np.testing.assert_array_equal(ta.loss, tb.loss)
    for name in ta.final_latents:
        np.testing.assert_array_equal(ta.final_latents[name], tb.final_latents[name])
    for r in ta.refreshes:
        for fa, fb in zip(ta.refreshes[r], tb.refreshes[r]):
            np.testing.assert_array_equal(fa.pseudo_labels, fb.pseudo_labels)
    # The planted labels did reach the evaluation (so the test can tell them apart).
    assert [r["pseudo_label_accuracy"] for r in a["records"][2]["refreshes"]] != \
        [r["pseudo_label_accuracy"] for r in b["records"][2]["refreshes"]]
    # The modes trained differently (cross pairing changes the loss) in one compiled epoch.
    assert len(set(ta.loss[-1].tolist())) == 3
    assert ta.engine is tb.engine and tb.compile_count == 1  # one epoch program for both runs and every refresh


def test_pseudo_labels_refresh_every_k_epochs_and_are_recorded(planted):
    payload, training = planted[0]
    assert list(training.refreshes) == [2]  # the cross_icrst point only
    refreshes = training.refreshes[2]
    assert [f.epoch for f in refreshes] == list(range(0, EPOCHS, EVERY))
    for f in refreshes:
        assert f.threshold == 0.6
        assert f.paired_share == pytest.approx(np.mean(f.pseudo_labels >= 0))
        assert set(np.unique(f.pseudo_labels)) <= {-1, 0, 1, 2}
    # Training makes the source classes separable: the share paired rises from the untrained encoder's.
    assert 0 < refreshes[0].paired_share < 1 and refreshes[-1].paired_share > refreshes[0].paired_share
    recorded = payload["records"][2]["refreshes"]
    assert [r["paired_share"] for r in recorded] == [f.paired_share for f in refreshes]
    assert recorded[-1]["pseudo_label_accuracy"] > 0.8  # the planted classes shift by brightness only


def test_only_confident_target_samples_are_paired():
    rng = np.random.default_rng(0)
    y_s = np.repeat([0, 1], 200)
    z_s = np.c_[2.0 * y_s + rng.normal(0, 1, 400), rng.normal(0, 1, 400)]  # classes centred at x = 0 and 2
    # Target: 20 far on class 0's side, 20 far on class 1's (confident), 20 halfway (posterior about 0.5).
    z_t = np.c_[np.r_[np.full(20, -3.0), np.full(20, 5.0), np.full(20, 1.0)] + rng.normal(0, 0.05, 60),
                rng.normal(0, 0.3, 60)]
    lab, conf = adaptation.pseudo_labels(z_s, y_s, z_t, classifier="nb", threshold=0.9)
    assert conf[:40].all() and not conf[40:].any()
    assert (lab[:20] == 0).all() and (lab[20:40] == 1).all()
    points = CFG.grid()
    tables = adaptation._tables(points, y_s, 60, np.array([0, 1]), {2: (lab, conf)})
    for r, table in enumerate(tables):
        target_class = np.asarray(table.sample_class)[400:]
        expect = np.where(conf, lab, -1) if r == 2 else np.full(60, -1)
        np.testing.assert_array_equal(target_class, expect)
        np.testing.assert_array_equal(np.asarray(table.sample_domain), np.r_[np.zeros(400), np.ones(60)])
    assert [x.shape for x in tables[0]] == [x.shape for x in tables[2]]  # the compiled epoch is reused


def test_adaptation_protocol_on_planted_latents():
    rng = np.random.default_rng(0)
    y_s, y_t = np.repeat([0, 1, 2], 60), np.repeat([0, 1, 2], 40)
    centers = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    z_s = centers[y_s] + rng.normal(0, 0.5, (180, 2))
    z_t = centers[y_t] + rng.normal(0, 0.5, (120, 2))
    rec = adaptation.evaluate_point(z_s, y_s, z_t, y_t, classifiers=("nb", "svm"), n_folds=3, purity_k=5)
    assert rec["transfer"] == {"nb": 1.0, "svm": 1.0} and rec["target_only"]["nb"] == 1.0
    assert rec["target_purity"] == 1.0
    assert abs(rec["domain_accuracy"] - 0.5) < 0.12  # one distribution: the domains cannot be told apart
    # Target labels rotated: the source's classifier is always wrong on them.
    assert adaptation.transfer_accuracy(z_s, y_s, z_t, (y_t + 1) % 3, ["nb"])["nb"] == 0.0
    shifted = adaptation.domain_invariance(z_s, z_t + np.array([20.0, 20.0]), classifier="nb")
    assert shifted > 0.98
    pooled = adaptation.pool_over_seeds([rec, {**rec, "domain_accuracy": 0.7}])
    assert pooled["transfer/nb"]["mean"] == 1.0
    assert pooled["domain_accuracy"]["mean"] == pytest.approx((rec["domain_accuracy"] + 0.7) / 2)


def test_adaptation_config_is_validated():
    with pytest.raises(ValueError, match="cross_icrst needs data.target"):
        StudyConfig(modes=("standard", "cross_icrst"))
    with pytest.raises(ValueError, match="another image data set"):
        DataConfig(name="digits", target="digits")
    with pytest.raises(ValueError, match="refresh_every"):
        AdaptConfig(refresh_every=0)
    assert apply_override(CFG, "adapt.threshold=0.5").adapt.threshold == 0.5
    with pytest.raises(ValueError, match="cross_icrst needs data.target"):
        apply_override(CFG, "data.target=none")


@pytest.fixture(scope="module")
def written(planted, tmp_path_factory):
    """The study with a folder (latents and TensorBoard runs), on the compiled programs of ``planted``."""
    out = tmp_path_factory.mktemp("adaptation")
    real, engine = adaptation.train_adaptation, planted[0][1].engine
    adaptation.train_adaptation = lambda *a, **k: real(*a, engine=engine, **k)
    try:
        cfg = CFG.replace(eval=dataclasses.replace(CFG.eval, untrained=True))
        lines = []
        return cfg, adaptation.run_adaptation(cfg, *_pair(), out=out, progress=lines.append), out, lines
    finally:
        adaptation.train_adaptation = real


def test_every_points_latents_are_written_and_reproduce_its_transfer_accuracy(written):
    source, target = _pair()
    cfg, payload, tmp_path, _ = written
    assert len(list(tmp_path.glob("*.npz"))) == 4 * (len(cfg.grid()) + len(cfg.seeds))
    for rec in payload["records"] + payload["untrained"]:
        z = {name: np.load(tmp_path / f) for name, f in rec["latents"].items()}
        for name, y in (("source_train", source.y_train), ("source_test", source.y_test),
                        ("target_train", target.y_train), ("target_test", target.y_test)):
            np.testing.assert_array_equal(z[name]["labels"], y)
            assert z[name]["features"].shape == (y.size, 3)
        # The record's numbers come from exactly these latents: source train then test, scored on the target's test.
        z_source = np.concatenate([z["source_train"]["features"], z["source_test"]["features"]])
        acc = adaptation.transfer_accuracy(z_source, np.concatenate([source.y_train, source.y_test]),
                                           z["target_test"]["features"], target.y_test, ["nb"], seed=rec["seed"])
        assert acc == rec["transfer"]
    trained = np.load(tmp_path / payload["records"][0]["latents"]["target_test"])["features"]
    untrained = np.load(tmp_path / payload["untrained"][0]["latents"]["target_test"])["features"]
    assert not np.allclose(trained, untrained)


def test_the_study_says_its_optimizer_steps_and_warns_when_they_are_few(written):
    """As a grid study does: one line of steps and loss, one warning line for a short training."""
    cfg, _, _, lines = written
    steps = -(-(90 + 90) // cfg.train.batch_size) * cfg.train.epochs  # source and target training rows, ragged last batch
    said = [line for line in lines if line.startswith("trained: ")]
    assert len(said) == 1 and said[0].split(" optimizer steps per run")[0] == f"trained: {steps}", said
    warning = [line for line in lines if line.startswith("warning: only ")]
    assert len(warning) == 1 and "(--epochs)" in warning[0]


def test_each_point_logs_its_loss_and_measures_to_tensorboard(written):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg, payload, out, _ = written
    loss = np.asarray(payload["loss"], np.float32)  # (epochs, runs)
    assert sorted(p.name for p in (out / TENSORBOARD_FOLDER).iterdir()) == sorted(pt.tag for pt in cfg.grid())
    for r, (pt, rec) in enumerate(zip(cfg.grid(), payload["records"])):
        acc = EventAccumulator(str(out / TENSORBOARD_FOLDER / pt.tag))
        acc.Reload()
        curve = [(e.step, e.value) for e in acc.Scalars(LOSS_TAG)]
        assert [s for s, _ in curve] == list(range(1, EPOCHS + 1))
        np.testing.assert_allclose([v for _, v in curve], loss[:, r], rtol=1e-6)
        want = {"final/transfer/nb/accuracy": rec["transfer"]["nb"], "final/target_only/nb/accuracy":
                rec["target_only"]["nb"], "final/domain_accuracy": rec["domain_accuracy"],
                "final/target_purity": rec["target_purity"]}
        assert {t for t in acc.Tags()["scalars"] if t != LOSS_TAG} == set(want)
        for tag, value in want.items():
            assert [(e.step, e.value) for e in acc.Scalars(tag)] == [(EPOCHS, pytest.approx(value, rel=1e-6))]
        start = plugin_data_pb2.HParamsPluginData.FromString(
            acc.summary_metadata["_hparams_/session_start_info"].plugin_data.content).session_start_info
        assert {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()} == {
            "mode": pt.mode, "p": pt.p, "seed": pt.seed, "data": "digits", "target": "mnist5k", "model": "mlp",
            "batch": 32, "learning_rate": pytest.approx(CFG.train.learning_rate)}


def test_no_tensorboard_logs_nothing(tmp_path):
    cfg = CFG.replace(log=LogConfig(tensorboard=False))
    assert live_logs.adaptation_training_log(cfg, tmp_path, cfg.grid()) is None
    assert live_logs.adaptation_training_log(CFG, None, CFG.grid()) is None  # no study folder
    live_logs.log_adaptation(cfg, tmp_path, cfg.grid(), [{"domain_accuracy": 0.5, "target_purity": 0.5}] * 3)
    assert not (tmp_path / TENSORBOARD_FOLDER).exists()


def test_the_study_writes_its_report_from_its_results_json(planted, tmp_path, monkeypatch):
    """run() writes results.json (with the code's versions) and the report the docs' quoted tables render from it."""
    import json

    from icrst_jax.reporting import quoted

    pair = [SimpleNamespace(**vars(d), summary=lambda: "planted") for d in _pair()]
    real, engine = adaptation.train_adaptation, planted[0][1].engine
    monkeypatch.setattr(adaptation, "load_pair", lambda cfg: tuple(pair))
    monkeypatch.setattr(adaptation, "train_adaptation", lambda *a, **k: real(*a, engine=engine, **k))
    cfg = CFG.replace(out=str(tmp_path / "study"), log=LogConfig(tensorboard=False))
    adaptation.run(cfg, command="python -m experiments.run --config adapt.py")
    payload = json.loads((tmp_path / "study" / "results.json").read_text())
    assert payload["command"] == "python -m experiments.run --config adapt.py"
    assert set(payload["versions"]) >= {"jax", "icrst_jax_commit"} and payload["wall_seconds"] > 0
    assert (tmp_path / "study" / "report.md").read_text() == quoted.report_of(payload)
