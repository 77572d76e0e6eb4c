"""Training engine: compile once, devices, seeds, checkpoints, ragged batches."""

import logging

import jax
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from icrst_jax import faults, train
from icrst_jax.checkpoint import CheckpointMismatch
from icrst_jax.config import GridPoint, ModelConfig, TrainConfig
from icrst_jax.data import load_dataset
from icrst_jax.train import (
    LOOP_EMITTERS_MAX_STEPS,
    Checkpointer,
    EpochEnd,
    NonFiniteGuard,
    Snapshots,
    TrainStart,
    compile_epoch,
    effective_batch_size,
    encode,
    fit,
    init_state,
    make_engine,
    make_train_data,
    reconstruct,
    seed_parallel,
)


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.min(0)) / (x.max(0) - x.min(0))).astype(np.float32)
    return x, y


def mlp_config(**kw):
    base = dict(mode="icrst", p=0.5, epochs=3, batch_size=64, model=ModelConfig(name="mlp"))
    base.update(kw)
    return TrainConfig(**base)


def tiny_conv_config(**kw):
    """``conv_tiny`` (one conv + BatchNorm + LeakyReLU + dropout block each way, 4
    channels): every kind of layer and state of the Table D1 conv, compiled in a
    fraction of its time, for the sharding and vmap tests."""
    base = dict(mode="icrst", p=0.5, epochs=2, batch_size=16, model=ModelConfig(name="conv_tiny", width=1 / 8, dropout=0.2))
    base.update(kw)
    return TrainConfig(**base)


def tiny_images(n=48, size=12, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 1, (n, size, size, 1)).astype(np.float32) * 0.5 + y[:, None, None, None] / 4.0
    return x, y


def leaves_close(a, b, rtol=1e-5, atol=1e-6):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


# Compiling an MLP epoch costs seconds; running one, milliseconds. The MLP tests
# on Breast Cancer share two engines (``fit(engine=...)``), each with one program:
# one run on one device (every separate run below), and two seeds vmapped on four.


@pytest.fixture(scope="module")
def mlp_one(cancer):
    """Seeds 0 and 1 of the MLP (ICRST p=0.5, 2 epochs) on one device, each its own
    run (the second with the first's compiled program)."""
    x, y = cancer
    first = fit(mlp_config(epochs=2, num_devices=1), x, y, seeds=[0], progress=False)
    return first, fit(mlp_config(epochs=2, num_devices=1), x, y, seeds=[1], progress=False, engine=first.engine)


@pytest.fixture(scope="module")
def mlp_four(cancer):
    """Seeds 0 and 1 vmapped in one run on 4 devices, and how often its fresh engine traced the epoch."""
    x, y = cancer
    result = fit(mlp_config(epochs=2, num_devices=4), x, y, seeds=[0, 1], progress=False)
    return result, list(result.engine.trace_count)


def test_epoch_compiles_once(cancer, mlp_four):
    x, y = cancer
    first, traced = mlp_four
    assert len(first.history) == 2 and traced == [1]
    # More epochs of the same program trace nothing again.
    before = first.engine.trace_count[0]
    result = fit(mlp_config(epochs=4, num_devices=4), x, y, seeds=[0, 1], progress=False, engine=first.engine)
    assert len(result.history) == 4
    assert result.engine.trace_count == [before]


