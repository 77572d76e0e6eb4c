"""Two JAX processes on 127.0.0.1 train together as one process with the same global batch does.

Each pair of child processes joins through ``jax.distributed`` (gloo
collectives between the processes' CPU devices), with one or two CPU devices
per process. The coordinator listens on 127.0.0.1 only
(``JAX_COORDINATOR_BIND_ADDRESS``); gloo connects to the address the host
name resolves to. Every child runs with a time limit, and both are killed
as soon as one fails or the limit passes.

What is compared with one process (the tolerances of the 1-vs-4-device test
in ``test_train.py``): the step losses, the parameters, the BatchNorm
statistics and the latents of the MLP on Breast Cancer (interrupted after
epoch 1, checkpointed, and resumed by a new pair of processes) and of the
tiny conv (``conv_tiny``) on digits images; and the numbers of ``results.json`` of a
command-line run started under a (hand-set) SLURM environment with
``--distributed auto``. Two pairs serve all of it (each process start and
compilation costs seconds): the first joined by the explicit flags, the
second by the command line's ``--distributed auto``, which then resumes the
MLP on the pair it joined. The MLP run is the command-line study's own training
(``multiprocess_child.mlp_run``): its process 0 and this process (for its two
one-process runs) compile that program once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import FORCE_FLAG, child_env
from experiments import run as cli
from icrst_jax import distributed
from icrst_jax.train import fit
from multiprocess_child import CLI_ARGS, conv_run, mlp_run, outputs

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("multiprocess_child.py")
# Only bounds a hang (a process waiting in a collective for a partner that is
# stuck); a partner that exits with an error stops the pair at once. Generous:
# on a CPU shared with other jobs, a pair compiling a conv epoch concurrently
# has taken minutes.
PAIR_TIMEOUT_S = 900


def free_port(low: int = 0, high: int = 0) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (any, or one in [low, high])."""
    for _ in range(200):
        port = random.randint(low, high) if high else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in [{low}, {high}]")


def pair_env(devices_per_process: int, port: int, **extra) -> dict:
    env = child_env(
        JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **{"ICRST_JAX_CACHE_DIR": "off", **extra},
    )
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {FORCE_FLAG}={devices_per_process}".strip()
    # A cluster launcher's variables would make JAX look for that cluster.
    for k in list(env):
        if k.startswith(("SLURM_", "OMPI_", "PMI_")) and k not in extra:
            del env[k]
    return env


def run_pair(name: str, commands: list[list[str]], envs: list[dict], cwds: list[Path], log_dir: Path) -> None:
    """Starts the processes, waits for all; kills the others as soon as one fails or time runs out."""
    procs, logs = [], []
    try:
        for i, (cmd, env, cwd) in enumerate(zip(commands, envs, cwds)):
            logs.append(open(log_dir / f"{name}_{i}.log", "w"))
            procs.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=logs[-1], stderr=subprocess.STDOUT))
        deadline = time.monotonic() + PAIR_TIMEOUT_S
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in logs:
            f.close()
    codes = [p.returncode for p in procs]
    if codes != [0] * len(procs):
        tails = []
        for i in range(len(procs)):
            lines = [l for l in (log_dir / f"{name}_{i}.log").read_text().splitlines() if "[Gloo]" not in l]
            tails.append(f"--- process {i} (exit {codes[i]}):\n" + "\n".join(lines[-25:]))
        pytest.fail(f"{name}: exit codes {codes} (negative: killed after a partner failed or "
                    f"{PAIR_TIMEOUT_S}s passed)\n" + "\n".join(tails))


def slurm_env(port: int, process_id: int) -> dict:
    """The variables srun sets for task ``process_id`` of 2 on one node. JAX's SLURM
    support puts the coordinator on the step's first node at port 61440 + job id % 4096."""
    return dict(SLURM_JOB_ID=str(port - 61440), SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2",
                SLURM_PROCID=str(process_id), SLURM_LOCALID=str(process_id), SLURM_STEP_NUM_NODES="1")


