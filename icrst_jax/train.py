"""Training: one jitted epoch, seeds in parallel, all local devices.

Structure (after PureJaxRL and big_vision):

* :func:`make_engine` builds a pure ``epoch(state, data) -> (state, metrics)``
  (``Engine.epoch_fn``; :func:`compile_epoch` compiles it over the run axis).
  Inside it the epoch's shuffle (``jax.random.permutation``), the pairing
  (:func:`icrst_jax.pairing.pair_indices`), the Bernoulli mixing and all the
  optimizer steps (a ``lax.scan``) run on the device: the host dispatches once
  per epoch.
* Runs: the state carries a leading run axis and the epoch is ``jax.vmap``-ed
  over it, so R models train in one compiled program. A run is a grid point
  (mode, p, seed): the mode and p are traced values in the state
  (:class:`RunParams`), like the parameters and the key, so a whole study of
  modes x p x seeds compiles one epoch program and one initialiser, and each
  grid point gives the same result as a separate run of that point alone.
* Data parallel: the training set and the state are replicated over a 1-D
  mesh with a ``data`` axis; each step's global batch is constrained to be
  split along ``data`` (``NamedSharding``), and XLA's partitioner inserts the
  reductions of the gradients and of the BatchNorm statistics. One device and
  N devices compute the same function of the same global batch.
* A ragged last batch is padded to the full batch with masked rows (loss and
  BatchNorm statistics ignore them), so every sample is seen once per epoch
  and every step has one compiled shape.
* Per-step keys come from ``jax.random.fold_in(seed_key, epoch)`` and the
  step number, so a run resumed from a checkpoint continues exactly.
* Between epochs, on the host, small hook objects do one duty each (after
  CLU's periodic actions): the progress line, the non-finite guard, snapshots
  at chosen epochs, checkpoints, stopping on a signal (:class:`EpochHook`).

Words: a *run* is one model on the state's leading run axis (a seed, or a grid
point of a study); a *configuration* is a (mode, p) pair, a grid point one
configuration with one seed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import time
from typing import Any, Callable, NamedTuple, Protocol, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from icrst_jax import faults
from icrst_jax.config import GridPoint, TrainConfig
from icrst_jax.conv import resolve_conv_impl
from icrst_jax.data import encoder_input
from icrst_jax.distributed import tag_progress, to_host
from icrst_jax.log import bar_of, detail_of
from icrst_jax.models import AutoEncoder, make_model
from icrst_jax.pairing import PairingTable, build_pairing_table, pair_indices, partner_code
from icrst_jax.run_identity import train_fingerprint

DATA_AXIS = "data"


class RunParams(NamedTuple):
    """What tells one grid point's training apart, as traced data.

    Standard, ICRST, TRST and DAE differ only in the target's partner and in
    the input noise, so the mode is two numbers here, not a different program.

    Attributes:
      partner: int32 partner code (:func:`icrst_jax.pairing.partner_code`):
        0 the anchor itself (standard, dae), 1 in-class (icrst), 2 whole set (trst).
      p: float32 swap probability (section 6).
      sigma: float32 input noise standard deviation: ``dae_sigma`` for dae, 0 otherwise.
    """

    partner: jax.Array
    p: jax.Array
    sigma: jax.Array


def run_params(config: TrainConfig, point: GridPoint) -> RunParams:
    """The traced hyperparameters of one grid point (host numpy scalars)."""
    return RunParams(
        partner=np.int32(partner_code(point.mode)),
        p=np.float32(point.p),
        sigma=np.float32(config.dae_sigma if point.mode == "dae" else 0.0),
    )


class TrainState(flax.struct.PyTreeNode):
    """Everything a run carries between epochs (one model, or R with a leading run axis).

    ``key`` is raw ``uint32`` key data (``jax.random.key_data``) so that it
    checkpoints like any other array. ``run`` is the grid point's mode and p as
    data: it rides on the run axis with the parameters, so the vmapped epoch
    needs no other per-run argument.
    """

    params: Any
    batch_stats: Any
    opt_state: Any
    key: jax.Array
    epoch: jax.Array
    run: RunParams


class TrainData(NamedTuple):
    """The training set as the device sees it.

    Attributes:
      x: (N, ...) float32 samples in unit scale (the reconstruction targets).
      table: the pairing table of the labels.
      mean, std: broadcastable to one sample; encoder input = (x - mean) / std.

    The mode and p are per run, in :attr:`TrainState.run`.
    """

    x: jax.Array
    table: PairingTable
    mean: jax.Array
    std: jax.Array


@dataclasses.dataclass
class Engine:
    """The compiled pieces of a run; build with :func:`make_engine`."""

    config: TrainConfig
    model: AutoEncoder
    optimizer: optax.GradientTransformation
    mesh: Mesh
    num_samples: int
    batch_size: int
    steps_per_epoch: int
    init_fn: Callable  # (key, RunParams) -> TrainState (one run)
    epoch_fn: Callable  # (state, data) -> (state, metrics); one run, pure
    trace_count: list  # how often the epoch was traced (compiled); see tests
    noise: bool  # whether the epoch draws input noise (a run with sigma > 0 needs it)
    compiler_options: dict  # XLA options of the epoch program (see epoch_compiler_options)
    # Compiled initialisers and epochs by argument signature: a second fit()
    # with this engine (another seed, a resumed run) reuses them instead of
    # compiling the same program again.
    programs: dict = dataclasses.field(default_factory=dict, repr=False)


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D ``data`` mesh over the first ``num_devices`` devices (all by default).

    ``jax.devices()`` lists every device of every process, so after
    ``jax.distributed.initialize()`` the mesh spans all hosts and one global
    batch is split over all of them.
    """
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ValueError(f"num_devices={num_devices} but {len(devices)} devices are available")
    if n != len(devices) and jax.process_count() > 1:
        # A process without a device in the mesh would take no part in its programs.
        raise ValueError(f"num_devices={num_devices}: a multi-process run uses all {len(devices)} devices of its processes")
    return Mesh(np.array(devices[:n]), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
    """Host numpy pytree -> global arrays replicated over ``mesh``.

    ``make_array_from_callback`` (rather than ``device_put``) also works when
    the mesh spans several processes: each process fills its own devices from
    its identical host copy.
    """
    sharding = NamedSharding(mesh, P())

    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    return jax.tree_util.tree_map(put, tree)


def effective_batch_size(config: TrainConfig, num_samples: int, num_devices: int) -> int:
    """The global batch: ``config.global_batch_size``, capped at the data set size
    (as a PyTorch DataLoader would yield one short batch), rounded up to a multiple
    of the device count so the batch splits evenly over the mesh."""
    b = min(config.global_batch_size, num_samples)
    return int(math.ceil(b / num_devices) * num_devices)


def make_engine(
    config: TrainConfig, sample_shape: Sequence[int], num_samples: int, *, noise: bool | None = None,
    runs: int = 1,
) -> Engine:
    """Builds the model, optimizer, mesh and the pure epoch function of a run.

    Args:
      config: the run's configuration (its ``mode`` and ``p`` are only the
        defaults of :func:`init_state`; the epoch reads them from the state).
      sample_shape: shape of one sample, e.g. (28, 28, 1) or (30,).
      num_samples: training set size N.
      noise: whether the epoch draws the DAE's input noise (scaled per run by
        its traced sigma, 0 for the other modes). None: ``config.mode == "dae"``.
        A study with a dae point needs True; without one, False skips drawing
        noise that every run would multiply by 0.
      runs: how many runs (grid points, seeds) the program will train: with
        ``config.epochs`` and the steps per epoch, the step count by which
        ``conv_impl="auto"`` picks the convolutions (:func:`icrst_jax.conv.resolve_conv_impl`).
    """
    mesh = make_mesh(config.num_devices)
    batch = effective_batch_size(config, num_samples, mesh.devices.size)
    steps = int(math.ceil(num_samples / batch))
    program_steps = steps * config.epochs * runs
    model = make_model(_resolved_model(config, program_steps), sample_shape)
    tx = optax.adam(config.learning_rate)
    spec = _EpochSpec(
        model=model, tx=tx, batch_sharding=NamedSharding(mesh, P(DATA_AXIS)), replicated=NamedSharding(mesh, P()),
        num_samples=num_samples, batch=batch, steps=steps,
        noise=config.mode == "dae" if noise is None else bool(noise),
    )
    trace_count = [0]

    def init_fn(key, run: RunParams) -> TrainState:
        return _init_run(model, tx, sample_shape, key, run)

    def epoch_fn(state: TrainState, data: TrainData):
        trace_count[0] += 1  # Python side effect: runs at trace time only.
        return _run_epoch(spec, state, data)

    return Engine(
        config=config, model=model, optimizer=tx, mesh=mesh, num_samples=num_samples, batch_size=batch,
        steps_per_epoch=spec.steps, init_fn=init_fn, epoch_fn=epoch_fn, trace_count=trace_count, noise=spec.noise,
        compiler_options=epoch_compiler_options(mesh, program_steps),
    )


#: On a CPU, an epoch program of fewer optimizer steps than this (epochs x steps per epoch x
#: runs, as for ``conv_impl="auto"``) has its fusions emitted by XLA's loop emitters instead
#: of its newer fusion emitters: about half the compile time, each step a few % slower
#: (BENCHMARKS.md, "Cold start"). A first study on a laptop is such a program; near the
#: line, a larger model's slower steps can cost more than the compile saves (the step
#: count does not weigh a step's work).
LOOP_EMITTERS_MAX_STEPS = 1000
_LOOP_EMITTERS = {"xla_cpu_use_fusion_emitters": False}


def epoch_compiler_options(mesh: Mesh, steps: int) -> dict:
    """XLA's compile options for an epoch program of ``steps`` optimizer steps on ``mesh``:
    the loop emitters on a CPU below :data:`LOOP_EMITTERS_MAX_STEPS`, else none."""
    if not _on_cpu(mesh) or steps >= LOOP_EMITTERS_MAX_STEPS or not _loop_emitters_known():
        return {}
    return dict(_LOOP_EMITTERS)


@functools.cache
def _loop_emitters_known() -> bool:
    """Whether this jaxlib's XLA takes the loop-emitter option (an XLA that dropped it refuses
    to compile with it: then every program compiles with XLA's defaults)."""
    try:
        jax.jit(lambda v: v + 1).lower(np.float32(0)).compile(compiler_options=_LOOP_EMITTERS)
    except Exception:
        return False
    return True


def _resolved_model(config: TrainConfig, steps: int):
    """``config.model`` with ``conv_impl="auto"`` resolved for a program of ``steps`` optimizer steps.

    Resolved once per engine: its epoch and encoder programs use the same
    convolutions (they change results by float rounding only, and are not part
    of a run's fingerprint).
    """
    if config.model.conv_impl != "auto":
        return config.model
    return dataclasses.replace(config.model, conv_impl=resolve_conv_impl("auto", steps))


@dataclasses.dataclass(frozen=True)
class _EpochSpec:
    """What the epoch program is compiled for (static): the model, the optimizer, the
    shardings and the epoch's shape. ``noise``: the epoch draws the DAE's input noise."""

    model: AutoEncoder
    tx: optax.GradientTransformation
    batch_sharding: NamedSharding  # a global batch split along ``data``
    replicated: NamedSharding
    num_samples: int
    batch: int
    steps: int
    noise: bool

    @property
    def ragged(self) -> bool:
        """Whether the last batch is padded. Only then does BatchNorm need masked
        statistics; without padding the plain ones are the same (up to summation
        order) with fewer elementwise passes (BENCHMARKS.md, "Measurements behind code choices")."""
        return self.steps * self.batch != self.num_samples


def _init_run(model: AutoEncoder, tx: optax.GradientTransformation, sample_shape, key, run: RunParams) -> TrainState:
    """One run's initial state from its key and its grid point's traced hyperparameters."""
    k_init, k_train = jax.random.split(key)
    dummy = jnp.zeros((1, *sample_shape), jnp.float32)
    variables = model.init({"params": k_init}, dummy, train=False)
    params = variables["params"]
    return TrainState(
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        key=jax.random.key_data(k_train),
        epoch=jnp.zeros((), jnp.int32),
        run=run,
    )


def _batch_loss(spec: _EpochSpec, params, batch_stats, inputs, targets, mask, k_dropout):
    """The masked mean squared reconstruction error of a batch, and the new BatchNorm statistics."""
    variables = {"params": params}
    has_bn = bool(jax.tree_util.tree_leaves(batch_stats))
    if has_bn:
        variables["batch_stats"] = batch_stats
    (recon, _), updates = spec.model.apply(
        variables, inputs, train=True, mask=mask if spec.ragged else None, rngs={"dropout": k_dropout},
        mutable=["batch_stats"],
    )
    per_sample = jnp.mean(jnp.square(recon - targets).reshape(recon.shape[0], -1), axis=1)
    loss = jnp.sum(per_sample * mask) / jnp.sum(mask)
    return loss, updates.get("batch_stats", batch_stats)


def _train_step(spec: _EpochSpec, state: TrainState, data: TrainData, idx, mask, key):
    """One optimizer step on the global batch ``data.x[idx]`` (rows with mask 0 are padding)."""
    k_pair, k_noise, k_dropout = jax.random.split(key, 3)
    partner = pair_indices(k_pair, data.table, idx, mode=state.run.partner, p=state.run.p)
    # Gather on the device from the replicated training set, then split the
    # global batch over the mesh: each device computes its shard.
    x = jax.lax.with_sharding_constraint(data.x[idx], spec.batch_sharding)
    targets = jax.lax.with_sharding_constraint(data.x[partner], spec.batch_sharding)
    mask = jax.lax.with_sharding_constraint(mask, spec.batch_sharding)
    inputs = encoder_input(x, data.mean, data.std)
    if spec.noise:  # sigma is 0 for every mode but dae: their inputs stay exact.
        inputs = inputs + state.run.sigma * jax.random.normal(k_noise, inputs.shape, inputs.dtype)
    (loss, batch_stats), grads = jax.value_and_grad(functools.partial(_batch_loss, spec), has_aux=True)(
        state.params, state.batch_stats, inputs, targets, mask, k_dropout
    )
    updates, opt_state = spec.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    state = state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state)
    return state, loss


