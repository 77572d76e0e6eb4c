"""Fetching a data set's original files on first use, verified, into a data directory.

The files and their published checksums are the registry's
(:attr:`DatasetSpec.files`). Downloads go through `pooch
<https://www.fatiando.org/pooch/>`_, which streams each file to a temporary
name in the target folder, checks its hash and only then moves it into place:
an interrupted or corrupt transfer never leaves a file under the real name, so
nothing half-written is ever read as data. On top of that, this module adds
what pooch leaves to its caller: mirrors tried in order, a lock so that
processes sharing a data directory download once (the others wait, then read),
and one-line :class:`DatasetError` messages that say what to do.

Where files go: ``data_dir/<name>/`` with ``data_dir`` from ``--data-dir``
(``data.data_dir``), else ``$ICRST_JAX_DATA_DIR``, else
``~/.cache/icrst_jax/data`` (under ``$XDG_CACHE_HOME`` if set).
``$ICRST_JAX_DATA_MIRROR`` (comma-separated base URLs) replaces the publishers'
hosts: the file ``F`` of data set ``N`` is fetched from ``<base>/N/F``, e.g.
from a cluster's own mirror or, in the tests, a server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import itertools
import errno
import fcntl
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

from icrst_jax.data.dataset import DatasetError
from icrst_jax.data.registry import DATASET_SPECS, RemoteFile
from icrst_jax.runtime import default_cache_dir

#: Environment variable that moves the default data directory (e.g. to a cluster's shared folder).
DATA_DIR_ENV = "ICRST_JAX_DATA_DIR"
#: Environment variable with base URLs (comma-separated) that replace the publishers' hosts.
MIRROR_ENV = "ICRST_JAX_DATA_MIRROR"
LOCK_FILE = ".download.lock"
#: Seconds to wait for a connection, and for the next bytes of a transfer, before giving up on a URL.
CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 60.0


def default_data_dir() -> Path:
    """``$ICRST_JAX_DATA_DIR``, else ``$XDG_CACHE_HOME/icrst_jax/data`` (``~/.cache/icrst_jax/data``)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else default_cache_dir().parent / "data"


def file_urls(name: str, file: RemoteFile) -> tuple[str, ...]:
    """Where ``file`` of data set ``name`` is fetched from, in order ($ICRST_JAX_DATA_MIRROR first and only)."""
    bases = [b.strip().rstrip("/") for b in os.environ.get(MIRROR_ENV, "").split(",") if b.strip()]
    if bases:
        return tuple(f"{b}/{name}/{file.name}" for b in bases)
    return file.urls


def missing_files(name: str, folder: Path) -> list[RemoteFile]:
    """The files of ``name`` not yet in ``folder`` (a file there under its own name is complete:
    only a verified download is ever moved to that name)."""
    return [f for f in DATASET_SPECS[name].files if not (folder / f.name).is_file()]


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def manual_hint(name: str, folder: Path) -> str:
    """How to place the files by hand, for an error message."""
    listing = ", ".join(f"{f.urls[0]} ({_size(f.size)})" for f in DATASET_SPECS[name].files)
    return f"download {listing} into {folder}/ by hand, or pass --data-dir DIR (data.data_dir) where they are"


