"""Table D1 models and the authors' AE2: parameter counts, shapes, size checks, and what training does to them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from icrst_jax.config import GridPoint, ModelConfig, TrainConfig
from icrst_jax.models import latent_dim, make_model
from icrst_jax.train import fit, reconstruct

# Structure tests run XLA's convolutions: test_conv.py compares the CPU path's
# formulations (icrst_jax.cpu_conv) with XLA's on these models' shapes.
STRUCTURE_CONV = "xla"


def inputs(shape) -> jax.Array:
    """Uniform [0, 1) test images from numpy (a threefry draw compiles once per shape),
    cast on the host (a float64 array cast by JAX compiles a convert per shape)."""
    return jnp.asarray(np.random.default_rng(1).uniform(size=shape).astype(np.float32))


def structure_variables(model, x, seed=0):
    """The variables of ``model.init`` on ``x`` -- its names, shapes and dtypes, taken
    abstractly (``jax.eval_shape``) -- with values drawn in numpy: weights U(+-1/sqrt(fan_in))
    like the models' own initialiser, BatchNorm's scale and statistics as a fresh init
    leaves them. Any values do for structure tests, and an init, eager or jitted,
    compiles a random draw per parameter shape (seconds per model; the engine's
    initialisation is tested in test_train.py)."""
    abstract = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, train=False))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("scale", "var"):
            value = np.ones(leaf.shape)
        elif name == "mean":
            value = np.zeros(leaf.shape)
        else:
            bound = 1.0 / np.sqrt(np.prod(leaf.shape[:-1]) if leaf.ndim > 1 else leaf.shape[0])
            value = rng.uniform(-bound, bound, leaf.shape)
        return np.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract)


def expected_conv_params(channels_in, enc, dec, kernel=3):
    """Table D1 by hand: conv weights + biases, BatchNorm scale + shift, a 1x1 head."""
    total, cin = 0, channels_in
    for c in list(enc) + list(dec):
        total += kernel * kernel * cin * c + c + 2 * c
        cin = c
    return total + cin * channels_in + channels_in


def expected_strided_params(channels_in):
    layers = [64, 64, 128, 128, 256, 256, 128, 128, 64]
    total, cin = 0, channels_in
    for c in layers:
        total += 9 * cin * c + c + 2 * c
        cin = c
    return total + 9 * cin * channels_in + channels_in  # last transposed conv, no BN


def expected_mlp_params(d):
    sizes = [d, 64, 8, 64, d]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def count(model, shape):
    variables = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, jnp.zeros((1, *shape)), train=False))
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(variables["params"]))


@pytest.mark.parametrize(
    "name, shape, expected",
    [
        ("conv", (28, 28, 1), expected_conv_params(1, [32, 64, 128, 256, 512], [512, 256, 128, 64, 32])),
        ("conv_strided", (32, 32, 3), expected_strided_params(3)),
        ("mlp", (30,), expected_mlp_params(30)),
    ],
)
def test_parameter_count_full_width(name, shape, expected):
    assert count(make_model(ModelConfig(name=name), shape), shape) == expected


def test_parameter_count_scales_with_width():
    m = make_model(ModelConfig(name="conv", width=0.25), (28, 28, 1))
    assert count(m, (28, 28, 1)) == expected_conv_params(1, [8, 16, 32, 64, 128], [128, 64, 32, 16, 8])


@pytest.mark.parametrize(
    "name, shape, latent",
    [("conv", (16, 16, 1), 512 // 16), ("conv", (13, 17, 2), 512 // 16), ("conv_strided", (32, 32, 3), 256 // 16),
     ("conv_strided", (16, 24, 3), 256 // 16), ("mlp", (30,), 8), ("authors_ae2", (9, 11, 2), 128 // 16)],
)
def test_shapes_and_latent(name, shape, latent):
    cfg = ModelConfig(name=name, width=1 / 16 if name != "mlp" else 1.0, conv_impl=STRUCTURE_CONV)
    model = make_model(cfg, shape)
    x = inputs((3, *shape))
    variables = structure_variables(model, x)
    # One compiled program (eager, each op of the model compiles on its own).
    recon, z, encoded = jax.jit(lambda v, x: (*model.apply(v, x, train=False), model.apply(v, x, method=model.encode)))(
        variables, x)
    assert recon.shape == x.shape and recon.dtype == jnp.float32
    assert ((np.asarray(recon) > 0) & (np.asarray(recon) < 1)).all()  # sigmoid output
    assert z.shape == (3, latent) == (3, latent_dim(cfg))
    # encode() is the same latent in inference mode.
    np.testing.assert_allclose(encoded, z, rtol=1e-6)


def test_size_and_width_errors():
    with pytest.raises(ValueError, match="at least 11x11"):
        make_model(ModelConfig(name="conv"), (8, 8, 1))
    with pytest.raises(ValueError, match="divisible by 8"):
        make_model(ModelConfig(name="conv_strided"), (30, 30, 3))
    with pytest.raises(ValueError, match="0 channels"):
        make_model(ModelConfig(name="conv", width=0.01), (28, 28, 1))
    with pytest.raises(ValueError, match="flat vectors"):
        make_model(ModelConfig(name="mlp"), (28, 28, 1))
    with pytest.raises(ValueError, match="unknown model"):
        ModelConfig(name="resnet")


def test_bfloat16_compute_keeps_float32_params():
    cfg = ModelConfig(name="conv", width=1 / 16, dtype="bfloat16", conv_impl=STRUCTURE_CONV)
    model = make_model(cfg, (12, 12, 1))
    x = inputs((2, 12, 12, 1))
    # The dtypes are those model.init gives (structure_variables keeps them).
    variables = structure_variables(model, x)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(variables))
    f32 = make_model(ModelConfig(name="conv", width=1 / 16, conv_impl=STRUCTURE_CONV), (12, 12, 1))
    recon, ref = jax.jit(lambda v, x: (model.apply(v, x, train=False)[0], f32.apply(v, x, train=False)[0]))(
        variables, x)
    assert recon.dtype == jnp.float32
    np.testing.assert_allclose(recon, ref, atol=3e-2)


def _three_digit_classes(n_per_class=60):
    """Digits 0, 1 and 7 of scikit-learn's 8x8 digits as 64-vectors in [0, 1]."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keep = np.concatenate([np.flatnonzero(y == c)[:n_per_class] for c in (0, 1, 7)])
    return (x[keep] / 16.0).astype(np.float32), y[keep]


