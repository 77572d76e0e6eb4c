"""Earlier names of the study entry points, kept for scripts that use them.

New code imports :mod:`icrst_jax.studies` (any kind of study) or the stages
of :mod:`icrst_jax.stages`.
"""

from icrst_jax.reporting.console import comparison_table
from icrst_jax.runtime import setup_compilation_cache, versions
from icrst_jax.studies import dry_check
from icrst_jax.studies import run as run_experiment

__all__ = ["comparison_table", "dry_check", "run_experiment", "setup_compilation_cache", "versions"]
