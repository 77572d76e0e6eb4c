"""Figures, JSON and report.md: files are valid, paper numbers are the paper's."""

import json
import re

import numpy as np
import pytest

from icrst_jax.config import TrainConfig
from icrst_jax.reporting import (
    PAPER_DATASETS,
    PAPER_RESULTS,
    curves_from_records,
    paper_values,
    plot_accuracy_vs_p,
    plot_tsne,
    primary_metric,
    StudyResult,
    render_report,
    to_jsonable,
    write_results_json,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    import matplotlib.image as mpimg

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100 and img.shape[2] in (3, 4)
    # Not a blank canvas: something was drawn.
    assert img[..., :3].std() > 0.01
    return img


def _summary(mean, low, high, n=10):
    return {"mean": mean, "low": low, "high": high, "std": (high - low) / 4, "n": n}


def _record(mode, p, acc, mi=None, seeds=(0,)):
    classifiers = {
        name: {
            "accuracy": _summary(acc + d, acc + d - 0.02, acc + d + 0.02),
            "f1_macro": _summary(acc + d - 0.05, acc + d - 0.08, acc + d - 0.02),
            "convergence_warnings": 0,
        }
        for name, d in (("svm", 0.01), ("rf", 0.0), ("mlp", 0.02), ("nb", -0.1))
    }
    rec = {"mode": mode, "p": p, "seeds": list(seeds), "classifiers": classifiers, "mi": None}
    if mi is not None:
        rec["mi"] = {"mi": mi, "low": mi - 0.01, "high": mi + 0.03, "n_samples": 150, "k": 20,
                     "bins": 16, "unit": "nats", "per_sample": np.full(150, mi)}
    return rec


# --- paper numbers ---------------------------------------------------------


def test_paper_results_support_the_papers_conclusions():
    """The transcribed tables agree with what the paper concludes from them, so
    a slip (swapped rows or columns, a value in the wrong table) fails here.

    * Tables 1 and 3 each have a Standard row of the same training, run twice:
      the two agree to within 0.02 on every data set.
    * Section 8: ICRST beats Standard on every data set (Table 1).
    * Section 7: TRST improves the MLP score (Table 3) exactly where it raises
      the mutual information (Table 2).
    """
    t1, t2, t3 = (PAPER_RESULTS[t]["values"] for t in ("table1", "table2", "table3"))
    assert [PAPER_RESULTS[t]["quantity"] for t in ("table1", "table2", "table3")] == ["mlp", "mi", "mlp"]
    assert set(PAPER_DATASETS) == set(t1) == set(t3) and set(t2) == set(t3) - {"breast_cancer"}
    assert all(set(v) == {"standard", "icrst"} for v in t1.values())
    assert all(set(v) == {"standard", "trst"} for v in list(t2.values()) + list(t3.values()))
    for table in (t1, t2, t3):
        for row in table.values():
            for mean, pm in row.values():
                assert 0 < mean < 1 and 0 <= pm <= 0.05
    for d in t1:
        assert abs(t1[d]["standard"][0] - t3[d]["standard"][0]) <= 0.02 + 1e-9, d
        assert t1[d]["icrst"][0] > t1[d]["standard"][0], d
    for d in t2:
        assert (t2[d]["trst"][0] > t2[d]["standard"][0]) == (t3[d]["trst"][0] > t3[d]["standard"][0]), d
    # The look-up the report uses: both MLP tables for Standard, the MI table on request.
    assert paper_values("mnist", "standard") == [("table1", *t1["mnist"]["standard"]), ("table3", *t3["mnist"]["standard"])]
    assert paper_values("cifar10", "trst", "mi") == [("table2", *t2["cifar10"]["trst"])]
    assert paper_values("breast_cancer", "trst", "mi") == []
    assert paper_values("digits", "icrst") == []
    assert primary_metric("caltech101") == "f1_macro" and primary_metric("mnist") == "accuracy"


# --- JSON ------------------------------------------------------------------


def test_results_json_round_trips_numpy_values(tmp_path):
    payload = {
        "folds": np.array([0.9, 0.95], dtype=np.float32),
        "n": np.int64(10),
        "flag": np.bool_(True),
        "grid": np.arange(6).reshape(2, 3),
        "pair": (1, 2.5),
        3: "int key",
        "nan": float("nan"),
        "config": TrainConfig(mode="icrst", p=0.5),
        "where": tmp_path,
    }
    path = write_results_json(tmp_path / "sub" / "results.json", payload)
    back = json.loads(path.read_text())
    assert back["folds"] == pytest.approx([0.9, 0.95])
    assert back["n"] == 10 and isinstance(back["n"], int)
    assert back["flag"] is True
    assert back["grid"] == [[0, 1, 2], [3, 4, 5]]
    assert back["pair"] == [1, 2.5]
    assert back["3"] == "int key"
    assert back["nan"] is None  # strict JSON
    assert TrainConfig.from_dict(back["config"]) == TrainConfig(mode="icrst", p=0.5)
    assert back["where"] == str(tmp_path)
    # Atomic write leaves no temporary file behind; overwriting works.
    write_results_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]
    with pytest.raises(TypeError):
        to_jsonable({"bad": object()})