def _epoch_batches(spec: _EpochSpec, k_perm):
    """The epoch's (steps, batch) sample indices and their masks (0: a padding row of the last batch)."""
    n, steps, batch = spec.num_samples, spec.steps, spec.batch
    if steps == 1:
        # One step sees the whole set: the loss, its gradient and the
        # BatchNorm statistics do not depend on the order, and every row's
        # partner and dropout mask are drawn independently, so a shuffle
        # would change nothing in distribution, and its sort is a visible
        # part of a small epoch (BENCHMARKS.md, "Measurements behind code choices").
        perm = jnp.arange(n, dtype=jnp.int32)
    else:
        perm = jax.random.permutation(k_perm, n).astype(jnp.int32)
    pad = steps * batch - n
    # Ragged last batch: pad with real indices (so gathers stay in range)
    # whose mask is 0; they do not count in the loss or BatchNorm stats.
    perm = jnp.concatenate([perm, perm[:pad]]) if pad else perm
    idx = perm.reshape(steps, batch)
    mask = (jnp.arange(steps * batch) < n).astype(jnp.float32).reshape(steps, batch)
    return idx, mask


def _run_epoch(spec: _EpochSpec, state: TrainState, data: TrainData):
    """One epoch of one run: ``(state, data) -> (state, metrics)``, pure."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.epoch)
    k_perm, k_steps = jax.random.split(key)
    idx, mask = _epoch_batches(spec, k_perm)

    def body(st, xs):
        i, idx_b, mask_b = xs
        st, loss = _train_step(spec, st, data, idx_b, mask_b, jax.random.fold_in(k_steps, i))
        return st, (loss, jnp.sum(mask_b))

    state, (losses, counts) = jax.lax.scan(body, state, (jnp.arange(spec.steps), idx, mask))
    state = state.replace(epoch=state.epoch + 1)
    state = jax.lax.with_sharding_constraint(state, spec.replicated)
    # Sample-weighted mean over the epoch (the last batch may be short).
    metrics = {"loss": jnp.sum(losses * counts) / jnp.sum(counts), "step_loss": losses}
    return state, metrics


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """(K,) typed keys, ``jax.random.key(s)`` for each seed ``s``."""
    if len(seeds) == 0:
        raise ValueError("at least one seed is needed")
    return jnp.stack([jax.random.key(int(s)) for s in seeds])


def make_train_data(engine: Engine, x, labels, *, mean=None, std=None) -> TrainData:
    """Puts the training set on the devices (replicated over the mesh)."""
    x = np.asarray(x, np.float32)
    if x.shape[0] != engine.num_samples:
        raise ValueError(f"engine was built for {engine.num_samples} samples, got {x.shape[0]}")
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels shape {labels.shape} does not match {x.shape[0]} samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("training data contains NaN or infinite values")
    mean, std = _mean_std(x, mean, std)
    table = jax.tree_util.tree_map(np.asarray, build_pairing_table(labels))
    data = TrainData(x=x, table=table, mean=mean, std=std)
    return replicate(data, engine.mesh)


def _mean_std(x, mean, std):
    """The encoder-input statistics as float32 numpy; None is the identity (0 and 1 per channel)."""
    mean = np.zeros(x.shape[-1:], np.float32) if mean is None else np.asarray(mean, np.float32)
    std = np.ones(x.shape[-1:], np.float32) if std is None else np.asarray(std, np.float32)
    return mean, std


def grid_points(config: TrainConfig, points: Sequence[int | GridPoint]) -> list[GridPoint]:
    """The runs' grid points: a bare seed ``s`` is ``GridPoint(config.mode, config.p, s)``."""
    if len(points) == 0:
        raise ValueError("at least one run (a seed or a grid point) is needed")
    return [r if isinstance(r, GridPoint) else GridPoint(config.mode, config.p, int(r)) for r in points]


