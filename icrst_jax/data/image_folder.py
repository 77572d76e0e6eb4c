"""A researcher's image folder in the ImageFolder layout, decoded with Pillow and cached.

Layouts: ``root/<class>/*.png`` (split later by a stratified holdout) or
``root/train/<class>/...`` and ``root/test/<class>/...`` (the given split).
Grayscale or RGB comes from the files (a mix is converted to the majority);
images of mixed sizes are resized to ``image_size`` or the most common size.
Other files are skipped and counted.

A large folder is decoded on a pool of processes (one per core).
The decoded pixels are cached as one ``.npy`` (read memory-mapped) under the data dir, keyed by the
folder's listing (every file's path, size and modification time), so a changed
file makes a new entry; the entry is written only after the whole folder was
read without error.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import io
import operator
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from icrst_jax.data.dataset import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
# Bumped when the decoded form changes, so that an old cache entry is not read as a new one.
CACHE_VERSION = 2
# Fewer files than this are decoded in this process: starting worker processes would cost more.
PARALLEL_MIN_FILES = 2000
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclasses.dataclass(frozen=True)
class FolderListing:
    """The image files of a folder, before any is decoded.

    Attributes:
      root: the folder.
      classes: class names (sub-folder names), sorted.
      files: per split (``"all"``, or ``"train"`` and ``"test"``): ``(relative path, class index)``.
      stats: ``(relative path, size, mtime_ns)`` of every image file: the cache key.
      skipped: files that are not images (by suffix).
    """

    root: Path
    classes: tuple[str, ...]
    files: dict
    stats: tuple
    skipped: int

    @property
    def given_split(self) -> bool:
        return "train" in self.files

    def key(self, image_size) -> str:
        text = repr((CACHE_VERSION, image_size, self.classes, self.stats))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class DecodedFolder:
    """A decoded folder: ``x`` uint8 ``(N, H, W, C)``, class indices ``y``, which split each is in."""

    x: np.ndarray
    y: np.ndarray
    is_test: np.ndarray
    classes: tuple[str, ...]
    content_hash: str
    notes: tuple[str, ...]


def is_image_folder(path: Path) -> bool:
    """A folder with class sub-folders (or train/ and test/ ones)."""
    return path.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


_name = operator.attrgetter("name")


def _walk(folder: str, prefix: str, skipped: list[int]) -> list[tuple[str, int, int]]:
    """``(path relative to the root, size, mtime_ns)`` of the image files under ``folder``
    (``prefix``: its own relative path), in path order.

    One ``os.scandir`` pass (a sorted depth-first walk orders files as sorting their paths
    would); a cache hit does nothing else per file."""
    with os.scandir(folder) as it:
        entries = [e for e in sorted(it, key=_name) if e.name[0] != "."]
    if not any(e.is_dir() for e in entries):  # the usual class folder: files only
        return _walk_files([e for e in entries if e.is_file()], prefix, skipped)
    found = []
    for e in entries:
        if e.is_dir():
            found += _walk(e.path, f"{prefix}{e.name}/", skipped)
        elif e.is_file():
            found += _walk_files([e], prefix, skipped)
    return found


def _walk_files(entries, prefix: str, skipped: list[int]) -> list[tuple[str, int, int]]:
    images = [e for e in entries if "." + e.name.rpartition(".")[2].lower() in IMAGE_SUFFIXES]
    skipped[0] += len(entries) - len(images)
    return [(prefix + e.name, (st := e.stat()).st_size, st.st_mtime_ns) for e in images]


def list_folder(root: Path) -> FolderListing:
    """Lists the folder's classes and image files, refusing an unusable layout in one line."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    subdirs = {p.name for p in _class_dirs(root)}
    splits = ("train", "test") if {"train", "test"} <= subdirs else ("all",)
    classes: list[str] | None = None
    files, stats, skipped = {}, [], [0]
    for split in splits:
        folder = root if split == "all" else root / split
        skipped[0] += sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        dirs = _class_dirs(folder)
        if classes is None:
            classes = [d.name for d in dirs]
        unknown = sorted({d.name for d in dirs} - set(classes))
        if unknown:
            raise DatasetError(f"{folder}: classes {unknown} are not in {root / 'train'}; the test split needs "
                               "the training split's classes")
        entries = []
        for d in dirs:
            prefix = ("" if split == "all" else f"{split}/") + f"{d.name}/"
            found = _walk(os.fspath(d), prefix, skipped)
            if not found:
                raise DatasetError(f"{d}: the class folder holds no image ({', '.join(IMAGE_SUFFIXES)}); "
                                   "remove it or add its images")
            index = classes.index(d.name)
            entries += [(rel, index) for rel, _, _ in found]
            stats += found
        files[split] = entries
    if classes is None or len(classes) < 2:
        raise DatasetError(f"{root}: {len(classes or [])} class folder(s) found; an image folder needs at least two "
                           "(root/<class>/*.png, or root/train/<class> and root/test/<class>)")
    return FolderListing(root, tuple(classes), files, tuple(stats), skipped[0])