# --- figures ---------------------------------------------------------------


def test_curves_from_records_places_standard_at_p0():
    recs = [_record("icrst", 1.0, 0.9), _record("standard", 1.0, 0.8), _record("icrst", 0.5, 0.85),
            _record("trst", 1.0, 0.5)]
    curves = curves_from_records(recs, metric="accuracy", mode="icrst")
    assert list(curves) == ["svm", "rf", "mlp", "nb"]
    assert curves["rf"] == [(0.0, 0.8, 0.78, 0.8200000000000001), (0.5, 0.85, 0.83, 0.87), (1.0, 0.9, 0.88, 0.92)]
    trst = curves_from_records(recs, mode="trst")
    assert [p for p, *_ in trst["mlp"]] == [0.0, 1.0]
    # A record without p (or p None) counts as pure ICRST, p = 1.
    nop = _record("icrst", None, 0.95)
    assert curves_from_records([_record("standard", None, 0.8), nop])["nb"][-1][0] == 1.0
    with pytest.raises(ValueError, match="two icrst records"):
        curves_from_records(recs + [_record("icrst", 0.5, 0.7)])


def test_plot_accuracy_vs_p_writes_png(tmp_path):
    recs = [_record("standard", 1.0, 0.8), _record("icrst", 0.5, 0.85), _record("icrst", 1.0, 0.9)]
    path = plot_accuracy_vs_p(recs, tmp_path / "figs" / "acc_vs_p.png", title="MNIST")
    assert path.exists() and path.stat().st_size > 1000
    _assert_png(path)
    direct = plot_accuracy_vs_p({"mlp": [(0.0, 0.85, 0.83, 0.87), (1.0, 0.97, 0.96, 0.98)]},
                                tmp_path / "direct.png", metric="f1_macro")
    _assert_png(direct)
    with pytest.raises(ValueError):
        plot_accuracy_vs_p([], tmp_path / "empty.png")


def test_plot_tsne_panels_and_small_inputs(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 25)
    z_std = rng.normal(size=(75, 8))
    z_icrst = z_std + 6.0 * np.eye(8)[y]
    path = plot_tsne({"Standard": (z_std, y), "ICRST p=1": (z_icrst, y)}, tmp_path / "tsne.png",
                     max_points=60, max_iter=250, title="t-SNE")
    img = _assert_png(path)
    assert img.shape[1] > img.shape[0]  # two panels side by side
    # Many classes: colorbar instead of legend; tiny panels: perplexity guarded.
    many = plot_tsne({"Caltech-like": (rng.normal(size=(60, 4)), np.arange(60) % 30)},
                     tmp_path / "many.png", max_iter=250)
    _assert_png(many)
    tiny = plot_tsne({"tiny": (rng.normal(size=(5, 3)), np.array([0, 1, 0, 1, 0]))},
                     tmp_path / "tiny.png", max_iter=250)
    _assert_png(tiny)
    with pytest.raises(ValueError, match="at least 4 points"):
        plot_tsne({"x": (rng.normal(size=(3, 2)), np.arange(3))}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="features"):
        plot_tsne({"x": (rng.normal(size=(10, 2)), np.arange(9))}, tmp_path / "x.png")


