"""Process-wide JAX settings of the command line: the platform check and the persistent compilation cache.

XLA compilation is a large share of a short run's wall time on a CPU (for
the Breast Cancer MLP, longer than its 50 epochs take: BENCHMARKS.md, "Cold
start"). A repeated run compiles
exactly the same programs again, and so does a study of another size or a
single run of one of its points: the mode and ``p`` are traced *data* of the
epoch program (``TrainState.run``), not constants baked into it. JAX's persistent compilation cache stores every compiled executable on disk
under a hash of the program, the devices, the compile options and the
jax/jaxlib versions, and later processes load it instead of compiling.

:func:`enable_compilation_cache` turns that cache on with settings suited to
this package; ``python -m experiments.run`` calls it by default (see its
``--compilation-cache`` and ``--no-compilation-cache`` options). The benchmark
suite deliberately does not, because it reports compilation time separately.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

# jax is imported inside the functions (start-up time): ``import icrst_jax``
# imports this module, and a --help or a config check should not load jax.

#: Environment variable that moves the cache (or disables it with ``off``).
CACHE_ENV_VAR = "ICRST_JAX_CACHE_DIR"
#: Values of the argument / environment variable that disable the cache.
OFF_VALUES = ("off", "")


class PlatformError(ValueError):
    """JAX cannot start the platform it was asked for; the message is the one line to show."""


def check_platform() -> None:
    """Starts JAX's backends: a platform it cannot start is one line naming it and what is available.

    ``JAX_PLATFORMS=cuda`` on a machine without a GPU (or without JAX's CUDA
    plugin) ends in a bare ``AssertionError`` or a long ``RuntimeError``
    from inside JAX; this names the platform asked for, JAX's reason, and
    the platforms JAX can start here. Call after :func:`icrst_jax.distributed.initialize`
    (which must precede the backends) and before any other JAX work.

    Raises:
      PlatformError: the one line.
    """
    import jax

    try:
        jax.devices()
    except Exception as e:  # RuntimeError for a plugin that fails, AssertionError for one that is missing
        wanted = jax.config.jax_platforms
        reason = str(e).strip().splitlines()[0] if str(e).strip() else "JAX has no plugin for it installed"
        from jax.extend import backend

        jax.config.update("jax_platforms", None)  # let JAX start whatever it can, to say what that is
        try:
            available = ", ".join(sorted(backend.backends())) or "none"
        except Exception:
            available = "none"
        raise PlatformError(
            f"JAX cannot start platform {wanted!r} (JAX_PLATFORMS): {reason}; platforms available here: "
            f"{available}; set JAX_PLATFORMS to one of them, or unset it"
        ) from None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/icrst_jax/xla``, i.e. ``~/.cache/icrst_jax/xla`` by default."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "icrst_jax" / "xla"


def resolve_cache_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The directory :func:`enable_compilation_cache` would use, or None for "off".

    Order: ``path``, else ``$ICRST_JAX_CACHE_DIR``, else :func:`default_cache_dir`.
    ``"off"`` or ``""`` (either as ``path`` or in the environment) means disabled.
    Nothing is created or configured.
    """
    if path is None:
        path = os.environ.get(CACHE_ENV_VAR)
        if path is None:
            return default_cache_dir()
    text = os.fspath(path)
    if text.strip().lower() in OFF_VALUES:
        return None
    # Absolute, so a later os.chdir() cannot move the cache under the process.
    return Path(text).expanduser().absolute()


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache for this process.

    What: every program XLA compiles from now on is written to ``path`` (the
    epoch, the initialiser, the encoder...), and a later compilation of the same
    program -- in this process or another -- loads the executable from disk
    instead of compiling it. Cache keys hash the program (without source
    locations), the devices, the compile options and the jax/jaxlib versions,
    so an upgrade or another device count simply misses: stale entries are
    never used, only left behind (delete the directory to reclaim the space).

    Why: compilation dominates short runs on a CPU, and a repeated run or a p
    sweep (``p`` is traced data, so every p shares one compiled epoch) compiles
    identical programs. With the cache only the first run pays for XLA; later
    ones still trace and lower (a fraction of a second for the MLP).

    Where: ``path`` if given; else the environment variable
    ``ICRST_JAX_CACHE_DIR``; else ``~/.cache/icrst_jax/xla`` (under
    ``$XDG_CACHE_HOME`` if set). The value ``"off"`` (or ``""``) disables the
    cache, also one configured earlier in this process, and returns None. The
    directory is created if missing, and must be writable (``OSError`` otherwise).

    Settings: besides ``jax_compilation_cache_dir`` this sets
    ``jax_persistent_cache_min_compile_time_secs = 0`` (JAX's default of 1 s
    would skip the MLP's sub-second programs, which are still worth caching
    when a run is a few seconds long) and
    ``jax_persistent_cache_min_entry_size_bytes = -1`` (no size threshold, and
    JAX may not override it).

    Timing: call it before the first compilation of the process; a program
    compiled earlier is neither written to the cache nor read from it (JAX's
    in-memory caches keep serving it). Calling it again is safe: the same
    directory is a no-op, another directory switches the cache for programs
    compiled from then on.

    .. warning::
       JAX treats the cache as trusted: loading an entry runs its code. Anyone
       who can write to the cache directory can make your process run
       arbitrary code, so never point it at a directory other users can write
       to (e.g. a shared ``/tmp`` folder), and do not share a cache with
       people you do not trust.

    Args:
      path: the cache directory, ``"off"``/``""`` to disable, or None for the
        environment variable / default.

    Returns:
      The absolute cache directory as a string, or None when disabled.

    Example:
      >>> from icrst_jax import enable_compilation_cache
      >>> enable_compilation_cache()                 # before any jax work
      '/home/me/.cache/icrst_jax/xla'
      >>> result = fit(cfg, x, y, seeds=range(10))   # 2nd run: no XLA compile
    """
    import jax

    directory = resolve_cache_dir(path)
    if directory is None:
        _point_cache_at(None)
        return None
    _make_writable_dir(directory)
    target = str(directory)
    _point_cache_at(target)
    # Cache everything: JAX's default (>= 1 s compile) would skip the small
    # programs that make up most of a CPU run's compile time.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # -1: no size threshold, and JAX may not replace it with a file-system default.
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return target


def _make_writable_dir(directory: Path) -> None:
    """Creates the cache directory (private to this user) if missing; ``OSError`` in one line if not writable."""
    # Cache entries are code: a directory made here is private to this user
    # (``mode`` applies only to a directory that does not exist yet; an
    # existing one keeps the permissions its owner gave it).
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # JAX reports a cache it cannot write to in multi-line warnings at every
    # compilation, long after saying the cache is in use: find out now.
    probe = directory / f".probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OSError(f"{directory} is not writable ({e.strerror})") from None


def _point_cache_at(target: str | None) -> None:
    """Points JAX's persistent compilation cache at ``target`` (None: off), unless it already is."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    if jax.config.jax_compilation_cache_dir != target:
        jax.config.update("jax_compilation_cache_dir", target)
        # JAX opens the cache once (at the first compilation that sees a
        # directory) and keeps the handle: without a reset it would go on
        # reading and writing the old directory. Harmless (a no-op reset)
        # when none was opened yet.
        cc.reset_cache()