def test_standard_loss_falls_and_icrst_output_approaches_class_mean():
    """Paper eq. 8: under ICRST (p=1) the optimum output is the class mean.

    The MLP on three digit classes: in ``standard`` mode the reconstruction
    loss falls; in ``icrst`` mode with p=1 the mean output of each class
    approaches that class's mean image, and every output lies much nearer its
    class mean than its own input. (The claim is about the loss, not the
    architecture; the conv models' training is tested in ``test_train.py``.)
    """
    x, y = _three_digit_classes()
    base = TrainConfig(epochs=40, batch_size=18, num_devices=1, learning_rate=3e-3, model=ModelConfig(name="mlp"))
    # Both runs in one program (the mode is data): one compilation.
    runs = fit(base, x, y, points=[GridPoint("standard", 0.0, 0), GridPoint("icrst", 1.0, 0)], progress=False)
    losses = [h["loss"][0] for h in runs.history]
    assert losses[-1] < 0.5 * losses[0], losses

    out_std, out = reconstruct(runs.engine, runs.state, x)
    class_mean = {c: x[y == c].mean(0) for c in np.unique(y)}
    mu = np.stack([class_mean[c] for c in y])
    between = np.mean([np.mean((class_mean[c] - x.mean(0)) ** 2) for c in class_mean])
    for c in class_mean:
        gap = np.mean((out[y == c].mean(0) - class_mean[c]) ** 2)
        # At initialisation the output is ~0.5 everywhere: gap >> between.
        assert gap < 0.25 * between, (c, gap, between)
    # Outputs collapse onto the class mean under ICRST, not under standard training.
    icrst_to_mean = np.mean((out - mu) ** 2)
    assert icrst_to_mean < 0.2 * np.mean((out - x) ** 2)
    assert icrst_to_mean < 0.5 * np.mean((out_std - mu) ** 2)


