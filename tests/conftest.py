"""Test session setup.

Four fake CPU devices are created *before JAX starts*, so that the data-parallel
code paths (mesh over a ``data`` axis) are exercised in every test session, as
in Optax's and big_vision's sharding tests. Code that wants a single device
asks for ``num_devices=1``.
"""

import atexit
import os
import shutil
import tempfile

# Compiling is most of the suite's time, and most test programs run for milliseconds. Two
# switches halve it twice (BENCHMARKS.md, "Test-suite time"): XLA's CPU fusions through its
# loop emitters instead of its newer fusion emitters, and XLA's optimisations off (JAX's own
# switch: backend level 0, no expensive LLVM passes). The arithmetic is the same operations,
# rounded differently in the last bits. Tests that run long programs or check a program's
# numbers against a reference spread turn the optimisations back on (`shipped_compiler`).
# Child processes inherit both; JAX_DISABLE_MOST_OPTIMIZATIONS=0 keeps the optimisations on.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4 --xla_cpu_use_fusion_emitters=false"
).strip()
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the whole run, never ~/.cache: many tests
# compile the same programs (the same tiny models in several files, the command line
# in child processes), and the second compilation of a program is then a disk read.
# The first process (pytest, or xdist's controller) makes the directory and removes it
# at exit; the xdist workers inherit it through the environment, and so does the
# command line run in-process (its ICRST_JAX_CACHE_DIR). Child processes started
# with child_env() compile cold; tests of the cache pass their own directory.
if "ICRST_JAX_TEST_XLA_CACHE" not in os.environ:
    os.environ["ICRST_JAX_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="icrst-jax-test-xla-")
    atexit.register(shutil.rmtree, os.environ["ICRST_JAX_TEST_XLA_CACHE"], ignore_errors=True)
os.environ.setdefault("ICRST_JAX_CACHE_DIR", os.environ["ICRST_JAX_TEST_XLA_CACHE"])
# Data downloads: no test may reach the internet or write under ~/.cache. A test
# that fetches serves the files itself (tests/test_download.py) and sets both.
os.environ.setdefault("ICRST_JAX_DATA_MIRROR", "http://127.0.0.1:9/no-network-in-tests")
os.environ.setdefault("ICRST_JAX_DATA_DIR", "/nonexistent/icrst_jax-test-data")
# Headless figures.
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402

assert jax.device_count() == 4, "conftest must run before anything imports jax"

from icrst_jax.runtime import enable_compilation_cache  # noqa: E402

enable_compilation_cache(os.environ["ICRST_JAX_CACHE_DIR"])


FORCE_FLAG = "--xla_force_host_platform_device_count"


@pytest.fixture
def shipped_compiler():
    """XLA's optimisations on for this test, as a user's run has them (see the top of this
    file). Its programs must be its own: one compiled earlier in this process with the same
    shapes would be reused as it was compiled."""
    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


def child_env(**extra) -> dict:
    """The environment for a child Python process (``from conftest import child_env``):
    this one minus the run's forced device count, on the CPU, with no JAX
    compilation cache (the benchmark suite measures cold
    compilation; cache tests name theirs through ``ICRST_JAX_CACHE_DIR``), plus ``extra``."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(FORCE_FLAG)]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    else:
        env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["ICRST_JAX_CACHE_DIR"] = "off"  # not the run's shared cache: a child measures or tests its own
    env.update(extra)
    return env