def _decode_one(path) -> tuple[np.ndarray, str, bytes]:
    """One file: its pixels (uint8, HxW or HxWx3), its colour group and the SHA-256 of its bytes."""
    from PIL import Image  # start-up time: Pillow is imported only when a folder is decoded

    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).digest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            group = "L" if im.mode in _GRAY_MODES else "RGB"
            arr = np.asarray(im if im.mode == group else im.convert(group), np.uint8)
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"{path}: cannot decode the image ({type(e).__name__}: {e}); remove or replace it") from e
    return arr, group, digest


def _decode_chunk(paths: list[str]) -> list[tuple[np.ndarray, str, bytes]]:
    return [_decode_one(p) for p in paths]


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(16, cores))


def decode_worker() -> None:
    """A worker process: pickled paths on stdin -> pickled :func:`_decode_chunk` on stdout
    (a bad file: its one line on stderr, exit 2)."""
    paths = pickle.loads(sys.stdin.buffer.read())
    try:
        out = _decode_chunk(paths)
    except DatasetError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    sys.stdout.buffer.write(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))


def _decode_elsewhere(paths: list[str]) -> list[tuple[np.ndarray, str, bytes]]:
    # A fresh interpreter rather than multiprocessing: forking would copy JAX's threads, and
    # spawning re-imports the caller's main script, which breaks scripts without a main guard.
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", "from icrst_jax.data.image_folder import decode_worker; "
                           "decode_worker()"], input=pickle.dumps(paths), capture_output=True, env=env, check=False)
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode == 2 and lines:
        raise DatasetError(lines[-1])
    if done.returncode != 0:
        raise RuntimeError(f"an image decoding worker failed (exit {done.returncode}): {lines[-1] if lines else ''}")
    return pickle.loads(done.stdout)


