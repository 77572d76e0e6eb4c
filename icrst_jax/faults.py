"""Faults answered in one line: interrupts, non-finite and diverging training.

Interrupts. :func:`handle_interrupts` (the command line's) turns SIGINT and
SIGTERM into a request that training honours at the next epoch boundary (an
epoch is one compiled program: the finest point where the state is whole),
after saving a checkpoint. Outside :func:`deferred` sections (loading,
compiling, evaluating) the signal raises :class:`Interrupted` at once, and a
second signal always does: a user who presses Ctrl-C twice wants out now.
Without the handler, nothing here changes how a signal behaves.

Divergence. :func:`divergence` names what is wrong with a grid point whose
training ran to the end but whose numbers should not be read as a result.
"""

from __future__ import annotations

import contextlib
import signal

import numpy as np

# A loss that ends this many times above its first epoch went the wrong way.
DIVERGED_LOSS_RATIO = 2.0
NON_FINITE_LATENTS = "latents are not finite"
# Latents this large mean exploded weights (the models' inputs and targets are unit scale).
HUGE_LATENT = 1e6


class Interrupted(Exception):
    """A SIGINT or SIGTERM stopped the run. ``exit_status`` is the shell's 128 + signal."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class NonFiniteLoss(ValueError):
    """Training produced a NaN or infinite loss; the message is the one line to show."""


class MissingResults(ValueError):
    """Results the config asks for could not be made; everything else was written. The message is one line."""


class _State:
    installed = False
    signum: int | None = None
    deferring = 0


_state = _State()


def _handler(signum, frame):
    first = _state.signum is None
    _state.signum = signum
    if _state.deferring and first:
        return  # honoured at the next epoch boundary
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_interrupts():
    """Installs the SIGINT / SIGTERM handlers for the ``with`` body (main thread only)."""
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _state.installed, _state.signum = True, None
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _state.installed, _state.signum = False, None


@contextlib.contextmanager
def deferred():
    """A section (training, checkpoint writing) that a first signal does not cut short."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1


def stop_requested() -> bool:
    """Whether a signal asked the run to stop (always False without :func:`handle_interrupts`)."""
    return _state.signum is not None


def raise_if_requested() -> None:
    """Raises the pending :class:`Interrupted`, if a signal arrived."""
    if _state.signum is not None:
        raise Interrupted(_state.signum)


def non_finite_message(epoch: int, loss, points) -> str:
    """One line: the epoch, the grid points whose loss is not finite, the likely causes."""
    loss = np.asarray(loss)
    bad = [pt for pt, v in zip(points, loss) if not np.isfinite(v)]
    names = ", ".join(f"{pt.mode} p={pt.p:g} seed {pt.seed}" for pt in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (
        f"training loss became {'nan' if np.isnan(loss).any() else 'inf'} at epoch {epoch} "
        f"for {names}{more}; likely causes: a learning rate too large (--lr), extreme data values, "
        f"or bfloat16 overflow (--dtype float32); no checkpoint of this epoch was written"
    )


def divergence(loss_curve, latents) -> str | None:
    """Why a finished grid point's numbers are not a result, or None if they are.

    Args:
      loss_curve: the point's loss per epoch (all epochs of the run).
      latents: its test-split latents.
    """
    curve = [float(v) for v in loss_curve]
    latents = np.asarray(latents)
    if not np.all(np.isfinite(latents)):
        return NON_FINITE_LATENTS
    peak = float(np.max(np.abs(latents))) if latents.size else 0.0
    if peak > HUGE_LATENT:
        return f"latents reach {peak:.1e}"
    if len(curve) >= 2 and curve[-1] > DIVERGED_LOSS_RATIO * curve[0]:
        return f"loss rose from {curve[0]:.4g} to {curve[-1]:.4g}"
    return None