def setup_compilation_cache(
    directory: str | None = None, *, enabled: bool = True, progress: Callable[[str], None] | None = None
) -> str | None:
    """The command line's persistent XLA compilation cache; call before any JAX work.

    A repeated run, and every point of a p sweep (``p`` is traced data, so all
    p share one compiled epoch), then loads the compiled programs from disk
    instead of compiling them; see :func:`enable_compilation_cache` for where
    the cache lives and why it must be trusted.

    Args:
      directory: ``--compilation-cache DIR``; None means ``$ICRST_JAX_CACHE_DIR``,
        else ``~/.cache/icrst_jax/xla``.
      enabled: False for ``--no-compilation-cache`` (also turns off a cache JAX
        was configured with elsewhere, e.g. ``JAX_COMPILATION_CACHE_DIR``).
      progress: gets one line naming the cache directory (or "off").

    Returns:
      The cache directory, or None when the cache is off.

    Raises:
      OSError: an explicitly given ``directory`` cannot be created. A default
        location that cannot be created (read-only home, say) only costs the
        speed-up: the run goes on without a cache and says so.
    """
    say = progress or (lambda line: None)
    try:
        used = enable_compilation_cache(directory if enabled else "off")
    except OSError as e:
        if directory is not None:
            raise OSError(f"cannot use compilation cache directory {directory!r}: {e}") from e
        say(f"XLA compilation cache: off (cannot use the default location: {e})")
        return enable_compilation_cache("off")
    say(f"XLA compilation cache: {used}" if used else "XLA compilation cache: off")
    return used


def compilation_cache_dir() -> str | None:
    """The directory of the persistent compilation cache in use, or None when it is off."""
    import jax

    return jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None


def home_relative(path: str | os.PathLike | None) -> str | None:
    """``path`` with the user's home directory written ``~`` (None stays None).

    What a results.json records of a folder on the machine it ran on (the
    default compilation cache, ``~/.cache/icrst_jax/xla``): a committed result
    then names no user's folder, and still says where the cache was. A path
    outside the home directory is kept as it is.
    """
    if path is None:
        return None
    text = os.fspath(path)
    home = os.path.expanduser("~")
    if home in ("", "~", os.sep) or not os.path.isabs(text):
        return text
    try:
        rest = Path(text).relative_to(home)
    except ValueError:
        return text
    return "~" if str(rest) == "." else f"~{os.sep}{rest}"


def versions() -> dict:
    """The software and devices a result was computed with, for ``results.json``."""
    import flax  # inside, like jax: `import icrst_jax` stays light
    import jax
    import optax
    import sklearn

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
        "icrst_jax_commit": source_commit(),
    }


@functools.cache
def source_commit() -> str | None:
    """The git commit of this package's checkout (``+dirty`` with uncommitted changes), or None.

    A results.json quoted in the docs names the code it ran at; an installed copy
    outside git has no commit.
    """
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5)
        # Only this project's own checkout: a copy installed inside another repository has no commit of ours.
        if head.returncode != 0 or Path(head.stdout.split()[0]).resolve() != here.parent:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.split()[1] + ("+dirty" if dirty.stdout.strip() else "")