def test_dropout_rate_unbiased_and_deterministic_off():
    """Our 16-bit-draw dropout: drop fraction = rate (5 sigma), E[output] = input,
    identity when deterministic, a different key gives a different mask, and
    channel counts not divisible by 4 (the four 16-bit quarters of a hash are
    spread over channels) work."""
    from icrst_jax.models import Dropout

    x = jnp.ones((64, 9, 9, 33), jnp.float32)  # 33 channels: odd, exercises the slice
    layer = Dropout(0.2)
    drop = jax.jit(lambda x, key: layer.apply({}, x, rngs={"dropout": key}))  # one program for both keys
    y = drop(x, jax.random.key(0))
    dropped = np.asarray(y == 0)
    n = dropped.size
    frac = dropped.mean()
    assert abs(frac - 0.2) < 5 * np.sqrt(0.2 * 0.8 / n), frac
    # All four 16-bit quarters of each hash are used: the four channel groups
    # (9 + 9 + 9 + 6 channels) drop alike, and unlike each other (no copies).
    groups = [dropped[..., a:b] for a, b in ((0, 9), (9, 18), (18, 27), (27, 33))]
    for g in groups:
        assert abs(g.mean() - 0.2) < 0.02, [g.mean() for g in groups]
    assert all((groups[i][..., :6] != groups[j][..., :6]).mean() > 0.2 for i in range(4) for j in range(i + 1, 4))
    # Unbiased: survivors are scaled so the mean output equals the input.
    assert abs(float(y.mean()) - 1.0) < 5 * np.sqrt(0.2 / 0.8 / n)
    kept = np.asarray(y)[~dropped]
    np.testing.assert_allclose(kept, 65536 / (65536 - round(0.2 * 65536)), rtol=1e-6)
    y2 = drop(x, jax.random.key(1))
    assert (np.asarray(y2 == 0) != dropped).mean() > 0.2
    np.testing.assert_array_equal(Dropout(0.2, deterministic=True).apply({}, x), x)


def test_dropout_draws_are_the_halves_of_each_hash_word_in_order():
    """The draws split from each hash word by a bitcast are its low then its high 16 bits,
    b1's then b2's, in the channel order of the stored masks (the shifts' concatenation),
    jitted (where XLA picks the layout) and not, for any word count."""
    from icrst_jax.models import _four_draws

    rng = np.random.default_rng(1)
    for shape in ((5, 3, 1), (2, 7, 9)):
        b1, b2 = (jnp.asarray(rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)) for _ in range(2))
        want = np.concatenate([b1 & 0xFFFF, b1 >> 16, b2 & 0xFFFF, b2 >> 16], axis=-1)
        for got in (_four_draws(b1, b2), jax.jit(_four_draws)(b1, b2)):
            assert got.dtype == jnp.uint32
            np.testing.assert_array_equal(np.asarray(got), want)


def test_threefry2x32_is_jax_primitive_bit_for_bit():
    """Dropout's hash written out (constant rotations, for compile time) gives
    exactly JAX's ``threefry2x32_p``, jitted and not, so the masks, and every
    stored result that depends on them, are those of the primitive."""
    from jax.extend.random import threefry2x32_p

    from icrst_jax.models import threefry2x32

    rng = np.random.default_rng(0)
    for _ in range(3):
        k1, k2 = (np.uint32(v) for v in rng.integers(0, 2**32, 2, dtype=np.uint64))
        x1 = jnp.asarray(rng.integers(0, 2**32, (7, 33), dtype=np.uint64).astype(np.uint32))
        x2 = jax.lax.iota(jnp.uint32, 7 * 33).reshape(7, 33)
        want = threefry2x32_p.bind(k1, k2, x1, x2)
        for got in (threefry2x32(k1, k2, x1, x2), jax.jit(threefry2x32)(k1, k2, x1, x2)):
            for g, w in zip(got, want):
                np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    # And the known-answer vector of the Threefry paper (Random123), as JAX's own tests use.
    got = threefry2x32(np.uint32(0x13198A2E), np.uint32(0x03707344),
                       jnp.asarray([0x243F6A88], jnp.uint32), jnp.asarray([0x85A308D3], jnp.uint32))
    assert [int(g[0]) for g in got] == [0xC4923A9C, 0x483DF7A0]