def child_pair(job: str, work: Path, devices_per_process: int) -> list[dict]:
    """first: joined by the explicit flags, in ROOT. resume: joined by the command line's
    --distributed auto under SLURM's variables, each process in its own folder (work/p0, work/p1),
    with a compilation cache (process 0's resumed MLP is its study's program)."""
    if job == "first":
        port = free_port()
        envs = [pair_env(devices_per_process, port)] * 2
        joins = [["--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]
                 for i in range(2)]
        cwds = [ROOT, ROOT]
    else:
        port = free_port(61440, 65535)
        cache = str(work / "xla_resume")
        envs = [pair_env(devices_per_process, port, **slurm_env(port, i), ICRST_JAX_CACHE_DIR=cache) for i in range(2)]
        joins = [[], []]
        cwds = [work / "p0", work / "p1"]
        for cwd in cwds:
            cwd.mkdir()
    commands = [[sys.executable, str(CHILD), "--job", job, "--work", str(work), *joins[i]] for i in range(2)]
    run_pair(job, commands, envs, cwds, work)
    return [dict(np.load(work / f"{job}_process{i}.npz")) for i in range(2)]


def reference(make) -> dict:
    """The same run in this one process, on one device."""
    cfg, x, y, mean, std, x_enc, points = make()
    result = fit(cfg.replace(num_devices=1), x, y, points=points, mean=mean, std=std, progress=False)
    return outputs(result, x_enc, mean, std) | {"steps": result.engine.steps_per_epoch * cfg.epochs,
                                                 "lr": cfg.learning_rate}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("multiprocess")
    t0 = time.perf_counter()
    first = child_pair("first", work, devices_per_process=2)
    t1 = time.perf_counter()
    resume = child_pair("resume", work, devices_per_process=1)
    t2 = time.perf_counter()
    ref = {"mlp": reference(mlp_run), "conv": reference(conv_run)}
    print(f"\ntwo-process runs: first {t1 - t0:.0f}s, resume {t2 - t1:.0f}s; "
          f"one-process reference {time.perf_counter() - t2:.0f}s")
    return {"first": first, "resume": resume, "ref": ref, "work": work}


def assert_matches(got: dict, prefix: str, ref: dict, step_loss) -> None:
    """The comparison of ``test_train.assert_same_training``, plus the latents.

    Step losses: the first step's (identical parameters) to 2e-6, all to 2e-4;
    a wrong shard, per-process BatchNorm statistics or mixed-up keys change
    them at the percent level. Parameters, BatchNorm statistics and latents:
    within the learning rate times the number of steps, since Adam turns
    float reassociation in a near-zero gradient (a conv bias before
    BatchNorm) into a step of up to the learning rate.
    """
    atol = ref["lr"] * ref["steps"]
    np.testing.assert_allclose(step_loss[:, 0], ref["step_loss"][:, 0], rtol=2e-6)
    np.testing.assert_allclose(step_loss, ref["step_loss"], rtol=2e-4)
    for k in ref:
        if k.startswith("params_"):
            np.testing.assert_allclose(got[prefix + k], ref[k], rtol=0, atol=atol, err_msg=k)
        elif k.startswith("batch_stats_"):
            np.testing.assert_allclose(got[prefix + k], ref[k], rtol=1e-2, atol=atol, err_msg=k)
    np.testing.assert_allclose(got[prefix + "latents"], ref["latents"], rtol=0, atol=atol)
    # The latent bound can tell the two seeds' models apart.
    assert np.abs(ref["latents"][0] - ref["latents"][1]).max() > 10 * atol


def test_processes_see_all_devices_and_agree(runs):
    for job, per_process in [("first", 2), ("resume", 1)]:
        p0, p1 = runs[job]
        assert [int(p0["process_index"]), int(p1["process_index"])] == [0, 1]
        for p in (p0, p1):
            assert int(p["process_count"]) == 2
            assert int(p["local_device_count"]) == per_process
            assert int(p["device_count"]) == int(p["mlp_mesh_size"]) == 2 * per_process
        # Every process returns the same complete results (latents gathered from all devices).
        for k in p0:
            if k != "process_index":
                np.testing.assert_array_equal(p0[k], p1[k], err_msg=f"{job}: {k}")
    assert int(runs["first"][0]["conv_mesh_size"]) == 4


def test_two_process_conv_equals_one_process(runs):
    got = runs["first"][0]
    assert_matches(got, "conv_", runs["ref"]["conv"], got["conv_step_loss"])


def test_two_process_mlp_resumed_from_its_checkpoint_equals_one_process(runs):
    """Interrupted after epoch 1 by a pair of processes with 2 devices each,
    resumed by a new pair with 1 device each: the same training as one
    uninterrupted process."""
    first, resumed = runs["first"][0], runs["resume"][0]
    assert int(first["mlp_resumed_from"]) == -1 and first["mlp_step_loss"].shape == (4, 8)  # epoch 1 only
    assert int(resumed["mlp_resumed_from"]) == 1 and resumed["mlp_step_loss"].shape == (4, 8)  # epoch 2 only
    assert sorted(p.name for p in (runs["work"] / "mlp_ckpt").iterdir()) == ["1", "2"]
    step_loss = np.concatenate([first["mlp_step_loss"], resumed["mlp_step_loss"]], axis=1)
    assert_matches(resumed, "mlp_", runs["ref"]["mlp"], step_loss)


def test_processes_refuse_different_studies_and_an_unshared_folder(runs):
    """Checked by the resume pair once joined (``multiprocess_child.agreement_cases``):
    every process ends with the same line, naming the field and the processes."""
    work = runs["work"]
    p0, p1 = (list(p["agreement"]) for p in runs["resume"])
    assert p0 == p1
    same, epochs, out, unshared, unshared_ok, a_file = p0
    assert same == "" and unshared_ok == ""
    assert epochs == ("the processes disagree on train.epochs: process 0 has 3, process 1 has 4; "
                      "start every process with the same options")
    assert out.startswith(f'the processes disagree on the output folder (--out): process 0 has "{work}/out0", '
                          f'process 1 has "{work}/out1"')
    assert unshared.startswith("process 1 cannot see process 0's output folder relative_out: ")
    assert "filesystem they all share" in unshared and "--no-checkpoints" in unshared
    assert a_file == f"--out {work}/a_file is a file, not a folder"
    # Process 0 leaves nothing behind: no probe, no folder it made for the check.
    assert not (work / "agreed").exists() and not (work / "cwd0" / "relative_out").exists()


def lonely(process_id: int, port: int, *extra: str) -> subprocess.Popen:
    """The command line as one process of two whose partner never comes."""
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.run", "--coordinator-address", f"127.0.0.1:{port}", "--num-processes",
         "2", "--process-id", str(process_id), "--dry-run", *extra],
        cwd=ROOT, env=pair_env(1, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_lonely_processes_end_in_one_line():
    """Side by side: process 1 alone ends at its join limit (3 s); process 0 alone ends at once on SIGTERM,
    though blocked inside JAX's join. Both print where they wait first; neither a traceback
    nor JAX's native abort reaches the terminal. And --distributed auto without a cluster."""
    timed_out = lonely(1, free_port(), "--join-timeout", "3")
    # No cluster to detect: --distributed auto must say so (a fresh process: JAX's detection runs before its backends).
    auto = subprocess.Popen([sys.executable, "-m", "experiments.run", "--distributed", "auto", "--dry-run"], cwd=ROOT,
                            env=pair_env(1, free_port()), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = free_port()
    signalled = lonely(0, port, "--join-timeout", "60")
    first = signalled.stderr.readline()
    assert first.startswith(f"[process 0/2] waiting for all 2 processes to join at 127.0.0.1:{port} ("), first
    signalled.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, rest = signalled.communicate(timeout=30)
    assert signalled.returncode == 143 and time.monotonic() - t0 < 10
    assert rest == f"interrupted by SIGTERM while process 0/2 waited for the others to join at 127.0.0.1:{port}\n"
    _, err = timed_out.communicate(timeout=60)
    assert timed_out.returncode == 1, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("[process 1/2] waiting for all 2 processes to join at 127.0.0.1:")
    assert lines[-1].startswith("error: process 1/2: not all 2 processes joined at 127.0.0.1:") and \
        "within 3 s (--join-timeout)" in lines[-1]
    assert all(l.startswith("[process 1/2] waiting") for l in lines[:-1]), err
    _, err = auto.communicate(timeout=60)
    assert auto.returncode == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("error: --distributed auto: "), err


def numbers(payload: dict) -> dict:
    """Every number of results.json's records except timings, by path."""
    skip = {"train_seconds", "compile_seconds", "seconds", "samples_per_s", "latents"}
    flat = {}

    def walk(obj, path):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k not in skip:
                    walk(v, f"{path}/{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}/{i}")
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            flat[path] = float(obj)
        else:
            flat[path] = obj

    walk(payload["records"], "records")
    return flat


def test_cli_two_processes_under_slurm_write_one_report_equal_to_one_process(runs, tmp_path, monkeypatch):
    """``python -m experiments.run --distributed auto`` in two processes with
    SLURM's variables (set by hand, as srun would) and one device each (the resume
    pair, before it resumes the MLP). Process 1 runs in another directory with the
    same relative --out: it must write nothing there; process 0's report must
    equal a one-process run's."""
    work = runs["work"]
    cwds = [work / "p0", work / "p1"]
    assert sorted(p.name for p in (cwds[0] / "out").iterdir()) == sorted(
        ["run.json", "results.json", "report.md", "log.txt", "encoder.json", "encoder_weights.msgpack", "tensorboard"]
        + [f"latents_{m}_p{p}_seed{s}.npz" for m, p in [("standard", 0), ("icrst", 0.5)]
                                          for s in (0, 1)]
        + [f"latents_untrained_seed{s}.npz" for s in (0, 1)])
    assert not (cwds[1] / "out").exists()
    log1 = (work / "resume_1.log").read_text()
    assert "[process 1/2] trained: " in log1 and "wrote:" not in log1

    monkeypatch.chdir(tmp_path)  # the one-process run, in this process (one of its four devices)
    assert cli.main([*CLI_ARGS, "--num-devices", "1", "--quiet"]) == 0
    two_p = json.loads((cwds[0] / "out" / "results.json").read_text())
    one_p = json.loads((tmp_path / "out" / "results.json").read_text())
    assert two_p["versions"]["processes"] == 2 and len(two_p["versions"]["devices"]) == 2
    assert one_p["versions"]["processes"] == 1
    a, b = numbers(two_p), numbers(one_p)
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float):
            assert a[k] == pytest.approx(b[k], rel=2e-4, abs=1e-6), k
        else:
            assert a[k] == b[k], k


def test_incomplete_or_inconsistent_arguments_are_refused():
    with pytest.raises(ValueError, match="go together .* got only process_id$"):
        distributed.initialize(process_id=1)
    with pytest.raises(ValueError, match="got only coordinator_address and num_processes$"):
        distributed.initialize("127.0.0.1:1234", num_processes=2)
    with pytest.raises(ValueError, match="HOST:PORT"):
        distributed.initialize("127.0.0.1", 2, 0)
    with pytest.raises(ValueError, match="below num_processes"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match=">= 1"):
        distributed.initialize("127.0.0.1:1234", 0, 0)
    with pytest.raises(ValueError, match="port in 1..65535, got '127.0.0.1:99999'"):
        distributed.initialize("127.0.0.1:99999", 2, 0)
    with pytest.raises(ValueError, match="join_timeout must be > 0"):
        distributed.initialize("127.0.0.1:1234", 2, 1, join_timeout=0)
    with socket.socket() as busy:  # process 0 would listen on a port that is taken
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} is already in use on this host"):
            distributed.initialize(f"127.0.0.1:{port}", 2, 0)
    # None of the arguments: a one-process run, nothing happens.
    assert distributed.initialize() is False
    assert not jax.distributed.is_initialized()


