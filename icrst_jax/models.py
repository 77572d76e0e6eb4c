"""The paper's autoencoders (Table D1) and the authors' own network, in Flax Linen.

* ``conv`` (MNIST, Fashion-MNIST): five unpadded 3x3 stride-1 convolutions
  [32, 64, 128, 256, 512] shrink 28x28 to 18x18; five unpadded 3x3 stride-1
  transposed convolutions [512, 256, 128, 64, 32] grow it back; a final 1x1
  convolution maps to the input channels, then a sigmoid. Inputs must be at
  least 11x11 (each unpadded 3x3 layer removes two pixels).
* ``conv_strided`` (CIFAR-10, Caltech101): encoder [64, 64, 128, 128, 256]
  with strides [2, 1, 2, 1, 2] and padding 1; decoder [256 (transposed),
  128, 128 (transposed), 64, C (transposed)] with the same strides, padding 1
  and output padding 1 on the transposed layers, then a sigmoid. Spatial sizes
  must be multiples of 8.
* ``mlp`` (Breast Cancer): [64, 8] encoder, [8 -> 64, 64 -> D] decoder,
  LeakyReLU, sigmoid output; the latent is the 8-unit bottleneck
  (``ModelConfig.latent_size`` sets its size apart from the width).
* ``authors_ae2`` (the authors' code, GabMartino/icrst_trst_autoencoder,
  ``src/models/AE2.py`` built from their ``configs/config.yaml``: hidden_dims
  [32, 64, 128], kernels 3, strides 1, ``pooling: False``): three unpadded
  3x3 stride-1 convolutions [32, 64, 128]; three unpadded 3x3 stride-1
  transposed convolutions [128, 64, 32] (their decoder's first block repeats
  the encoder's last width); a 1x1 convolution to the input channels, then a
  sigmoid. Every block is conv -> BatchNorm -> LeakyReLU -> Dropout
  (``nn.Dropout()``: rate 0.5, the default of ``ModelConfig.dropout`` for this
  model), the latent the global average pool of the encoder's output (their
  ``getLatentVector``), and the decoder reads the unpooled map, as in their
  ``forward``. Their unused ``latent_space_size: 512`` sets nothing. Inputs
  must be at least 7x7.

``ModelConfig.latent_size`` replaces the bottleneck's width in every model:
the MLP's bottleneck units, or a conv model's last encoder block and the
decoder's first block that mirrors it (see :func:`layer_channels`).

Every hidden conv layer is conv -> BatchNorm -> LeakyReLU -> Dropout, as in
Table D1. The latent feature of a conv model is the global average pool of the
encoder's last feature map (section 6).

Initialisation follows PyTorch's defaults (the authors' framework): weights and
biases uniform in +-1/sqrt(fan_in), BatchNorm momentum 0.1 and epsilon 1e-5, so
that the reproduction starts where theirs did.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.conv import convolution
from icrst_jax.config import ModelConfig
from icrst_jax.data.registry import MIN_IMAGE_SIZE, STRIDED_MULTIPLE

CONV_ENCODER = (32, 64, 128, 256, 512)
CONV_DECODER = (512, 256, 128, 64, 32)
STRIDED_ENCODER = (64, 64, 128, 128, 256)
STRIDED_STRIDES = (2, 1, 2, 1, 2)
# (channels, transposed?) of the conv_strided decoder; the last layer's
# channels are the input's (None).
STRIDED_DECODER = ((256, True), (128, False), (128, True), (64, False), (None, True))
MLP_ENCODER = (64, 8)
MLP_DECODER = (64,)
# The authors' AE2 (see the module docstring): decoder_hidden_dims = hidden_dims
# + [hidden_dims[-1]], reversed, gives transposed blocks 128->128, 128->64, 64->32.
AUTHORS_ENCODER = (32, 64, 128)
AUTHORS_DECODER = (128, 64, 32)
# Unpadded 3x3 layers remove two pixels each: the smallest side that leaves one.
AUTHORS_MIN_IMAGE_SIZE = 2 * len(AUTHORS_ENCODER) + 1
# ``conv_tiny``, for tests only: the ``conv`` model cut to one block each way
# (conv -> BatchNorm -> LeakyReLU -> Dropout, its transposed twin, the 1x1 head).
# It has every kind of layer and state the conv has (BatchNorm statistics,
# dropout masks, the CPU convolutions) and compiles in a fraction of its time.
TINY_CONV = ((32,), (32,))
# The models built from stride-1 conv blocks: (encoder, decoder) channels at width 1.
CONV_LAYERS = {"conv": (CONV_ENCODER, CONV_DECODER), "conv_tiny": TINY_CONV,
               "authors_ae2": (AUTHORS_ENCODER, AUTHORS_DECODER)}


def scaled_channels(channels: int, width: float, where: str) -> int:
    """``round(channels * width)``, refusing a layer with no channels."""
    n = int(round(channels * width))
    if n < 1:
        raise ValueError(
            f"width {width} leaves {where} ({channels} channels at width 1) with {n} channels; "
            f"use width >= {0.5 / channels:.3g}"
        )
    return n


def _torch_uniform(fan_in: int):
    """PyTorch's default init for conv/linear weights and biases: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Conv(nn.Module):
    """3x3 (or kxk) convolution or transposed convolution with a bias, NHWC.

    Computed by ``config.conv_impl`` (see :func:`convolution`), in ``config.dtype``.
    """

    features: int
    config: ModelConfig
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0
    transpose: bool = False
    output_padding: int = 0

    @nn.compact
    def __call__(self, x):
        cin = x.shape[-1]
        k = self.kernel_size
        # PyTorch computes fan_in from weight.size(1) * k * k, which for a
        # ConvTranspose2d weight (Cin, Cout, k, k) is Cout * k * k.
        fan_in = (self.features if self.transpose else cin) * k * k
        w = self.param("kernel", _torch_uniform(fan_in), (k, k, cin, self.features), jnp.float32)
        b = self.param("bias", _torch_uniform(fan_in), (self.features,), jnp.float32)
        dt = _dtype(self.config)
        y = convolution(self.config.conv_impl, x.astype(dt), w.astype(dt), stride=self.stride, padding=self.padding,
                        transpose=self.transpose, output_padding=self.output_padding)
        return y + b.astype(y.dtype)


