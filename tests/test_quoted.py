"""The quoted result tables of README.md and docs/ are what the report code writes from their results.json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from experiments import quote
from icrst_jax.reporting import quoted
from icrst_jax.reporting.markdown import render_report

ROOT = Path(__file__).resolve().parents[1]


def test_every_quoted_table_is_what_the_report_code_writes_from_its_results_json():
    docs = quoted.documents(ROOT)
    blocks = [q for d in docs for q in quoted.quotes(d)]
    assert len(blocks) >= 3, "the docs quote their measured tables"
    for q in blocks:
        # a study's results.json, the toy run's summary.json or the backends benchmark's file
        assert q.source.name in ("results.json", "summary.json", "bench_evaluation.json") and q.source.is_file(), q
    assert [f"{q.document.name}: {q.section}" for q in quoted.stale(docs)] == []


def _doc_with_a_block(tmp_path: Path) -> tuple[Path, str]:
    """A markdown file quoting the Breast Cancer study's raw table, and that table."""
    source = ROOT / "docs" / "results" / "breast_cancer_paper" / "results.json"
    shutil.copy(source, tmp_path / "results.json")
    report = render_report(quoted.study_from_json(json.loads(source.read_text())))
    section = next(line[3:] for line in report.splitlines() if line.startswith("## Classification"))
    table = quoted.section_table(report, section)
    doc = tmp_path / "page.md"
    doc.write_text(f'# Page\n\ntext\n\n<!-- quoted: results.json "{section}" -->\n{table}<!-- end quoted -->\n\nmore\n')
    return doc, table


def test_a_changed_number_is_found_and_rewritten(tmp_path, capsys):
    doc, table = _doc_with_a_block(tmp_path)
    assert quote.main(["--check", str(doc)]) == 0
    cell = table.splitlines()[2].split(" | ")[2]  # the first row's first classifier cell
    doc.write_text(doc.read_text().replace(cell, cell.replace("0.", "0.1", 1), 1))
    assert quote.main(["--check", str(doc)]) == 1
    assert "stale: " in capsys.readouterr().out
    assert quote.main([str(doc)]) == 0
    assert table in doc.read_text() and doc.read_text().endswith("<!-- end quoted -->\n\nmore\n")
    assert quote.main(["--check", str(doc)]) == 0


def test_a_block_without_its_source_or_section_is_one_line_exit_2(tmp_path, capsys):
    doc, _ = _doc_with_a_block(tmp_path)
    text = doc.read_text()
    doc.write_text(text.replace('"Classification', '"Classificaton'))
    assert quote.main(["--check", str(doc)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no section 'Classificaton" in err
    doc.write_text(text.replace("quoted: results.json", "quoted: gone/results.json"))
    assert quote.main([str(doc)]) == 2
    assert "gone/results.json does not exist" in capsys.readouterr().err


def _adaptation_payload() -> dict:
    """A small adaptation study's results.json payload: two modes, two seeds, one refresh each."""
    def s(mean):
        return {"mean": mean, "low": mean - 0.01, "high": mean + 0.02, "fold_low": 0.0, "fold_high": 1.0,
                "std": 0.01, "n": 2}

    def pooled(base):
        return {"transfer/svm": s(base), "target_only/svm": s(base + 0.5), "domain_accuracy": s(0.99),
                "target_purity": s(base + 0.3)}

    refresh = {"epoch": 18, "threshold": 0.9, "paired_share": 0.75, "pseudo_label_accuracy": 0.125}
    return {
        "study": "adaptation", "adaptation": {"source": "digits", "target": "mnist5k", "image_size": [16, 16, 1]},
        "config": {"seeds": [0, 1]}, "classifiers": ["svm"],
        "rows": [{"mode": "standard", "p": 0.0, "pooled": pooled(0.154)},
                 {"mode": "cross_icrst", "p": 0.5, "pooled": pooled(0.201), "paired_share_last": 0.75}],
        "records": [{"mode": "cross_icrst", "p": 0.5, "seed": seed, "refreshes": [refresh]} for seed in (0, 1)],
        "untrained": [], "compile_count": 1, "train_seconds": 12.0,
    }


def test_an_adaptation_study_is_quoted_from_the_report_it_writes(tmp_path):
    """An adaptation study's results.json renders with the study's own report writer; a changed cell is stale."""
    from icrst_jax import adaptation

    payload = _adaptation_payload()
    (tmp_path / "results.json").write_text(json.dumps(payload))
    report = quoted.report_of(payload)
    assert report == adaptation.render_adaptation(payload)  # what the study writes to its report.md
    table = quoted.section_table(report, "Transfer to the target domain")
    assert "| cross_icrst p=0.5 | 0.201 [0.191, 0.221] |" in table
    last = quoted.section_table(report, "Pseudo-labels at the last refresh (cross_icrst)")
    assert "| cross_icrst p=0.5 | 0, 1 | 18 | 0.750 [0.750, 0.750] | 0.125 [0.125, 0.125] |" in last
    doc = tmp_path / "page.md"
    doc.write_text(f'<!-- quoted: results.json "Transfer to the target domain" -->\n{table}<!-- end quoted -->\n')
    assert quote.main(["--check", str(doc)]) == 0
    doc.write_text(doc.read_text().replace("0.201 [", "0.210 [", 1))
    assert quote.main(["--check", str(doc)]) == 1
    assert quote.main([str(doc)]) == 0 and table in doc.read_text()


def test_the_readme_glance_quotes_only_numbers_of_the_page_it_links():
    """Each results-at-a-glance row's numbers appear on the page it links to."""
    readme = (ROOT / "README.md").read_text()
    glance = readme.split("## Results at a glance", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in glance.splitlines() if line.startswith("| ") and "](docs/results/" in line]
    assert len(rows) >= 3
    for row in rows:
        page = ROOT / re.search(r"\]\((docs/results/[^)#]+)\)", row)[1]
        numbers = re.findall(r"(?<![\d.])\d\.\d{2,3}(?!\d)", row)
        assert numbers, row
        text = page.read_text()
        assert [n for n in numbers if n not in text] == [], f"{page.name}: {row}"


def test_a_section_with_several_tables_is_quoted_by_number():
    report = "# r\n\n## A\n\ntext\n\n| a |\n|---|\n| 1 |\n\n| b |\n|---|\n| 2 |\n\n## B\n\n| c |\n|---|\n| 3 |\n"
    assert quoted.section_table(report, "A") == "| a |\n|---|\n| 1 |\n"
    assert quoted.section_table(report, "A", 2) == "| b |\n|---|\n| 2 |\n"
    assert quoted.section_table(report, "B") == "| c |\n|---|\n| 3 |\n"
    with pytest.raises(quoted.QuoteError, match="has 2 table"):
        quoted.section_table(report, "A", 3)