def init_state(engine: Engine, points: Sequence[int | GridPoint]) -> TrainState:
    """Stacked initial state of the runs, replicated over the mesh.

    Args:
      points: one per run: seeds (mode and p from ``engine.config``) or :class:`GridPoint`s.
        A point's initial parameters depend on its seed only, as in a
        separate run of that point.
    """
    points = grid_points(engine.config, points)
    if not engine.noise and any(pt.mode == "dae" for pt in points):
        raise ValueError("a dae run needs an engine that draws input noise: make_engine(..., noise=True)")
    replicated = NamedSharding(engine.mesh, P())
    keys = seed_keys([pt.seed for pt in points])
    runs_data = jax.tree_util.tree_map(lambda *a: np.stack(a), *[run_params(engine.config, pt) for pt in points])
    signature = ("init", len(points))
    if signature in engine.programs:
        return engine.programs[signature](keys, runs_data)
    fn = jax.jit(jax.vmap(engine.init_fn), out_shardings=replicated)
    # The initialiser runs once but compiles every threefry hash of every
    # parameter tensor unrolled: at XLA's default optimisation level that
    # costs more LLVM time on a CPU than the MLP's whole epoch program. Level 0
    # compiles it several times faster (BENCHMARKS.md, "Measurements behind
    # code choices"); the values differ by at most one float32 ulp (from
    # instruction selection), and every run of this code uses the same path.
    options = {"xla_backend_optimization_level": 0} if _on_cpu(engine.mesh) else None
    engine.programs[signature] = fn.lower(keys, runs_data).compile(compiler_options=options)
    return engine.programs[signature](keys, runs_data)


