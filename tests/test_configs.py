"""Study configs: the shipped files pass a dry check (no data), and --set overrides are typed and validated."""

from pathlib import Path

import pytest

from experiments import run as cli
from icrst_jax.config import (
    PAPER_CLASSIFIERS as CLASSIFIERS,
    ConfigFileError,
    EvalConfig,
    TrainConfig,
    GridPoint,
    StudyConfig,
    apply_override,
    apply_overrides,
    config_paths,
    load_config,
)
from icrst_jax.studies import dry_check

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.py"))
PAPER = ["mnist", "fashion_mnist", "cifar10", "caltech101", "breast_cancer"]


def test_every_paper_data_set_and_cpu_study_has_a_config():
    names = {p.stem for p in CONFIGS}
    assert {f"paper_{d}" for d in PAPER} <= names
    assert {"cpu_digits", "cpu_mnist5k", "cpu_breast_cancer"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_passes_the_dry_check(path):
    cfg = load_config(path)
    check = dry_check(cfg, num_devices=1)
    assert check["grid_points"] == len(cfg.grid()) == len(set(cfg.grid()))
    assert check["sample_shape"] and check["latent_shape"]
    assert 1 <= check["batch"] <= check["train_samples"]
    assert cfg.out is None  # each study gets a folder of its own (runs/<dataset>-<fingerprint>)


@pytest.mark.parametrize("dataset", PAPER)
def test_paper_configs_have_the_papers_settings(dataset):
    """Section 6: batch 512 (64 for the strided CNN), Adam 1e-3, 50 epochs, the
    three modes, p = 0, 0.2, ..., 1, the four classifiers, 10 folds, MI."""
    cfg = load_config(ROOT / "configs" / f"paper_{dataset}.py")
    strided = dataset in ("cifar10", "caltech101")
    assert cfg.data.name == dataset
    assert cfg.train.global_batch_size == (64 if strided else 512)
    assert cfg.train.model.name == {"breast_cancer": "mlp"}.get(dataset, "conv_strided" if strided else "conv")
    assert (cfg.train.learning_rate, cfg.train.epochs, cfg.train.model.width) == (1e-3, 50, 1.0)
    assert cfg.modes == ("standard", "icrst", "trst")
    assert cfg.p_values == pytest.approx((0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
    assert cfg.eval.classifiers == CLASSIFIERS and cfg.eval.n_folds == 10 and cfg.eval.mi


def test_grid_is_modes_by_p_by_seeds():
    cfg = StudyConfig(modes=("standard", "icrst", "dae"), p_values=(0.5, 1.0), seeds=(3, 4))
    assert cfg.grid() == [
        GridPoint("standard", 0.0, 3), GridPoint("standard", 0.0, 4),
        GridPoint("icrst", 0.5, 3), GridPoint("icrst", 0.5, 4),
        GridPoint("icrst", 1.0, 3), GridPoint("icrst", 1.0, 4),
        GridPoint("dae", 0.0, 3), GridPoint("dae", 0.0, 4),
    ]


def test_set_overrides_are_typed():
    cfg = apply_overrides(StudyConfig(), [
        "train.epochs=7", "train.model.width=0.5", "modes=standard,trst", "p_values=0,0.5",
        "seeds=1,2", "eval.mi=false", "eval.n_jobs=none", "data.name=digits", "train.model.name=conv",
        "data.image_size=16",
    ])
    assert cfg.train.epochs == 7 and isinstance(cfg.train.epochs, int)
    assert cfg.train.model.width == 0.5
    assert cfg.modes == ("standard", "trst") and cfg.p_values == (0.0, 0.5) and cfg.seeds == (1, 2)
    assert cfg.eval.mi is False and cfg.eval.n_jobs is None
    assert (cfg.data.name, cfg.data.image_size) == ("digits", 16)
    # Later assignments win; the original is untouched (frozen dataclasses).
    assert apply_overrides(cfg, ["train.epochs=3", "train.epochs=4"]).train.epochs == 4
    assert cfg.train.epochs == 7


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("train.epoch=3", "unknown config key 'train.epoch'; did you mean train.epochs"),
        ("epochs=3", "did you mean train.epochs"),
        ("train.lr=0.1", "unknown config key 'train.lr'; did you mean train.learning_rate?"),
        ("out=", "out must name a folder"),
        ("data.name=digits", "model mlp does not fit digits (images); set train.model.name=conv"),
        ("train.mode=trst", "decided by the study's grid; set modes"),
        ("train.epochs=three", "train.epochs takes an integer"),
        ("eval.mi=maybe", "true or false"),
        ("train.epochs", "key=value"),
        ("p_values=0.5,2", "p must be in [0, 1]"),
        ("modes=standard,bogus", "unknown mode 'bogus'"),
    ],
)
def test_set_rejects_bad_keys_and_values(assignment, message):
    with pytest.raises(ValueError) as err:
        apply_override(StudyConfig(), assignment)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_changes_are_applied_at_once_and_checked_across_sections():
    """A data set and its model switched together are valid; either alone is not, and the
    config is never built half-way (a check across sections sees the final values)."""
    cfg = apply_overrides(StudyConfig(), ["data.name=digits", "train.model.name=conv"])
    assert (cfg.data.name, cfg.train.model.name) == ("digits", "conv")
    with pytest.raises(ValueError, match="does not fit digits .images.; set train.model.name=conv"):
        StudyConfig(data=cfg.data)
    cfg = apply_override(cfg, "train.model.name=conv_strided")  # 28x28 is not a multiple of 8
    with pytest.raises(ValueError):
        dry_check(cfg)
    # The error names the assignment that made the config invalid.
    with pytest.raises(ValueError, match=r"^--b: eval.epoch_classifiers \['mlp'\] must be among eval.classifiers \['nb'\]"):
        apply_overrides(StudyConfig(), ["eval.at_epochs=0,5", "eval.classifiers=nb"], labels=["--a", "--b"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs="3"), "train.epochs must be an integer, got '3' (str)"),
        (dict(learning_rate="fast"), "train.learning_rate must be a number, got 'fast' (str)"),
        (dict(epochs=True), "train.epochs must be an integer, got True (bool)"),
        (dict(batch_size=1.5), "train.batch_size must be an integer or None, got 1.5 (float)"),
        (dict(mode=3), "train.mode must be one of standard, icrst, trst, dae, got 3 (int)"),
    ],
)
def test_fields_of_the_wrong_type_are_named(kwargs, message):
    with pytest.raises(ValueError) as e:
        TrainConfig(**kwargs)
    assert str(e.value) == message