# --- report.md -------------------------------------------------------------


def test_report_has_paper_column_for_paper_dataset(tmp_path):
    recs = [_record("icrst", 1.0, 0.9, mi=0.41), _record("standard", 1.0, 0.8, mi=0.38, seeds=(0, 1)),
            _record("icrst", 0.5, 0.85), _record("dae", None, 0.82)]
    recs[-1]["dae_sigma"] = 0.5
    fig = plot_accuracy_vs_p(recs, tmp_path / "figs" / "p.png")
    text = render_report(StudyResult(dataset="mnist", metric="accuracy", records=recs,
                                     figures=[fig.relative_to(tmp_path).as_posix()]))
    assert "# Results: MNIST" in text
    assert "paper MLP (accuracy, the paper's ±)" in text
    assert "0.85 ± 0.02 (T1) / 0.86 ± 0.02 (T3)" in text  # Standard row
    assert "0.97 ± 0.01 (T1)" in text  # ICRST p=1 row
    assert "paper MI (Table 2)" in text and "0.40 ± 0.01 (T2)" in text
    # Rows sorted Standard, ICRST p=0.5, ICRST p=1, DAE; ours formatted mean [low, high], no ± beside.
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "[0." in ln]
    labels = [ln.split("|")[1].strip() for ln in rows]
    assert labels[:4] == ["Standard", "ICRST (p=0.5)", "ICRST (p=1)", "DAE (σ=0.5)"]
    assert "| 0.820 [0.800, 0.840] |" in rows[0]  # MLP of the Standard record
    assert not any(re.search(r"± [0-9.]+ \[", ln) for ln in text.splitlines())
    icrst_half = [ln for ln in rows if ln.startswith("| ICRST (p=0.5)")][0]
    assert icrst_half.rstrip(" |").endswith("—")  # no paper value for p = 0.5
    assert "0.380 [0.370, 0.410]" in text  # MI cell
    assert "## Secondary metric: macro F1" in text
    assert "![p](figs/p.png)" in text


def test_report_sets_the_interval_of_the_mean_beside_the_single_folds():
    """The "How wide" section: the headline classifier's interval of the mean, its half-width and
    the single folds' spread (fold_low/fold_high), raw latents, the paper's ± beside."""
    recs = [_record("standard", 1.0, 0.8), _record("icrst", 1.0, 0.9)]
    for r, (lo, hi) in zip(recs, [(0.61, 0.97), (0.72, 1.0)]):
        r["classifiers"]["mlp"]["accuracy"].update(fold_low=lo, fold_high=hi)
    text = render_report(StudyResult(dataset="breast_cancer", metric="accuracy", records=recs))
    section = text.split("## How wide: the interval of the mean and the single folds (MLP, raw latents)")[1]
    rows = [ln for ln in section.split("\n## ")[0].splitlines() if ln.startswith("| ") and "[" in ln]
    assert rows[0] == "| Standard | 0.820 | [0.800, 0.840] | 0.020 | [0.610, 0.970] | 0.96 ± 0.02 (T1) / 0.96 ± 0.03 (T3) |"
    assert rows[1] == "| ICRST (p=1) | 0.920 | [0.900, 0.940] | 0.020 | [0.720, 1.000] | 0.97 ± 0.02 (T1) |"
    # Older files without the single folds' spread get no section rather than a half-empty one.
    for r in recs:
        del r["classifiers"]["mlp"]["accuracy"]["fold_low"]
    assert "## How wide" not in render_report(StudyResult(dataset="breast_cancer", metric="accuracy", records=recs))


