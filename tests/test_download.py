"""Fetching the original files on first use, without the internet.

An HTTP server on 127.0.0.1 in this process serves small files generated in
the original formats (IDX gz, the CIFAR-10 python tarball, Caltech101's zip of
a tar.gz of JPEGs); ``$ICRST_JAX_DATA_MIRROR`` points the fetcher at it, and
the registry's checksums are replaced by those of the generated files. Every
failure promised by the data layer is provoked here: no network, a checksum
mismatch, a transfer cut short, an unwritable or full data directory, two
fetchers at once.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import os
import tarfile
import threading
import types
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from test_data import cifar_batches, expected_cifar, fake_mnist, idx_bytes, write_cifar_archive

from icrst_jax.data import DATASET_SPECS, DataLocation, DatasetError, RemoteFile, download, load_dataset, locate
from icrst_jax.data.formats import caltech_split

IDX_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]


class Server:
    """Serves ``files[path]``; ``behaviour[path]`` is ``"cut"`` (half the promised bytes,
    then the connection closes) or ``"hold"`` (waits for ``release``)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, str] = {}
        self.requests: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server.requests.append(self.path)
                payload = server.files.get(self.path)
                if payload is None:
                    self.send_error(404)
                    return
                mode = server.behaviour.get(self.path)
                if mode == "hold":
                    server.holding.set()
                    server.release.wait(20)
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if mode == "headers only":  # the server answers, then sends no byte of the file
                    self.wfile.flush()
                    server.release.wait(20)
                    return
                try:
                    self.wfile.write(payload[: len(payload) // 2] if mode == "cut" else payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout, an interrupt)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


@pytest.fixture
def site(server, monkeypatch, tmp_path):
    """The server, emptied, as the only mirror; a fresh data directory."""
    server.files.clear()
    server.behaviour.clear()
    server.requests.clear()
    server.holding.clear()
    server.release.clear()
    monkeypatch.setenv(download.MIRROR_ENV, f"{server.url}/a")
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "cache"))
    return server


def publish(server, monkeypatch, name, files: dict[str, bytes], *, served: dict[str, bytes] | None = None,
            algorithm: str = "sha256", base: str = "/a"):
    """Registers ``files`` as ``name``'s (their checksums) and serves ``served`` (default: the same)."""
    for fname, payload in (served or files).items():
        server.files[f"{base}/{name}/{fname}"] = payload
    remote = tuple(
        RemoteFile(fname, (f"https://publisher.invalid/{fname}",),
                   f"{algorithm}:{hashlib.new(algorithm, payload).hexdigest()}", len(payload), "this test")
        for fname, payload in files.items()
    )
    specs = dict(download.DATASET_SPECS)
    specs[name] = dataclasses.replace(DATASET_SPECS[name], files=remote)
    monkeypatch.setattr(download, "DATASET_SPECS", specs)


def mnist_files(seed=0) -> tuple[dict[str, bytes], tuple]:
    import gzip

    arrays = fake_mnist(seed=seed)
    return {n: gzip.compress(idx_bytes(a), mtime=0) for n, a in zip(IDX_NAMES, arrays)}, arrays


def quiet(lines=None):
    return dict(progress=False, say=(lines.append if lines is not None else (lambda line: None)))


def leftovers(folder: Path) -> list[str]:
    """Files in the data folder besides the lock: a partial download would show here."""
    return sorted(p.name for p in folder.iterdir() if p.name != download.LOCK_FILE) if folder.is_dir() else []


# --------------------------------------------------------------------------
# Clean fetches
# --------------------------------------------------------------------------


