"""Where live metrics go: a small writer interface and its TensorBoard implementation.

:class:`MetricWriter` is what the training hook and the results logger
(:mod:`icrst_jax.live_logs`) write to, one writer per run (a grid point), so a
Weights & Biases or CLU writer can stand beside :class:`TensorBoardWriter`
without touching them. The TensorBoard one writes event files with
tensorboardX, numpy only (no TensorFlow): scalars as simple values (what
TensorBoard's ``EventAccumulator`` lists under scalars) and the hparams
plugin's summaries.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

EVENT_FILE_GLOB = "events.out.tfevents.*"
_FILES = itertools.count()  # two writers of one run opened within a second get distinct files


class MetricWriter(Protocol):
    """One run's metrics: scalars by step, the run's hyperparameters once."""

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def write_hparams(self, hparams: Mapping[str, str | float | int | bool],
                      metrics: Mapping[str, float]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class TensorBoardWriter:
    """A :class:`MetricWriter` of one TensorBoard run: a new event file in ``logdir``, written as
    the values come (no background thread: what :meth:`flush` returns from is on disk, and an
    interrupted run keeps every epoch it logged)."""

    def __init__(self, logdir: str | os.PathLike):
        # tensorboardX costs a quarter second at import: only a run that logs loads it.
        from tensorboardX.event_file_writer import EventsWriter

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._events = EventsWriter(str(self.logdir / "events"), f".{os.getpid()}.{next(_FILES)}")

    def _write(self, step: int, summary) -> None:
        from tensorboardX.proto.event_pb2 import Event  # with EventsWriter above

        self._events.write_event(Event(wall_time=time.time(), step=int(step), summary=summary))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Simple values, as tensorboardX's ``add_scalar`` writes them."""
        from tensorboardX.summary import scalar  # with EventsWriter above

        for tag, value in scalars.items():
            self._write(step, scalar(tag, float(value)))

    def write_hparams(self, hparams: Mapping[str, str | float | int | bool], metrics: Mapping[str, float]) -> None:
        """The hparams plugin's experiment, session start and end, in this run (not a sub-run)."""
        from tensorboardX.summary import hparams as hparams_summaries  # with EventsWriter above

        for summary in hparams_summaries(dict(hparams), dict(metrics)):
            self._write(0, summary)

    def flush(self) -> None:
        self._events.flush()

    def close(self) -> None:
        self._events.close()


def clear_run(logdir: str | os.PathLike) -> None:
    """Removes a run's event files (a resumed run writes its curve again from the start)."""
    for path in Path(logdir).glob(EVENT_FILE_GLOB):
        path.unlink()
