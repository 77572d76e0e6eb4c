"""results.json (and any JSON output): strict, indented, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from icrst_jax.jsonable import to_jsonable

def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and ``os.replace``.

    A reader (or a crash) never sees a half-written file; the replace is atomic
    on POSIX because source and target are on the same filesystem.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode every other output gets (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results_json(path, payload) -> Path:
    """Write ``payload`` as indented, strict JSON, atomically.

    Args:
      path: destination file; parent directories are created.
      payload: nested dicts/lists with numpy arrays and scalars, tuples,
        dataclasses (e.g. ``TrainConfig``) and paths (see ``to_jsonable``).

    Returns:
      The path written.

    Example:
      >>> import tempfile, json
      >>> p = write_results_json(Path(tempfile.mkdtemp()) / "r.json", {"x": np.ones(2)})
      >>> json.loads(p.read_text())
      {'x': [1.0, 1.0]}
    """
    path = Path(path)
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
    return path
