"""The grid study: modes x p values x seeds of one data set and one model, in one folder.

One compiled program trains every grid point (the mode and p are data on the
run axis); the stages of :mod:`icrst_jax.stages` evaluate and report them.
Picked by :mod:`icrst_jax.studies` for a config with neither ``data.target``
nor ``latent_sizes``.

    python -m experiments.run --config configs/cpu_breast_cancer.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from icrst_jax import run_identity, stages
from icrst_jax.config import StudyConfig
from icrst_jax.models import check_widths
from icrst_jax.reporting.console import comparison_table

KIND = "grid"


def dry_check(cfg: StudyConfig, *, num_devices: int | None = None) -> dict:
    """Checks a study config without its data or any compilation.

    The model is built for the data set's sample shape and traced abstractly:
    its reconstruction must have the sample's shape. Returns what the study
    would run (:func:`icrst_jax.stages.model_summary`, plus the data set).

    Raises:
      ValueError: a width that empties a layer, or a model that does not fit
        the data (image side, channels).
    """
    cfg.check_model_fits_data()
    cfg.check_eval_epochs()
    check_widths(cfg.train.model)
    shape, n_train = stages.sample_shape(cfg)
    return {"study": KIND, "dataset": stages.data_name(cfg), **stages.model_summary(cfg, shape, n_train,
                                                                             num_devices=num_devices)}


def run(cfg: StudyConfig, *, progress: Callable[[str], None] | None = None, dataset=None,
        command: str | None = None, hooks: Sequence = ()) -> dict:
    """Runs the study into its folder (``cfg.out``, or ``runs/<dataset>-<fingerprint>``);
    see :func:`icrst_jax.stages.run_pipeline` for the arguments and errors."""
    return stages.run_pipeline(cfg, run_identity.out_dir(cfg), progress=progress, dataset=dataset,
                               command=command, hooks=hooks)


def outputs(cfg: StudyConfig) -> list[Path]:
    """The files a finished study leaves for a reader: results.json and report.md."""
    out = run_identity.out_dir(cfg)
    return [out / "results.json", out / "report.md"]


table = comparison_table