def test_mlp_latent_size_sets_the_bottleneck_only():
    """``ModelConfig.latent_size``: the mlp's bottleneck apart from its width
    (a 1-unit code for 2-D toy data with 32-unit hidden layers)."""
    cfg = ModelConfig(name="mlp", width=0.5, latent_size=1)
    model = make_model(cfg, (2,))
    x = inputs((5, 2))
    variables = structure_variables(model, x)
    shapes = [v.shape for v in jax.tree_util.tree_leaves(variables["params"]) if v.ndim == 2]
    assert sorted(shapes) == sorted([(2, 32), (32, 1), (1, 32), (32, 2)])
    recon, z = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    assert recon.shape == (5, 2) and z.shape == (5, 1) and latent_dim(cfg) == 1
    # Unset, the bottleneck follows the width (Table D1: 8 units at width 1).
    assert latent_dim(ModelConfig(name="mlp", width=0.5)) == 4
    assert latent_dim(ModelConfig(name="mlp")) == 8
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="latent_size must be"):
            ModelConfig(name="mlp", latent_size=bad)
        with pytest.raises(ValueError, match="latent_size must be"):
            ModelConfig(name="conv", latent_size=bad)
    # Round-trips through the config's dict form (checkpoint metadata).
    tc = TrainConfig(model=cfg)
    assert TrainConfig.from_dict(tc.to_dict()).model == cfg


@pytest.mark.parametrize(
    "name, shape, enc, dec",
    [
        ("conv", (14, 14, 1), [8, 16, 32, 64, 3], [3, 64, 32, 16, 8]),
        ("authors_ae2", (12, 12, 1), [8, 16, 3], [3, 16, 8]),
    ],
)
def test_conv_latent_size_sets_last_encoder_and_first_decoder_block(name, shape, enc, dec):
    """``latent_size`` on a conv model: the last encoder block's channels (what
    the global average pool returns) and the mirrored first decoder block, the
    other layers keeping ``width``; the parameters are those of that network."""
    cfg = ModelConfig(name=name, width=0.25, latent_size=3, conv_impl=STRUCTURE_CONV)
    model = make_model(cfg, shape)
    assert count(model, shape) == expected_conv_params(1, enc, dec)
    x = inputs((2, *shape))
    variables = structure_variables(model, x)
    (recon, z), state = jax.jit(lambda v, x: model.apply(v, x, train=False, capture_intermediates=True))(variables, x)
    assert recon.shape == x.shape and z.shape == (2, 3) and latent_dim(cfg) == 3
    # The latent is the global average of the last encoder block's map.
    last = state["intermediates"][f"enc_{len(enc) - 1}"]["__call__"][0]
    assert last.shape[-1] == 3
    np.testing.assert_allclose(z, np.asarray(last).mean(axis=(1, 2)), rtol=1e-5)


def test_strided_latent_size():
    cfg = ModelConfig(name="conv_strided", width=0.25, latent_size=5)
    model = make_model(cfg, (16, 16, 3))
    enc, dec = [16, 16, 32, 32, 5], [5, 32, 32, 16]
    total, cin = 0, 3
    for c in enc + dec:
        total += 9 * cin * c + 3 * c
        cin = c
    assert count(model, (16, 16, 3)) == total + 9 * cin * 3 + 3
    assert latent_dim(cfg) == 5


# The authors' AE2 (GabMartino/icrst_trst_autoencoder, src/models/AE2.py with
# configs/config.yaml: hidden_dims [32, 64, 128], kernels 3, strides 1, no
# pooling) counts these trainable parameters in PyTorch
# (sum(p.numel() for p in AE2(...).parameters())), for 1 and 3 input channels.
AUTHORS_AE2_TORCH_PARAMS = {1: 333_441, 3: 334_083}


