"""Section 5's manifold pictures on the 2-D toy set (``python -m experiments.toy``).

One small command-line run (DAE, ICRST p=1 and standard, a few seconds each)
feeds every check: the paper's claims with numbers (Figs. 2-4, eq. 8), the
files' names and shapes, and the one-line errors.
"""

import json

import numpy as np
import pytest

from experiments import toy

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PER_CLASS = 500


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    argv = ["--out", str(out), "--per-class", str(PER_CLASS), "--epochs", "200", "--quiet"]
    assert toy.main(argv) == 0
    with np.load(out / "vector_field.npz") as z:
        arrays = dict(z)
    return out, arrays, json.loads((out / "summary.json").read_text())


def test_icrst_reconstructions_collapse_to_class_means(run):
    """Fig. 2 / eq. 8: ICRST maps each class onto its mean; the DAE keeps the manifold."""
    _, a, s = run
    points, labels, means = a["points"], a["labels"], a["class_means"]
    spread = a["dist_to_mean_points"]  # how far the points themselves lie from their mean
    dae, icrst = a["dist_to_mean_dae"], a["dist_to_mean_icrst"]
    # The npz numbers are what they say they are.
    np.testing.assert_allclose(icrst, toy.distance_to_class_mean(a["recon_icrst"], labels, means), rtol=1e-6)
    np.testing.assert_allclose(spread, toy.distance_to_class_mean(points, labels, means), rtol=1e-6)
    assert s["per_model"]["icrst"]["dist_to_mean"] == pytest.approx(icrst.tolist())
    for c in range(len(means)):
        # ICRST's reconstructions lie much nearer their own class mean than the DAE's...
        assert icrst[c] < 0.3 * dae[c], (c, icrst, dae)
        assert icrst[c] < 0.25 * spread[c], (c, icrst, spread)
        # ...and the DAE's (and the standard AE's) keep most of the class's spread.
        assert dae[c] > 0.6 * spread[c], (c, dae, spread)
        assert a["dist_to_mean_standard"][c] > 0.8 * spread[c]
    # The DAE reconstructs each point near itself; ICRST does not.
    dae_to_point = np.linalg.norm(a["recon_dae"] - points, axis=1).mean()
    icrst_to_point = np.linalg.norm(a["recon_icrst"] - points, axis=1).mean()
    assert dae_to_point < 0.35 * spread.mean(), (dae_to_point, spread)
    assert icrst_to_point > 0.8 * spread.mean(), (icrst_to_point, spread)
    # The mean reconstruction of each class is its class mean (eq. 8) under ICRST.
    for i, c in enumerate(np.unique(labels)):
        gap = np.linalg.norm(a["recon_icrst"][labels == c].mean(0) - means[i])
        assert gap < 0.05, (c, gap)


def test_report_is_the_summarys_table(run):
    """report.md is written from summary.json by the code the quoted table of docs/toy.md uses:
    a row per model with its per-class distances, in the summary's order."""
    from icrst_jax.reporting.quoted import report_of

    out, a, s = run
    report = (out / "report.md").read_text()
    assert report == report_of(s)
    row = next(line for line in report.splitlines() if line.startswith("| ICRST p=1"))
    assert row.split(" | ")[1:] == [f"{v:.3f}" for v in a["dist_to_mean_icrst"][:-1]] + [
        f"{a['dist_to_mean_icrst'][-1]:.3f} |"]
    labels = [line.split(":")[0] for line in report.splitlines() if line.startswith("| ") and ":" in line]
    assert labels == ["| DAE", "| ICRST p=1", "| standard AE"]