def _on_cpu(mesh: Mesh) -> bool:
    """Whether the mesh is made of CPU devices."""
    return mesh.devices.flat[0].platform == "cpu"


def seed_parallel(engine: Engine, state: TrainState, per_run_table: bool = False) -> Callable:
    """``epoch(stacked_state, data)`` over the state's leading run axis.

    All R runs (grid points, seeds included) vmapped at once, or, with
    ``config.seed_batch = b < R``, in chunks of b runs one after another inside
    the same program (``lax.map(..., batch_size=b)``): the same function, a
    different schedule. ``seed_batch=None`` is 1 for the conv models on a CPU,
    all runs otherwise.

    ``per_run_table``: the data's pairing table has a leading run axis (one
    table per run: the per-run pseudo-labels of :mod:`icrst_jax.adaptation`)
    and is mapped with the state.
    """
    k = jax.tree_util.tree_leaves(state)[0].shape[0]
    b = engine.config.seed_batch
    if b is None and engine.config.model.name != "mlp" and _on_cpu(engine.mesh):
        b = 1
    if b is None or b >= k:
        return jax.vmap(engine.epoch_fn, in_axes=(0, TrainData(None, 0, None, None) if per_run_table else None))

    def chunked(st, data):
        if per_run_table:
            return jax.lax.map(lambda s_t: engine.epoch_fn(s_t[0], data._replace(table=s_t[1])), (st, data.table),
                               batch_size=b)
        return jax.lax.map(lambda s: engine.epoch_fn(s, data), st, batch_size=b)

    return chunked