def expected_authors_ae2_params(c):
    """AE2.py by hand, layer by layer as PyTorch holds them: Conv2d (out, in, 3, 3)
    + bias, BatchNorm2d weight + bias; ConvTranspose2d (in, out, 3, 3) + bias;
    the final 1x1 Conv2d to ``c`` channels."""
    enc = [(c, 32), (32, 64), (64, 128)]
    dec = [(128, 128), (128, 64), (64, 32)]  # decoder_hidden_dims [128, 128, 64, 32]
    blocks = sum(i * o * 9 + o + 2 * o for i, o in enc + dec)
    return blocks + 32 * c + c


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_authors_ae2_parameters_and_shapes(shape):
    """MNIST-like and CIFAR-like inputs: the PyTorch module's parameter count,
    the input's shape back, a 128-wide latent, and PyTorch's layer shapes."""
    c = shape[-1]
    cfg = ModelConfig(name="authors_ae2", conv_impl=STRUCTURE_CONV)
    model = make_model(cfg, shape)
    assert count(model, shape) == expected_authors_ae2_params(c) == AUTHORS_AE2_TORCH_PARAMS[c]
    x = inputs((2, *shape))
    variables = structure_variables(model, x)
    (recon, z), state = jax.jit(lambda v, x: model.apply(v, x, train=False, capture_intermediates=True))(variables, x)
    assert recon.shape == x.shape and ((np.asarray(recon) > 0) & (np.asarray(recon) < 1)).all()
    assert z.shape == (2, 128) == (2, latent_dim(cfg))
    kernels = {k: v["Conv_0"]["kernel"].shape for k, v in variables["params"].items() if k != "head"}
    assert kernels == {"enc_0": (3, 3, c, 32), "enc_1": (3, 3, 32, 64), "enc_2": (3, 3, 64, 128),
                       "dec_0": (3, 3, 128, 128), "dec_1": (3, 3, 128, 64), "dec_2": (3, 3, 64, 32)}
    assert variables["params"]["head"]["kernel"].shape == (1, 1, 32, c)
    # Unpadded 3x3 layers: the encoder's map is 6 pixels smaller per side.
    assert state["intermediates"]["enc_2"]["__call__"][0].shape == (2, shape[0] - 6, shape[1] - 6, 128)


def test_authors_ae2_dropout_half_after_every_block():
    """nn.Dropout() of AE2: rate 0.5 by default (Table D1 models keep 0.2), after
    the LeakyReLU of every encoder and decoder block, off in inference."""
    assert ModelConfig(name="authors_ae2").dropout_rate == 0.5
    assert ModelConfig(name="conv").dropout_rate == 0.2
    assert ModelConfig(name="authors_ae2", dropout=0.1).dropout_rate == 0.1
    shape = (12, 12, 1)
    model = make_model(ModelConfig(name="authors_ae2", width=0.25, conv_impl=STRUCTURE_CONV), shape)
    x = inputs((16, *shape))
    variables = structure_variables(model, x)

    @jax.jit
    def train_and_inference(v, x, key):
        (_, _), train = model.apply(v, x, train=True, rngs={"dropout": key}, capture_intermediates=True,
                                    mutable=["batch_stats", "intermediates"])
        return train, model.apply(v, x, train=False, capture_intermediates=True)[1]

    state, inference = train_and_inference(variables, x, jax.random.key(2))
    for name in ("enc_0", "enc_1", "enc_2", "dec_0", "dec_1", "dec_2"):
        out = np.asarray(state["intermediates"][name]["__call__"][0])
        # A LeakyReLU output is exactly zero only where dropout zeroed it.
        assert abs((out == 0).mean() - 0.5) < 0.05, (name, (out == 0).mean())
    assert all((np.asarray(inference["intermediates"][n]["__call__"][0]) != 0).all() for n in ("enc_0", "dec_2"))