class Dense(nn.Module):
    """Linear layer with PyTorch's default initialisation."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        w = self.param("kernel", _torch_uniform(fan_in), (fan_in, self.features), jnp.float32)
        b = self.param("bias", _torch_uniform(fan_in), (self.features,), jnp.float32)
        y = jnp.dot(x.astype(self.dtype), w.astype(self.dtype), preferred_element_type=jnp.float32)
        return (y + b).astype(self.dtype)


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds), bit for bit ``threefry2x32_p.bind(k1, k2, x1, x2)``.

    JAX lowers its primitive on a CPU as a loop of five iterations whose
    rotation amounts are loop-carried values; XLA compiles each iteration's
    fusion, with variable shifts, into very large machine code, and with one
    such loop per dropout layer the hashes were a large share of the narrow
    conv epoch's compile time (BENCHMARKS.md, "Cold start"). Written out with
    constant rotations it is one small elementwise fusion per use.
    """
    rotl = lambda v, r: (v << np.uint32(r)) | (v >> np.uint32(32 - r))  # noqa: E731
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ rotl(x2, r)
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _four_draws(b1, b2):
    """The 16-bit draws of the hash words ``b1, b2 (..., W)``: ``(..., 4W)``, the low then the
    high halves of ``b1``, then those of ``b2`` (``concatenate([b1 & 0xFFFF, b1 >> 16, ...])``).

    Split by a bitcast to uint16 rather than by shifts: XLA fuses shifts of the words into
    their consumer and so hashes each word again for each of its four draws, with
    the mask's select around it; a bitcast is not fused, so each word is hashed once
    (the narrow conv's dropout 3-4x faster on a CPU, the same bits:
    BENCHMARKS.md, "Measurements behind code choices").
    """
    # (..., 2 words, W, 2 halves), the low half first (tests/test_models.py checks the order);
    # back to uint32, as the shifts gave them: Dropout's threshold can be 65536.
    halves = jax.lax.bitcast_convert_type(jnp.stack([b1, b2], axis=-2), jnp.uint16)
    halves = jnp.swapaxes(halves, -1, -2).astype(jnp.uint32)
    return halves.reshape(b1.shape[:-1] + (4 * b1.shape[-1],))