@contextlib.contextmanager
def _locked(name: str, folder: Path, say: Callable[[str], None]) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/.download.lock``; says so while it waits for another process.

    The holder removes the file before unlocking (a data folder keeps only data);
    a process that locked a file just removed that way locks the new one instead.
    """
    path = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise _write_error(name, folder, e) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process downloading into {folder} (lock {path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed that file meanwhile: lock the one at the path now
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: see above
        os.close(fd)  # releases the lock


def _new_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    made = []
    while not folder.exists() and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    return made


def _remove_empty(folders: list[Path]) -> None:
    """Removes the folders this download made, deepest first, as long as they are empty."""
    for made in folders:
        try:
            made.rmdir()
        except OSError:  # not empty (another process's files, or data): keep it and its parents
            return


def _write_error(name: str, folder: Path, e: OSError) -> DatasetError:
    listing = ", ".join(f.urls[0] for f in DATASET_SPECS[name].files)
    return DatasetError(
        f"{name}: cannot write to {folder} ({e.strerror or e}); pass --data-dir DIR (data.data_dir) or set "
        f"{DATA_DIR_ENV} to a writable folder with room for the files, or download {listing} there by hand"
    )


def _reason(e: Exception) -> str:
    """The short cause of a failed request: "Connection refused", "HTTP 404", "transfer cut short"."""
    import requests  # start-up time: only a download needs the HTTP stack

    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code}"
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return f"no connection within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(e, (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)) and \
            "timed out" in str(e).lower():
        return f"no data for {READ_TIMEOUT_S:g} s"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return "transfer cut short"
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(e))
    if errno_text:
        return errno_text.group(1).strip()
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:120]}"


class _Streamer:
    """pooch's downloader: one GET with a connect and a read timeout, streamed in chunks.

    It says "downloading ..." only once the file's first bytes arrive (a refused,
    silent or missing one, or one that sends its headers and then nothing, gets
    only the error line), and a server that stops sending
    for :data:`READ_TIMEOUT_S` fails the transfer instead of hanging the run.
    """

    def __init__(self, line: str, say: Callable[[str], None], progress: bool):
        self.line, self.say, self.progress = line, say, progress

    def __call__(self, url: str, output_file, pooch_obj=None) -> None:
        import requests  # start-up time: only a download needs the HTTP stack

        with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            # One byte first, so that the line is said when data arrives, also for a transfer
            # that is cut before a whole chunk came.
            first = next(response.iter_content(chunk_size=1), b"")
            if first:
                self.say(self.line)
            with open(output_file, "wb") if isinstance(output_file, (str, os.PathLike)) else \
                    contextlib.nullcontext(output_file) as out, _progress_bar(total, self.progress) as bar:
                for chunk in itertools.chain([first], response.iter_content(chunk_size=1 << 16)):
                    out.write(chunk)
                    bar.update(len(chunk))


def _progress_bar(total: int | None, shown: bool):
    from tqdm import tqdm  # start-up time: only a download shows a bar

    return tqdm(total=total, unit="B", unit_scale=True, disable=not shown, leave=False)


def _download(name: str, file: RemoteFile, folder: Path, say: Callable[[str], None], progress: bool) -> None:
    """Fetches one file from its URLs in order; raises one DatasetError when none gives the verified file."""
    # start-up time: only a download needs pooch and the HTTP stack
    import pooch
    import requests

    failures, mismatch = [], None
    for url in file_urls(name, file):
        streamer = _Streamer(f"downloading {url} ({_size(file.size)}) into {folder}", say, progress)
        try:
            pooch.retrieve(url, known_hash=file.hash, fname=file.name, path=folder, downloader=streamer)
            return
        except requests.RequestException as e:  # no network, refused, stalled, HTTP error, cut-off transfer
            failures.append(f"{url} ({_reason(e)})")
        except ValueError as e:  # pooch: the hash differs (it has deleted the download)
            found = re.search(r"but got ([0-9a-fA-F]+)", str(e))
            if found is None:
                raise
            mismatch = (url, found.group(1))
            failures.append(f"{url} (checksum mismatch)")
        except OSError as e:
            raise _write_error(name, folder, e) from e
    if mismatch is not None:
        url, found = mismatch
        algorithm, expected = file.hash.split(":", 1)
        raise DatasetError(
            f"{name}: {file.name} from {url} has {algorithm} {found}, expected {expected} "
            f"(published by {file.checksum_source}); the bad download was removed. Try again, or "
            + manual_hint(name, folder)
        )
    raise DatasetError(f"{name}: cannot download {file.name} from {'; '.join(failures)}; " + manual_hint(name, folder))


def fetch(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> Path:
    """Makes sure ``data_dir/name/`` holds every original file of ``name``, verified.

    Files already there are kept; the missing ones are downloaded (mirrors in
    order), each checked against its published checksum before it gets its
    name. Processes that share the folder take turns on a lock: the first
    downloads, the others wait and then find the files. Call it before a
    multi-process run joins (``jax.distributed``), so that no process waits on
    a download inside a collective.

    Args:
      name: a data set with files (:attr:`DatasetSpec.files`).
      data_dir: the data directory (default :func:`default_data_dir`).
      progress: show pooch's progress bar (tqdm, on stderr).
      say: where the progress lines go.

    Returns:
      ``data_dir/name``, holding the files.

    Raises:
      DatasetError: one line: no network (the URLs tried and how to place the
        files by hand), a checksum mismatch (expected and found hashes), a
        folder that cannot be written (read-only, full).
    """
    spec = DATASET_SPECS[name]
    if not spec.files:
        raise DatasetError(f"{name} has no files to download")
    folder = (Path(data_dir).expanduser() if data_dir is not None else default_data_dir()) / name
    if not missing_files(name, folder):
        return folder
    made = _new_folders(folder)
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _write_error(name, folder, e) from e
        with _locked(name, folder, say):
            _fetch_missing(name, folder, say, progress)
    except BaseException:  # failed, interrupted: nothing of this attempt stays, not even an empty folder
        _remove_empty(made)
        raise
    return folder


def _fetch_missing(name: str, folder: Path, say: Callable[[str], None], progress: bool) -> None:
    """Downloads what ``folder`` still lacks (under the lock), after checking there is room for it."""
    import pooch  # start-up time: only a download needs it

    missing = missing_files(name, folder)  # another process may have fetched them while this one waited
    need = sum(f.size for f in missing)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise _write_error(name, folder, OSError(errno.ENOSPC, f"{_size(need)} needed, {_size(free)} free"))
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # this module says what it downloads itself
    try:
        for file in missing:
            _download(name, file, folder, say, progress)
    finally:
        logger.setLevel(level)
