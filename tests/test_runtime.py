"""The persistent compilation cache (``icrst_jax.runtime``) on our own programs.

The cache is process-wide JAX state, so the runs that use it happen in child
processes with a clean environment (one CPU device, not this process's four
fake ones) and a fresh cache directory: the command line's p sweep twice (cold,
then warm: two tests read them) and a fit with the cache off. This process's JAX
is left as conftest set it. Only files, JAX's own cache hit/miss events, losses
and latents are asserted, never a timing (the machines are shared and noisy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import child_env
from icrst_jax import runtime

ROOT = Path(__file__).resolve().parents[1]

# A child that enables the cache as a script would (the directory from
# $ICRST_JAX_CACHE_DIR) before any JAX work, then compiles one of our programs (the
# MLP's initialiser, for two runs); reports the cache and JAX's cache events as one JSON line.
CHILD = r"""
import json
from icrst_jax import enable_compilation_cache
cache_dir = enable_compilation_cache()
import jax
# A cache JAX were pointed at would keep even a sub-second program.
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
events = {}
jax.monitoring.register_event_listener(lambda event, **kw: events.__setitem__(event, events.get(event, 0) + 1))
from icrst_jax.config import ModelConfig, TrainConfig
from icrst_jax.train import init_state, make_engine
engine = make_engine(TrainConfig(batch_size=64, num_devices=1, model=ModelConfig(name="mlp")), (30,), 455)
init_state(engine, [0, 1])
print(json.dumps({
    "cache_dir": cache_dir,
    "jax_cache_dir": jax.config.jax_compilation_cache_dir,
    "devices": jax.device_count(),
    "hits": events.get("/jax/compilation_cache/cache_hits", 0),
    "misses": events.get("/jax/compilation_cache/cache_misses", 0),
}))
"""


def run_child(env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def entries(directory: Path) -> dict[str, int]:
    """Cache entries (JAX's LRU file cache: one ``<key>-cache`` file each) and their sizes."""
    return {p.name: p.stat().st_size for p in directory.glob("*-cache")}


# The command line in a child process, with JAX's cache events counted: its exit status and
# the cache's hits and misses as the last line (JSON) of stdout.
CLI_CHILD = r"""
import json, sys
import jax
events = {}
jax.monitoring.register_event_listener(lambda event, **kw: events.__setitem__(event, events.get(event, 0) + 1))
from experiments import run
code = run.main(sys.argv[1:])
print(json.dumps({
    "code": code,
    "hits": events.get("/jax/compilation_cache/cache_hits", 0),
    "misses": events.get("/jax/compilation_cache/cache_misses", 0),
}))
"""
# A p sweep: p is traced data, so both points run one epoch program.
P_SWEEP = ["--mode", "icrst", "--p-grid", "0.5,1", "--epochs", "1", "--batch-size", "64", "--classifiers", "nb",
           "--folds", "2", "--no-mi", "--no-tsne", "--no-checkpoints", "--num-devices", "1"]


def run_cli_child(argv: list[str], env: dict) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", CLI_CHILD, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["code"] == 0, proc.stderr[-4000:]
    return out, proc.stderr


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """The same p sweep twice from the command line, one cache: the first run names its
    directory with --compilation-cache (which does not exist yet: the run creates it), the
    second through $ICRST_JAX_CACHE_DIR. The cache's entries after each run."""
    work = tmp_path_factory.mktemp("cli_cache")
    cache = work / "xla"
    first = run_cli_child([*P_SWEEP, "--compilation-cache", str(cache), "--out", str(work / "first")], child_env())
    after_first = entries(cache)
    second = run_cli_child([*P_SWEEP, "--out", str(work / "second")], child_env(ICRST_JAX_CACHE_DIR=str(cache)))
    return dict(work=work, cache=cache, first=first, second=second, after_first=after_first,
                after_second=entries(cache))


def test_second_process_compiles_nothing(cli_runs):
    """Run 1 fills a fresh cache; run 2 of the same study loads every program from it."""
    (first, _), (second, _) = cli_runs["first"], cli_runs["second"]
    after_first = cli_runs["after_first"]
    # The epoch and the initialiser at least; JAX's default 1 s threshold would have
    # kept the MLP's sub-second programs out.
    assert any(name.startswith("jit_epoch_fn-") for name in after_first), sorted(after_first)
    assert any(name.startswith("jit_init_fn-") for name in after_first), sorted(after_first)
    assert first["misses"] == len(after_first) and first["hits"] == 0
    assert cli_runs["after_second"] == after_first  # no new (or rewritten) entries
    assert second["misses"] == 0
    assert second["hits"] == len(after_first)  # every program came from disk
    # The cached executables compute exactly what the compiled ones did.
    a, b = (json.loads((cli_runs["work"] / run / "results.json").read_text()) for run in ("first", "second"))
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for name in ("latents_icrst_p0.5_seed0.npz", "latents_icrst_p1_seed0.npz"):
        with np.load(cli_runs["work"] / "first" / name) as x, np.load(cli_runs["work"] / "second" / name) as y:
            np.testing.assert_array_equal(x["features"], y["features"])


def test_off_disables_the_cache(tmp_path):
    """ICRST_JAX_CACHE_DIR=off: no directory, no entries anywhere, JAX has no cache dir."""
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(ICRST_JAX_CACHE_DIR="off", HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    out = run_child(env)
    assert out["devices"] == 1  # child_env: not this process's four fake devices
    assert out["cache_dir"] is None and out["jax_cache_dir"] is None
    assert out["hits"] == 0 and out["misses"] == 0  # with a cache: a miss per program compiled
    assert list(home.rglob("*")) == []


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(runtime.CACHE_ENV_VAR, raising=False)
    assert runtime.resolve_cache_dir() == tmp_path / "xdg" / "icrst_jax" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert runtime.resolve_cache_dir() == tmp_path / "h" / ".cache" / "icrst_jax" / "xla"
    monkeypatch.setenv(runtime.CACHE_ENV_VAR, str(tmp_path / "env"))
    assert runtime.resolve_cache_dir() == tmp_path / "env"
    assert runtime.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    for off in ("off", "OFF", ""):
        assert runtime.resolve_cache_dir(off) is None
        monkeypatch.setenv(runtime.CACHE_ENV_VAR, off)
        assert runtime.resolve_cache_dir() is None
    monkeypatch.chdir(tmp_path)
    assert runtime.resolve_cache_dir("rel") == tmp_path / "rel"  # absolute: immune to a later chdir
    assert not (tmp_path / "rel").exists()  # resolving creates nothing


def test_enable_is_repeatable_and_off_undoes_it(tmp_path):
    """In this process's JAX: enable twice, switch directory, switch off; then the session's
    own cache (conftest's) is back for the tests after this one."""
    import jax

    session = jax.config.jax_compilation_cache_dir
    a, b = tmp_path / "a", tmp_path / "b"
    try:
        assert runtime.enable_compilation_cache(a) == str(a)
        assert runtime.enable_compilation_cache(a) == str(a)  # same directory: a no-op
        assert (a.stat().st_mode & 0o777) == 0o700  # made here: private to this user
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
        assert jax.config.jax_persistent_cache_min_entry_size_bytes == -1
        jax.jit(lambda v: v * 3 + 1)(1.0)
        assert len(entries(a)) == 1
        assert runtime.enable_compilation_cache(b) == str(b)  # an opened cache moves to b
        jax.jit(lambda v: v * 5 + 2)(1.0)
        assert len(entries(a)) == 1 and len(entries(b)) == 1
    finally:
        assert runtime.enable_compilation_cache("off") is None
    assert jax.config.jax_compilation_cache_dir is None
    try:
        jax.jit(lambda v: v * 7 + 3)(1.0)
        assert len(entries(a)) == 1 and len(entries(b)) == 1  # off: nothing more written
    finally:
        runtime.enable_compilation_cache(session or "off")


def test_cli_cache_options_are_exclusive(capsys):
    from experiments import run as cli

    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["--compilation-cache", "x", "--no-compilation-cache"])
    assert e.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize("through", ["flag", "environment"])
def test_an_unusable_cache_directory_is_one_line_from_flag_or_environment(through, tmp_path, capsys, monkeypatch):
    """A cache directory named by --compilation-cache or by $ICRST_JAX_CACHE_DIR is checked
    the same way, before anything compiles: exit 2 and one line (no run that claims a cache
    while JAX prints permission errors at every compilation)."""
    from experiments import run as cli

    (tmp_path / "a_file").write_text("x")
    bad = tmp_path / "a_file" / "xla"  # cannot be created
    argv = ["--epochs", "1", "--out", str(tmp_path / "never"), "--quiet"]
    if through == "flag":
        argv += ["--compilation-cache", str(bad)]
    else:
        monkeypatch.setenv(runtime.CACHE_ENV_VAR, str(bad))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot use compilation cache directory '{bad}': ") and err.count("\n") == 1, err
    assert not (tmp_path / "never").exists()


def test_a_directory_that_cannot_be_written_is_refused():
    # /proc exists, and nobody (root included) can create a file in it: a stand-in for a read-only folder.
    before = jax_cache_dir()
    with pytest.raises(OSError, match="^/proc is not writable"):
        runtime.enable_compilation_cache("/proc")
    assert jax_cache_dir() == before  # nothing configured


def jax_cache_dir():
    import jax

    return jax.config.jax_compilation_cache_dir


def test_cli_p_sweep_shares_one_cached_epoch(cli_runs):
    """The command line enables the cache, names it, records it; a p sweep compiles one epoch program."""
    cache = cli_runs["cache"]
    for run in ("first", "second"):  # named by the flag, then by the environment
        assert f"XLA compilation cache: {cache}" in cli_runs[run][1]
        assert json.loads((cli_runs["work"] / run / "results.json").read_text())["compilation_cache_dir"] == str(cache)
    # p is traced data: both points of the sweep ran the same (cached) epoch program.
    epochs = [n for n in cli_runs["after_first"] if n.startswith("jit_epoch_fn-")]
    assert len(epochs) == 1, sorted(cli_runs["after_first"])


def test_a_results_json_writes_the_home_directory_as_a_tilde(tmp_path, monkeypatch):
    """The default cache is recorded as ~/.cache/icrst_jax/xla, not under the user's home folder."""
    home = tmp_path / "home" / "me"
    monkeypatch.setenv("HOME", str(home))
    assert runtime.home_relative(str(home / ".cache" / "icrst_jax" / "xla")) == "~/.cache/icrst_jax/xla"
    assert runtime.home_relative(home) == "~"
    assert runtime.home_relative(str(tmp_path / "home" / "meta" / "xla")) == str(tmp_path / "home" / "meta" / "xla")
    assert runtime.home_relative("/opt/cache") == "/opt/cache"
    assert runtime.home_relative("relative/dir") == "relative/dir"
    assert runtime.home_relative(None) is None
