"""The one place that picks the kind of a study from its config.

A study is a :class:`icrst_jax.config.StudyConfig`; its kind follows from it:

* ``adaptation`` (:mod:`icrst_jax.adaptation`): ``data.target`` is set, two
  data sets, unsupervised domain adaptation (paper section 8);
* ``latent_size`` (:mod:`icrst_jax.latent_size_study`): ``latent_sizes`` is
  set, one grid per bottleneck width, compared side by side;
* ``grid`` (:mod:`icrst_jax.grid_study`): otherwise, modes x p values x seeds
  of one data set in one compiled program.

Each kind's module offers the same four things: ``run(cfg, ...)`` (returns the
results payload), ``dry_check(cfg)`` (what it would run, without data or
compilation), ``table(payload)`` (the terminal's summary) and ``outputs(cfg)``
(the files a reader opens). Running, the dry check, the summary table and the
paths printed at the end all go through :func:`kind_of`, so a new kind is one
entry in :data:`KINDS`. The kinds share the stages of :mod:`icrst_jax.stages`
and never import this module or each other.

    from icrst_jax import studies
    payload = studies.run(cfg, progress=print)
    print(studies.table(cfg, payload))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from icrst_jax import adaptation, grid_study, latent_size_study
from icrst_jax.config import StudyConfig


@dataclasses.dataclass(frozen=True)
class StudyKind:
    """One kind of study: its name, when a config is of this kind, and its module."""

    name: str
    applies: Callable[[StudyConfig], bool]
    module: ModuleType


# In order: the first kind that applies is the study's.
KINDS: tuple[StudyKind, ...] = (
    StudyKind(adaptation.KIND, lambda cfg: cfg.data.target is not None, adaptation),
    StudyKind(latent_size_study.KIND, lambda cfg: bool(cfg.latent_sizes), latent_size_study),
    StudyKind(grid_study.KIND, lambda cfg: True, grid_study),
)


def kind_of(cfg: StudyConfig) -> StudyKind:
    """The kind of study ``cfg`` describes."""
    return next(kind for kind in KINDS if kind.applies(cfg))


def run(cfg: StudyConfig, *, progress: Callable[[str], None] | None = None, dataset=None,
        command: str | None = None, hooks: Sequence = ()) -> dict:
    """Runs the study and writes its files into its folder
    (``cfg.out``, or ``runs/<dataset>-<fingerprint>``: :func:`icrst_jax.run_identity.out_dir`).

    Args:
      cfg: the study.
      progress: gets one line per stage / epoch / classifier; None is quiet.
      dataset: an already loaded :class:`icrst_jax.data.Dataset` (grid and
        latent-size studies; skips loading).
      command: the command line as typed, for ``results.json`` (default: ``sys.argv``).
      hooks: more :class:`icrst_jax.train.EpochHook` duties for the training loop.

    Returns:
      The ``results.json`` payload. Errors: see :func:`icrst_jax.stages.run_pipeline`.
    """
    return kind_of(cfg).module.run(cfg, progress=progress, dataset=dataset, command=command, hooks=hooks)


def dry_check(cfg: StudyConfig, *, num_devices: int | None = None) -> dict:
    """What the study would run, checked without its data or any compilation.

    Raises:
      ValueError: a width that empties a layer, or a model that does not fit the data.
    """
    return kind_of(cfg).module.dry_check(cfg, num_devices=num_devices)


def table(cfg: StudyConfig, payload: dict) -> str:
    """The terminal's summary of a finished study."""
    return kind_of(cfg).module.table(payload)


def outputs(cfg: StudyConfig) -> list[Path]:
    """The files a finished study wrote for a reader (results.json and its report)."""
    return kind_of(cfg).module.outputs(cfg)
