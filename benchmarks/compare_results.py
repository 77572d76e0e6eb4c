"""Two studies' results.json compared number by number, timings aside.

    python -m benchmarks.compare_results BEFORE/results.json AFTER/results.json [--tol 1e-6] [--only mean]

A change that does not mean to change results (a refactor, a speed-up) must
leave every number a study reports where it was. The reference study

    python -m experiments.run --dataset breast_cancer --mode all --p-grid 0.5,1 --seeds 0 1 \\
        --epochs 30 --batch-size 64 --classifiers svm rf mlp nb --no-tsne

keeps its accuracy means equal to 1e-6 through every such change; run it (and
``configs/cpu_breast_cancer.py``, ``configs/cpu_digits.py``) before and after,
and compare here. Every number of the two payloads is compared, found by its
path; wall-clock fields (``timing``, ``*_s``, ``*seconds``, ``history[*].seconds``,
``fit_time``, ``score_time``) and the environment (``versions``) are left out.
Names that results.json renamed between schema versions are read under their
current name (the in-fold
scaling ``standard`` is ``standardised`` from schema version 2).

``--only KEY ...`` compares only the numbers stored under those keys (``--only mean``:
the accuracy means, which a change of the interval's definition leaves alone).

Exit status 0 when every number agrees within ``--tol`` (absolute) and both
hold the same numbers, 1 otherwise (each difference listed, at most 40).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

SKIPPED_KEYS = {"timing", "versions", "wall_seconds", "seconds", "compilation_cache_dir", "schema_version",
                "fit_time", "score_time"}
RENAMED = {"standard": "standardised"}  # schema 1 -> 2: the in-fold scaling's name, where it is a key


def numbers(node, path: str = "", *, renamed_keys: bool = False) -> dict[str, float]:
    """``{path: number}`` of every number in a JSON tree, timings left out."""
    out: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SKIPPED_KEYS or key.endswith("_s"):
                continue
            name = RENAMED.get(key, key) if renamed_keys and _is_scaling_key(path) else key
            out.update(numbers(value, f"{path}/{name}", renamed_keys=renamed_keys))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.update(numbers(value, f"{path}[{i}]", renamed_keys=renamed_keys))
    elif isinstance(node, bool) or node is None or isinstance(node, str):
        pass
    elif isinstance(node, (int, float)):
        out[path] = float(node)
    return out


def _is_scaling_key(path: str) -> bool:
    """Keys under ``other_scalings`` name a scaling."""
    return path.endswith("/other_scalings")


def compare(before: dict, after: dict, tol: float, only: tuple[str, ...] = ()) -> list[str]:
    """One line per number that differs by more than ``tol`` or is in only one payload
    (of the numbers stored under a key of ``only``, if given)."""
    a = _kept(numbers(before, renamed_keys=before.get("schema_version", 1) < 2), only)
    b = _kept(numbers(after, renamed_keys=after.get("schema_version", 1) < 2), only)
    lines = [f"only before: {p}" for p in sorted(a.keys() - b.keys())]
    lines += [f"only after: {p}" for p in sorted(b.keys() - a.keys())]
    for p in sorted(a.keys() & b.keys()):
        x, y = a[p], b[p]
        if not (math.isclose(x, y, rel_tol=0.0, abs_tol=tol) or (math.isnan(x) and math.isnan(y))):
            lines.append(f"{p}: {x!r} -> {y!r}")
    return lines


def _kept(found: dict[str, float], only: tuple[str, ...]) -> dict[str, float]:
    return {p: v for p, v in found.items() if not only or p.rsplit("/", 1)[-1] in only}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tol", type=float, default=1e-6, help="absolute tolerance (default 1e-6)")
    parser.add_argument("--only", nargs="+", default=(), metavar="KEY", help="compare only numbers under these keys")
    args = parser.parse_args(argv)
    before, after = (json.loads(p.read_text()) for p in (args.before, args.after))
    diffs = compare(before, after, args.tol, tuple(args.only))
    n = len(_kept(numbers(after, renamed_keys=after.get("schema_version", 1) < 2), tuple(args.only)))
    for line in diffs[:40]:
        print(line)
    print(f"{n} numbers compared: {'all equal' if not diffs else f'{len(diffs)} differ'} (tolerance {args.tol:g})")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