def compile_epoch(engine: Engine, state: TrainState, data: TrainData):
    """Ahead-of-time compiles the vmapped epoch; returns (compiled, seconds).

    The state is donated (its buffers are reused for the next epoch's state).
    A program this engine compiled before for arguments of the same shapes,
    dtypes and shardings is reused (0 seconds).
    """
    leaves = jax.tree_util.tree_leaves((state, data))
    signature = ("epoch", jax.tree_util.tree_structure((state, data)),
                 tuple((a.shape, a.dtype, getattr(a, "sharding", None)) for a in leaves))
    if signature in engine.programs:
        return engine.programs[signature], 0.0
    fn = jax.jit(seed_parallel(engine, state, per_run_table=data.table.sorted_indices.ndim == 2), donate_argnums=(0,))
    t0 = time.perf_counter()
    compiled = fn.lower(state, data).compile(compiler_options=engine.compiler_options)
    engine.programs[signature] = compiled
    return compiled, time.perf_counter() - t0


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
      state: the final stacked TrainState (leading axis = runs).
      engine: the engine (model, mesh, epoch function).
      seeds: the seed of each run, in the order of the state's leading axis.
      points: the grid point of each run, in the same order.
      history: one dict per epoch run in this call: epoch, loss (list per
        run), step_loss (per run, per step), seconds, samples_per_s.
      compile_seconds: time spent compiling the epoch.
      resumed_from: the epoch restored from a checkpoint, or None.
      earlier_history: the epochs before ``resumed_from``, as the checkpoint
        recorded them (epoch, loss per run, seconds): with ``history``, the
        whole run's loss curve.
    """

    state: TrainState
    engine: Engine
    seeds: list
    history: list
    compile_seconds: float
    resumed_from: int | None = None
    points: list = dataclasses.field(default_factory=list)
    earlier_history: list = dataclasses.field(default_factory=list)

    @property
    def full_history(self) -> list:
        """Every epoch of the run, resumed ones included (``epoch``, ``loss`` per run and
        ``seconds``; the per-step losses only for the epochs of this call)."""
        return self.earlier_history + self.history

    @property
    def final_loss(self) -> np.ndarray:
        h = self.full_history
        return np.asarray(h[-1]["loss"]) if h else np.array([])


def check_target_range(x: np.ndarray) -> None:
    """The samples are the reconstruction targets, and every decoder ends in a sigmoid:
    values outside [0, 1] could never be reconstructed, so they are refused in one line."""
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(
            f"fit: x spans [{float(x.min()):.4g}, {float(x.max()):.4g}] but the decoder's sigmoid output lies in "
            "[0, 1]; scale x to [0, 1] first (load_dataset and load_source do, or Preprocessing.to_unit)"
        )


def fit(config: TrainConfig, x, labels, *, seeds: Sequence[int] | None = None,
        points: Sequence[GridPoint] | None = None, mean=None, std=None,
        checkpoint_dir: str | os.PathLike | None = None, metadata: dict | None = None,
        progress: bool | Callable[[str], None] = True, stop_after_epoch: int | None = None,
        hooks: Sequence[EpochHook] = (), engine: Engine | None = None) -> FitResult:
    """Trains R autoencoders (seeds, or grid points of a study) in one program.

    Args:
      config: the run's configuration (mode, p, epochs, batch size, model...);
        with ``points``, its mode and p are unused.
      x, labels: (N, ...) float32 training samples in unit scale ([0, 1] for
        images), the reconstruction targets; (N,) integer labels (``icrst`` only).
      seeds: seeds to train in parallel with ``config.mode`` and ``config.p``
        (default ``[config.seed]``); or ``points``: the grid points (mode, p,
        seed) of a study, all trained in one compiled epoch program.
      mean, std: per-channel (or per-feature) statistics; the encoder input is
        ``(x - mean) / std``. ``None`` means identity.
      checkpoint_dir: orbax checkpoints go here every ``config.checkpoint_every``
        epochs and at the end; an existing checkpoint is resumed if its
        fingerprint is this run's (damaged ones are skipped), and refused if it
        is another run's or ahead of ``config.epochs``.
      metadata: JSON-able extras saved with each checkpoint (e.g. the data
        preprocessing). Its ``identity`` (a study's fingerprint) replaces the
        default, the training config's and grid points' fingerprint.
      progress: True prints a line per epoch to stderr; a callable gets the line; False is quiet.
      stop_after_epoch: stop (after checkpointing) once this epoch is done (a simulated interrupt).
      hooks: :class:`EpochHook` duties after each epoch (and at the start), called
        after the loss checks and before the checkpoint; e.g. :class:`Snapshots`
        to encode held-out latents along training without retraining.
      engine: an earlier :func:`fit`'s ``result.engine``, to reuse its compiled
        programs; ``config`` may differ from its config only in what is not part
        of the program (mode, p, epochs, checkpoint_every, seed).

    Raises:
      icrst_jax.faults.NonFiniteLoss: a run's loss became NaN or infinite.
      icrst_jax.faults.Interrupted: a signal (under :func:`icrst_jax.faults.handle_interrupts`)
        stopped training after an epoch, whose checkpoint was saved first.

    Example:
      >>> cfg = TrainConfig(mode="icrst", p=1.0, epochs=5, batch_size=64,
      ...                   model=ModelConfig(name="conv", width=0.25))
      >>> result = fit(cfg, ds.x_train, ds.y_train, seeds=[0, 1, 2],
      ...              mean=ds.preprocessing.mean, std=ds.preprocessing.std)
      >>> latents = encode(result.engine, result.state, ds.x_test, ...)   # (3, N_test, 128)
    """
    points = _fit_points(config, seeds, points)
    say = _progress_fn(progress)
    x = np.asarray(x, np.float32)
    check_target_range(x)
    engine = _engine_for(config, x.shape, points, engine)
    data = make_train_data(engine, x, labels, mean=mean, std=std)
    initial = init_state(engine, points)
    manager = None
    try:
        state, resumed_from, earlier, saving = initial, None, [], []
        if checkpoint_dir is not None:
            meta = _checkpoint_meta(config, points, metadata)
            manager = _checkpoint_manager(checkpoint_dir)
            state, resumed_from, earlier = _resume(manager, checkpoint_dir, engine, initial, meta=meta,
                                                   epochs=config.epochs, say=say)
            saving = [Checkpointer(manager, meta, config.checkpoint_every, earlier)]
        compiled, compile_s = compile_epoch(engine, state, data)
        say(_start_line(config, engine, points, compile_s))
        line = ProgressLine(say, config.epochs, len(points))
        _start_hooks([line, *hooks], TrainStart(engine=engine, initial=initial, state=state, epoch=resumed_from or 0,
                                                earlier=earlier))
        del initial  # a resumed run's buffers of epoch 0 are not needed any more
        duties = [line, NonFiniteGuard(points), *hooks, *saving,
                  StopOnSignal(say, checkpointed=bool(saving))]
        history = []
        # A first SIGINT/SIGTERM waits for the epoch (and its checkpoint) to finish.
        with faults.deferred():
            state = train_epochs(engine, compiled, state, data, epochs=config.epochs, hooks=duties,
                                 history=history, stop_after_epoch=stop_after_epoch)
    finally:
        if manager is not None:
            manager.close()
    return FitResult(state=state, engine=engine, seeds=[pt.seed for pt in points], history=history,
                     compile_seconds=compile_s, resumed_from=resumed_from, points=points, earlier_history=earlier)


def _fit_points(config: TrainConfig, seeds: Sequence[int] | None,
                points: Sequence[GridPoint] | None) -> list[GridPoint]:
    """The distinct grid points of :func:`fit`'s ``seeds`` (default ``[config.seed]``) or ``points``."""
    if points is not None and seeds is not None:
        raise ValueError("give seeds or grid points, not both")
    if points is None:
        seeds = [config.seed] if seeds is None else [int(s) for s in seeds]
        if not seeds:
            raise ValueError("at least one seed is needed")
    points = grid_points(config, seeds if points is None else list(points))
    if len(set(points)) != len(points):
        raise ValueError("grid points must be distinct")
    return points


def _engine_for(config: TrainConfig, x_shape, points: Sequence[GridPoint], engine: Engine | None) -> Engine:
    """A new engine for the run, or ``engine`` once checked to hold this run's programs."""
    noise = any(pt.mode == "dae" for pt in points)
    if engine is None:
        return make_engine(config, x_shape[1:], x_shape[0], noise=noise, runs=len(points))
    _check_reuse(engine, config, x_shape, noise)
    return engine


def _checkpoint_meta(config: TrainConfig, points: Sequence[GridPoint], metadata: dict | None) -> dict:
    """The metadata every checkpoint of the run carries, its ``identity`` included."""
    meta = {"config": config.to_dict(), "seeds": [pt.seed for pt in points],
            "points": [dataclasses.asdict(pt) for pt in points], **(metadata or {})}
    meta.setdefault("identity", train_fingerprint(config, points))
    return meta


def _checkpoint_manager(checkpoint_dir):
    # orbax costs seconds at import: only a run with checkpoints loads it.
    from icrst_jax import checkpoint as ckpt

    return ckpt.CheckpointManager(checkpoint_dir)


def _resume(manager, checkpoint_dir, engine: Engine, state: TrainState, *, meta: dict, epochs: int,
            say: Callable[[str], None]):
    """``(state, resumed_from, earlier)``: the latest checkpoint of this run in ``manager``
    (its state, epoch and recorded loss curve), or ``(state, None, [])`` if there is none.

    Raises:
      icrst_jax.checkpoint.CheckpointMismatch: the checkpoint is another run's, or ahead of ``epochs``.
    """
    from icrst_jax import checkpoint as ckpt  # loaded with the manager (orbax)

    restored = manager.restore_latest(state, expected_identity=meta["identity"], warn=say)
    if restored is None:
        return state, None, []
    restored, stored_meta = restored
    resumed_from = int(np.asarray(restored.epoch)[0])
    if resumed_from > epochs:
        raise ckpt.CheckpointMismatch(
            f"{checkpoint_dir} holds a checkpoint at epoch {resumed_from}, ahead of the requested "
            f"{epochs} epochs: ask for {resumed_from} epochs to use it, or use another folder"
        )
    state = jax.device_put(restored, NamedSharding(engine.mesh, P()))
    say(f"resumed from checkpoint at epoch {resumed_from} in {checkpoint_dir}")
    return state, resumed_from, stored_meta.get("history", [])[:resumed_from]


def _start_line(config: TrainConfig, engine: Engine, points: Sequence[GridPoint], compile_s: float) -> str:
    """The progress line before the first epoch: what trains, on how many devices, in which batches."""
    pairs = list(dict.fromkeys((pt.mode, pt.p) for pt in points))
    seeds = [pt.seed for pt in points]
    what = (
        f"{config.mode} p={config.p:g} seeds={seeds}"
        if pairs == [(config.mode, config.p)]
        # A study's header line has already listed its grid points.
        else f"{len(points)} runs"
    )
    return (
        f"{what} model={config.model.name} width={config.model.width:g} "
        f"devices={engine.mesh.devices.size} batch={engine.batch_size} steps/epoch={engine.steps_per_epoch} "
        f"(compiled in {compile_s:.1f}s)"
    )


# TrainConfig fields that do not enter the compiled programs.
_RUN_ONLY_FIELDS = ("mode", "p", "epochs", "checkpoint_every", "seed")


def _check_reuse(engine: Engine, config: TrainConfig, x_shape, noise: bool) -> None:
    """Refuses an engine whose programs are not this run's."""
    same = engine.config.replace(**{f: getattr(config, f) for f in _RUN_ONLY_FIELDS})
    if same != config:
        diff = [f.name for f in dataclasses.fields(config) if getattr(same, f.name) != getattr(config, f.name)]
        raise ValueError(f"the engine was built for another config (differs in {', '.join(diff)})")
    if engine.num_samples != x_shape[0] or tuple(engine.model.input_shape) != tuple(x_shape[1:]):
        raise ValueError(f"the engine was built for {engine.num_samples} samples of shape "
                         f"{tuple(engine.model.input_shape)}, got {x_shape[0]} of shape {tuple(x_shape[1:])}")
    if noise and not engine.noise:
        raise ValueError("a dae run needs an engine that draws input noise: make_engine(..., noise=True)")


# ---------------------------------------------------------------------------
# The epoch loop and its hooks
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainStart:
    """What the hooks see before the first epoch of a :func:`fit` call.

    Attributes:
      engine: the run's engine (to :func:`encode` a state, say).
      initial: each run's initialised state (epoch 0), whatever a checkpoint holds.
      state: the state training goes on from: ``initial``, or a restored checkpoint's.
      epoch: the epoch training goes on from: 0, or the restored checkpoint's.
      earlier: the epochs before ``epoch``, as the checkpoint recorded them (epoch, loss per run, seconds).
    """

    engine: Engine
    initial: TrainState
    state: TrainState
    epoch: int
    earlier: Sequence[dict] = ()


@dataclasses.dataclass(frozen=True)
class EpochEnd:
    """What the hooks see after an epoch.

    Attributes:
      epoch: epochs done (1 after the first).
      state: the stacked state after it; valid until the next epoch donates its buffers.
      loss: (R,) the epoch's sample-weighted mean loss per run.
      seconds: the epoch's wall time; samples_per_s: training samples x runs per second.
      history: every epoch of this call so far, this one last (``FitResult.history``'s entries).
      last: no epoch follows in this call (the final one, or ``stop_after_epoch``).
      engine: the run's engine.
    """

    epoch: int
    state: TrainState
    loss: np.ndarray
    seconds: float
    samples_per_s: float
    history: list
    last: bool
    engine: Engine


class EpochHook(Protocol):
    """One duty of the training loop (after CLU's periodic actions); it may raise to end training.

    Called with an :class:`EpochEnd` after each epoch; its :meth:`start`, if it
    has one, once with a :class:`TrainStart` before the first. :func:`fit` calls,
    in order: :class:`ProgressLine`, :class:`NonFiniteGuard`, the caller's
    ``hooks`` (e.g. :class:`Snapshots`), :class:`Checkpointer`, :class:`StopOnSignal`.
    A plain function of an :class:`EpochEnd` is a hook too.
    """

    def __call__(self, end: EpochEnd) -> None: ...

    def start(self, begin: TrainStart) -> None:
        """Before the first epoch of the call; nothing by default."""


def _start_hooks(hooks: Sequence[EpochHook], begin: TrainStart) -> None:
    """Calls each hook's ``start`` (those that have one), in order."""
    for hook in hooks:
        start = getattr(hook, "start", None)
        if start is not None:
            start(begin)


class ProgressLine(EpochHook):
    """``epoch   3/50  loss 0.01234 (runs 0.01..0.02)  12,345 samples/s  0.10s``."""

    def __init__(self, say: Callable[[str], None], epochs: int, n_runs: int):
        # The epoch lines are detail (-v); a Log draws one bar with its ETA instead.
        self.say, self.epochs, self.n_runs = detail_of(say), epochs, n_runs
        self.make_bar = lambda: bar_of(say, epochs, "training")
        self.bar = None

    def start(self, begin: TrainStart) -> None:
        self.bar = self.make_bar()
        if self.bar is not None and begin.epoch:
            self.bar.update(begin.epoch)

    def __call__(self, end: EpochEnd) -> None:
        loss = end.loss
        self.say(
            f"epoch {end.epoch:>3}/{self.epochs}  loss {float(loss.mean()):.5f}"
            + (f" (runs {loss.min():.5f}..{loss.max():.5f})" if self.n_runs > 1 else "")
            + f"  {end.samples_per_s:,.0f} samples/s  {end.seconds:.2f}s"
        )
        if self.bar is not None:
            self.bar.update(1)
            if end.epoch >= self.epochs:
                self.bar.close()


class NonFiniteGuard(EpochHook):
    """Raises :class:`icrst_jax.faults.NonFiniteLoss` naming the runs whose loss is NaN or infinite."""

    def __init__(self, points: Sequence[GridPoint]):
        self.points = points

    def __call__(self, end: EpochEnd) -> None:
        if not np.all(np.isfinite(end.loss)):
            raise faults.NonFiniteLoss(faults.non_finite_message(end.epoch, end.loss, self.points))


class Snapshots(EpochHook):
    """``snapshot(epoch, engine, state)`` with the stacked state at each epoch in ``epochs``.

    Epoch 0 is each run's initial state (before the first step); an epoch E > 0
    is after E epochs: the state a run of E epochs ends with, handed over before
    the next epoch reuses its buffers (e.g. to :func:`encode` held-out latents
    along training without retraining). A resumed run sees the restored
    checkpoint's epoch, not the epochs before it: those are in ``missed`` after
    the start.
    """

    def __init__(self, epochs: Sequence[int], snapshot: Callable[[int, Engine, TrainState], None]):
        self.epochs, self.snapshot = frozenset(int(e) for e in epochs), snapshot
        self.missed: list[int] = []

    def start(self, begin: TrainStart) -> None:
        if 0 in self.epochs:
            self.snapshot(0, begin.engine, begin.initial)
        if begin.epoch > 0 and begin.epoch in self.epochs:
            self.snapshot(begin.epoch, begin.engine, begin.state)
        self.missed = sorted(e for e in self.epochs if 0 < e < begin.epoch)

    def __call__(self, end: EpochEnd) -> None:
        if end.epoch in self.epochs:
            self.snapshot(end.epoch, end.engine, end.state)


class Checkpointer(EpochHook):
    """Saves the state every ``every`` epochs, after the last one and before a stop on a signal.

    The checkpoint's metadata carries the loss curve of the whole run
    (``earlier``: the epochs restored from a checkpoint), so that a resumed run
    knows it; the per-step losses stay out (they would grow the JSON by the step count).
    """

    def __init__(self, manager, meta: dict, every: int | None, earlier: Sequence[dict]):
        self.manager, self.meta, self.every, self.earlier = manager, meta, every, list(earlier)

    def __call__(self, end: EpochEnd) -> None:
        if end.last or faults.stop_requested() or (self.every and end.epoch % self.every == 0):
            self.meta["history"] = loss_curve(self.earlier + end.history)
            self.manager.save(end.epoch, end.state, self.meta)


def loss_curve(history: Sequence[dict]) -> list[dict]:
    """``epoch``, ``loss`` (per run) and ``seconds`` of each epoch: what a
    checkpoint keeps of the history, so what a resumed run knows of its earlier epochs."""
    return [{k: h[k] for k in ("epoch", "loss", "seconds")} for h in history]


class StopOnSignal(EpochHook):
    """Ends training with :class:`icrst_jax.faults.Interrupted` after the epoch a signal arrived in."""

    def __init__(self, say: Callable[[str], None], *, checkpointed: bool):
        self.say, self.checkpointed = say, checkpointed

    def __call__(self, end: EpochEnd) -> None:
        if faults.stop_requested():
            self.say(f"stopped after epoch {end.epoch}" + (", checkpoint saved" if self.checkpointed else ""))
            faults.raise_if_requested()


def train_epochs(engine: Engine, compiled, state: TrainState, data: TrainData, *, epochs: int,
                 hooks: Sequence[EpochHook] = (), history: list | None = None,
                 stop_after_epoch: int | None = None) -> TrainState:
    """Runs the compiled epoch from ``state``'s epoch up to ``epochs``; returns the final state.

    Appends one entry per epoch to ``history`` (epoch, loss and step_loss per
    run, seconds, samples_per_s) and calls each hook after each epoch, in order.
    ``stop_after_epoch`` ends the loop after that epoch (its ``last`` is True).
    """
    history = [] if history is None else history
    n_runs = int(np.asarray(state.epoch).shape[0])
    for epoch in range(int(np.asarray(state.epoch)[0]), epochs):
        t0 = time.perf_counter()
        # Catch hidden host round trips: inside the epoch nothing may move
        # between host and device implicitly.
        with jax.transfer_guard("disallow"):
            state, metrics = compiled(state, data)
        metrics = to_host(metrics)
        loss = np.asarray(metrics["loss"])
        dt = time.perf_counter() - t0
        rate = engine.num_samples * n_runs / dt
        history.append({
            "epoch": epoch + 1,
            "loss": loss.tolist(),
            "step_loss": np.asarray(metrics["step_loss"]).tolist(),  # (runs, steps)
            "seconds": dt,
            "samples_per_s": rate,
        })
        stop = stop_after_epoch is not None and epoch + 1 >= stop_after_epoch
        end = EpochEnd(epoch=epoch + 1, state=state, loss=loss, seconds=dt, samples_per_s=rate, history=history,
                       last=stop or epoch + 1 == epochs, engine=engine)
        for hook in hooks:
            hook(end)
        if stop:
            break
    return state


def _progress_fn(progress) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return tag_progress(lambda line: print(line, file=sys.stderr, flush=True))
    return lambda line: None


def make_encode_fn(model: AutoEncoder) -> Callable:
    """jit(vmap over seeds) of the model's inference-mode latent."""

    def encode_one(params, batch_stats, x):
        variables = {"params": params}
        if jax.tree_util.tree_leaves(batch_stats):
            variables["batch_stats"] = batch_stats
        return model.apply(variables, x, method=AutoEncoder.encode)

    return jax.jit(jax.vmap(encode_one, in_axes=(0, 0, None)))


def make_reconstruct_fn(model: AutoEncoder) -> Callable:
    """jit(vmap over seeds) of the model's inference-mode reconstruction."""

    def recon_one(params, batch_stats, x):
        variables = {"params": params}
        if jax.tree_util.tree_leaves(batch_stats):
            variables["batch_stats"] = batch_stats
        return model.apply(variables, x, train=False)[0]

    return jax.jit(jax.vmap(recon_one, in_axes=(0, 0, None)))


def batched_apply(fn, engine: Engine, state: TrainState, x, mean, std, batch_size: int, progress=None) -> np.ndarray:
    """Runs ``fn(params, batch_stats, inputs)`` over ``x`` in fixed-size batches
    (the last one padded, so it compiles once) and returns numpy (K, N, ...).

    Each batch is split over the engine's mesh like a training batch (its size
    rounded up to a multiple of the device count), and the result is gathered
    back: complete on every process, also in a multi-process run."""
    x = np.asarray(x, np.float32)
    n = x.shape[0]
    mean, std = _mean_std(x, mean, std)
    n_dev = engine.mesh.devices.size
    batch_size = int(math.ceil(min(batch_size, n) / n_dev) * n_dev)
    sharding = NamedSharding(engine.mesh, P(DATA_AXIS))
    outs, reals = [], []
    for i, start in enumerate(range(0, n, batch_size)):
        chunk = x[start : start + batch_size]
        real = chunk.shape[0]
        if real < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - real, *x.shape[1:]), np.float32)])
        host = encoder_input(chunk, mean, std)
        # Every process holds all of x; each fills only its own devices' rows.
        inputs = jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
        # Dispatch every batch before fetching any: one wait for the device, not one per batch.
        outs.append(fn(state.params, state.batch_stats, inputs))
        reals.append(real)
        if progress is not None:
            progress(f"  batch {i + 1}/{math.ceil(n / batch_size)}")
    return np.concatenate([out[:, :real] for out, real in zip(to_host(outs), reals)], axis=1)