def test_loss_decreases_and_history(cancer, mlp_one):
    x, y = cancer
    result = fit(mlp_config(mode="standard", epochs=20, num_devices=1), x, y, progress=False, engine=mlp_one[0].engine)
    losses = [h["loss"][0] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert all(h["samples_per_s"] > 0 for h in result.history)


def test_progress_lines(cancer, mlp_one, capsys):
    x, y = cancer
    lines = []
    first = fit(mlp_config(epochs=2, num_devices=1), x, y, progress=lines.append, engine=mlp_one[0].engine)
    assert any("compiled" in l for l in lines)
    assert sum("samples/s" in l for l in lines) == 2
    capsys.readouterr()
    # True prints the lines to stderr; False prints nothing at all.
    fit(mlp_config(epochs=1, num_devices=1), x, y, progress=True, engine=first.engine)
    printed = capsys.readouterr()
    assert "samples/s" in printed.err and printed.out == ""
    fit(mlp_config(epochs=1, num_devices=1), x, y, progress=False, engine=first.engine)
    assert capsys.readouterr() == ("", "")


def test_engine_reuse_compiles_nothing_new(cancer, mlp_one):
    """fit(engine=...) runs other seeds, modes and epoch counts with the
    programs compiled before, and refuses an engine built for another program."""
    x, y = cancer
    cfg = mlp_config(epochs=1, num_devices=1)
    first = fit(cfg, x, y, seeds=[0], progress=False, engine=mlp_one[0].engine)  # the one-run program
    traced = first.engine.trace_count[0]
    again = fit(cfg.replace(mode="trst", p=1.0, epochs=2, seed=5), x, y, progress=False, engine=first.engine)
    assert again.engine is first.engine and first.engine.trace_count == [traced] and again.compile_seconds == 0.0
    assert len(again.history) == 2 and again.seeds == [5]
    with pytest.raises(ValueError, match="another config .*batch_size"):
        fit(cfg.replace(batch_size=32), x, y, progress=False, engine=first.engine)
    with pytest.raises(ValueError, match="569 samples of shape"):
        fit(cfg, x[:100], y[:100], progress=False, engine=first.engine)
    with pytest.raises(ValueError, match="noise=True"):
        fit(cfg.replace(mode="dae"), x, y, progress=False, engine=first.engine)


def step_losses(result):
    return np.concatenate([np.asarray(h["step_loss"]) for h in result.history], axis=1)  # (seeds, steps)


def separate(results):
    """(step losses, state) of separate runs, stacked along the run axis as one vmapped run's."""
    state = jax.tree_util.tree_map(lambda *a: np.concatenate([np.asarray(v) for v in a]), *[r.state for r in results])
    return np.concatenate([step_losses(r) for r in results]), state


def assert_same_training(a, b, params_atol):
    """Same training up to float reassociation; ``a``, ``b``: a FitResult, or
    :func:`separate` runs.

    The step losses must agree tightly: any real difference (BatchNorm
    statistics per device instead of global, a lost or duplicated shard, mixed-up
    seeds or keys) changes them at the percent level. Parameters get a looser
    bound: Adam divides by sqrt(v), so reassociation noise in a near-zero
    gradient moves a weight by up to the learning rate per step.
    """
    (la, sa), (lb, sb) = (a if isinstance(a, tuple) else (step_losses(a), a.state),
                          b if isinstance(b, tuple) else (step_losses(b), b.state))
    np.testing.assert_allclose(la[:, 0], lb[:, 0], rtol=2e-6)  # first step: identical params
    np.testing.assert_allclose(la, lb, rtol=2e-4)
    leaves_close(sa.params, sb.params, rtol=0, atol=params_atol)
    leaves_close(sa.batch_stats, sb.batch_stats, rtol=1e-2, atol=params_atol)
    # The runs trained differently: the bounds above have the power to tell them apart.
    assert not np.allclose(la[0], la[1], rtol=1e-3)


@pytest.fixture(scope="module")
def conv_runs():
    """The tiny conv (dropout on), seeds 0 and 1: vmapped (``seed_batch=2``; on a CPU
    the default would loop over them) on 4 devices, and each seed alone on 1 device
    (the second with the first's program). Two programs, each compiled once."""
    x, y = tiny_images()
    cfg = tiny_conv_config(seed_batch=2)
    four = fit(cfg.replace(num_devices=4), x, y, seeds=[0, 1], progress=False)
    first = fit(cfg.replace(num_devices=1), x, y, seeds=[0], progress=False)
    second = fit(cfg.replace(num_devices=1), x, y, seeds=[1], progress=False, engine=first.engine)
    return cfg, (first, second), four


@pytest.mark.parametrize("make", ["mlp", "conv"])
def test_vmapped_seeds_on_four_devices_equal_separate_runs_on_one(request, make):
    """Two seeds vmapped, their global batch split over 4 (fake CPU) devices, train as each
    seed alone on 1 device: neither the devices (BatchNorm statistics, shards) nor the run
    axis (keys, statistics across seeds) change the training. How the runs are vmapped
    on one device is checked tighter in ``test_seed_batch_chunks_equal_separate_runs``
    and ``test_grid_point_equals_its_separate_run``."""
    assert jax.device_count() == 4
    if make == "mlp":
        cfg, runs, r4 = mlp_config(epochs=2), request.getfixturevalue("mlp_one"), request.getfixturevalue("mlp_four")[0]
    else:
        cfg, runs, r4 = request.getfixturevalue("conv_runs")
    assert runs[0].engine.mesh.devices.size == 1 and r4.engine.mesh.devices.size == 4
    n_steps = step_losses(runs[0]).shape[1]
    assert_same_training(separate(runs), r4, params_atol=cfg.learning_rate * n_steps)


def test_table_d1_conv_trains(shipped_compiler):
    """The Table D1 conv itself (width 1/8, BatchNorm, dropout) on 64 digits at
    12x12: it compiles once and its reconstruction loss falls steadily. The
    equality tests above (devices, vmapped seeds) run on ``conv_tiny``, made of
    the same layers, on the convolutions ``auto`` picks for such short programs
    (``matmul``; the CPU path under vmap and devices is tested in ``test_conv.py``).
    Here XLA's convolutions, which
    compile in a third of the time (BENCHMARKS.md, "Cold start"); that the CPU
    convolutions compute XLA's on this model's layer shapes is
    ``test_conv.py::test_cpu_matches_xla_on_model_shapes``. Compiled as shipped: 20
    epochs of XLA's convolutions unoptimised run longer than they compile."""
    ds = load_dataset("digits", image_size=12)
    mean, std = ds.preprocessing.encoder_mean_std()
    cfg = TrainConfig(mode="standard", epochs=20, batch_size=16, learning_rate=3e-3, num_devices=1,
                      model=ModelConfig(name="conv", width=1 / 8, dropout=0.2, conv_impl="xla"))
    r = fit(cfg, ds.x_train[:64], ds.y_train[:64], seeds=[0], mean=mean, std=std, progress=False)
    assert r.engine.trace_count == [1]
    losses = np.asarray([h["loss"][0] for h in r.history])
    assert losses[-1] < 0.6 * losses[0], losses
    assert np.all(np.diff(losses[-10:]) < 0), losses  # still falling: not stuck at an offset


def test_short_cpu_programs_compile_with_the_loop_emitters():
    """The epoch program's XLA options follow its optimizer steps (epochs x steps per epoch x
    runs): below the line, the loop emitters, which this jaxlib's XLA must accept (else every
    program would quietly compile with the defaults); from it on, XLA's defaults."""
    assert train._loop_emitters_known()
    loop = {"xla_cpu_use_fusion_emitters": False}
    cfg = mlp_config(epochs=10, num_devices=1)  # 455 samples in batches of 64: 8 steps an epoch
    below = (LOOP_EMITTERS_MAX_STEPS - 1) // 80
    assert make_engine(cfg, (30,), 455, runs=below).compiler_options == loop
    assert make_engine(cfg, (30,), 455, runs=below + 1).compiler_options == {}


def test_four_devices_really_split_the_batch(cancer, mlp_four):
    """The compiled 4-device epoch reduces gradients across devices."""
    x, y = cancer
    engine = mlp_four[0].engine
    data = make_train_data(engine, x, y)
    state = init_state(engine, [0, 1])
    compiled, _ = compile_epoch(engine, state, data)
    hlo = compiled.as_text()
    assert "all-reduce" in hlo or "reduce-scatter" in hlo


def test_seed_batch_chunks_equal_separate_runs(cancer, mlp_one):
    """seed_batch=2 over 3 seeds (a chunk of 2 vmapped, then a remainder of 1),
    run as a loop inside the program: each seed trains as its separate run."""
    x, y = cancer
    cfg = mlp_config(epochs=2, num_devices=1)
    chunked = fit(cfg.replace(seed_batch=2), x, y, seeds=[3, 7, 11], progress=False)
    engine = mlp_one[0].engine  # the three separate runs share one compiled program
    for i, s in enumerate([3, 7, 11]):
        alone = fit(cfg, x, y, seeds=[s], progress=False, engine=engine)
        one = jax.tree_util.tree_map(lambda a: a[i : i + 1], chunked.state.params)
        leaves_close(one, alone.state.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(step_losses(chunked)[i], step_losses(alone)[0], rtol=1e-5)
    # And the seeds really differ from each other.
    p = jax.tree_util.tree_leaves(chunked.state.params)[0]
    assert not np.allclose(p[0], p[1]) and not np.allclose(p[1], p[2])
    # The schedule really differs: a loop over seed chunks at the top level.
    data = make_train_data(chunked.engine, x, y)
    def top_level_scans(e):
        eqns = jax.make_jaxpr(seed_parallel(e, chunked.state))(chunked.state, data).jaxpr.eqns
        return sum(eq.primitive.name == "scan" for eq in eqns)

    # vmap (the MLP's default): the epoch's scan over steps only; chunks: a scan over the chunks as well.
    assert top_level_scans(engine) == 1
    assert top_level_scans(chunked.engine) > 1
    # The default (None) on a CPU: chunks of one seed for a conv model, all vmapped for the MLP.
    # 48 samples in batches of 16: a scan of length 3 over steps; 2 seeds: a scan of length 2 over seeds.
    def top_scan_lengths(cfg):
        e = make_engine(cfg, (12, 12, 1), 48)
        st = init_state(e, [0, 1])
        d = make_train_data(e, np.zeros((48, 12, 12, 1), np.float32), np.arange(48) % 2)
        return [eq.params["length"] for eq in jax.make_jaxpr(seed_parallel(e, st))(st, d).jaxpr.eqns
                if eq.primitive.name == "scan"]

    assert top_scan_lengths(tiny_conv_config(num_devices=1)) == [2]  # default on a CPU: loop over seeds
    assert top_scan_lengths(tiny_conv_config(num_devices=1, seed_batch=2)) == [3]  # all vmapped
    with pytest.raises(ValueError, match="seed_batch"):
        cfg.replace(seed_batch=0)


def test_checkpoint_resume_equals_uninterrupted(cancer, mlp_four, tmp_path):
    x, y = cancer
    cfg = mlp_config(epochs=4, num_devices=4, checkpoint_every=2)
    full = fit(cfg, x, y, seeds=[0, 1], progress=False, engine=mlp_four[0].engine)
    # An interrupted run: stops after epoch 2 (checkpointed), then resumes
    # (with the same compiled programs: only the checkpoint carries the state).
    ck = tmp_path / "ckpt"
    part = fit(cfg, x, y, seeds=[0, 1], checkpoint_dir=ck, progress=False, stop_after_epoch=2, engine=full.engine)
    assert len(part.history) == 2
    resumed = fit(cfg, x, y, seeds=[0, 1], checkpoint_dir=ck, progress=False, engine=full.engine)
    assert resumed.resumed_from == 2
    assert [h["epoch"] for h in resumed.history] == [3, 4]
    leaves_close(full.state.params, resumed.state.params, rtol=0, atol=0)
    leaves_close(full.state.opt_state, resumed.state.opt_state, rtol=0, atol=0)
    # A finished run resumes to the end with nothing left to do.
    again = fit(cfg, x, y, seeds=[0, 1], checkpoint_dir=ck, progress=False, engine=full.engine)
    assert again.resumed_from == 4 and again.history == []


def test_checkpoint_of_another_run_is_refused(cancer, mlp_one, tmp_path):
    x, y = cancer
    cfg = mlp_config(epochs=1, num_devices=1)
    fit(cfg, x, y, checkpoint_dir=tmp_path, progress=False, engine=mlp_one[0].engine)
    with pytest.raises(CheckpointMismatch, match="different run"):
        fit(cfg.replace(mode="trst"), x, y, checkpoint_dir=tmp_path, progress=False, engine=mlp_one[0].engine)


def test_ragged_last_batch_is_used_not_dropped():
    # 100 samples, batch 32: 4 steps, the last with 4 real rows.
    cfg = mlp_config(batch_size=32, num_devices=4)
    engine = make_engine(cfg, (5,), 100)
    assert engine.batch_size == 32 and engine.steps_per_epoch == 4
    assert effective_batch_size(cfg, 10, 4) == 12  # capped at N, rounded to the mesh
    # A ragged epoch weighs every real sample once: with a model that has
    # learned nothing (lr tiny), the epoch loss equals the full-data loss.
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (100, 5)).astype(np.float32)
    y = rng.integers(0, 2, 100)
    cfg = cfg.replace(learning_rate=1e-12, mode="standard", epochs=1)
    result = fit(cfg, x, y, progress=False)

    # The inference-mode reconstruction of the initial model (no BN, no
    # dropout in the MLP) gives the exact per-sample losses.
    recon = reconstruct(result.engine, result.state, x)[0]
    expected = np.mean((recon - x) ** 2)
    np.testing.assert_allclose(result.final_loss[0], expected, rtol=1e-4)


def test_encode_shapes_and_determinism(cancer, mlp_four):
    x, y = cancer
    r = mlp_four[0]
    f = encode(r.engine, r.state, x[:100], batch_size=32)
    assert f.shape == (2, 100, 8) and f.dtype == np.float32
    np.testing.assert_allclose(f, encode(r.engine, r.state, x[:100], batch_size=100), rtol=1e-5, atol=1e-6)


# A study's grid: every mode, two p values for the p-dependent modes, two seeds.
STUDY_POINTS = [
    GridPoint(mode, p, seed)
    for mode, p in [("standard", 0.0), ("icrst", 0.5), ("icrst", 1.0), ("trst", 0.5), ("trst", 1.0), ("dae", 0.0)]
    for seed in (0, 1)
]


@pytest.fixture(scope="module")
def study_fit(cancer):
    """One study of 12 grid points, and the XLA compilations it caused."""
    x, y = cancer
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            result = fit(mlp_config(epochs=2, num_devices=1), x, y, points=STUDY_POINTS, progress=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    compiled = [m for m in records if m.startswith("Finished XLA compilation of")]
    return result, compiled


def test_study_compiles_one_epoch_program_and_one_initialiser(study_fit):
    result, compiled = study_fit
    assert [pt for pt in result.points] == STUDY_POINTS
    assert result.seeds == [pt.seed for pt in STUDY_POINTS]
    assert np.asarray(result.final_loss).shape == (len(STUDY_POINTS),)
    epoch = [m for m in compiled if "epoch_fn" in m]
    init = [m for m in compiled if "init_fn" in m]
    assert len(epoch) == 1, compiled
    assert len(init) == 1, compiled
    assert result.engine.trace_count == [1]
    # The modes ride on the run axis as data.
    np.testing.assert_array_equal(np.asarray(result.state.run.partner), [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0])
    np.testing.assert_allclose(np.asarray(result.state.run.sigma), [0] * 10 + [0.5, 0.5])


@pytest.mark.parametrize("index", [0, 3, 7, 10])  # standard s1 -> ... one point of each mode
def test_grid_point_equals_its_separate_run(cancer, mlp_one, study_fit, index):
    x, y = cancer
    study, _ = study_fit
    pt = STUDY_POINTS[index]
    # A separate run's own program: the shared one-run program, or (dae) one that draws input noise.
    alone = fit(mlp_config(epochs=2, num_devices=1, mode=pt.mode, p=pt.p), x, y, seeds=[pt.seed], progress=False,
                engine=None if pt.mode == "dae" else mlp_one[0].engine)
    one = jax.tree_util.tree_map(lambda a: a[index : index + 1], study.state.params)
    leaves_close(one, alone.state.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(step_losses(study)[index], step_losses(alone)[0], rtol=1e-5)
    # Power: the point's other seed, and the same seed in another mode or p, trained differently.
    for other in (index ^ 1, (index + 2) % len(STUDY_POINTS)):
        assert not np.allclose(step_losses(study)[other], step_losses(alone)[0], rtol=1e-3), STUDY_POINTS[other]


def test_each_mode_trains_towards_its_target(cancer, study_fit):
    """What each mode's loss can reach tells its targets apart (paper eq. 8).

    With p=1, TRST's target is a random sample of the whole set and ICRST's a
    random sample of the anchor's class, so no model can bring their losses
    below the data's total variance and within-class variance; standard
    training gets well below both; DAE's noisy inputs reconstruct worse than
    clean ones. A mode that pairs the wrong partner, or ignores its noise, fails.
    The study's grid trained longer (its compiled program, both seeds of each point).
    """
    x, y = cancer
    r = fit(mlp_config(epochs=60, num_devices=1), x, y, points=STUDY_POINTS, progress=False,
            engine=study_fit[0].engine)
    loss = dict(zip(STUDY_POINTS, np.asarray(r.final_loss)))
    total_var = np.mean(x.var(0))
    within_var = sum(np.mean(x[y == c].var(0)) * np.mean(y == c) for c in (0, 1))
    for seed in (0, 1):
        standard, icrst, trst, dae = (loss[GridPoint(m, p, seed)] for m, p in
                                      [("standard", 0.0), ("icrst", 1.0), ("trst", 1.0), ("dae", 0.0)])
        assert trst > 0.9 * total_var
        assert 0.9 * within_var < icrst < 0.9 * total_var
        assert standard < 0.5 * within_var
        assert standard < dae


def test_points_and_seeds_are_exclusive(cancer):
    x, y = cancer
    with pytest.raises(ValueError, match="not both"):
        fit(mlp_config(), x, y, seeds=[0], points=STUDY_POINTS[:1], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        fit(mlp_config(), x, y, points=STUDY_POINTS[:1] * 2, progress=False)
    engine = make_engine(mlp_config(mode="standard"), x.shape[1:], x.shape[0])
    with pytest.raises(ValueError, match="noise=True"):
        init_state(engine, [GridPoint("dae", 0.0, 0)])


def test_epoch_hooks_guard_snapshot_and_checkpoint():
    """The loop's duties, each alone, on hand-made epoch ends (no compilation)."""

    def end(epoch, loss=(0.5, 0.4), last=False, start=0):
        history = [{"epoch": e, "loss": [0.5, 0.4], "step_loss": [[0.5], [0.4]], "seconds": 1.0, "samples_per_s": 9.0}
                   for e in range(start + 1, epoch + 1)]
        return EpochEnd(epoch=epoch, state=f"state{epoch}", loss=np.asarray(loss), seconds=1.0, samples_per_s=9.0,
                        history=history, last=last, engine="engine")

    points = [GridPoint("standard", 0.0, 0), GridPoint("icrst", 1.0, 1)]
    NonFiniteGuard(points)(end(1))
    with pytest.raises(faults.NonFiniteLoss, match="at epoch 2 for icrst p=1 seed 1"):
        NonFiniteGuard(points)(end(2, loss=(0.5, np.nan)))
    seen = []
    snap = Snapshots([0, 2, 4], lambda e, engine, st: seen.append((e, engine, st)))
    snap.start(TrainStart(engine="engine", initial="state0", state="state0", epoch=0))
    for e in range(1, 5):
        snap(end(e))
    assert seen == [(0, "engine", "state0"), (2, "engine", "state2"), (4, "engine", "state4")] and snap.missed == []
    seen.clear()  # resumed at epoch 4: epoch 0 from the initial state, 4 from the restored one, 2 missed
    snap.start(TrainStart(engine="engine", initial="state0", state="state4", epoch=4))
    assert seen == [(0, "engine", "state0"), (4, "engine", "state4")] and snap.missed == [2]

    class Manager:
        saved = []

        def save(self, epoch, state, meta):
            self.saved.append((epoch, state, [h["epoch"] for h in meta["history"]]))

    earlier = [{"epoch": 1, "loss": [0.6, 0.5], "seconds": 1.0, "samples_per_s": 9.0}]
    ckpt = Checkpointer(Manager(), {}, 3, earlier)  # resumed after epoch 1
    for e in (2, 3, 4):
        ckpt(end(e, last=e == 4, start=1))
    # Every third epoch and the last, each with the whole curve (the restored epoch 1 first).
    assert Manager.saved == [(3, "state3", [1, 2, 3]), (4, "state4", [1, 2, 3, 4])]
