"""Did the autoencoders train? The optimizer steps of a run and the slope of its loss at the end.

A study's verdict on its own training, one line in the log: how many
optimizer steps each run took, the mean loss over runs from the first epoch
to the last, and how much it fell over the last tenth of the epochs. It
warns, in one line, when a run took fewer than :data:`MIN_STEPS` steps or its
loss still fell by more than :data:`FAST_FALL` over that last tenth: the
latents then judge an autoencoder that stopped early, not a trained one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

# A few hundred steps: below, Adam at 1e-3 has barely left the initial parameters.
MIN_STEPS = 300
# The loss still falling by more than 5% over the last tenth of training: not flattened.
FAST_FALL = 0.05


@dataclasses.dataclass(frozen=True)
class TrainingCheck:
    """What the loss curve says about one study's training.

    Attributes:
      steps: optimizer steps per run (steps per epoch x epochs).
      first_loss, last_loss: mean loss over runs after the first and the last epoch.
      tail_fall: relative fall of that mean over the last tenth of the epochs (at least one).
      tail_epochs: the epochs that tenth spans.
    """

    steps: int
    first_loss: float
    last_loss: float
    tail_fall: float
    tail_epochs: int

    @property
    def warning(self) -> str | None:
        """One line when the runs took too few steps or their loss is still falling fast, else None."""
        why = []
        if self.steps < MIN_STEPS:
            why.append(f"only {self.steps} optimizer steps per run (fewer than {MIN_STEPS})")
        if self.tail_fall > FAST_FALL:
            why.append(f"the loss still fell {100 * self.tail_fall:.0f}% over the last {self.tail_epochs} epoch(s)")
        if not why:
            return None
        return ("warning: " + " and ".join(why) + "; these autoencoders stopped early: more epochs "
                "(--epochs) or a smaller batch (--batch-size) train them further")

    def line(self) -> str:
        return (f"trained: {self.steps} optimizer steps per run; mean loss {self.first_loss:.4g} after epoch 1, "
                f"{self.last_loss:.4g} at the end ({100 * self.tail_fall:.1f}% over the last "
                f"{self.tail_epochs} epoch(s))")


def check_training(loss_per_epoch: Sequence, steps_per_epoch: int) -> TrainingCheck:
    """The :class:`TrainingCheck` of a run's loss history.

    Args:
      loss_per_epoch: per epoch, the loss of each run (shape ``(epochs, runs)`` or ``(epochs,)``).
      steps_per_epoch: optimizer steps in one epoch.

    Example:
      >>> check_training([[1.0], [0.5], [0.49]], 100).steps
      300
    """
    curve = np.asarray([np.mean(loss) for loss in loss_per_epoch], dtype=np.float64)
    if curve.size == 0:
        return TrainingCheck(steps=0, first_loss=float("nan"), last_loss=float("nan"), tail_fall=0.0,
                             tail_epochs=0)
    tail = max(1, curve.size // 10) if curve.size > 1 else 0
    before = curve[-1 - tail]
    fall = float((before - curve[-1]) / abs(before)) if tail and before != 0 else 0.0
    return TrainingCheck(steps=int(steps_per_epoch * curve.size), first_loss=float(curve[0]),
                         last_loss=float(curve[-1]), tail_fall=fall, tail_epochs=tail)


def say_training_check(loss_per_epoch: Sequence, steps_per_epoch: int, say: Callable[[str], None]) -> TrainingCheck:
    """:func:`check_training`, said: its line, then its warning when it has one (every study kind's log)."""
    checked = check_training(loss_per_epoch, steps_per_epoch)
    say(checked.line())
    if checked.warning:
        say(checked.warning)
    return checked