def test_config_files_normalise_lists_and_integers():
    """What a config file naturally writes: lists for tuples, integers for numbers."""
    cfg = StudyConfig(modes=["standard"], p_values=[0, 1], seeds=[3])
    assert cfg.modes == ("standard",) and cfg.p_values == (0.0, 1.0) and cfg.seeds == (3,)
    assert all(type(p) is float for p in cfg.p_values) and hash(cfg)
    assert cfg == StudyConfig(modes=("standard",), p_values=(0.0, 1.0), seeds=(3,))
    assert StudyConfig(out=Path("runs/x")).out == "runs/x"
    with pytest.raises(ValueError, match=r"^seeds must be a tuple of integers, got \[1.5\] \(list\)$"):
        StudyConfig(seeds=[1.5])


def test_every_field_is_settable_and_every_default_declared_once():
    paths = config_paths(StudyConfig())
    for key in ("train.epochs", "train.model.width", "data.image_size", "eval.n_folds", "modes", "out"):
        assert key in paths
    # Each shorthand flag names a real field, and its --help default is that field's.
    for flag, key, _, _ in cli.SHORTHANDS:
        assert key in paths, flag
    text = " ".join(cli.build_parser().format_help().split())  # argparse wraps lines
    assert "(train.epochs) [default: 50]" in text