def test_first_fetch_then_offline_runs_read_the_cache(site, monkeypatch, tmp_path):
    files, arrays = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    lines = []
    ds = load_dataset("mnist", **quiet(lines))
    folder = tmp_path / "cache" / "mnist"
    assert ds.source == f"idx:{folder}"
    np.testing.assert_allclose(ds.x_train[..., 0], arrays[0] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    assert sorted(site.requests) == sorted(f"/a/mnist/{n}" for n in IDX_NAMES)
    assert leftovers(folder) == sorted(IDX_NAMES)
    assert any(line.startswith(f"downloading {site.url}/a/mnist/train-images-idx3-ubyte.gz") for line in lines)
    # Offline (no server, no downloads allowed): the cache is read, nothing is requested.
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/offline")
    site.requests.clear()
    assert locate("mnist", download=False) == DataLocation("idx", folder)
    again = load_dataset("mnist", download=False, **quiet())
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert load_dataset("mnist", **quiet()).source == ds.source and site.requests == []


def test_mirrors_are_tried_in_order(site, monkeypatch, tmp_path):
    files, arrays = mnist_files(seed=1)
    publish(site, monkeypatch, "fashion_mnist", files, base="/second")
    monkeypatch.setenv(download.MIRROR_ENV, f"{site.url}/first, {site.url}/second")
    ds = load_dataset("fashion_mnist", tmp_path / "data", **quiet())
    np.testing.assert_array_equal(ds.y_train, arrays[1])
    first = [r for r in site.requests if r.startswith("/first/")]  # each answered 404
    assert len(first) == 4 and len(site.requests) == 8  # each file: 404 from the first, then the second


def test_cifar10_archive_with_md5(site, monkeypatch, tmp_path):
    batches = cifar_batches()
    archive = write_cifar_archive(tmp_path / "src" / "cifar-10-python.tar.gz", batches)
    publish(site, monkeypatch, "cifar10", {archive.name: archive.read_bytes()}, algorithm="md5")
    ds = load_dataset("cifar10", tmp_path / "data", **quiet())
    assert ds.source == f"cifar-python:{tmp_path / 'data' / 'cifar10' / archive.name}"
    np.testing.assert_allclose(ds.x_test, expected_cifar(batches)[2] / 255.0, atol=1e-6)


def test_incomplete_download_set_is_completed(site, monkeypatch, tmp_path):
    files, arrays = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / IDX_NAMES[0]).write_bytes(files[IDX_NAMES[0]])  # a run stopped after the first file
    ds = load_dataset("mnist", tmp_path / "data", **quiet())
    assert sorted(site.requests) == sorted(f"/a/mnist/{n}" for n in IDX_NAMES[1:])
    np.testing.assert_array_equal(ds.y_train, arrays[1])


# --------------------------------------------------------------------------
# Every failure in one line, nothing half-written
# --------------------------------------------------------------------------


def one_line_error(**kwargs) -> str:
    with pytest.raises(DatasetError) as err:
        load_dataset(**kwargs, **quiet())
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_no_network_names_the_urls_and_the_manual_route(site, monkeypatch, tmp_path):
    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/offline")
    tfds_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    msg = one_line_error(name="mnist")
    folder = tmp_path / "cache" / "mnist"
    for part in ("cannot download train-images-idx3-ubyte.gz from http://127.0.0.1:9/offline/mnist/",
                 "(Connection refused)", f"into {folder}/ by hand", "--data-dir"):
        assert part in msg, part
    assert leftovers(folder) == []
    assert not tfds_dir.exists()  # looking for TFDS data creates nothing


def test_checksum_mismatch_removes_the_file_and_names_both_hashes(site, monkeypatch, tmp_path):
    files, _ = mnist_files()
    bad = dict(files)
    bad[IDX_NAMES[2]] = files[IDX_NAMES[2]][:-10] + b"0123456789"
    publish(site, monkeypatch, "mnist", files, served=bad)
    msg = one_line_error(name="mnist", data_dir=tmp_path / "data")
    expected = hashlib.sha256(files[IDX_NAMES[2]]).hexdigest()
    found = hashlib.sha256(bad[IDX_NAMES[2]]).hexdigest()
    assert f"{IDX_NAMES[2]} from {site.url}/a/mnist/{IDX_NAMES[2]} has sha256 {found}, expected {expected}" in msg
    assert "the bad download was removed" in msg
    # The files before it are complete and verified; the bad one left nothing behind.
    assert leftovers(tmp_path / "data" / "mnist") == sorted(IDX_NAMES[:2])


