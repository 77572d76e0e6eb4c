"""PyTorch reference of the authors' training pipeline, for speed comparisons only.

It reproduces (GabMartino/icrst_trst_autoencoder, ``src/models/AE2.py`` and
``src/dataloaders/*``; paper section 6, Table D1) the three Table D1 models
(:func:`build_model`), the per-sample host pairing inside ``Dataset.__getitem__``
(:class:`PairedDataset` via :class:`~benchmarks.baselines.host_pairing.HostPairing`)
under a shuffled ``DataLoader``, and Adam + ``MSELoss`` in train mode. ``icrst_jax``
never imports it. Deliberate differences from the authors' code:

dropout defaults to Table D1's 0.2 (theirs: 0.5); targets are the ``[0, 1]`` images,
inputs standardised (they reconstruct the standardised image; speed is the same); the data
set holds ready tensors (their per-sample torchvision transform is not reproduced, which
makes this reference *faster* on the host); Lightning's ``detect_anomaly=True`` is an
option of :func:`train_torch`, off by default (it would slow PyTorch and flatter us).
Images are taken in the JAX layout (NHWC in ``[0, 1]``) and transposed here.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from benchmarks.baselines.host_pairing import HostPairing

MODEL_NAMES: tuple[str, ...] = ("conv", "conv_strided", "mlp")
MODES: tuple[str, ...] = ("standard", "icrst", "trst", "dae")
# Per-sample input shapes in torch's layout (C, H, W) / (F,), from Table D1's data sets.
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "conv": (1, 28, 28),
    "conv_strided": (3, 32, 32),
    "mlp": (30,),
}

# Table D1 layer sizes at width 1.0.
CONV_ENCODER = (32, 64, 128, 256, 512)
CONV_DECODER = (512, 256, 128, 64, 32)
STRIDED_ENCODER = ((64, 2), (64, 1), (128, 2), (128, 1), (256, 2))
# (out channels, stride); stride 2 layers are ConvTranspose2d, stride 1 are Conv2d.
STRIDED_DECODER_HIDDEN = ((256, 2), (128, 1), (128, 2), (64, 1))
MLP_HIDDEN = 64
MLP_LATENT = 8


def scaled(channels: int, width: float) -> int:
    """``round(channels * width)``; a layer that would vanish is an error, not a 1-clamp."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    n = int(round(channels * width))
    if n < 1:
        raise ValueError(f"width {width} rounds a {channels}-channel layer to {n} channels")
    return n


def _block(layer: nn.Module, channels: int, negative_slope: float, dropout: float) -> nn.Sequential:
    """Layer -> BatchNorm2d -> LeakyReLU -> Dropout, the order of the authors' AE2."""
    return nn.Sequential(
        layer,
        nn.BatchNorm2d(channels),
        nn.LeakyReLU(negative_slope),
        nn.Dropout(dropout),
    )


