"""own_data: reading a researcher's own data (``--data``).

A folder of 28x28 PNGs in the ImageFolder layout (60,000 in full runs, made
here), loaded the first time (decoded in parallel, then cached under the data
dir) and a second time (from the decoded cache); and a CSV of 100,000 rows x
50 features. Targets on the 2-core CPU: 20 s, 1 s and 3 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_lib import Context, format_table


def make_png_folder(root: Path, n: int, classes: int = 10, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
    for k in range(n):
        pix = (rng.random((28, 28)) < 0.2).astype(np.uint8) * 255
        Image.fromarray(pix).save(root / str(k % classes) / f"{k:06d}.png")
    return root


def make_csv(path: Path, rows: int, features: int = 50, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = np.c_[rng.normal(size=(rows, features)), rng.integers(0, 5, rows)]
    header = ",".join([f"f{i}" for i in range(features)] + ["label"])
    np.savetxt(path, data, delimiter=",", fmt="%.6g", header=header, comments="")
    return path


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(ctx: Context) -> tuple[dict, str]:
    from icrst_jax.data import custom

    n_png, n_rows = (600, 2000) if ctx.quick else (60000, 100000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ctx.log(f"own_data: writing {n_png} PNGs and a {n_rows} x 50 CSV")
        folder = make_png_folder(tmp / "pngs", n_png)
        csv = make_csv(tmp / "table.csv", n_rows)
        cache = tmp / "cache"

        def load(source):
            custom._LOADED.clear()  # each load reads again (the in-process memo is for one study)
            return custom.load_source(str(source), data_dir=cache)

        rows = [
            {"what": f"image folder, {n_png} PNGs 28x28, first load (decode + cache)", "seconds": _timed(lambda: load(folder))},
            {"what": f"image folder, {n_png} PNGs 28x28, second load (decoded cache)", "seconds": _timed(lambda: load(folder))},
            {"what": f"CSV {n_rows} x 50", "seconds": _timed(lambda: load(csv))},
        ]
    text = format_table("own_data: loading --data sources (s)", ["what", "seconds"],
                        [[r["what"], f"{r['seconds']:.2f}"] for r in rows])
    return {"rows": rows}, text