def test_far_fields_point_inward_and_agree(run):
    """Figs. 3a / 4a: from afar both models are sinks into the data, and alike."""
    _, a, s = run
    grid, far = a["grid"], a["grid_far"]
    lo, hi = a["points"].min(0), a["points"].max(0)
    centre = (lo + hi) / 2
    ring = toy.outer_ring(grid[far], centre)
    assert ring.sum() == 4 * (toy.ToyConfig().far_steps - 1)
    ring_points = grid[far][ring]
    # The far ring lies well outside the data.
    assert np.all(np.any((ring_points < lo - 0.5) | (ring_points > hi + 0.5), axis=1))
    data_centre = a["points"].mean(0)
    bound = s["far_ring_cosine_sigmoid_bound"]
    for m in ("dae", "icrst"):
        field = a[f"field_{m}"][far][ring]
        cos = toy.mean_cosine(field, ring_points, data_centre)
        assert cos == pytest.approx(s["per_model"][m]["far_ring_cosine"], abs=1e-6)
        # Inward; and more so than the sigmoid's [0, 1] range alone forces.
        assert cos > 0.9 and cos > bound + 0.05, (m, cos, bound)
        # The far points land on the data, not anywhere in the sigmoid's square.
        landing = toy.nearest_distance(ring_points + field, a["points"]).mean()
        assert landing < 0.6 * s["unit_square_landing"], (m, landing, s["unit_square_landing"])
    # "From afar the two models act in almost equal ways."
    assert toy.pairwise_cosine(a["field_dae"][far][ring], a["field_icrst"][far][ring]) > 0.85


def test_files_names_and_shapes(run):
    out, a, s = run
    n, c = 3 * PER_CLASS, 3
    assert (out / "vector_field.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (out / "vector_field.png").stat().st_size < 300_000
    required = ["points", "labels", "class_means", "recon_dae", "recon_icrst", "grid", "field_dae", "field_icrst",
                "recon_standard", "field_standard"]
    assert set(required) <= set(a)
    g = a["grid"].shape[0]
    assert a["points"].shape == (n, 2) and a["labels"].shape == (n,)
    assert a["class_means"].shape == (c, 2)
    np.testing.assert_allclose(
        a["class_means"], [a["points"][a["labels"] == k].mean(0) for k in np.unique(a["labels"])], rtol=1e-5
    )
    for m in ("dae", "icrst", "standard"):
        assert a[f"recon_{m}"].shape == (n, 2) and a[f"field_{m}"].shape == (g, 2)
        assert a[f"dist_to_mean_{m}"].shape == (c,)
        assert np.all((a[f"recon_{m}"] > 0) & (a[f"recon_{m}"] < 1))  # sigmoid outputs
        # The field is f(g(x)) - x: on the grid, x + field is a reconstruction, in (0, 1).
        assert np.all((a["grid"] + a[f"field_{m}"] > -1e-6) & (a["grid"] + a[f"field_{m}"] < 1 + 1e-6))
    # Targets in [0, 1] with room to spare; the far grid reaches well beyond them.
    assert a["points"].min() > 0.05 and a["points"].max() < 0.95
    assert a["grid"][a["grid_far"]].min() < -0.5 and a["grid"][a["grid_far"]].max() > 1.5
    close = a["grid"][~a["grid_far"]]
    np.testing.assert_allclose(close.min(0), a["points"].min(0), atol=1e-6)
    np.testing.assert_allclose(close.max(0), a["points"].max(0), atol=1e-6)
    assert s["models"] == ["dae", "icrst", "standard"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--classes", "5"], "invalid choice"),
        (["--lr", "0"], "learning_rate must be > 0"),
        (["--far", "0.5"], "far must be > 1"),
        (["--latent-size", "0"], "latent_size must be"),
        (["--epochs", "x"], "invalid int value"),
    ],
)
def test_errors_are_one_line(argv, message, capsys, tmp_path):
    try:
        code = toy.main(["--out", str(tmp_path / "never"), *argv])
    except SystemExit as e:  # argparse's errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert not (tmp_path / "never").exists()


def test_missing_out_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        toy.main([])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: the following arguments are required: --out")


def test_toy_data_lies_on_separate_arcs():
    points, labels = toy.make_toy_data(3, 200, noise=0.0, seed=1)
    radius = np.linalg.norm(points - np.asarray(toy.CIRCLE_CENTRE), axis=1)
    np.testing.assert_allclose(radius, toy.CIRCLE_RADIUS, rtol=1e-5)
    angles = np.degrees(np.arctan2(*(points - 0.5).T[::-1])) % 360
    for c in range(3):
        start = (toy.FIRST_ARC_DEG + c * (toy.ARC_SPAN_DEG + toy.ARC_GAP_DEG)) % 360
        offset = (angles[labels == c] - start) % 360
        assert offset.max() <= toy.ARC_SPAN_DEG + 1e-3
    # Each class mean lies inside the circle, off its own arc.
    means = toy.class_means(points, labels)
    assert np.all(np.linalg.norm(means - 0.5, axis=1) < toy.CIRCLE_RADIUS - 0.02)
