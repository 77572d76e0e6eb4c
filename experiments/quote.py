"""Rewrites (or checks) the quoted result tables of the docs from their committed results.json.

    python -m experiments.quote            # rewrite every stale block of README.md and docs/
    python -m experiments.quote --check    # list the stale blocks; exit 1 if there are any

A quoted block names a results.json and a section of the report written from it
(:mod:`icrst_jax.reporting.quoted`). Exit status: 0 current (or rewritten),
1 stale blocks found by ``--check``, 2 a block that cannot be written (one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from icrst_jax.reporting import quoted


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m experiments.quote", allow_abbrev=False,
                 description="Rewrite the quoted result tables of README.md and docs/ from their results.json.")
    ap.add_argument("files", nargs="*", type=Path, metavar="FILE",
                    help="markdown files [default: README.md and docs/**/*.md under --root]")
    ap.add_argument("--root", type=Path, default=Path("."), help="the project's root [default: .]")
    ap.add_argument("--check", action="store_true", help="only list stale blocks (exit 1 if any)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    docs = args.files or quoted.documents(args.root)
    try:
        if args.check:
            found = quoted.stale(docs)
            for q in found:
                print(f"stale: {q.document}: {q.source.name} \"{q.section}\"")
            return 1 if found else 0
        for doc in docs:
            if n := quoted.rewrite(doc):
                print(f"rewrote {n} quoted table(s) in {doc}")
    except (quoted.QuoteError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
