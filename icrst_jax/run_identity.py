"""Which study a run folder holds, and one run per folder at a time.

A study's *fingerprint* is every config field that decides its results: the
data set and where it is read from, the split, the preprocessing (input
scheme, image size), the model, the training settings, the grid (modes, p
values, seeds) and the evaluation. It is taken from the config's own fields
(:func:`icrst_jax.config.config_paths`), so a new field is part of it without
being listed here. A run folder records it in ``run.json`` and every
checkpoint carries it in its metadata; a rerun into the folder continues only
the same training (:data:`RESUMABLE` may differ) and otherwise refuses in one
line naming the first field that differs.

The default output folder is ``runs/<dataset>-<8 hex digits of the
fingerprint>``: two different studies never share one by accident, and the
same command finds its own folder again (to resume).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import operator
import os
from pathlib import Path
from typing import Iterable

from icrst_jax.data import custom
from icrst_jax.config import GRID_DECIDED, SCALING_ALIASES, StudyConfig, TrainConfig, config_paths
from icrst_jax.jsonable import to_jsonable

# Fields that say where and how the work is done, not what it computes: the
# results do not depend on them (the training engine gives the same function of
# the same batches for any device count, seed_batch and convolution
# implementation; checkpoints only stop
# and restart it exactly).
NOT_DECIDING = ("out", "checkpoints", "train.checkpoint_every", "train.num_devices", "train.seed_batch",
                "train.model.conv_impl", "eval.n_jobs", "data.download", "log.tensorboard")
# Fields a rerun may change and still continue the folder's training: more
# epochs extend it, and the evaluation is redone from the latents on every run.
RESUMABLE = ("train.epochs", "eval.")
IDENTITY_FILE = "run.json"
LOCK_FILE = ".lock"


class RunMismatch(ValueError):
    """The folder (or checkpoint) holds another study's results."""


class FolderBusy(ValueError):
    """Another process is running a study into the folder."""


def fingerprint(cfg: StudyConfig) -> dict:
    """Every result-deciding field of a study: ``{dotted path: value}`` in field order.

    ``data.data_dir`` is made absolute: the same folder named two ways is the same source.
    """
    fields = {path: operator.attrgetter(path)(cfg) for path in config_paths(cfg) if path not in NOT_DECIDING}
    # None means the model's paper batch: the same training as that number written out.
    if "train.batch_size" in fields:
        fields["train.batch_size"] = cfg.train.global_batch_size
    # A study without the latent-size axis is the study it was before the axis existed.
    if not fields.get("latent_sizes"):
        fields.pop("latent_sizes", None)
    # A study that is not a domain adaptation, or whose classifiers scikit-learn fits (the only
    # backend before the JAX one), is the study it was before those fields existed.
    if fields.get("data.target") is None:
        for path in [p for p in fields if p == "data.target" or p.startswith("adapt.")]:
            fields.pop(path)
    if fields.get("eval.backend") == "sklearn":
        fields.pop("eval.backend")
    # The kNN vote's settings decide results only where knn is among the classifiers.
    if "knn" not in cfg.eval.classifiers:
        for path in ("eval.knn_k", "eval.knn_temperature"):
            fields.pop(path, None)
    # A None dropout is the model's own rate (earlier folders recorded 0.2 for the Table D1 models).
    if "train.model.dropout" in fields:
        fields["train.model.dropout"] = cfg.train.model.dropout_rate
    # The in-fold scaling under its earlier name: a folder made before the rename holds the same study.
    if "eval.scalings" in fields:
        earlier = {new: old for old, new in SCALING_ALIASES.items()}
        fields["eval.scalings"] = tuple(earlier.get(sc, sc) for sc in fields["eval.scalings"])
    if fields.get("data.data_dir"):
        fields["data.data_dir"] = os.path.abspath(os.path.expanduser(fields["data.data_dir"]))
    _own_data_fields(cfg, fields)
    return to_jsonable(fields)  # tuples become lists, as in a stored file


