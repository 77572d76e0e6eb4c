"""Faults answered in one line: interrupts, non-finite and diverging training.

Interrupts. :func:`handle_interrupts` (the command line's) turns SIGINT and
SIGTERM into a request that training honours at the next epoch boundary (an
epoch is one compiled program: the finest point where the state is whole),
after saving a checkpoint. Outside :func:`deferred` sections (loading,
compiling, evaluating) the signal raises :class:`Interrupted` at once, and a
second signal always ends the process, even one blocked in native code (a
collective waiting for a partner): a user who presses Ctrl-C twice wants out
now. Without the handler, nothing here changes how a signal behaves.

Divergence. :func:`divergence` names what is wrong with a grid point whose
training ran to the end but whose numbers should not be read as a result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

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


class _State:
    installed = False
    signum: int | None = None
    deferring = 0
    received = 0  # signals seen by the watcher thread (it sees every one, blocked main thread or not)
    exit_now: str | None = None  # set by exit_on_signal: what the process is blocked in


_state = _State()
# How long the main thread gets to act on a second signal itself (raise
# Interrupted, print where the checkpoint is) before the watcher ends the process.
SECOND_SIGNAL_GRACE_S = 2.0


def _handler(signum, frame):
    first = _state.signum is None
    _state.signum = signum
    if _state.deferring and first:
        return  # honoured at the next epoch boundary
    raise Interrupted(signum)


def hard_exit(status: int, line: str) -> None:
    """Writes ``line`` to stderr and ends the process with ``status`` at once, from any
    thread, whatever the main thread is blocked in (no cleanup, no Python buffers)."""
    os.write(2, (line.rstrip("\n") + "\n").encode(errors="replace"))
    os._exit(status)


def _watch(read_fd: int, done: threading.Event) -> None:
    """Reads the signal numbers that Python's C-level handler writes to the wakeup fd.

    Python runs signal handlers in the main thread between bytecodes, so a
    main thread blocked in native code (joining processes, waiting in a
    collective for a partner that never comes) never runs them. This thread
    does not depend on it: a signal while :func:`exit_on_signal` is active,
    or a second signal that the main thread has not acted on within
    :data:`SECOND_SIGNAL_GRACE_S`, ends the process with 128 + signal.
    """
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        for signum in data:
            if signum == 0 or done.is_set():  # 0: handle_interrupts is leaving
                return
            if signum not in (signal.SIGINT, signal.SIGTERM):
                continue
            _state.received += 1
            name = signal.Signals(signum).name
            if _state.exit_now is not None:
                hard_exit(128 + signum, f"interrupted by {name} {_state.exit_now}")
            elif _state.received >= 2 and not done.wait(SECOND_SIGNAL_GRACE_S):
                hard_exit(128 + signum, f"interrupted by {name} a second time: stopped at once "
                                        f"(checkpoints written so far are kept)")


@contextlib.contextmanager
def handle_interrupts():
    """Installs the SIGINT / SIGTERM handlers for the ``with`` body (main thread only).

    A first signal stops the run at the next epoch boundary (or at once
    outside :func:`deferred` sections); a second one always ends the process,
    even when the main thread is blocked in native code (see :func:`_watch`).
    """
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the wakeup fd must never block the signal handler
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(read_fd, done), name="icrst-signal-watch", daemon=True)
    _state.installed, _state.signum, _state.received = True, None, 0
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(old_wakeup)
        os.write(write_fd, b"\0")
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)
        for s, h in old.items():
            signal.signal(s, h)
        _state.installed, _state.signum, _state.received = False, None, 0


@contextlib.contextmanager
def exit_on_signal(what: str):
    """A section blocked in native code with nothing to save (joining processes): a
    signal ends the process at once, with one line ``interrupted by SIG... <what>``.
    Only under :func:`handle_interrupts`; without it signals behave as usual."""
    _state.exit_now = what
    try:
        yield
    finally:
        _state.exit_now = None


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