class Dropout(nn.Module):
    """Inverted dropout whose mask costs a quarter of the hashes of ``nn.Dropout``.

    ``nn.Dropout`` draws a float32 uniform per activation: one threefry-2x32
    hash each, of whose 64 output bits ``jax.random.bits`` keeps 32 (the two
    words XOR-ed). On a CPU those hashes dominated the narrow conv model's
    training step (BENCHMARKS.md, "Measurements behind code choices").
    Here each hash's two 32-bit words give four 16-bit draws, so the hash runs
    once per four activations, on the same counters as ``jax.random.bits``
    (the flat index), with the same hash (:func:`threefry2x32`, JAX's
    ``threefry2x32_p`` written out): the masks are exact under ``vmap`` over
    seeds and under any sharding, as the engine's tests check (``unsafe_rbg``
    was faster still but gives different masks under ``vmap``).

    An element is dropped when its draw is below ``t = round(rate * 65536)``:
    the drop probability is ``t / 65536`` (0.2 -> 0.199997), and survivors are
    scaled by ``65536 / (65536 - t)`` so the output is unbiased exactly.
    """

    rate: float
    deterministic: bool = False

    @nn.compact
    def __call__(self, x):
        if self.deterministic or self.rate == 0.0:
            return x
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {self.rate}")
        t = int(round(self.rate * 65536))
        c = x.shape[-1]
        shape = x.shape[:-1] + (-(-c // 4),)
        n = math.prod(shape)
        if n >= 2**32:
            raise ValueError(f"dropout over {n} words exceeds the 32-bit counter")
        key = jax.random.key_data(self.make_rng("dropout"))
        if key.shape[-1] != 2:
            raise ValueError("Dropout needs threefry keys (jax_default_prng_impl = 'threefry2x32')")
        counters = jax.lax.iota(jnp.uint32, n).reshape(shape)
        b1, b2 = threefry2x32(key[0], key[1], jnp.zeros(shape, jnp.uint32), counters)
        draws = _four_draws(b1, b2)[..., :c]
        scale = jnp.asarray(65536.0 / (65536 - t), x.dtype)
        return jnp.where(draws >= t, x * scale, jnp.zeros((), x.dtype))


class Block(nn.Module):
    """conv -> BatchNorm -> LeakyReLU -> Dropout (Table D1)."""

    features: int
    config: ModelConfig
    stride: int = 1
    padding: int = 0
    transpose: bool = False

    @nn.compact
    def __call__(self, x, *, train: bool, mask=None):
        x = Conv(
            self.features,
            self.config,
            stride=self.stride,
            padding=self.padding,
            transpose=self.transpose,
            # Table D1: output padding 1 on the strided transposed layers.
            output_padding=1 if (self.transpose and self.stride > 1) else 0,
        )(x)
        if self.config.batch_norm:
            # Statistics in float32 even under bf16 compute; the mask keeps the
            # padded rows of a ragged last batch out of the batch statistics.
            x = nn.BatchNorm(
                use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=jnp.float32, param_dtype=jnp.float32
            )(x, mask=mask)
        x = nn.leaky_relu(x, self.config.negative_slope)
        if self.config.dropout_rate > 0:
            x = Dropout(self.config.dropout_rate, deterministic=not train)(x)
        return x.astype(_dtype(self.config))


def _dtype(cfg: ModelConfig):
    return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


class AutoEncoder(nn.Module):
    """A Table D1 autoencoder, or the authors' ``AE2``.

    ``__call__(x, train=..., mask=None)`` returns ``(reconstruction, latent)``:
    the reconstruction has the input's shape (float32, in (0, 1) from the
    sigmoid); the latent is (B, D) with D = :func:`latent_dim` (512*width for
    ``conv``, 256*width for ``conv_strided``, 8*width for ``mlp``, 128*width
    for ``authors_ae2``, or ``latent_size``). ``mask`` (B,) marks the real rows
    of a padded batch for BatchNorm statistics.

    Example:
      >>> model = make_model(ModelConfig(name="conv", width=0.25), (28, 28, 1))
      >>> variables = model.init({"params": key}, jnp.zeros((2, 28, 28, 1)), train=False)
      >>> recon, latent = model.apply(variables, x, train=False)   # latent (B, 128)
    """

    config: ModelConfig
    input_shape: tuple[int, ...]

    def setup(self):
        cfg, dt = self.config, _dtype(self.config)
        out_ch = self.input_shape[-1]
        enc, dec = layer_channels(cfg)
        if cfg.name in CONV_LAYERS:
            self.enc = [Block(c, cfg) for c in enc]
            self.dec = [Block(c, cfg, transpose=True) for c in dec]
            self.head = Conv(out_ch, cfg, kernel_size=1)
        elif cfg.name == "conv_strided":
            self.enc = [Block(c, cfg, stride=s, padding=1) for c, s in zip(enc, STRIDED_STRIDES)]
            self.dec = [
                Block(c, cfg, stride=s, padding=1, transpose=t)
                for c, (_, t), s in zip(dec, STRIDED_DECODER[:-1], STRIDED_STRIDES[:-1])
            ]
            # The last transposed layer maps to the input channels and meets the
            # sigmoid directly (no BatchNorm / activation / dropout).
            self.head = Conv(out_ch, cfg, stride=2, padding=1, transpose=True, output_padding=1)
        else:  # mlp
            self.enc = [Dense(n, dtype=dt) for n in enc]
            self.dec = [Dense(n, dtype=dt) for n in dec]
            self.head = Dense(out_ch, dtype=dt)

    def _run(self, layers: Sequence[nn.Module], x, train, mask, *, linear_last: bool = False):
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense):
                x = layer(x)
                if not (linear_last and i == len(layers) - 1):
                    x = nn.leaky_relu(x, self.config.negative_slope)
            else:
                x = layer(x, train=train, mask=mask)
        return x

    def _encode(self, x, train, mask):
        # The MLP's 8-unit bottleneck is linear unless latent_activation is set:
        # a LeakyReLU there leaves most latent units near zero (dead) after
        # training, which starves the downstream classifiers.
        linear = self.config.name == "mlp" and not self.config.latent_activation
        return self._run(self.enc, x, train, mask, linear_last=linear)

    def features(self, h):
        """The latent: global average pool for conv models, the bottleneck for the MLP."""
        if h.ndim == 4:
            return jnp.mean(h.astype(jnp.float32), axis=(1, 2))
        return h.astype(jnp.float32)

    def _bn_mask(self, x, mask):
        if mask is None:
            return None
        return mask.reshape(mask.shape + (1,) * (x.ndim - 1))

    def __call__(self, x, *, train: bool, mask=None):
        m = self._bn_mask(x, mask)
        h = self._encode(x, train, m)
        y = self._run(self.dec, h, train, m)
        y = jax.nn.sigmoid(self.head(y).astype(jnp.float32))
        return y, self.features(h)

    def encode(self, x):
        """The latent feature of ``x`` in inference mode (running BatchNorm statistics)."""
        return self.features(self._encode(x, False, None))


def make_model(config: ModelConfig, input_shape: Sequence[int]) -> AutoEncoder:
    """Builds the autoencoder ``config.name`` for per-sample ``input_shape`` (no batch axis).

    Checks the input fits the architecture: ``conv`` needs at least 11x11
    images, ``authors_ae2`` 7x7, ``conv_strided`` sizes divisible by 8, ``mlp``
    a flat vector.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if config.name != "mlp":
        if len(input_shape) != 3:
            raise ValueError(f"model {config.name!r} needs images (H, W, C), got per-sample shape {input_shape}")
        h, wd, _ = input_shape
        unpadded = {"conv": (len(CONV_ENCODER), MIN_IMAGE_SIZE), "authors_ae2": (len(AUTHORS_ENCODER), AUTHORS_MIN_IMAGE_SIZE)}
        if config.name in unpadded and min(h, wd) < unpadded[config.name][1]:
            n, least = unpadded[config.name]
            raise ValueError(f"model {config.name!r} stacks {n} unpadded 3x3 convolutions and needs inputs of at least "
                             f"{least}x{least}, got {h}x{wd}")
        if config.name == "conv_strided" and (h % STRIDED_MULTIPLE or wd % STRIDED_MULTIPLE):
            raise ValueError(f"model 'conv_strided' downsamples by {STRIDED_MULTIPLE} and needs sizes divisible by "
                             f"{STRIDED_MULTIPLE}, got {h}x{wd}")
    elif len(input_shape) != 1:
        raise ValueError(f"model 'mlp' needs flat vectors (D,), got per-sample shape {input_shape}")
    model = AutoEncoder(config, input_shape)
    # Validate the width now (a clear error instead of one deep inside init).
    check_widths(config)
    return model


def layer_channels(cfg: ModelConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Output channels (units for ``mlp``) of the encoder's and the decoder's
    hidden layers, before the head that maps back to the input's channels.

    The architecture's widths times ``cfg.width``, rounded; a set
    ``cfg.latent_size`` replaces the bottleneck: the encoder's last layer and,
    in the conv models, the decoder's first, which mirrors it (the MLP's
    decoder starts from the bottleneck units themselves).

    Raises:
      ValueError: the width rounds a layer to zero channels.

    Example:
      >>> layer_channels(ModelConfig(name="authors_ae2", width=0.25, latent_size=4))
      ((8, 16, 4), (4, 16, 8))
    """
    enc, dec = {
        **CONV_LAYERS,
        "conv_strided": (STRIDED_ENCODER, tuple(c for c, _ in STRIDED_DECODER[:-1])),
        "mlp": (MLP_ENCODER, MLP_DECODER),
    }[cfg.name]
    latent = cfg.latent_size
    enc_out = tuple(
        int(latent) if latent is not None and i == len(enc) - 1 else scaled_channels(c, cfg.width, f"encoder layer {i}")
        for i, c in enumerate(enc)
    )
    mirrors = cfg.name != "mlp"
    dec_out = tuple(
        int(latent) if latent is not None and mirrors and i == 0 else scaled_channels(c, cfg.width, f"decoder layer {i}")
        for i, c in enumerate(dec)
    )
    return enc_out, dec_out


def check_widths(cfg: ModelConfig):
    """Raises ``ValueError`` when ``cfg.width`` rounds a layer to zero channels."""
    layer_channels(cfg)


def latent_dim(config: ModelConfig) -> int:
    """Size of the latent feature vector: the bottleneck's width."""
    return layer_channels(config)[0][-1]