def _own_data_fields(cfg: StudyConfig, fields: dict) -> None:
    """A study of a built-in set is the study it was before ``data.source`` existed; one of a
    researcher's own data is decided by the data's content (its hash), not by ``data.name``."""
    if cfg.data.source is None:
        fields.pop("data.source", None)
        fields.pop("data.label_column", None)
        return
    fields.pop("data.name", None)
    facts = custom.load_for(cfg.data).facts
    fields["data.source"] = facts.source
    fields["data.hash"] = facts.hash


def train_fingerprint(config: TrainConfig, points: Iterable) -> dict:
    """The fingerprint of a bare :func:`icrst_jax.train.fit` call: its training
    fields (as ``train.*``) and its grid points; the mode, p and seed of the
    config are those of the points."""
    fields = {f"train.{path}": operator.attrgetter(path)(config) for path in config_paths(config)}
    fields = {k: v for k, v in fields.items() if k not in NOT_DECIDING and k not in GRID_DECIDED}
    fields["train.batch_size"] = config.global_batch_size  # as in fingerprint
    fields["train.model.dropout"] = config.model.dropout_rate  # as in fingerprint
    fields["grid"] = [dataclasses.asdict(pt) for pt in points]
    return to_jsonable(fields)  # tuples become lists, as in a stored file


def short_hash(fields: dict) -> str:
    """8 hex digits of the SHA-256 of the fields (sorted JSON)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


def default_out(cfg: StudyConfig) -> str:
    """``runs/<dataset>-<short fingerprint>``: this study's own folder (for own data, named after its file)."""
    name = cfg.data.name if cfg.data.source is None else custom.load_for(cfg.data).facts.name
    return f"runs/{name}-{short_hash(fingerprint(cfg))}"


def out_dir(cfg: StudyConfig) -> Path:
    """The study's output folder: ``cfg.out``, or its default folder."""
    return Path(cfg.out if cfg.out is not None else default_out(cfg))


def _resumable(key: str) -> bool:
    return any(key == r or (r.endswith(".") and key.startswith(r)) for r in RESUMABLE)


def first_difference(stored: dict | None, current: dict, *, ignore_resumable: bool = True):
    """The first field (in the current fingerprint's order) whose value differs:
    ``(key, stored value, current value)``, or None. A field missing on one side
    reads as ``"<missing>"``."""
    stored = stored or {}
    for key in list(current) + [k for k in stored if k not in current]:
        if ignore_resumable and _resumable(key):
            continue
        a, b = stored.get(key, "<missing>"), current.get(key, "<missing>")
        if a != b:
            return key, a, b
    return None


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def mismatch_message(where, key: str, stored, current) -> str:
    return (
        f"{where} holds a different run ({key} was {_short(stored)} there, {_short(current)} now); "
        f"to keep both, use another --out (or leave --out out: every study gets a folder of its own), "
        f"or delete {where} to start over"
    )


def checkpoint_steps(out: Path) -> list[int]:
    """Epochs of the checkpoints in ``out/checkpoints`` (orbax names step folders by number)."""
    folder = Path(out) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def check_out_path(out) -> None:
    """An output folder must be a folder (or not exist yet)."""
    if Path(out).exists() and not Path(out).is_dir():
        raise RunMismatch(f"--out {out} is a file, not a folder")


