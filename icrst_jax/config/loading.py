"""Config files: a Python file whose ``get_config()`` returns a :class:`StudyConfig`, read by :func:`load_config`."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import traceback
from pathlib import Path

from icrst_jax.config.overrides import config_paths, did_you_mean
from icrst_jax.config.schema import StudyConfig


class ConfigFileError(ValueError):
    """A config file that cannot give a study; the message is the one line to show."""


def load_config(path) -> StudyConfig:
    """Runs a config file's ``get_config()`` and returns its :class:`StudyConfig`.

    Raises:
      ConfigFileError: one line for every way a file can fail: missing, a
        folder or not a ``.py`` file (with the config files nearby), a syntax
        error (file, line, the offending text), an exception while running it
        or ``get_config()`` (its message and the line of the file it came
        from), a field of the wrong type, or a result that is no StudyConfig.
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.py"))
        hint = f": give one of its files, e.g. {path / inside[0]}" if inside else ""
        raise ConfigFileError(f"config {str(path)!r} is a folder, not a config file{hint}")
    if not path.is_file():
        raise ConfigFileError(f"config file {str(path)!r} does not exist")
    if path.suffix != ".py":
        raise ConfigFileError(f"config file {str(path)!r} is not a Python file (.py) whose get_config() "
                              "returns a StudyConfig (see configs/)")
    spec = importlib.util.spec_from_file_location(f"_icrst_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)

    def where(e: BaseException) -> str:
        """``file:line`` of the deepest frame of the traceback inside the config file."""
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        return f"{path}:{frames[-1].lineno}" if frames else str(path)

    def first_line(e: BaseException) -> str:
        typo = _misspelt_field(e)
        if typo is not None:
            return typo
        text = str(e).strip().splitlines()
        return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__

    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        text = (e.text or "").strip()
        raise ConfigFileError(f"{e.filename or path}:{e.lineno}: syntax error ({e.msg})"
                              + (f": {text}" if text else "")) from None
    except Exception as e:
        raise ConfigFileError(f"{where(e)}: the config file failed: {first_line(e)}") from None
    if not hasattr(module, "get_config"):
        raise ConfigFileError(f"{path} defines no get_config()")
    try:
        cfg = module.get_config()
    except Exception as e:
        raise ConfigFileError(f"{where(e)}: get_config() failed: {first_line(e)}") from None
    if not isinstance(cfg, StudyConfig):
        raise ConfigFileError(f"{path}: get_config() returned {type(cfg).__name__}, not a StudyConfig")
    return cfg


def _sections() -> dict[str, str]:
    """Each config class's name -> its dotted prefix in a study (``TrainConfig`` -> ``train.``)."""
    out = {"StudyConfig": ""}

    def walk(obj, prefix):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                out.setdefault(type(value).__name__, prefix + f.name + ".")
                walk(value, prefix + f.name + ".")

    walk(StudyConfig(), "")
    return out


def _misspelt_field(e: BaseException) -> str | None:
    """``TrainConfig(epoch=5)``'s TypeError as the line ``--set train.epoch=5`` would get (its did-you-mean)."""
    found = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", str(e))
    if not isinstance(e, TypeError) or found is None or found.group(1) not in _sections():
        return None
    key = _sections()[found.group(1)] + found.group(2)
    return f"{found.group(1)} has no field {found.group(2)!r}: unknown config key {key!r}" + did_you_mean(
        key, config_paths(StudyConfig()))
