"""Every figure a study draws has a title, labelled axes and a legend clear of the data.

The figures are caught as they are saved (``save_png``) and checked with what
matplotlib reports of them: titles, axis labels, and the drawn extents of each
legend and of every data point. A planted legend over the data must fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from icrst_jax.reporting import figures


def layout_problems(fig) -> list[str]:
    """What is wrong with a figure's layout: a missing title, an unlabelled axis, a legend over data."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    problems = []
    if not (fig._suptitle and fig._suptitle.get_text()) and not all(ax.get_title() for ax in axes):
        problems.append("no title")
    for ax in axes:
        name = ax.get_title() or "an axes"
        if ax.get_xticks().size and not _labelled(ax, axes, "x"):
            problems.append(f"{name}: no x label")
        if ax.get_yticks().size and not _labelled(ax, axes, "y"):
            problems.append(f"{name}: no y label")
    legends = list(fig.legends) + [ax.get_legend() for ax in axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in axes:
            points = _data_points(ax)
            if any(box.contains(x, y) for x, y in points):
                problems.append(f"a legend covers data of {ax.get_title() or 'an axes'}")
    return problems


def _labelled(ax, axes, which: str) -> bool:
    """An axis with its own label, or shared with a labelled one (shared x below, shared y beside)."""
    get = (lambda a: a.get_xlabel()) if which == "x" else (lambda a: a.get_ylabel())
    if get(ax):
        return True
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    return any(other is not ax and shared.joined(ax, other) and get(other) for other in axes)


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the axes' data: line vertices and scatter points."""
    pts = [line.get_transform().transform(np.column_stack(line.get_data()).astype(float))
           for line in ax.get_lines() if len(line.get_xdata())]
    pts += [c.get_offset_transform().transform(c.get_offsets()) for c in ax.collections
            if len(c.get_offsets()) and c.get_offsets().ndim == 2]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


@pytest.fixture
def caught(monkeypatch):
    """The figures drawn during a test, caught as they are saved."""
    figs = []
    real = figures.save_png

    def save(fig, path):
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(figures, "save_png", save)
    return figs


def _summary(mean, half=0.02):
    return {"mean": mean, "low": mean - half, "high": mean + half}


def _record(mode, p, acc, *, epochs=(0, 5, 10)):
    clfs = {n: {"accuracy": _summary(acc + d)} for n, d in (("svm", 0.0), ("mlp", 0.01), ("nb", -0.05))}
    traj = [{"epoch": e, "scaling": "none", "classifiers": {"mlp": {"accuracy": _summary(0.6 + (acc - 0.6) * e / 10)}},
             "purity": {"purity": 0.5 + 0.03 * e, "chance": 0.5, "k": 5, "per_seed": [0.5, 0.5 + 0.04 * e]},
             "latent_spread": [0.1 + e / 10, 0.2 + e / 10]} for e in epochs]
    return {"mode": mode, "p": p, "seeds": [0, 1], "classifiers": clfs, "trajectory": traj}


RECORDS = [_record("untrained", None, 0.7), _record("standard", 0.0, 0.8), _record("icrst", 0.0, 0.8),
           _record("icrst", 0.5, 0.85), _record("icrst", 1.0, 0.9), _record("trst", 0.0, 0.8),
           _record("trst", 1.0, 0.65)]


def test_study_figures_have_titles_labels_and_a_legend_clear_of_the_data(caught, tmp_path):
    figures.plot_accuracy_vs_p(RECORDS, tmp_path / "p.png", mode="icrst", title="accuracy vs p")
    figures.plot_vs_epochs(RECORDS, tmp_path / "e.png", classifier="mlp", title="along training")
    rng = np.random.default_rng(0)
    emb = [(name, rng.normal(size=(30, 2)), np.repeat([0, 1, 2], 10)) for name in ("Untrained", "ICRST (p=1)")]
    figures.plot_tsne({}, tmp_path / "t.png", embedded=emb, title="t-SNE (seed 0)",
                      class_names=("zero", "one", "two"))
    assert len(caught) == 3
    for fig in caught:
        assert layout_problems(fig) == []
    # Along training, Standard = ICRST p=0 = TRST p=0 is one line with all three names.
    labels = [t.get_text() for t in caught[1].legends[0].get_texts()]
    assert "Standard = ICRST (p=0) = TRST (p=0)" in labels and not any(lab == "ICRST (p=0)" for lab in labels)
    assert "chance (random neighbours)" in labels
    # The accuracy panels share one y range; the t-SNE legend names the classes.
    score_axes = [ax for ax in caught[1].axes if "accuracy" in ax.get_title()]
    assert len({ax.get_ylim() for ax in score_axes}) == 1
    assert [t.get_text() for t in caught[2].legends[0].get_texts()] == ["zero", "one", "two"]
    # The p figure: Standard and untrained as labelled reference bands in every panel.
    p_labels = [t.get_text() for t in caught[0].legends[0].get_texts()]
    assert "Standard (p = 0)" in p_labels and "untrained encoder" in p_labels


def test_a_far_reference_is_named_at_the_panel_edge_not_drawn_into_the_range(caught, tmp_path):
    """An untrained encoder far below the curves (digits: 0.25 against 0.8-0.9) would flatten the
    differences between p values; the range stays on the curves and each panel names its value."""
    far = [_record("untrained", None, 0.25)] + RECORDS[1:]
    figures.plot_accuracy_vs_p(far, tmp_path / "p.png", mode="icrst", title="accuracy vs p")
    fig = caught[-1]
    assert layout_problems(fig) == []
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == 3 and len({ax.get_ylim() for ax in panels}) == 1
    low, high = panels[0].get_ylim()
    assert 0.7 < low < 0.8 < 0.9 < high < 1.0  # the curves 0.75-0.93 and the Standard band, not 0.25
    notes = [[t.get_text() for t in ax.texts] for ax in panels]
    # svm 0.25, mlp 0.26, nb 0.20 (the records' per-classifier offsets), each with its interval.
    assert notes == [["↓ untrained encoder 0.250 [0.230, 0.270]"], ["↓ untrained encoder 0.260 [0.240, 0.280]"],
                     ["↓ untrained encoder 0.200 [0.180, 0.220]"]]
    # Near the curves (the first test's 0.7) the band is drawn as before, with no note.
    figures.plot_accuracy_vs_p(RECORDS, tmp_path / "p2.png", mode="icrst")
    assert not any(ax.texts for ax in caught[-1].axes)


def test_a_short_run_has_whole_epoch_ticks(caught, tmp_path):
    records = [_record("standard", 0.0, 0.8, epochs=(0, 1, 2)), _record("icrst", 1.0, 0.9, epochs=(0, 1, 2))]
    figures.plot_vs_epochs(records, tmp_path / "e.png", classifier="mlp", title="along training")
    (fig,) = caught
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_visible():
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_the_check_fails_on_a_legend_over_the_data_and_a_missing_label(caught, tmp_path):
    fig = figures.new_figure((4, 3))
    ax = fig.subplots()
    x = np.linspace(0, 1, 50)
    ax.plot(x, 0.5 + 0 * x, label="flat")  # through the middle, where a centred legend sits
    ax.set_title("planted")
    ax.set_xlabel("x")
    ax.legend(loc="center")
    problems = layout_problems(fig)
    assert "a legend covers data of planted" in problems and "planted: no y label" in problems
    ax.set_ylabel("y")
    ax.get_legend().remove()
    fig.legend(loc="outside right upper")
    assert layout_problems(fig) == []


def test_the_latent_size_figure_has_a_log_axis_explained_bands_and_the_majority_class(caught, tmp_path,
                                                                                        monkeypatch):
    from icrst_jax import latent_size_study, reporting

    monkeypatch.setattr(reporting, "save_png", figures.save_png)  # caught too
    sizes = (1, 2, 8)
    rows = {(r["mode"], r["p"]): {s: {**r, "classifiers": {n: {"accuracy": _summary(v["accuracy"]["mean"] + 0.01 * s)}
                                                         for n, v in r["classifiers"].items()}} for s in sizes}
            for r in RECORDS if r["p"] in (None, 0.0, 1.0) and r["mode"] in ("untrained", "standard", "icrst")}
    labels = np.array([0] * 63 + [1] * 37)
    np.savez(tmp_path / "latents_untrained_seed0.npz", features=np.zeros((100, 2)), labels=labels)
    majority = latent_size_study.majority_share(tmp_path)
    assert majority == pytest.approx(0.63) and latent_size_study.majority_share(tmp_path / "none") is None
    latent_size_study.plot_vs_latent_size(rows, sizes, ("svm", "nb"), "accuracy", tmp_path / "l.png",
                                          title="latent size", majority=majority)
    (fig,) = caught
    assert layout_problems(fig) == []
    assert all(ax.get_xscale() == "log" and ax.get_xlabel() == "latent size (log scale)" for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2", "8"]
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert "majority class (0.630)" in texts and "Untrained encoder (epoch 0)" in texts
    assert "band: its 95% interval" in legend.get_title().get_text()
    flat = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("majority")]
    assert len(flat) == 1 and set(flat[0].get_ydata()) == {0.63}
