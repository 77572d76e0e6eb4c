"""A study's trained encoders, saved with everything needed to use them again on new samples.

A study's folder holds ``encoder.json`` (the model config, the sample shape,
the preprocessing statistics of the training split, the grid points, the
data's facts) and ``encoder_weights.msgpack`` (every grid point's final
parameters and BatchNorm statistics, stacked on the run axis as trained).
:func:`load_encoder` rebuilds one grid point's encoder from them, without the
config file or the data:

    >>> enc = load_encoder("runs/wine-1a2b3c4d", mode="icrst", p=1.0, seed=0)   # doctest: +SKIP
    >>> z = enc.encode(new_rows)        # raw rows as the study read them -> (N, latent)

The stored preprocessing is applied (never refitted on the new data), and the
encoding runs the same compiled program over the same stacked parameters as
the study's own latents, so the study's test split gives its exported latents
exactly.
"""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import flax.serialization
import jax
import numpy as np

from icrst_jax.config import GridPoint, ModelConfig
from icrst_jax.data.dataset import Preprocessing
from icrst_jax.models import make_model
from icrst_jax.train import batched_apply, make_encode_fn, make_mesh

ENCODER_FILE = "encoder.json"
WEIGHTS_FILE = "encoder_weights.msgpack"
FORMAT = 1


class EncoderError(ValueError):
    """A folder without a saved encoder, a grid point it did not train, or samples of another shape."""


def save_encoder(out: Path, model: ModelConfig, dataset, state, points, data: dict | None = None) -> None:
    """Writes ``encoder.json`` and ``encoder_weights.msgpack`` into the study's folder ``out``."""
    host = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
    (Path(out) / WEIGHTS_FILE).write_bytes(flax.serialization.to_bytes(host))
    info = {
        "format": FORMAT,
        "model": dataclasses.asdict(model),
        "sample_shape": list(dataset.x_train.shape[1:]),
        "preprocessing": dataset.preprocessing.to_dict(),
        "points": [dataclasses.asdict(pt) for pt in points],
        "data": data or {"name": dataset.name, "split": dataset.split},
    }
    (Path(out) / ENCODER_FILE).write_text(json.dumps(info, indent=1) + "\n")


@dataclasses.dataclass(frozen=True)
class Encoder:
    """One grid point's trained encoder. :meth:`encode` maps raw samples to latents.

    Attributes:
      point: the grid point (mode, p, seed).
      sample_shape: one raw sample's shape, as the study read it.
      preprocessing: the training split's statistics (unit scale, encoder input).
      data: what the study knew about its data (name, class names, hash).
    """

    point: GridPoint
    sample_shape: tuple[int, ...]
    preprocessing: Preprocessing
    data: dict
    _model: object
    _variables: dict
    _index: int

    def encode(self, x, *, batch_size: int = 1024) -> np.ndarray:
        """Raw samples ``(N, features)`` or ``(N, H, W[, C])`` -> ``(N, latent)`` float32 numpy."""
        x = np.asarray(x)
        if x.ndim == len(self.sample_shape) and self.sample_shape[-1] == 1 and x.shape[1:] == self.sample_shape[:-1]:
            x = x[..., None]  # grayscale images without their channel axis
        if x.shape[1:] != self.sample_shape:
            raise EncoderError(f"samples of shape {x.shape[1:]} do not fit this encoder, trained on samples of shape "
                               f"{self.sample_shape}; give data of that shape")
        unit = self.preprocessing.to_unit(x)
        mean, std = self.preprocessing.encoder_mean_std()
        engine = types.SimpleNamespace(mesh=make_mesh(None))
        state = types.SimpleNamespace(**self._variables)
        out = batched_apply(make_encode_fn(self._model), engine, state, unit, mean, std, batch_size)
        return out[self._index].astype(np.float32)


def load_encoder(run_dir, mode: str = "icrst", p: float = 1.0, seed: int = 0) -> Encoder:
    """The final encoder of grid point (``mode``, ``p``, ``seed``) of the study in ``run_dir``.

    Raises:
      EncoderError: the folder has no saved encoder (made before encoders were
        saved), or the study did not train that grid point (one line each).
    """
    run_dir = Path(run_dir)
    path = run_dir / ENCODER_FILE
    if not path.is_file() or not (run_dir / WEIGHTS_FILE).is_file():
        raise EncoderError(f"{run_dir} holds no saved encoder ({ENCODER_FILE}): it is not a run folder, or was made "
                           "before encoders were saved; rerun its study to get one")
    info = json.loads(path.read_text())
    points = [GridPoint(**pt) for pt in info["points"]]
    p_used = 0.0 if mode not in ("icrst", "trst", "cross_icrst") else float(p)
    matches = [i for i, pt in enumerate(points) if (pt.mode, pt.p, pt.seed) == (mode, p_used, int(seed))]
    if not matches:
        have = ", ".join(f"--mode {pt.mode} --p {pt.p:g} --seed {pt.seed}" for pt in points)
        raise EncoderError(f"{run_dir} has no encoder for mode {mode} p={p:g} seed {seed}; it trained: {have}")
    shape = tuple(info["sample_shape"])
    model = make_model(ModelConfig(**info["model"]), shape)
    variables = flax.serialization.msgpack_restore((run_dir / WEIGHTS_FILE).read_bytes())
    return Encoder(points[matches[0]], shape, Preprocessing.from_dict(info["preprocessing"]), info["data"], model,
                   {"params": variables["params"], "batch_stats": variables.get("batch_stats") or {}}, matches[0])