def test_cut_transfer_is_never_read_and_a_rerun_starts_over(site, monkeypatch, tmp_path):
    batches = cifar_batches()
    archive = write_cifar_archive(tmp_path / "src" / "cifar-10-python.tar.gz", batches)
    publish(site, monkeypatch, "cifar10", {archive.name: archive.read_bytes()})
    path = f"/a/cifar10/{archive.name}"
    site.behaviour[path] = "cut"
    msg = one_line_error(name="cifar10", data_dir=tmp_path / "data")
    assert f"cannot download {archive.name} from {site.url}{path} (transfer cut short)" in msg
    assert leftovers(tmp_path / "data" / "cifar10") == []
    del site.behaviour[path]
    ds = load_dataset("cifar10", tmp_path / "data", **quiet())
    np.testing.assert_allclose(ds.x_train, expected_cifar(batches)[0] / 255.0, atol=1e-6)


def test_unwritable_data_dir(site, monkeypatch, tmp_path):
    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    msg = one_line_error(name="mnist", data_dir=not_a_dir / "data")
    assert f"mnist: cannot write to {not_a_dir / 'data' / 'mnist'} (Not a directory); pass --data-dir DIR" in msg

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    msg = one_line_error(name="mnist", data_dir=tmp_path / "ro")
    assert f"cannot write to {tmp_path / 'ro' / 'mnist'} (Read-only file system)" in msg
    assert download.DATA_DIR_ENV in msg and "by hand" in msg


def test_full_data_dir(site, monkeypatch, tmp_path):
    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: types.SimpleNamespace(free=1000))
    msg = one_line_error(name="mnist", data_dir=tmp_path / "data")
    assert f"cannot write to {tmp_path / 'data' / 'mnist'} (" in msg and "kB needed, 1 kB free" in msg
    assert site.requests == []


def test_two_fetchers_download_once(site, monkeypatch, tmp_path):
    """The second waits on the lock while the first downloads, then reads the same files."""
    files, arrays = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    site.behaviour[f"/a/mnist/{IDX_NAMES[0]}"] = "hold"
    results, lines = {}, []

    def run(who):
        results[who] = load_dataset("mnist", tmp_path / "data", progress=False, say=lambda line: lines.append((who, line)))

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert site.holding.wait(20)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    for _ in range(200):  # the second announces that it waits
        if any(who == "second" and line.startswith("waiting for another process") for who, line in lines):
            break
        second.join(0.05)
    site.release.set()
    first.join(20)
    second.join(20)
    assert any(who == "second" and line.startswith("waiting for another process") for who, line in lines)
    assert sorted(site.requests) == sorted(f"/a/mnist/{n}" for n in IDX_NAMES)  # one download
    np.testing.assert_array_equal(results["first"].x_train, results["second"].x_train)
    np.testing.assert_array_equal(results["second"].y_test, arrays[3])


# --------------------------------------------------------------------------
# Caltech101: the original archive, split as TFDS's builder
# --------------------------------------------------------------------------

CLASS_SIZES = {"accordion": 33, "BACKGROUND_Google": 31, "Faces_easy": 34}


def caltech_tree(root: Path) -> Path:
    """101_ObjectCategories/<class>/image_NNNN.jpg: solid colours that name (class, image);
    plus one non-JPEG file, which TFDS counts in the draw but never emits."""
    from PIL import Image

    top = root / "101_ObjectCategories"
    for c, (folder, n) in enumerate(sorted(CLASS_SIZES.items())):
        (top / folder).mkdir(parents=True)
        for i in range(n):
            colour = (40 + 60 * c, 5 + 7 * i, 128)
            Image.new("RGB", (24 + i % 5, 20 + c), colour).save(top / folder / f"image_{i + 1:04d}.jpg", quality=95)
    (top / "accordion" / "notes.txt").write_text("not an image")
    return top