class ConvAE(nn.Module):
    """Table D1 model for MNIST / Fashion-MNIST (the authors' ``AE2`` without pooling).

    Encoder: five 3x3 stride-1 unpadded Conv2d [32, 64, 128, 256, 512], 28x28 -> 18x18.
    Decoder: five 3x3 stride-1 unpadded ConvTranspose2d [512, 256, 128, 64, 32],
    18x18 -> 28x28, then a 1x1 Conv2d to the input channels and a Sigmoid.
    Latent: global average pool of the encoder's last feature map (512 * width).
    """

    def __init__(self, in_channels: int = 1, *, width: float = 1.0,
                 negative_slope: float = 0.01, dropout: float = 0.2):
        super().__init__()
        enc, c = [], in_channels
        for h in CONV_ENCODER:
            h = scaled(h, width)
            enc.append(_block(nn.Conv2d(c, h, 3, stride=1, padding=0), h, negative_slope, dropout))
            c = h
        self.encoder = nn.Sequential(*enc)
        dec = []
        for h in CONV_DECODER:
            h = scaled(h, width)
            dec.append(_block(nn.ConvTranspose2d(c, h, 3, stride=1, padding=0), h,
                              negative_slope, dropout))
            c = h
        self.decoder = nn.Sequential(*dec)
        self.final_layer = nn.Sequential(nn.Conv2d(c, in_channels, 1), nn.Sigmoid())
        self.latent_dim = scaled(CONV_ENCODER[-1], width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.decoder(self.encoder(x)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=(2, 3))


class StridedConvAE(nn.Module):
    """Table D1 model for CIFAR-10 / Caltech101.

    Encoder: 3x3 padding-1 Conv2d [64, 64, 128, 128, 256], strides [2, 1, 2, 1, 2]
    (32 -> 4). Decoder: [ConvTranspose2d 256 s2, Conv2d 128 s1, ConvTranspose2d 128 s2,
    Conv2d 64 s1, ConvTranspose2d in_channels s2], 3x3, padding 1, output padding 1 on
    the transposed ones (4 -> 32). BatchNorm + LeakyReLU + Dropout after every layer
    except the last, which is followed by a Sigmoid. Latent: global average pool of the
    encoder's last feature map (256 * width).
    """

    def __init__(self, in_channels: int = 3, *, width: float = 1.0,
                 negative_slope: float = 0.01, dropout: float = 0.2):
        super().__init__()
        enc, c = [], in_channels
        for h, s in STRIDED_ENCODER:
            h = scaled(h, width)
            enc.append(_block(nn.Conv2d(c, h, 3, stride=s, padding=1), h, negative_slope, dropout))
            c = h
        self.encoder = nn.Sequential(*enc)
        dec = []
        for h, s in STRIDED_DECODER_HIDDEN:
            h = scaled(h, width)
            layer = (nn.ConvTranspose2d(c, h, 3, stride=2, padding=1, output_padding=1) if s == 2
                     else nn.Conv2d(c, h, 3, stride=1, padding=1))
            dec.append(_block(layer, h, negative_slope, dropout))
            c = h
        self.decoder = nn.Sequential(*dec)
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(c, in_channels, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )
        self.latent_dim = scaled(STRIDED_ENCODER[-1][0], width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.decoder(self.encoder(x)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=(2, 3))


class MlpAE(nn.Module):
    """Table D1 model for Breast Cancer: 30 -> 64 -> 8 -> 64 -> 30.

    LeakyReLU after every hidden Linear (the latent is the activated 8-unit layer),
    Sigmoid at the output; Table D1 lists no BatchNorm or dropout for it.
    """

    def __init__(self, in_features: int = 30, *, width: float = 1.0,
                 negative_slope: float = 0.01, dropout: float = 0.2):
        super().__init__()
        del dropout  # accepted for a uniform build_model signature; Table D1 has none here
        hidden, latent = scaled(MLP_HIDDEN, width), scaled(MLP_LATENT, width)
        self.encoder = nn.Sequential(
            nn.Linear(in_features, hidden), nn.LeakyReLU(negative_slope),
            nn.Linear(hidden, latent), nn.LeakyReLU(negative_slope),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.LeakyReLU(negative_slope),
            nn.Linear(hidden, in_features), nn.Sigmoid(),
        )
        self.latent_dim = latent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def build_model(name: str, *, width: float = 1.0, input_shape: Sequence[int] | None = None,
                negative_slope: float = 0.01, dropout: float = 0.2) -> nn.Module:
    """A Table D1 model by name (``conv``, ``conv_strided``, ``mlp``); hidden sizes
    ``round(c * width)``; ``input_shape`` in torch layout (default :data:`INPUT_SHAPES`;
    only its channels / features count); LeakyReLU slope 0.01 as PyTorch's default."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    shape = tuple(input_shape) if input_shape is not None else INPUT_SHAPES[name]
    cls = {"conv": ConvAE, "conv_strided": StridedConvAE, "mlp": MlpAE}[name]
    return cls(shape[0], width=width, negative_slope=negative_slope, dropout=dropout)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def to_torch_layout(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 tensor in torch layout: NHWC (the JAX layout) becomes NCHW, (N, F) is kept."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if t.ndim == 4:
        t = t.permute(0, 3, 1, 2)
    elif t.ndim != 2:
        raise ValueError(f"expected (N, H, W, C) images or (N, F) features, got shape {tuple(t.shape)}")
    return t.contiguous()


def standardisation_stats(x_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Default (mean, std) of the encoder input, following section 6.

    Images: per-channel mean and std of the ``[0, 1]`` training images. Non-image
    data is "just normalized", so its statistics are 0 and 1 (input = ``x_unit``).
    """
    x = np.asarray(x_unit, dtype=np.float64)
    if x.ndim == 4:
        mean = x.mean(axis=(0, 1, 2))
        std = x.std(axis=(0, 1, 2))
        return mean.astype(np.float32), np.maximum(std, 1e-8).astype(np.float32)
    return np.zeros(x.shape[-1], np.float32), np.ones(x.shape[-1], np.float32)


class PairedDataset(torch.utils.data.Dataset):
    """Training set whose ``__getitem__`` picks the target per sample on the host.

    ``x_unit``: NHWC images or (N, F) features in ``[0, 1]``. ``mode``: ``standard``
    (target = the sample; the Bernoulli draw still happens with p = 0, as the authors
    ran their baseline as p = 0 of the same data set), ``icrst`` / ``trst`` (with
    probability ``p`` a partner from the class / the whole set, by :class:`HostPairing`),
    ``dae`` (Gaussian noise of ``dae_sigma``, in standardised units, on the input; no
    pairing draw: the authors have no DAE code). ``mean``, ``std``: the encoder input's
    standardisation (default :func:`standardisation_stats`). Items are ``(input,
    target)``: the standardised (for ``dae`` noised) anchor and the ``[0, 1]`` target.
    """

    def __init__(self, x_unit: np.ndarray, labels: Sequence[int] | np.ndarray, *,
                 mode: str = "icrst", p: float = 1.0, mean: Any = None, std: Any = None,
                 dae_sigma: float = 0.5, rebuild_all_indices: bool = True):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        labels = np.asarray(labels)
        if labels.shape[0] != len(x_unit):
            raise ValueError(f"{len(x_unit)} samples but {labels.shape[0]} labels")
        if dae_sigma < 0:
            raise ValueError(f"dae_sigma must be >= 0, got {dae_sigma}")
        default_mean, default_std = standardisation_stats(x_unit)
        mean = default_mean if mean is None else np.asarray(mean, np.float32)
        std = default_std if std is None else np.asarray(std, np.float32)
        self.targets = to_torch_layout(x_unit)
        stat_shape = (-1, 1, 1) if self.targets.ndim == 4 else (-1,)
        mean_t = torch.as_tensor(np.broadcast_to(mean, (self.targets.shape[1],)).copy()).reshape(stat_shape)
        std_t = torch.as_tensor(np.broadcast_to(std, (self.targets.shape[1],)).copy()).reshape(stat_shape)
        # Standardised once up front: the per-sample transform cost of the authors'
        # torchvision pipeline is deliberately not part of this reference.
        self.inputs = ((self.targets - mean_t) / std_t).contiguous()
        self.labels = labels
        self.mode = mode
        self.p = float(p)
        self.dae_sigma = float(dae_sigma)
        if mode in ("icrst", "trst"):
            self.pairing: HostPairing | None = HostPairing(
                labels, mode, p, rebuild_all_indices=rebuild_all_indices)
        elif mode == "standard":
            self.pairing = HostPairing(labels, "icrst", 0.0)
        else:
            self.pairing = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.inputs[index]
        if self.mode == "dae":
            return x + self.dae_sigma * torch.randn_like(x), self.targets[index]
        return x, self.targets[self.pairing.pair(index)]


def default_device() -> str:
    """``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``: the reference runs where
    the authors' code would, so a GPU comparison is GPU against GPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the block, then restore it (global state)."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_torch(model_name: str, x_unit: np.ndarray, y: Sequence[int] | np.ndarray, *,
                mode: str = "icrst", p: float = 1.0, epochs: int = 1, batch_size: int = 512,
                width: float = 1.0, lr: float = 1e-3, mean: Any = None, std: Any = None,
                num_workers: int = 0, seed: int = 0, max_steps: int | None = None, num_threads: int | None = None,
                dae_sigma: float = 0.5, negative_slope: float = 0.01, dropout: float = 0.2,
                detect_anomaly: bool = False, rebuild_all_indices: bool = True,
                device: str | None = None) -> dict:
    """Train like the authors' pipeline and time it end to end.

    ``DataLoader(shuffle=True)`` over a :class:`PairedDataset` (so the per-sample
    host pairing is inside the timing), Adam(``lr``), ``MSELoss``, train mode.

    ``x_unit``: NHWC images or (N, F) features in ``[0, 1]``; ``num_workers``: DataLoader
    workers (the authors used ``os.cpu_count()``; 0 keeps all in this process);
    ``max_steps``: a cap on optimizer steps; ``num_threads``: ``torch.set_num_threads``
    for the run; ``detect_anomaly``: as the authors' Lightning trainer had it on;
    ``device``: default :func:`default_device` (batches built on the host and copied
    over, as in their pipeline). The rest: :class:`PairedDataset`, :func:`build_model`.

    Returns ``samples``, ``seconds`` (the training loop: DataLoader start-up, batches and
    pairing included; model and data set construction excluded), ``samples_per_s``,
    ``steps``, ``final_loss``, ``losses``, ``per_step_seconds`` (batch wait + step) and
    ``data_wait_seconds``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    with _torch_threads(num_threads):
        torch.manual_seed(seed)
        np.random.seed(seed)  # the pairing draws from numpy's global state
        dataset = PairedDataset(x_unit, y, mode=mode, p=p, mean=mean, std=std,
                                dae_sigma=dae_sigma, rebuild_all_indices=rebuild_all_indices)
        model = build_model(model_name, width=width, input_shape=tuple(dataset.inputs.shape[1:]),
                            negative_slope=negative_slope, dropout=dropout)
        dev = torch.device(device or default_device())
        model.to(dev).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.MSELoss()
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
            persistent_workers=num_workers > 0,
            generator=torch.Generator().manual_seed(seed),
        )
        losses: list[float] = []
        per_step: list[float] = []
        data_wait = 0.0
        samples = 0
        anomaly = torch.autograd.detect_anomaly() if detect_anomaly else contextlib.nullcontext()
        start = time.perf_counter()
        with anomaly:
            for _ in range(epochs):
                it = iter(loader)
                t_prev = time.perf_counter()
                while max_steps is None or len(losses) < max_steps:
                    try:
                        inputs, targets = next(it)
                    except StopIteration:
                        break
                    t_data = time.perf_counter()
                    data_wait += t_data - t_prev
                    inputs, targets = inputs.to(dev, non_blocking=True), targets.to(dev, non_blocking=True)
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(model(inputs), targets)
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                    samples += inputs.shape[0]
                    t_now = time.perf_counter()
                    per_step.append(t_now - t_prev)
                    t_prev = t_now
                if max_steps is not None and len(losses) >= max_steps:
                    break
        seconds = time.perf_counter() - start
        del loader  # shuts persistent workers down
    return {
        "samples": samples,
        "seconds": seconds,
        "samples_per_s": samples / seconds if seconds > 0 else float("nan"),
        "steps": len(losses),
        "final_loss": losses[-1] if losses else float("nan"),
        "losses": losses,
        "per_step_seconds": per_step,
        "data_wait_seconds": data_wait,
    }


def step_throughput(model_name: str, batch: int, input_shape: Sequence[int] | None = None,
                    width: float = 1.0, steps: int = 20, warmup: int = 3, *,
                    lr: float = 1e-3, num_threads: int | None = None, seed: int = 0,
                    negative_slope: float = 0.01, dropout: float = 0.2, device: str | None = None) -> dict:
    """Forward + backward + Adam per step on pre-made random tensors (no data pipeline).

    Input standard normal, target uniform in ``[0, 1]``, both made before timing;
    ``input_shape`` in torch layout (default :data:`INPUT_SHAPES`); ``steps`` timed after
    ``warmup`` untimed. Returns ``batch``, ``steps``, ``per_step_seconds``,
    ``median_step_seconds``, ``samples_per_s`` (median step) and ``mean_samples_per_s``.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps}, {warmup}")
    shape = tuple(input_shape) if input_shape is not None else INPUT_SHAPES[model_name]
    with _torch_threads(num_threads):
        torch.manual_seed(seed)
        model = build_model(model_name, width=width, input_shape=shape,
                            negative_slope=negative_slope, dropout=dropout)
        dev = torch.device(device or default_device())
        model.to(dev).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.MSELoss()
        inputs = torch.randn((batch, *shape)).to(dev)
        targets = torch.rand((batch, *shape)).to(dev)
        per_step: list[float] = []
        for k in range(warmup + steps):
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            loss.item()
            if k >= warmup:
                per_step.append(time.perf_counter() - t0)
    median = statistics.median(per_step)
    return {
        "batch": batch,
        "steps": steps,
        "per_step_seconds": per_step,
        "median_step_seconds": median,
        "samples_per_s": batch / median,
        "mean_samples_per_s": batch * steps / sum(per_step),
    }


def encode_torch(model: nn.Module, x: np.ndarray | torch.Tensor, *, batch_size: int = 1024) -> np.ndarray:
    """Latent codes of ``x`` as a float32 numpy array of shape (N, latent_dim).

    ``x`` is the encoder input (already standardised) in the JAX layout: NHWC images
    or (N, F) features. Runs in eval mode (BatchNorm running statistics, no dropout)
    without gradients, then restores the model's previous mode.
    """
    t = to_torch_layout(x)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = [model.encode(t[i:i + batch_size]) for i in range(0, t.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.latent_dim), np.float32)