def test_authors_ae2_too_small_input():
    make_model(ModelConfig(name="authors_ae2"), (7, 7, 1))
    with pytest.raises(ValueError, match="3 unpadded 3x3 convolutions and needs inputs of at least 7x7"):
        make_model(ModelConfig(name="authors_ae2"), (6, 9, 1))


def test_dropout_none_keeps_fingerprints():
    """A None dropout is the model's rate in a study's fingerprint, so folders
    of studies written when the field defaulted to 0.2 stay theirs."""
    from icrst_jax.config import DataConfig, StudyConfig
    from icrst_jax.run_identity import fingerprint, train_fingerprint

    study = StudyConfig(data=DataConfig(name="digits"), train=TrainConfig(model=ModelConfig(name="conv")))
    explicit = study.replace(train=TrainConfig(model=ModelConfig(name="conv", dropout=0.2)))
    assert fingerprint(study) == fingerprint(explicit) and fingerprint(study)["train.model.dropout"] == 0.2
    authors = study.replace(train=TrainConfig(model=ModelConfig(name="authors_ae2")))
    assert fingerprint(authors)["train.model.dropout"] == 0.5
    # And a bare fit's fingerprint (checkpoint metadata) the same way.
    points = [GridPoint("standard", 0.0, 0)]
    assert (train_fingerprint(TrainConfig(model=ModelConfig(name="conv")), points)
            == train_fingerprint(TrainConfig(model=ModelConfig(name="conv", dropout=0.2)), points))


def test_authors_ae2_matches_pytorch_module():
    """Layer for layer the network of AE2.py in PyTorch (transcribed from the
    module it builds with the authors' config; Lightning left out): with the
    same weights and BatchNorm statistics, the same reconstruction and latent
    in inference mode. Runs where torch is installed."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(0)
    c, size = 3, 14

    def block(conv, out):
        return tnn.Sequential(conv, tnn.BatchNorm2d(out), tnn.LeakyReLU())

    encoder = [block(tnn.Conv2d(i, o, 3, 1), o) for i, o in ((c, 32), (32, 64), (64, 128))]
    decoder = [block(tnn.ConvTranspose2d(i, o, 3, 1, padding=0, output_padding=0), o)
               for i, o in ((128, 128), (128, 64), (64, 32))]
    head = tnn.Conv2d(32, c, kernel_size=1)
    for m in encoder + decoder:
        bn = m[1]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    # Dropout is the identity in eval mode; the torch order is AE2's.
    net = tnn.Sequential(*[tnn.Sequential(b, tnn.Dropout()) for b in encoder + decoder], head, tnn.Sigmoid()).eval()
    x = torch.rand(4, c, size, size)
    with torch.no_grad():
        want = net(x).numpy().transpose(0, 2, 3, 1)
        want_z = tnn.Sequential(*net[:3])(x).mean(dim=(2, 3)).numpy()  # AvgPool2d over the whole map

    a = lambda t: jnp.asarray(t.detach().numpy())  # noqa: E731
    params, stats = {}, {}
    for name, m, perm in [(f"enc_{i}", b, (2, 3, 1, 0)) for i, b in enumerate(encoder)] + \
                         [(f"dec_{i}", b, (2, 3, 0, 1)) for i, b in enumerate(decoder)]:
        conv, bn = m[0], m[1]
        params[name] = {"Conv_0": {"kernel": a(conv.weight.permute(*perm)), "bias": a(conv.bias)},
                        "BatchNorm_0": {"scale": a(bn.weight), "bias": a(bn.bias)}}
        stats[name] = {"BatchNorm_0": {"mean": a(bn.running_mean), "var": a(bn.running_var)}}
    params["head"] = {"kernel": a(head.weight.permute(2, 3, 1, 0)), "bias": a(head.bias)}
    model = make_model(ModelConfig(name="authors_ae2", conv_impl="xla"), (size, size, c))
    recon, z = model.apply({"params": params, "batch_stats": stats}, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)),
                           train=False)
    np.testing.assert_allclose(recon, want, atol=1e-6)
    np.testing.assert_allclose(z, want_z, atol=1e-6)