def caltech_zip(top: Path) -> bytes:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        tar.add(top, arcname=top.name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("caltech-101/101_ObjectCategories.tar.gz", inner.getvalue())
        z.writestr("caltech-101/Annotations.tar", b"")
    return out.getvalue()


def tfds_split(top: Path, monkeypatch) -> tuple[set, set]:
    """TFDS's own ``_generate_examples`` on the extracted tree, its ``tf.io.gfile`` listing sorted."""
    builder = pytest.importorskip("tensorflow_datasets.datasets.caltech101.caltech101_dataset_builder")
    gfile = types.SimpleNamespace(
        listdir=lambda p: sorted(os.listdir(p)),
        isdir=os.path.isdir,
        walk=lambda p: ((d, sorted(ds), sorted(fs)) for d, ds, fs in os.walk(p)),
    )
    monkeypatch.setattr(builder, "tf", types.SimpleNamespace(io=types.SimpleNamespace(gfile=gfile)))
    splits = []
    for is_train in (True, False):
        examples = builder.Builder._generate_examples(None, str(top.parent), is_train)
        splits.append({(r["label"], r["image/file_name"]) for _, r in examples})
    return splits[0], splits[1]


def test_caltech101_from_its_archive_with_tfds_split(site, monkeypatch, tmp_path):
    top = caltech_tree(tmp_path / "src")
    publish(site, monkeypatch, "caltech101", {"caltech-101.zip": caltech_zip(top)})
    ds = load_dataset("caltech101", tmp_path / "data", image_size=16, **quiet())
    assert ds.x_train.shape[1:] == (16, 16, 3)  # images of several sizes, each resized
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == sum(CLASS_SIZES.values())

    # Which (class, image) each output is: its solid colour, through JPEG and the resize.
    def names(x, y):
        classes = sorted(c.lower() for c in CLASS_SIZES)
        rgb = x.reshape(len(x), -1, 3).mean(axis=1) * 255
        c = np.rint((rgb[:, 0] - 40) / 60).astype(int)
        i = np.rint((rgb[:, 1] - 5) / 7).astype(int)
        folders = sorted(CLASS_SIZES)
        assert np.array_equal(y, [classes.index(folders[k].lower()) for k in c])
        return {(folders[k].lower(), f"image_{j + 1:04d}.jpg") for k, j in zip(c, i)}

    want_train, want_test = tfds_split(top, monkeypatch)
    assert names(ds.x_train, ds.y_train) == want_train
    assert names(ds.x_test, ds.y_test) == want_test
    assert ds.num_classes == 3 and ds.source.startswith("caltech:")


def test_caltech_split_rule():
    files = {"b": [f"{k:02d}.jpg" for k in range(40)], "a": [f"{k:02d}.jpg" for k in range(31)] + ["x.txt"]}
    train, test = caltech_split(files)
    rng = np.random.RandomState(1234)  # TFDS: np.random.seed(1234), classes in listing order
    chosen_a = set(rng.choice(sorted(files["a"]), 30, replace=False))
    chosen_b = set(rng.choice(sorted(files["b"]), 30, replace=False))
    assert {f for c, f in train if c == "a"} == chosen_a - {"x.txt"}  # drawn, never emitted
    assert {f for c, f in test if c == "a"} == set(files["a"]) - chosen_a - {"x.txt"}
    assert {f for c, f in train if c == "b"} == chosen_b
    assert {f for c, f in test if c == "b"} == set(files["b"]) - chosen_b
    with pytest.raises(DatasetError, match="class c has 29 files, fewer than the 30"):
        caltech_split({"c": [f"{k}.jpg" for k in range(29)]})


# --------------------------------------------------------------------------
# The switch: data.download and --no-download
# --------------------------------------------------------------------------


def test_no_download_flag_and_fingerprint():
    from experiments import run as cli
    from icrst_jax.run_identity import fingerprint

    ap = cli.build_parser()
    on = cli.config_from_args(ap.parse_args(["--dataset", "mnist"]))
    off = cli.config_from_args(ap.parse_args(["--dataset", "mnist", "--no-download"]))
    assert on.data.download is True and off.data.download is False
    assert "--no-download" in ap.format_help()
    # Where the files came from does not change the results: the same run folder.
    assert fingerprint(on) == fingerprint(off)


# --------------------------------------------------------------------------
# A failed download leaves nothing
# --------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_stalled_or_cut_downloads_leave_no_folder_and_say_downloading_only_on_bytes(
        site, monkeypatch, tmp_path):
    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    data_dir = tmp_path / "fresh" / "data"
    # Refused: no bytes, so no "downloading" line; only the error says what was tried.
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{_closed_port()}/a")
    lines = []
    with pytest.raises(DatasetError, match="Connection refused") as refused:
        download.fetch("mnist", data_dir, **quiet(lines))
    assert "\n" not in str(refused.value) and lines == []
    assert not (tmp_path / "fresh").exists()
    # Stalled: the server answers nothing; the read timeout ends the attempt.
    monkeypatch.setenv(download.MIRROR_ENV, f"{site.url}/a")
    monkeypatch.setattr(download, "READ_TIMEOUT_S", 0.3)
    site.behaviour["/a/mnist/train-images-idx3-ubyte.gz"] = "hold"
    with pytest.raises(DatasetError, match=r"no data for 0.3 s"):
        download.fetch("mnist", data_dir, **quiet(lines))
    site.release.set()
    assert lines == [] and not (tmp_path / "fresh").exists()
    # Answered with headers, then silence: still no byte, so still no "downloading" line.
    site.release.clear()
    site.behaviour["/a/mnist/train-images-idx3-ubyte.gz"] = "headers only"
    with pytest.raises(DatasetError, match=r"no data for 0.3 s"):
        download.fetch("mnist", data_dir, **quiet(lines))
    site.release.set()
    assert lines == [] and not (tmp_path / "fresh").exists()
    # Half a file: bytes came (the line is said once), the transfer is cut, nothing stays.
    site.behaviour["/a/mnist/train-images-idx3-ubyte.gz"] = "cut"
    with pytest.raises(DatasetError, match="transfer cut short"):
        download.fetch("mnist", data_dir, **quiet(lines))
    assert len(lines) == 1 and lines[0].startswith(f"downloading {site.url}/a/mnist/train-images")
    assert not (tmp_path / "fresh").exists()


