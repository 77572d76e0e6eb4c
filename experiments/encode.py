"""A study's trained encoder applied to new samples.

    python -m experiments.encode runs/wine-1a2b3c4d --mode icrst --p 1 --seed 0 --data new.csv --out latents.npz

Every sample of ``--data`` is encoded in its order (a table's rows, an
``.npz``'s ``x`` then ``x_test``, an image folder's files by class and name,
a TFDS name's train then test split; no split) with the stored preprocessing; ``--out`` gets ``features`` and, when
the source has them, ``labels``. Exit status: 0 done, 2 bad input (one line,
nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m experiments.encode",
                 description="Encode new samples with a study's trained encoder (its folder holds everything needed).")
    ap.add_argument("run_dir", metavar="RUN_DIR", help="the study's folder")
    ap.add_argument("--mode", default="icrst", help="the grid point's training mode [default: icrst]")
    ap.add_argument("--p", type=float, default=1.0, help="the grid point's p [default: 1]")
    ap.add_argument("--seed", type=int, default=0, help="the grid point's seed [default: 0]")
    ap.add_argument("--data", required=True, metavar="SOURCE",
                    help="samples to encode: a .csv/.tsv table, an .npz/.npy array file, an image folder or "
                         "tfds:NAME (prepared under --data-dir)")
    ap.add_argument("--label-column", metavar="NAME", default=None, help="a table's label column")
    ap.add_argument("--data-dir", default=None, help="where decoded image folders are cached and TFDS data is prepared")
    ap.add_argument("--out", required=True, metavar="FILE", help="the .npz to write (features, labels)")
    return ap


def read_all(source: str, label_column, data_dir, image_size: int | None):
    """Every sample of ``source`` in its order, as the study read it, and its labels (or None)."""
    from icrst_jax.data import custom, image_folder, tables
    from icrst_jax.data.download import default_data_dir

    fmt, path = custom._form(source)
    if fmt == "tfds":  # prepared array_record data under --data-dir (TFDS's default dir without it)
        read = custom.read_tfds(source, data_dir)
        raw = read.raw
        x, y = (raw.x, raw.y) if raw.x_test is None else (np.concatenate([raw.x, raw.x_test]),
                                                           np.concatenate([raw.y, raw.y_test]))
        return x, (np.array(read.class_names)[y] if read.class_names else y)
    if fmt in ("csv", "tsv"):
        raw = tables.read_table(path, label_column)
        return raw.x, raw.y
    if fmt in ("npz", "npy"):
        raw = tables.read_arrays(path)
        if raw.x_test is None:
            return raw.x, raw.y
        return np.concatenate([raw.x, raw.x_test]), np.concatenate([raw.y, raw.y_test])
    cache = Path(data_dir).expanduser() if data_dir else default_data_dir()
    folder, _ = image_folder.load_folder(path, image_size, cache)  # decoded, not cached: nothing written
    return folder.x, np.array(folder.classes)[folder.y]


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        out = Path(args.out)
        if not out.parent.is_dir():
            raise ValueError(f"--out {args.out}: the folder {out.parent} does not exist")
        from icrst_jax.encoder import load_encoder

        enc = load_encoder(args.run_dir, args.mode, args.p, args.seed)
        side = enc.sample_shape[0] if len(enc.sample_shape) == 3 else None
        x, y = read_all(args.data, args.label_column, args.data_dir, side)
        features = enc.encode(x)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    arrays = {"features": features} if y is None else {"features": features, "labels": y}
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}: {features.shape[0]} samples x {features.shape[1]} features", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