def test_report_without_paper_numbers_for_digits():
    recs = [_record("standard", 1.0, 0.8), _record("trst", 1.0, 0.7)]
    text = render_report(StudyResult(dataset="digits", metric="accuracy", records=recs))
    assert "paper MLP" not in text and "paper MI" not in text and "(T1)" not in text
    assert "The paper reports no numbers for `digits`" in text
    assert "TRST (p=1)" in text
    assert "Mutual information" not in text  # no record has MI


def test_caltech_report_uses_macro_f1_and_table_values():
    recs = [_record("standard", 1.0, 0.3), _record("icrst", 1.0, 0.45)]
    text = render_report(StudyResult(dataset="caltech101", metric=primary_metric("caltech101"), records=recs))
    assert text.index("## Classification: macro F1") < text.index("## Secondary metric: accuracy")
    assert "paper MLP (macro F1, the paper's ±)" in text and "0.40 ± 0.01 (T1)" in text
    # Asking for accuracy on Caltech101: no paper column (the paper's number is F1).
    text = render_report(StudyResult(dataset="caltech101", metric="accuracy", records=recs))
    assert "paper MLP" not in text and "Paper column omitted" in text
    # The header and every row have the same number of cells.
    for table in re.split(r"\n\n", text):
        lines = [ln for ln in table.splitlines() if ln.startswith("|")]
        assert len({ln.count("|") for ln in lines}) <= 1


def test_report_says_which_classifiers_were_fitted_once_for_both_scalings():
    """Under eval.backend=auto the forest's standardised entry is its raw fit (``fitted_on``):
    the side-by-side table says so; where every entry saw its own scaling it says nothing."""
    def with_scalings(rf_fitted_on):
        rec = _record("standard", None, 0.8)
        for entry in rec["classifiers"].values():
            entry.update(scaling="none", fitted_on="none")
        rec["other_scalings"] = {"standardised": {
            name: {**entry, "scaling": "standard", "fitted_on": rf_fitted_on if name == "rf" else "standard"}
            for name, entry in rec["classifiers"].items()}}
        return render_report(StudyResult(dataset="digits", metric="accuracy", records=[rec]))

    note = "Random Forest: fitted once per latent set, on the raw latents, and reported under each scaling"
    assert "## Side by side" in with_scalings("none") and note in with_scalings("none")
    assert note not in with_scalings("standardised")


def test_what_this_shows_is_written_from_the_numbers():
    """The paragraph names each classifier's best mode, says whether its interval overlaps the
    next, whether the untrained encoder is higher, the gap to the paper and the settings that differ."""
    recs = [_record("untrained", None, 0.95), _record("standard", None, 0.80), _record("icrst", 1.0, 0.90),
            _record("trst", 1.0, 0.89)]
    config = {"train": {"epochs": 100, "learning_rate": 1e-3, "model": {"name": "mlp"}},
              "p_values": [0.0, 1.0], "seeds": [0, 1, 2]}
    text = render_report(StudyResult(dataset="breast_cancer", metric="accuracy", records=recs, config=config,
                                     batch_size=64))
    para = text.split("## What this shows\n\n")[1].split("\n")[0]
    assert "MLP: best ICRST (p=1) 0.920, its interval overlaps that of TRST (p=1) (0.910)" in para
    assert "the untrained encoder is higher still (0.970, intervals apart)" in para
    assert "ICRST (p=1) -0.050 (T1 0.97)" in para and "Standard -0.140 (T1 0.96)" in para
    assert "batch 64 (paper 512); 100 epochs (paper 50); p in 0, 1" in para and "3 seeds pooled" in para
    recs[3] = _record("trst", 1.0, 0.60)  # far below: ICRST's interval is clear of the next
    text = render_report(StudyResult(dataset="breast_cancer", metric="accuracy", records=recs))
    assert "its interval clear of the next (Standard 0.820)" in text