def test_an_interrupted_download_leaves_no_lock_and_no_folder(site, monkeypatch, tmp_path):
    import signal

    from icrst_jax import faults

    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    site.behaviour["/a/mnist/train-images-idx3-ubyte.gz"] = "hold"
    data_dir = tmp_path / "data"
    data_dir.mkdir()  # an existing data directory stays; the data set's own folder goes

    main = threading.main_thread().ident

    def terminate():
        assert site.holding.wait(10)
        # To the main thread itself: a process-wide kill may land on this thread, and the main
        # thread's blocked read would then see it only when the held response comes (20 s).
        signal.pthread_kill(main, signal.SIGTERM)

    threading.Thread(target=terminate, daemon=True).start()
    with faults.handle_interrupts(), pytest.raises(faults.Interrupted) as stopped:
        download.fetch("mnist", data_dir, **quiet())
    site.release.set()
    assert stopped.value.exit_status == 143
    assert list(data_dir.iterdir()) == []


def test_the_command_line_after_a_failed_download_leaves_no_run_folder(site, monkeypatch, tmp_path, capsys):
    from experiments import run

    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", files)
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{_closed_port()}/a")
    monkeypatch.chdir(tmp_path)
    status = run.main(["--dataset", "mnist", "--epochs", "1", "--seeds", "0",
                       "--classifiers", "nb", "--no-tsne", "--no-tensorboard", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: mnist: cannot download")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no runs/, no data folder


def test_dry_run_says_where_the_data_is_or_what_would_be_downloaded(site, monkeypatch, tmp_path, capsys):
    import json

    from experiments import run

    files, _ = mnist_files()
    publish(site, monkeypatch, "mnist", {**files, "extra.bin": b"x" * 2_500_000})
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    argv = ["--dataset", "mnist", "--data-dir", str(data_dir), "--out", "out", "--dry-run"]
    assert run.main(argv) == 0
    said = json.loads(capsys.readouterr().out)
    size = (sum(map(len, files.values())) + 2_500_000) / 1e6
    assert said["data"] == f"mnist: would download 5 files ({size:.1f} MB) into {data_dir / 'mnist'}"
    assert said["output_folder"] == str(tmp_path / "out") and site.requests == []
    assert list(tmp_path.iterdir()) == []  # a dry run creates nothing
    assert run.main([*argv, "--no-download"]) == 0
    assert "downloads are off" in json.loads(capsys.readouterr().out)["data"]
    for fname, payload in files.items():
        (data_dir / "mnist").mkdir(parents=True, exist_ok=True)
        (data_dir / "mnist" / fname).write_bytes(payload)
    assert run.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["data"] == f"mnist: present in {data_dir / 'mnist'}"