def test_cli_flags_map_onto_the_same_fields_as_set():
    ap = cli.build_parser()
    by_flags = cli.config_from_args(ap.parse_args(
        ["--dataset", "digits", "--mode", "icrst", "--p-grid", "0.5,1", "--seeds", "1", "2", "--epochs", "4",
         "--width", "0.25", "--no-mi", "--folds", "3"]))
    by_set = cli.config_from_args(ap.parse_args(
        ["--set", "data.name=digits", "--set", "train.model.name=conv", "--set", "modes=icrst",
         "--set", "p_values=0.5,1", "--set", "seeds=1,2", "--set", "train.epochs=4",
         "--set", "train.model.width=0.25", "--set", "eval.mi=false", "--set", "eval.n_folds=3"]))
    assert by_flags == by_set
    # A config file is the base; flags, then --set, override it.
    cfg = cli.config_from_args(ap.parse_args(
        ["--config", str(ROOT / "configs" / "cpu_digits.py"), "--epochs", "2", "--set", "train.epochs=3"]))
    assert cfg.train.epochs == 3 and cfg.data.name == "digits" and cfg.train.model.width == 0.125


def test_the_paper_batch_follows_the_model_from_the_command_line():
    """Section 6: batch 512, "64 for the CNN2"; the strided model brings its batch along."""
    ap = cli.build_parser()
    cifar = cli.config_from_args(ap.parse_args(["--dataset", "cifar10"]))
    assert cifar.train.model.name == "conv_strided" and dry_check(cifar, num_devices=1)["batch"] == 64
    mnist = cli.config_from_args(ap.parse_args(["--dataset", "mnist"]))
    assert dry_check(mnist, num_devices=1)["batch"] == 512
    # A model switched by --set brings its batch too; an explicit batch wins.
    switched = cli.config_from_args(ap.parse_args(["--dataset", "mnist", "--set", "train.model.name=conv_strided",
                                                   "--image-size", "32"]))
    assert switched.train.global_batch_size == 64
    assert cli.config_from_args(ap.parse_args(["--dataset", "cifar10", "--batch-size", "128"])).train.global_batch_size == 128
    assert apply_override(cifar, "train.batch_size=none").train.global_batch_size == 64
    assert StudyConfig().train.global_batch_size == 512


def test_eval_options_are_validated():
    with pytest.raises(ValueError, match="unknown scaling 'minmax'"):
        apply_override(StudyConfig(), "eval.scalings=none,minmax")
    with pytest.raises(ValueError, match="distinct epochs"):
        apply_override(StudyConfig(), "eval.at_epochs=5,5")
    with pytest.raises(ValueError, match=r"eval.at_epochs \[60\] lie beyond train.epochs=50; "
                                         r"cut them with --set eval.at_epochs=0,10$"):
        apply_overrides(StudyConfig(), ["eval.at_epochs=0,10,60", "train.epochs=50"])
    assert apply_overrides(StudyConfig(), ["eval.at_epochs=0,10,60", "train.epochs=60"]).eval.at_epochs == (0, 10, 60)


def config_file(tmp_path, body: str) -> Path:
    path = tmp_path / "study.py"
    path.write_text("from icrst_jax.config import *\n" + body)
    return path


