"""Quoted results: the tables of measured results in the docs, written from a committed results.json.

A quoted table sits in a markdown file between two comments that name a
``results.json`` (relative to the markdown file) and a section of the
``report.md`` that the report code writes from it::

    <!-- quoted: breast_cancer_b64/results.json "Classification: accuracy, raw latents" -->
    | method | seeds | SVM | ... |
    |---|---|---|...|
    ...
    <!-- end quoted -->

A section with several tables takes ``table N`` after its name (the first
by default). The block holds that table as the report code writes it today
(:func:`~icrst_jax.reporting.markdown.render_report` for a grid study,
:func:`~icrst_jax.reporting.latent_sizes.render_latent_sizes` for a latent-size study,
:func:`~icrst_jax.reporting.adaptation.render_adaptation` for an adaptation
study), so a quoted number cannot drift from its results.json or
from the report code: ``python -m experiments.quote`` rewrites the blocks,
``--check`` lists the stale ones, and the test suite runs the check on
README.md and docs/.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from icrst_jax.evaluation.information import upgrade_mi
from icrst_jax.reporting.adaptation import render_adaptation
from icrst_jax.reporting.backends import is_backend_comparison, render_backends
from icrst_jax.reporting.latent_sizes import render_latent_sizes
from icrst_jax.reporting.markdown import render_report
from icrst_jax.reporting.records import StudyResult
from icrst_jax.reporting.toy import is_toy_summary, render_toy

BLOCK = re.compile(
    r'(?P<open><!-- quoted: (?P<source>\S+) "(?P<section>[^"]+)"(?: table (?P<table>\d+))? -->\n)'
    r'(?P<body>.*?)(?P<close><!-- end quoted -->)',
    re.S,
)


class QuoteError(ValueError):
    """A quoted block that cannot be written: its results.json or its section is missing."""


@dataclasses.dataclass(frozen=True)
class Quote:
    """One quoted block of a markdown file: where it points and what it holds now."""

    document: Path
    source: Path
    section: str
    body: str
    table: int = 1


def quotes(document: Path) -> list[Quote]:
    """The quoted blocks of one markdown file, in order."""
    document = Path(document)
    text = document.read_text()
    return [_quote(document, m) for m in BLOCK.finditer(text)]


def _quote(document: Path, m: re.Match) -> Quote:
    return Quote(document, document.parent / m["source"], m["section"], m["body"], int(m["table"] or 1))


def study_from_json(payload: Mapping) -> StudyResult:
    """The :class:`StudyResult` a grid study's results.json describes (what its report reads)."""
    if "records" not in payload or "dataset" not in payload:
        raise QuoteError("not a grid study's results.json (no 'records' or 'dataset')")
    return StudyResult(
        dataset=payload["dataset"],
        metric=payload.get("metric", ""),
        records=payload["records"],
        figures=(),
        data=payload.get("data") or {},
    )


def upgraded(payload: Mapping) -> dict:
    """``payload`` in today's results.json layout (:data:`~icrst_jax.reporting.records.SCHEMA_VERSION`):
    a file of schema 3 or older gets its MI results upgraded (:func:`~icrst_jax.evaluation.information.upgrade_mi`),
    so that its report states the interval it names."""
    if int(payload.get("schema_version", 0)) >= 4:
        return dict(payload)

    def record(r):
        if not isinstance(r, Mapping):
            return r
        r = dict(r)
        if isinstance(r.get("mi"), Mapping):
            r["mi"] = upgrade_mi(r["mi"])
        if isinstance(r.get("trajectory"), list):
            r["trajectory"] = [record(t) for t in r["trajectory"]]
        return r

    return dict(payload, records=[record(r) for r in payload.get("records", [])])


def report_of(payload: Mapping) -> str:
    """The markdown report written from this file: a toy run's ``report.md`` (its summary.json),
    the backends benchmark's table (its bench_evaluation.json), or from a results.json
    (:func:`upgraded` first) an adaptation study's ``report.md``, a latent-size study's
    ``latent_sizes.md`` or a grid study's ``report.md``."""
    if is_toy_summary(payload):
        return render_toy(payload)
    if is_backend_comparison(payload):
        return render_backends(payload)
    payload = upgraded(payload)
    if payload.get("study") == "adaptation":
        return render_adaptation(payload)
    if "latent_sizes" in payload:
        return render_latent_sizes(payload)
    return render_report(study_from_json(payload))


def section_table(report: str, section: str, table: int = 1) -> str:
    """The ``table``-th markdown table (its lines, newline-terminated) under ``## {section}`` in ``report``."""
    lines = report.splitlines()
    heading = f"## {section}"
    if heading not in lines:
        known = [line[3:] for line in lines if line.startswith("## ")]
        raise QuoteError(f"no section {section!r}; the report has: {', '.join(map(repr, known))}")
    tables, current = [], []
    for line in lines[lines.index(heading) + 1:] + [""]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    if not 1 <= table <= len(tables):
        raise QuoteError(f"section {section!r} has {len(tables)} table(s), not a table {table}")
    return "\n".join(tables[table - 1]) + "\n"


def render(quote: Quote, _reports: dict | None = None) -> str:
    """What the block should hold: the section's table of the report written from its results.json."""
    reports = {} if _reports is None else _reports
    source = quote.source.resolve()
    if source not in reports:
        if not source.is_file():
            raise QuoteError(f"{quote.document}: {quote.source} does not exist")
        reports[source] = report_of(json.loads(source.read_text()))
    try:
        return section_table(reports[source], quote.section, quote.table)
    except QuoteError as e:
        raise QuoteError(f"{quote.document}: {quote.source}: {e}") from None


def stale(documents: Iterable[Path]) -> list[Quote]:
    """The quoted blocks whose table differs from what the report code writes today."""
    reports: dict = {}
    return [q for d in documents for q in quotes(d) if q.body != render(q, reports)]


def rewrite(document: Path) -> int:
    """Rewrites the quoted blocks of one markdown file; returns how many changed."""
    document = Path(document)
    text, reports, changed = document.read_text(), {}, 0

    def fill(m: re.Match) -> str:
        nonlocal changed
        body = render(_quote(document, m), reports)
        changed += body != m["body"]
        return m["open"] + body + m["close"]

    new = BLOCK.sub(fill, text)
    if changed:
        document.write_text(new)
    return changed


def documents(root: Path) -> list[Path]:
    """The markdown files whose quoted tables are kept current: README.md and docs/."""
    root = Path(root)
    return [p for p in [root / "README.md", *sorted((root / "docs").rglob("*.md"))] if p.is_file()]
