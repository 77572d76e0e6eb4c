"""Orbax checkpoints of a (stacked, multi-seed) TrainState with JSON metadata.

Each checkpoint holds the state (parameters, BatchNorm statistics, Adam state,
raw key data, epoch) and a JSON item with the run's config, seeds and whatever
the caller adds (the data preprocessing statistics, so that latents can be
extracted later exactly as in training). Resuming checks that the stored
config matches the current one, so a changed run never silently continues an
old one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

# Config fields that may change between the interrupted and the resumed run
# without changing what is computed.
_RESUMABLE_KEYS = {"epochs", "checkpoint_every", "num_devices"}


class CheckpointMismatch(ValueError):
    """The checkpoint in a directory belongs to a different run."""


def _comparable(meta: dict) -> dict:
    meta = jax.tree_util.tree_map(lambda v: v, meta)  # deep copy of dicts/lists
    cfg = dict(meta.get("config", {}))
    for k in _RESUMABLE_KEYS:
        cfg.pop(k, None)
    return {"config": cfg, "seeds": meta.get("seeds")}


class CheckpointManager:
    """A thin wrapper over ``orbax.checkpoint.CheckpointManager``.

    Example:
      >>> mngr = CheckpointManager("/tmp/run")
      >>> mngr.save(5, state, {"config": cfg.to_dict(), "seeds": [0]})
      >>> state = mngr.restore_latest(abstract_or_template_state)
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._mngr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
            item_names=("state", "meta"),
        )

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        self._mngr.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(_jsonable(meta))),
            force=True,
        )
        self._mngr.wait_until_finished()

    def read_meta(self, step: int | None = None) -> dict | None:
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        return self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore_latest(self, template: Any, expected_meta: dict | None = None) -> Any | None:
        """The latest state, shaped and sharded like ``template``; None if there is none.

        Raises:
          CheckpointMismatch: the stored config or seeds differ from ``expected_meta``.
        """
        step = self.latest_step()
        if step is None:
            return None
        if expected_meta is not None:
            stored = self.read_meta(step)
            if _comparable(stored) != _comparable(_jsonable(expected_meta)):
                raise CheckpointMismatch(
                    f"checkpoint in {self.directory} (epoch {step}) was written by a different run: "
                    f"stored {_comparable(stored)}, current {_comparable(_jsonable(expected_meta))}. "
                    "Use another directory, or delete it to start over."
                )
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, template)
        restored = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        return restored["state"]

    def close(self) -> None:
        self._mngr.close()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