@pytest.mark.parametrize(
    "body, message",
    [
        ("def get_config():\n    return StudyConfig(seeds=(0,)\n", "study.py:3: syntax error ('(' was never closed): "
                                                                    "return StudyConfig(seeds=(0,)"),
        ("def get_config():\n    raise RuntimeError('no such data')\n",
         "study.py:3: get_config() failed: RuntimeError: no such data"),
        ("def get_config():\n    return StudyConfig(train=TrainConfig(epochs='3'))\n",
         "study.py:3: get_config() failed: ValueError: train.epochs must be an integer, got '3' (str)"),
        ("import nonexistent_module_xyz\n", "study.py:2: the config file failed: ModuleNotFoundError: "
                                              "No module named 'nonexistent_module_xyz'"),
        ("def get_config():\n    return TrainConfig()\n", "get_config() returned TrainConfig, not a StudyConfig"),
        ("x = 1\n", "defines no get_config()"),
        # A misspelt field gets --set's did-you-mean, by its dotted path.
        ("def get_config():\n    return StudyConfig(train=TrainConfig(epoch=5))\n",
         "study.py:3: get_config() failed: TrainConfig has no field 'epoch': unknown config key 'train.epoch'; "
         "did you mean train.epochs or eval.epoch_classifiers?"),
        ("CFG = StudyConfig(train=TrainConfig(model=ModelConfig(widht=2.0)))\n",
         "study.py:2: the config file failed: ModelConfig has no field 'widht': unknown config key "
         "'train.model.widht'; did you mean train.model.width?"),
    ],
)
def test_config_file_mistakes_are_one_line(tmp_path, body, message):
    path = config_file(tmp_path, body)
    with pytest.raises(ConfigFileError) as e:
        load_config(path)
    assert "\n" not in str(e.value) and str(e.value).endswith(message) and str(path) in str(e.value), str(e.value)


def test_config_paths_that_are_no_config_file(tmp_path):
    (tmp_path / "a.py").write_text("")
    with pytest.raises(ConfigFileError, match=f"is a folder, not a config file: give one of its files, e.g. {tmp_path}/a.py"):
        load_config(tmp_path)
    (tmp_path / "study.yaml").write_text("train: {}")
    with pytest.raises(ConfigFileError, match="is not a Python file"):
        load_config(tmp_path / "study.yaml")
    with pytest.raises(ConfigFileError, match="does not exist"):
        load_config(tmp_path / "nope.py")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "train.epoch=3"], "--set train.epoch=3: unknown config key 'train.epoch'; did you mean train.epochs"),
        (["--config", "configs/nope.py"], "does not exist"),
        (["--config", "configs"], "is a folder"),
        (["--config", "configs/paper_mnist.py", "--set", "train.model.width=0.001"], "channels"),
        (["--config", "configs/cpu_breast_cancer.py", "--set", "train.epochs=2"],
         "--set train.epochs=2: eval.at_epochs [20] lie beyond train.epochs=2; cut them with --set eval.at_epochs=0"),
        (["--dataset", "breast_cancer", "--classifiers", "nb", "--set", "eval.at_epochs=0,5"],
         "--set eval.at_epochs=0,5: eval.epoch_classifiers ['mlp'] must be among eval.classifiers ['nb']"),
        (["--out", ""], "--out: out must name a folder"),
        (["--set", "train.lr=0.1"], "did you mean train.learning_rate?"),
    ],
)
def test_cli_config_errors_are_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main([*argv, "--dry-run"]) == 2
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


def test_cli_reports_a_config_file_mistake_in_one_line(tmp_path, capsys):
    path = config_file(tmp_path, "def get_config():\n    return StudyConfig(seeds='0')\n")
    assert cli.main(["--config", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"error: {path}:3: get_config() failed: ValueError: seeds must be a tuple "
                                       f"of integers, got '0' (str)\n")


def test_the_scalings_earlier_name_is_an_alias_with_one_notice(capsys, monkeypatch):
    from icrst_jax.config import schema

    monkeypatch.setattr(schema, "_ALIASES_NOTED", set())
    assert EvalConfig(scalings=("none", "standard")).scalings == ("none", "standardised")
    assert apply_override(StudyConfig(), "eval.scalings=none,standard").eval.scalings == ("none", "standardised")
    err = capsys.readouterr().err.splitlines()
    assert err == ["notice: the scaling 'standard' is now called 'standardised' (the old name still works)"]
    with pytest.raises(ValueError, match="unknown scaling 'minmax'"):
        EvalConfig(scalings=("minmax",))
    # A run folder made under the earlier name holds the same study.
    from icrst_jax.run_identity import fingerprint

    assert fingerprint(StudyConfig(eval=EvalConfig(scalings=("none", "standardised"))))["eval.scalings"] == [
        "none", "standard"]