def encode(engine: Engine, state: TrainState, x, *, mean=None, std=None, batch_size: int = 1024,
           progress=None) -> np.ndarray:
    """Latent features of ``x`` for every run of ``state``: numpy (R, N, D)
    float32, complete on every process.

    ``engine, state`` are a fit's (``result.engine, result.state``) or those of
    any epoch in between (``fit(..., hooks=[Snapshots(...)])``); ``mean, std`` as in
    :func:`fit`. The jitted encoder is kept in the engine, so repeated calls
    (latents at several epochs) compile once.
    """
    if "encode" not in engine.programs:
        engine.programs["encode"] = make_encode_fn(engine.model)
    fn = engine.programs["encode"]
    return batched_apply(fn, engine, state, x, mean, std, batch_size, progress).astype(np.float32)


def reconstruct(engine: Engine, state: TrainState, x, *, mean=None, std=None, batch_size: int = 1024) -> np.ndarray:
    """Inference-mode reconstructions of ``x`` for every run of ``state``: numpy (R, N, ...).

    The jitted reconstruction is kept in the engine, like :func:`encode`'s."""
    if "reconstruct" not in engine.programs:
        engine.programs["reconstruct"] = make_reconstruct_fn(engine.model)
    return batched_apply(engine.programs["reconstruct"], engine, state, x, mean, std, batch_size)