def _decode_all(paths: list[Path], progress: Callable[[str], None]):
    """Every file decoded, in order. Pillow's per-image Python work, not the decoding, dominates
    small images, so threads would share one core: a large folder is split over worker processes."""
    paths = [os.fspath(p) for p in paths]
    workers = _workers()
    if len(paths) < PARALLEL_MIN_FILES or workers == 1:
        return _decode_chunk(paths)
    # Two chunks per worker: a progress line half-way, for one interpreter start (~0.5 s) each.
    size = -(-len(paths) // (workers * 2))
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    out: list = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for result in pool.map(_decode_elsewhere, chunks):
            out += result
            progress(f"   decoded {len(out)}/{len(paths)} images")
    return out


def _to_group(arr: np.ndarray, group: str) -> np.ndarray:
    if group == "RGB":
        return np.repeat(arr[..., None], 3, axis=-1) if arr.ndim == 2 else arr
    if arr.ndim == 2:
        return arr
    # ITU-R 601-2 luma, as Pillow's convert("L").
    return np.round(arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


def _resized(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image  # as in _decode_one

    if arr.shape[:2] == size:
        return arr
    return np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.BILINEAR), np.uint8)


def decode_folder(listing: FolderListing, image_size: int | None, progress: Callable[[str], None]) -> DecodedFolder:
    """Every image of the listing as one uint8 array, in one colour group and one size."""
    entries = [(rel, c, split == "test") for split, es in listing.files.items() for rel, c in es]
    decoded = _decode_all([listing.root / rel for rel, _, _ in entries], progress)
    notes = []
    if listing.skipped:
        notes.append(f"skipped {listing.skipped} file(s) that are not images")
    groups = collections.Counter(g for _, g, _ in decoded)
    group = groups.most_common(1)[0][0]
    if len(groups) > 1:
        notes.append(f"{sum(groups.values()) - groups[group]} image(s) converted to {'grayscale' if group == 'L' else 'RGB'}, "
                     "the majority")
    sizes = collections.Counter(a.shape[:2] for a, _, _ in decoded)
    size = (image_size, image_size) if image_size is not None else sizes.most_common(1)[0][0]
    odd = sum(n for s, n in sizes.items() if s != size)
    if odd:
        notes.append(f"{odd} image(s) resized to {size[0]}x{size[1]}"
                     + ("" if image_size is not None else ", the most common size"))
    x = np.stack([_resized(_to_group(a, group), size) for a, _, _ in decoded])
    if x.ndim == 3:
        x = x[..., None]
    content = hashlib.sha256()
    for (rel, _, _), (_, _, digest) in zip(entries, decoded):
        content.update(rel.encode() + b"\0" + digest)
    return DecodedFolder(x, np.array([c for _, c, _ in entries], np.int32), np.array([t for _, _, t in entries]),
                         listing.classes, content.hexdigest(), tuple(notes))


def cache_path(listing: FolderListing, image_size, cache_dir: Path) -> Path:
    """The entry's folder: ``x.npy`` (the pixels, read memory-mapped) and ``meta.npz`` (the rest)."""
    return cache_dir / "decoded" / f"{listing.root.name or 'images'}-{listing.key(image_size)[:20]}"


def _read_cache(path: Path) -> DecodedFolder | None:
    try:
        with np.load(path / "meta.npz", allow_pickle=False) as z:
            meta = {k: z[k] for k in z.files}
        x = np.load(path / "x.npy", mmap_mode="r", allow_pickle=False)
        return DecodedFolder(x, meta["y"], meta["is_test"], tuple(str(c) for c in meta["classes"]),
                             str(meta["content_hash"]), tuple(str(n) for n in meta["notes"]))
    except (OSError, ValueError, KeyError):
        return None  # a truncated or foreign entry: decode again and replace it


def load_folder(root: Path, image_size: int | None, cache_dir: Path,
                progress: Callable[[str], None] = lambda line: None) -> tuple[DecodedFolder, Path | None]:
    """The decoded folder, from its cache entry when the folder has not changed since.

    Returns the folder and, when it was decoded now, the cache entry to write
    with :func:`save_cache` once the data has passed every check (None: read
    from the cache)."""
    listing = list_folder(Path(root))
    path = cache_path(listing, image_size, cache_dir)
    if path.is_dir():
        cached = _read_cache(path)
        if cached is not None:
            return cached, None
    n = sum(len(v) for v in listing.files.values())
    progress(f"decoding {n} images of {listing.root} (cached for the next run) ...")
    return decode_folder(listing, image_size, progress), path


def save_cache(folder: DecodedFolder, path: Path) -> None:
    """Writes the decoded folder to its cache entry (a temporary folder, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    np.save(tmp / "x.npy", np.ascontiguousarray(folder.x), allow_pickle=False)
    np.savez(tmp / "meta.npz", y=folder.y, is_test=folder.is_test, classes=np.array(folder.classes),
             content_hash=folder.content_hash, notes=np.array(folder.notes, dtype=str))
    shutil.rmtree(path, ignore_errors=True)  # a broken entry of the same key
    try:
        os.replace(tmp, path)
    except OSError:  # another process wrote the same entry meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
