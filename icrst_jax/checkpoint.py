"""Orbax checkpoints of a (stacked, multi-seed) TrainState with JSON metadata.

Each checkpoint holds the state (parameters, BatchNorm statistics, Adam state,
raw key data, epoch) and a JSON item with the run's fingerprint
(``meta["identity"]``, see :mod:`icrst_jax.run_identity`), its loss history
and whatever the caller adds (the data preprocessing statistics, so that
latents can be extracted later exactly as in training). Resuming checks the
stored fingerprint against the current one, so a changed run never silently
continues an old one, and falls back past damaged checkpoints to the newest
intact one.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp

from icrst_jax.jsonable import to_jsonable
from icrst_jax.run_identity import first_difference, mismatch_message


class CheckpointMismatch(ValueError):
    """The checkpoint in a directory belongs to a different run."""


class NoIntactCheckpoint(ValueError):
    """Every checkpoint in a directory is damaged."""


class CheckpointManager:
    """A thin wrapper over ``orbax.checkpoint.CheckpointManager``.

    Example:
      >>> mngr = CheckpointManager("/tmp/run")
      >>> mngr.save(5, state, {"identity": {...}, "seeds": [0]})
      >>> state, meta = mngr.restore_latest(abstract_or_template_state)
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._mngr = ocp.CheckpointManager(
            self.directory,
            # A save cut short (kill -9) leaves a temporary folder: removed here, on the next start.
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=True),
            item_names=("state", "meta"),
        )

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        self._mngr.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(to_jsonable(meta))),
            force=True,
        )
        self._mngr.wait_until_finished()

    def read_meta(self, step: int | None = None) -> dict | None:
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        return self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore_latest(
        self, template: Any, expected_identity: dict | None = None, warn: Callable[[str], None] | None = None
    ) -> tuple[Any, dict] | None:
        """The newest intact checkpoint: ``(state shaped and sharded like template, meta)``; None if there is none.

        A checkpoint that cannot be read (a truncated file, a missing item) is
        skipped with a warning naming its folder; once an older one restores,
        the damaged newer ones are deleted, so that the resumed run can save
        its epochs again.

        Raises:
          CheckpointMismatch: the stored fingerprint differs from ``expected_identity``.
          NoIntactCheckpoint: there are checkpoints, and none can be read.
        """
        warn = warn or (lambda line: None)
        steps = sorted(self._mngr.all_steps(), reverse=True)
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, template)
        if steps:
            _quiet_abandoned_reads()
        damaged = []
        for step in steps:
            folder = self.directory / str(step)
            try:
                meta = self.read_meta(step)
            except Exception as e:  # orbax/TensorStore raise many types for a damaged folder
                warn(f"warning: skipping damaged checkpoint {folder} ({_first_line(e)})")
                damaged.append(step)
                continue
            if expected_identity is not None:
                diff = first_difference(meta.get("identity"), to_jsonable(expected_identity))
                if diff:
                    raise CheckpointMismatch(mismatch_message(self.directory, *diff))
            try:
                state = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
            except Exception as e:
                warn(f"warning: skipping damaged checkpoint {folder} ({_first_line(e)})")
                damaged.append(step)
                continue
            for bad in damaged:
                self._mngr.delete(bad)
            return state, meta
        if damaged:
            raise NoIntactCheckpoint(
                f"no intact checkpoint in {self.directory} (epochs {', '.join(map(str, damaged))} are damaged): "
                f"delete that folder to train from the start"
            )
        return None

    def close(self) -> None:
        self._mngr.close()


def _quiet_abandoned_reads() -> None:
    """Keeps a damaged checkpoint's warning the one line it is.

    When one array of a checkpoint cannot be read, orbax's restore raises and closes its
    event loop while TensorStore still reads the other arrays; each read that finishes
    later calls back into the closed loop, and Python prints its ``RuntimeError: Event loop
    is closed`` as an unraisable exception (dozens of tracebacks after the warning), and
    later warns of a metadata coroutine never awaited and logs the abandoned reads' errors
    through asyncio's logger. Before this process's first restore, its unraisable-exception
    hook is made to drop exactly those errors (everything else goes to the hook it
    replaced), that one warning is ignored, and asyncio's logger drops the records of
    TensorStore reads nobody awaited (their errors carry a ``tensorstore_spec``).
    """
    previous = sys.unraisablehook
    if getattr(previous, "drops_closed_loop_callbacks", False):
        return

    def hook(unraisable):
        if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
            return
        previous(unraisable)

    hook.drops_closed_loop_callbacks = True
    sys.unraisablehook = hook
    warnings.filterwarnings("ignore", message=r"coroutine 'Store\._get_array_metadatas' was never awaited",
                            category=RuntimeWarning)
    logging.getLogger("asyncio").addFilter(_not_an_abandoned_read)


def _not_an_abandoned_read(record: logging.LogRecord) -> bool:
    """False for asyncio's record of a TensorStore read whose error nobody retrieved."""
    exc = record.exc_info[1] if record.exc_info else None
    return not ("never retrieved" in record.getMessage() and "tensorstore_spec" in str(exc))


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__
