"""A researcher's own data (``--data``): tables, arrays, image folders, TFDS names; the trained
encoder reused on new samples; every bad input answered in one line with nothing created."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine

from experiments import encode as encode_cli
from experiments import run as run_cli
from icrst_jax.data.custom import load_source
from icrst_jax.data.dataset import DatasetError

TINY = ["--epochs", "2", "--no-mi", "--no-tsne", "--folds", "3", "--classifiers", "nb", "--seeds", "0",
]


def _wine_csv(path: Path, *, names=True) -> Path:
    d = load_wine()
    labels = [d.target_names[t] for t in d.target] if names else list(d.target)
    header = ",".join([n.replace("/", "_") for n in d.feature_names] + ["label"])
    rows = [",".join([f"{v:g}" for v in x] + [str(lab)]) for x, lab in zip(d.data, labels)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _wine_npz(path: Path) -> Path:
    d = load_wine()
    idx = np.arange(len(d.target))
    test = idx % 5 == 0
    names = np.array(d.target_names)[d.target]
    np.savez(path, x=d.data[~test], y=names[~test], x_test=d.data[test], y_test=names[test])
    return path


def _digits_folder(root: Path, classes=range(3), per_class=12) -> Path:
    from PIL import Image

    d = load_digits()
    for c in classes:
        (root / str(c)).mkdir(parents=True)
        for k, img in enumerate(d.images[d.target == c][:per_class]):
            pix = (img * 255 / 16).astype(np.uint8)
            Image.fromarray(pix).resize((16, 16), Image.BILINEAR).save(root / str(c) / f"{k}.png")
    return root


def _run(argv, capsys):
    rc = run_cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


@pytest.fixture(scope="module")
def npz_study(tmp_path_factory):
    """One tiny study of an .npz with a given split and string labels."""
    tmp = tmp_path_factory.mktemp("npz")
    source = _wine_npz(tmp / "wine_arrays.npz")
    out = tmp / "run"
    rc = run_cli.main(["--data", str(source), "--out", str(out), "--data-dir", str(tmp / "cache"), *TINY,
                       "--set", "train.model.latent_size=4"])  # not the suggested model: run.json must say so
    assert rc == 0
    return source, out


def test_npz_study_reports_its_data(npz_study):
    source, out = npz_study
    results = json.loads((out / "results.json").read_text())
    data = results["data"]
    assert data["name"] == "wine_arrays" and data["format"] == "npz" and data["split"] == "given"
    assert data["class_names"] == ["class_0", "class_1", "class_2"]
    assert sum(data["train_counts"]) + sum(data["test_counts"]) == 178 and sum(data["test_counts"]) == 36
    assert data["model"] == "mlp" and data["kind"] == "tabular" and data["shape"] == [13]
    report = (out / "report.md").read_text()
    assert report.startswith(f"# Results: wine_arrays (sha256 {data['hash'][:12]})")
    assert "## Data" in report and "| split | given |" in report
    assert "paper MLP" not in report and "untrained" in report
    recorded = json.loads((out / "run.json").read_text())["data"]
    assert recorded["hash"] == data["hash"] and recorded["latent_size"] == data["latent_size"] == 4


def test_loaded_encoder_gives_the_exported_latents_exactly(npz_study, tmp_path, capsys):
    import icrst_jax

    source, out = npz_study
    with np.load(source) as z:
        x_test, y_test = z["x_test"], z["y_test"]
    with np.load(out / "latents_icrst_p1_seed0.npz") as z:
        exported = z["features"]
    enc = icrst_jax.load_encoder(out, mode="icrst", p=1.0, seed=0)
    np.testing.assert_array_equal(enc.encode(x_test), exported)
    new = tmp_path / "new.npz"
    np.savez(new, x=x_test, y=y_test)
    assert encode_cli.main([str(out), "--mode", "icrst", "--p", "1", "--seed", "0", "--data", str(new),
                            "--out", str(tmp_path / "z.npz")]) == 0
    with np.load(tmp_path / "z.npz") as z:
        np.testing.assert_array_equal(z["features"], exported)
        assert list(z["labels"]) == list(y_test)


@pytest.mark.parametrize("case, expect", [
    ("no_point", "has no encoder for mode trst p=0.5 seed 0"),
    ("shape", "do not fit this encoder"),
    ("no_encoder", "holds no saved encoder"),
])
def test_encode_refuses_in_one_line(npz_study, tmp_path, capsys, case, expect):
    _, out = npz_study
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 5 if case == "shape" else 13)), y=np.arange(4))
    run_dir = tmp_path if case == "no_encoder" else out
    rc = encode_cli.main([str(run_dir), "--mode", "trst" if case == "no_point" else "icrst",
                          "--p", "0.5" if case == "no_point" else "1", "--data", str(data),
                          "--out", str(tmp_path / "z.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and expect in err[0]
    assert not (tmp_path / "z.npz").exists()


def test_wine_csv_with_names(tmp_path):
    ds = load_source(str(_wine_csv(tmp_path / "wine.csv")), label_column="label", data_dir=tmp_path / "c")
    assert ds.facts.class_names == ("class_0", "class_1", "class_2")
    assert ds.x_train.shape == (142, 13) and ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.split == "stratified holdout 0.2, seed 0" and len(ds.facts.hash) == 64
    assert not (tmp_path / "c").exists()  # a table is not cached


def test_image_folder_cached_and_named(tmp_path):
    root = _digits_folder(tmp_path / "digits_png")
    (root / "README.txt").write_text("not an image")
    cache = tmp_path / "cache"
    ds = load_source(str(root), data_dir=cache)
    assert ds.x_train.shape[1:] == (16, 16, 1) and ds.facts.class_names == ("0", "1", "2")
    assert ds.facts.model == "conv" and any("skipped 1" in n for n in ds.facts.notes)
    entries = list((cache / "decoded").glob("*/x.npy"))
    assert len(entries) == 1
    from icrst_jax.data import custom

    custom._LOADED.clear()
    again = load_source(str(root), data_dir=cache)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert again.facts.hash == ds.facts.hash
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "0" / "0.png")  # a changed file: a new entry
    custom._LOADED.clear()
    changed = load_source(str(root), data_dir=cache)
    assert changed.facts.hash != ds.facts.hash and len(list((cache / "decoded").glob("*/x.npy"))) == 2


def test_large_folder_decoded_by_workers_as_here(tmp_path, monkeypatch):
    from icrst_jax.data import image_folder

    root = _digits_folder(tmp_path / "digits_png", per_class=6)
    listing = image_folder.list_folder(root)
    here = image_folder.decode_folder(listing, None, print)
    monkeypatch.setattr(image_folder, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(image_folder, "_workers", lambda: 2)
    lines = []
    workers = image_folder.decode_folder(listing, None, lines.append)
    np.testing.assert_array_equal(workers.x, here.x)
    assert workers.content_hash == here.content_hash and len(lines) == 4 and lines[-1].endswith("18/18 images")
    (root / "1" / "2.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"2\.png: cannot decode the image") as bad:
        image_folder.decode_folder(image_folder.list_folder(root), None, print)
    assert "\n" not in str(bad.value)


def test_quiet_hides_the_data_dir_note(tmp_path, capsys):
    from icrst_jax.config import StudyConfig, apply_overrides

    cfg = apply_overrides(StudyConfig(), ["data.name=breast_cancer", f"data.data_dir={tmp_path}"])
    run_cli._check_builtin_data_dir(cfg, quiet=True)
    assert capsys.readouterr().err == ""
    run_cli._check_builtin_data_dir(cfg)
    assert "is not used" in capsys.readouterr().err


def _bad_inputs(tmp: Path) -> dict:
    wine = _wine_csv(tmp / "wine.csv")
    lines = wine.read_text().splitlines()
    no_label = tmp / "nolabel.csv"
    no_label.write_text("\n".join([lines[0].replace(",label", ",kind")] + lines[1:]) + "\n")
    text = tmp / "text.csv"
    text.write_text("a,b,label\n1,x,0\n2,y,1\n")
    missing = tmp / "missing.csv"
    missing.write_text("a,b,label\n1,2,0\n3,,1\n4,5,0\n6,inf,1\n")
    short = tmp / "short.csv"
    short.write_text("a,b,label\n1,2,x\n3,4\n")
    np.savez(tmp / "noy.npz", x=np.zeros((4, 3)))
    single = _digits_folder(tmp / "single", classes=range(1), per_class=2)
    _digits_folder(tmp / "emptycls", classes=range(2), per_class=2)
    (tmp / "emptycls" / "9").mkdir()
    _digits_folder(tmp / "digits_png", classes=range(2), per_class=2)
    return {
        "no_label": (["--data", str(no_label)], "no label column"),
        "unknown_column": (["--data", str(wine), "--label-column", "kind"], "no column 'kind'"),
        "text": (["--data", str(text)], "column 'b' is text"),
        "missing": (["--data", str(missing)], "2 row(s) with missing"),
        "npz_no_y": (["--data", str(tmp / "noy.npz")], "no y array"),
        "short_row": (["--data", str(short)], "the number of columns changed from 3 to 2 at row 2"),
        "single_class": (["--data", str(single)], "at least two"),
        "empty_class": (["--data", str(tmp / "emptycls")], "holds no image"),
        "absent": (["--data", str(tmp / "absent.csv")], "no such file"),
        "suffix": (["--data", str(tmp / "wine.csv").replace(".csv", ".xls")], "no such file"),
        "tfds_unprepared": (["--data", "tfds:mnist"], "prepare it with"),
        "data_dir_builtin": (["--dataset", "digits", "--data-dir", str(tmp / "digits_png")], "use --data"),
    }


CASES = ["no_label", "unknown_column", "text", "missing", "short_row", "npz_no_y", "single_class", "empty_class", "absent",
         "tfds_unprepared", "data_dir_builtin"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_nothing_created(tmp_path, monkeypatch, capsys, case):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv, expect = _bad_inputs(inputs)[case]
    before = sorted(p for p in inputs.rglob("*"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cache = tmp_path / "cache"
    rc, err = _run([*argv, *([] if "--data-dir" in argv else ["--data-dir", str(cache)])], capsys)
    assert rc == 2 and 1 <= len(err) <= 3 and err[-1].startswith("error: ") and expect in err[-1], err
    assert list(work.iterdir()) == [] and not cache.exists()
    assert sorted(p for p in inputs.rglob("*")) == before


def test_data_dir_not_used_by_a_packaged_set_says_so(tmp_path, capsys):
    cfg = run_cli.config_from_args(run_cli.build_parser().parse_args(["--dataset", "digits", "--data-dir",
                                                                      str(tmp_path)]))
    assert cfg.data.name == "digits"
    assert "is not used: digits ships with sklearn" in capsys.readouterr().err


def test_fit_refuses_targets_outside_the_output_range():
    from icrst_jax.train import check_target_range

    with pytest.raises(ValueError, match=r"x spans \[0, 16\].*scale x to \[0, 1\]"):
        check_target_range(np.array([[0.0, 16.0]], np.float32))
    check_target_range(np.array([[0.0, 1.0]], np.float32))


def test_tfds_name_read_through_data_source(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load_source("tfds:mnist", data_dir=tmp_path)
        from experiments.encode import read_all

        x, y = read_all("tfds:mnist", None, tmp_path, None)  # what experiments.encode encodes: train, then test
    assert ds.x_train.shape == (24, 28, 28, 1) and ds.split == "given"
    assert x.shape == (48, 28, 28, 1) and x.dtype == np.uint8 and set(y) <= {str(i) for i in range(10)}
    np.testing.assert_allclose(x[:24] / 255, ds.x_train, atol=1e-6)
    assert ds.facts.class_names == tuple(str(i) for i in range(10)) and ds.facts.format == "tfds"


def test_fingerprint_covers_the_content(tmp_path):
    from icrst_jax import run_identity
    from icrst_jax.config import StudyConfig, apply_overrides

    path = _wine_csv(tmp_path / "wine.csv")
    cfg = apply_overrides(StudyConfig(), [f"data.source={path}", "data.label_column=label"])
    first = run_identity.fingerprint(cfg)
    assert "data.name" not in first and first["data.hash"] and run_identity.default_out(cfg).startswith("runs/wine-")
    path.write_text(path.read_text().replace("14.23", "14.24", 1))
    from icrst_jax.data import custom

    custom._LOADED.clear()
    assert run_identity.fingerprint(cfg)["data.hash"] != first["data.hash"]
    assert "data.source" not in run_identity.fingerprint(StudyConfig())