def check_folder(out: Path, cfg: StudyConfig) -> None:
    """Refuses a rerun that would mix another study's files or misreport a checkpoint.

    Raises:
      RunMismatch: ``out`` holds a different study (first differing field
        named), or files of a run that recorded no identity, or a checkpoint
        ahead of ``train.epochs`` (a longer run would be reported as a shorter one).
    """
    out = Path(out)
    check_out_path(out)
    record = out / IDENTITY_FILE
    # A run that failed before writing anything (data not found, say) leaves
    # only run.json: nothing to protect, so a corrected rerun may take the folder.
    has_results = bool(checkpoint_steps(out)) or (out / "results.json").exists() or any(out.glob("latents_*.npz"))
    if record.is_file() and has_results:
        try:
            stored = json.loads(record.read_text())["fields"]
        except (ValueError, KeyError, TypeError):
            raise RunMismatch(f"{record} is damaged; delete {out} to start over, or use another --out") from None
        diff = first_difference(stored, fingerprint(cfg))
        if diff:
            raise RunMismatch(mismatch_message(out, *diff))
    elif has_results and not record.is_file():
        raise RunMismatch(
            f"{out} holds a run that recorded no {IDENTITY_FILE} (written before run identity, or by hand): "
            f"use another --out, or delete {out} to start over"
        )
    steps = checkpoint_steps(out)
    if steps and steps[-1] > cfg.train.epochs:
        raise RunMismatch(
            f"{out} holds a checkpoint at epoch {steps[-1]}, ahead of the requested {cfg.train.epochs} epochs: "
            f"rerun with --epochs {steps[-1]} to report that run, or use another --out"
        )


def write_identity(out: Path, cfg: StudyConfig) -> None:
    """Records the study's fingerprint in ``out/run.json``."""
    fields = fingerprint(cfg)
    from icrst_jax.reporting import write_results_json  # atomic, same permissions as the other outputs

    record = {"fingerprint": short_hash(fields), "fields": fields}
    if cfg.data.source is not None:  # own data: what was inferred about it, as in results.json
        record["data"] = custom.load_for(cfg.data).facts.trained_with(cfg.train.model).to_dict()
    write_results_json(Path(out) / IDENTITY_FILE, record)


class FolderLock:
    """An exclusive ``flock`` on ``out/.lock`` for the life of a run; the file goes with it.

    The kernel drops the lock when the process ends, however it ends (kill -9
    included), so a crashed run never leaves the folder locked (only, after a
    kill, the file). The holder removes the file before unlocking; a process
    that locked the file just as it was removed sees that its file is no
    longer the one at the path and locks again, so two runs never both hold
    the folder.

    Example:
      >>> with FolderLock("runs/x"):
      ...     run_experiment(cfg)
    """

    def __init__(self, out):
        self.path = Path(out) / LOCK_FILE
        self._fd = None

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise FolderBusy(
                    f"{self.path.parent} is in use by another run (pid {holder}); wait for it to finish or use another --out"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # locked a file its holder had just removed: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc):
        import fcntl

        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still locked: see the class docstring
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        return False


def check_can_claim(out, cfg: StudyConfig) -> None:
    """What :func:`claim_folder` checks, without claiming or creating anything: ``out``
    is a folder or nothing, no run holds it, and it holds this study or nothing.

    Raises:
      RunMismatch, FolderBusy: as :func:`check_folder` and :class:`FolderLock`.
    """
    out = Path(out)
    check_out_path(out)
    if out.is_dir():
        with FolderLock(out):
            check_folder(out, cfg)


@contextlib.contextmanager
def claim_folder(out, cfg: StudyConfig):
    """Holds the study's folder for one run (process 0's part of a run).

    Checks it (:func:`check_folder`), locks it (:class:`FolderLock`) and
    records the study (``run.json``) for the ``with`` body. An attempt that
    fails in a folder it created, before writing anything but ``run.json``,
    removes the folder again: a failed start leaves no empty folder behind.

    Raises:
      RunMismatch, FolderBusy: another study's folder, or a busy one.
    """
    out = Path(out)
    check_out_path(out)
    created = not out.exists()
    parents = []  # the folders above ``out`` this run makes (``runs/``), removed with it
    above = out.absolute().parent
    while not above.exists() and above != above.parent:
        parents.append(above)
        above = above.parent
    try:
        with FolderLock(out):
            check_folder(out, cfg)
            write_identity(out, cfg)
            yield out
    except BaseException:
        if created and out.is_dir() and {p.name for p in out.iterdir()} <= {IDENTITY_FILE}:
            (out / IDENTITY_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # a file another process put there meanwhile keeps it
                out.rmdir()
                for parent in parents:
                    parent.rmdir()
        raise