@pytest.mark.parametrize("flags, message", [
    (["--process-id", "1"], "--process-id given without --coordinator-address and --num-processes"),
    (["--coordinator-address", "h:1234", "--num-processes", "2"], "--num-processes given without --process-id"),
    (["--coordinator-address", "h", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
    (["--coordinator-address", "h:1234", "--num-processes", "2", "--process-id", "2"], "below --num-processes"),
    (["--coordinator-address", "h:1234", "--num-processes", "0", "--process-id", "0"], "--num-processes must be >= 1"),
    (["--coordinator-address", "h:99999", "--num-processes", "2", "--process-id", "0"],
     "the port must be in 1..65535, got 99999"),
    (["--join-timeout", "0"], "--join-timeout must be > 0"),
])
def test_the_command_line_names_the_flags_it_refuses(flags, message):
    with pytest.raises(ValueError, match=message):
        cli._check_distributed_flags(cli.build_parser().parse_args(flags))


def test_data_is_found_before_the_processes_join(tmp_path, capsys):
    """A data set that is missing ends a multi-process run in one line before it joins
    (the coordinator below does not exist: joining would wait)."""
    argv = ["--dataset", "mnist", "--data-dir", str(tmp_path), "--set", "data.download=false",
            "--coordinator-address", "127.0.0.1:9", "--num-processes", "2", "--process-id", "1", "--quiet"]
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: mnist: no original files in {tmp_path}/mnist"), lines
    assert not jax.distributed.is_initialized()


def test_cli_distributed_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["--process-id", "1", "--out", str(tmp_path / "no")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --process-id given without"), lines
    assert not (tmp_path / "no").exists()
