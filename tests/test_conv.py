"""The convolutions of every ``ModelConfig.conv_impl`` (the CPU path of icrst_jax.cpu_conv,
XLA's, and im2col patches times a matrix), values and gradients.

References are independent of the code under test: numpy float64 loops over
the kernel taps (the definition of a correlation, and the scatter-add
definition of a transposed convolution), with hand-derived gradients.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from icrst_jax import cpu_conv
from icrst_jax.config import CONV_IMPLS, ModelConfig
from icrst_jax.conv import convolution, resolve_conv_impl

IMPLS = ("xla", "cpu", "matmul")
# Max error relative to the largest output, against float64. Direct float32
# sums land near 3e-7 on these sizes; Winograd F(4x4, 3x3) near 2e-6.
TOL = 5e-6


# ----------------------------------------------------------------------------
# float64 numpy references
# ----------------------------------------------------------------------------
def np_conv2d(x, w, s, p):
    """Correlation, PyTorch Conv2d semantics, NHWC/HWIO: value and its VJP."""
    kh, kw, _, _ = w.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    ho, wo = (xp.shape[1] - kh) // s + 1, (xp.shape[2] - kw) // s + 1
    y = np.zeros((x.shape[0], ho, wo, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s]
            y += np.einsum("bhwc,co->bhwo", win, w[i, j])

    def vjp(ct):
        dxp = np.zeros_like(xp)
        dw = np.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                sl = (slice(None), slice(i, i + s * (ho - 1) + 1, s), slice(j, j + s * (wo - 1) + 1, s))
                dw[i, j] = np.einsum("bhwc,bhwo->co", xp[sl], ct)
                dxp[sl] += np.einsum("bhwo,co->bhwc", ct, w[i, j])
        return dxp[:, p : p + x.shape[1], p : p + x.shape[2]], dw

    return y, vjp


def np_conv_transpose2d(x, w, s, p, op):
    """Scatter-add definition of torch's conv_transpose2d, NHWC, w[i,j,ci,co] = torch_w[ci,co,i,j]."""
    b, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    zh, zw = (h - 1) * s + kh, (wd - 1) * s + kw  # uncropped
    ho, wo = zh - 2 * p + op, zw - 2 * p + op
    z = np.zeros((b, max(zh, p + ho), max(zw, p + wo), co))
    for i in range(kh):
        for j in range(kw):
            # every input pixel (y, x) adds x[y, x] @ w[i, j] at (s*y + i, s*x + j)
            z[:, i : i + s * (h - 1) + 1 : s, j : j + s * (wd - 1) + 1 : s] += np.einsum("bhwc,co->bhwo", x, w[i, j])
    y = z[:, p : p + ho, p : p + wo]

    def vjp(ct):
        ctz = np.zeros_like(z)
        ctz[:, p : p + ho, p : p + wo] = ct
        dx = np.zeros_like(x)
        dw = np.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                c = ctz[:, i : i + s * (h - 1) + 1 : s, j : j + s * (wd - 1) + 1 : s]
                dx += np.einsum("bhwo,co->bhwc", c, w[i, j])
                dw[i, j] = np.einsum("bhwc,bhwo->co", x, c)
        return dx, dw

    return y, vjp


def _rand(seed, shape, dtype=jnp.float32, scale=1.0):
    # Gaussians: no zeros, no structure for a wrong formula to hide in. numpy's
    # generator, because jax.random compiles anew for every shape (seconds each);
    # scaled and cast on the host, because JAX compiles each op on a new shape.
    return jnp.asarray((np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _value_and_grads(fn, x, w, ct):
    """(y, dx, dw) of ``fn`` at (x, w) for the cotangent ``ct``, compiled as one program."""

    def f(x, w, ct):
        y, vjp = jax.vjp(fn, x, w)
        return (y, *vjp(ct))

    return jax.jit(f)(x, w, ct)


def _conv_fn(impl, transpose, s, p, op):
    """``convolution`` with these settings as a function of (x, w)."""
    return functools.partial(convolution, impl, transpose=transpose, stride=s, padding=p,
                             **({"output_padding": op} if transpose else {}))


@functools.cache
def _shared_vg(impl, transpose, s, p, op):
    """(x, w, ct) -> (y, dx, dw), one jitted function per setting: tests of the same
    setting, shapes and dtypes share its compiled program. Never under a monkeypatched
    ``cpu_conv`` (a cached trace would not see the patch): those tests use
    :func:`_value_and_grads`."""
    fn = _conv_fn(impl, transpose, s, p, op)

    def f(x, w, ct):
        y, vjp = jax.vjp(fn, x, w)
        return (y, *vjp(ct))

    return jax.jit(f)


# (B, H, W, Cin), (kh, kw, Cout), stride, padding: the shapes the models use
# (3x3 s1 p0; 3x3 s2/s1 p1; the 1x1 head), non-square, odd sizes, one channel,
# channel counts on both sides of the im2col/Winograd switch.
CONV_CASES = [
    ((2, 9, 7, 3), (3, 3, 5), 1, 0),
    ((2, 12, 10, 8), (3, 3, 16), 1, 0),
    ((3, 11, 8, 1), (3, 3, 8), 1, 0),
    ((2, 8, 6, 6), (3, 3, 4), 1, 1),
    ((2, 7, 9, 5), (3, 3, 7), 1, 1),
    ((2, 8, 8, 4), (3, 3, 6), 2, 1),
    ((2, 9, 6, 3), (3, 3, 5), 2, 1),
    ((2, 10, 7, 6), (3, 3, 4), 2, 0),
    ((2, 7, 5, 8), (1, 1, 3), 1, 0),
]
# (B, H, W, Cin), (kh, kw, Cout), stride, padding, output_padding
CONVT_CASES = [
    ((2, 7, 5, 4), (3, 3, 6), 1, 0, 0),
    ((2, 6, 9, 16), (3, 3, 8), 1, 0, 0),
    ((2, 5, 5, 8), (3, 3, 1), 1, 0, 0),
    ((2, 6, 5, 5), (3, 3, 4), 1, 1, 0),
    ((2, 4, 5, 6), (3, 3, 4), 2, 1, 1),
    ((2, 5, 3, 3), (3, 3, 7), 2, 1, 1),
    ((2, 4, 4, 5), (3, 3, 3), 2, 1, 0),
    ((2, 4, 6, 4), (3, 3, 5), 2, 0, 1),
]


def _impl_cases(cases):
    """The CPU and matmul paths on every case; the XLA reference (its
    padding/dilation set-up is under test too) on every other one, for time."""
    return [(impl, *c) for i, c in enumerate(cases) for impl in IMPLS if impl != "xla" or i % 2 == 0]


@pytest.mark.parametrize("impl,xs,ks,s,p", _impl_cases(CONV_CASES))
def test_conv2d_matches_numpy(impl, xs, ks, s, p):
    x = _rand(0, xs)
    w = _rand(1, (ks[0], ks[1], xs[3], ks[2]))
    y_ref, vjp = np_conv2d(np.asarray(x, np.float64), np.asarray(w, np.float64), s, p)
    ct = _rand(2, y_ref.shape)
    y, dx, dw = _shared_vg(impl, False, s, p, 0)(x, w, ct)
    dx_ref, dw_ref = vjp(np.asarray(ct, np.float64))
    assert y.shape == y_ref.shape and y.dtype == jnp.float32
    assert _rel(y, y_ref) < TOL
    assert _rel(dx, dx_ref) < TOL
    assert _rel(dw, dw_ref) < TOL


@pytest.mark.parametrize("impl,xs,ks,s,p,op", _impl_cases(CONVT_CASES))
def test_conv_transpose2d_matches_scatter_definition(impl, xs, ks, s, p, op):
    x = _rand(3, xs)
    w = _rand(4, (ks[0], ks[1], xs[3], ks[2]))
    y_ref, vjp = np_conv_transpose2d(np.asarray(x, np.float64), np.asarray(w, np.float64), s, p, op)
    assert y_ref.shape[1] == (xs[1] - 1) * s - 2 * p + ks[0] + op  # torch's size formula
    ct = _rand(5, y_ref.shape)
    y, dx, dw = _shared_vg(impl, True, s, p, op)(x, w, ct)
    dx_ref, dw_ref = vjp(np.asarray(ct, np.float64))
    assert y.shape == y_ref.shape
    assert _rel(y, y_ref) < TOL
    assert _rel(dx, dx_ref) < TOL
    assert _rel(dw, dw_ref) < TOL


# Every formulation of the fast path, forced, on cases that reach it (the
# automatic choice depends on channel counts and sizes). The strided forms
# reach the primitive only with 1x1/1x2/2x2 sub-kernels (im2col).
W2 = {"fwd": "wino2", "wgrad": "wino2"}
FORMULATION_CASES = [
    (W2, "conv", (2, 11, 9, 5), (3, 3, 6), 1, 0, 0),  # odd outputs: padded tiles
    (W2, "convT", (2, 6, 7, 6), (3, 3, 5), 1, 1, 0),
    (W2, "conv", (2, 10, 14, 4), (3, 3, 7), 1, 0, 0),
    ({"fwd": "wino4", "wgrad": "wino4"}, "conv", (2, 10, 14, 4), (3, 3, 7), 1, 0, 0),  # tiles by 4
    ({"fwd": "wino4", "wgrad": "wino4"}, "convT", (1, 7, 6, 5), (3, 3, 6), 1, 0, 0),  # does not
    ({"fwd": "im2col", "wgrad": "im2col"}, "conv", (2, 9, 8, 5), (3, 3, 6), 1, 0, 0),
    ({"fwd": "xla", "wgrad": "wino2"}, "convT", (2, 6, 7, 6), (3, 3, 5), 1, 0, 0),
]


@pytest.mark.parametrize(
    "force,kind,xs,ks,s,p,op", FORMULATION_CASES, ids=[f"{c[0]['fwd']}-{c[0]['wgrad']}-{c[1]}{i}" for i, c in enumerate(FORMULATION_CASES)]
)
def test_cpu_formulations_match_numpy(monkeypatch, force, kind, xs, ks, s, p, op):
    for k, v in force.items():
        monkeypatch.setitem(cpu_conv._FORCE, k, v)
    x = _rand(30, xs)
    w = _rand(31, (ks[0], ks[1], xs[3], ks[2]))
    xd, wd = np.asarray(x, np.float64), np.asarray(w, np.float64)
    if kind == "conv":
        y_ref, vjp = np_conv2d(xd, wd, s, p)
        f = lambda a, b: convolution("cpu", a, b, stride=s, padding=p)  # noqa: E731
    else:
        y_ref, vjp = np_conv_transpose2d(xd, wd, s, p, op)
        f = lambda a, b: convolution("cpu", a, b, transpose=True, stride=s, padding=p, output_padding=op)  # noqa: E731
    ct = _rand(32, y_ref.shape)
    got = _value_and_grads(f, x, w, ct)
    for a, b in zip(got, (y_ref, *vjp(np.asarray(ct, np.float64)))):
        assert a.shape == b.shape
        assert _rel(a, b) < TOL


@pytest.mark.parametrize("xs,ks,s,p", [((2, 9, 8, 4), (3, 3, 5), 2, 1), ((1, 10, 7, 3), (3, 3, 6), 2, 0), ((1, 11, 11, 2), (3, 3, 3), 3, 1)])
def test_strided_phase_decomposition_matches_numpy(monkeypatch, xs, ks, s, p):
    """Strided convolutions with many input channels are split into stride phases (forced here)."""
    monkeypatch.setattr(cpu_conv, "_STRIDED_PHASES_MIN_CIN", 1)
    x = _rand(36, xs)
    w = _rand(37, (ks[0], ks[1], xs[3], ks[2]))
    y_ref, vjp = np_conv2d(np.asarray(x, np.float64), np.asarray(w, np.float64), s, p)
    ct = _rand(38, y_ref.shape)
    got = _value_and_grads(lambda a, b: convolution("cpu", a, b, stride=s, padding=p), x, w, ct)
    for a, b in zip(got, (y_ref, *vjp(np.asarray(ct, np.float64)))):
        assert a.shape == b.shape
        assert _rel(a, b) < TOL


def test_batch_chunking_matches_unchunked(monkeypatch):
    """The weight gradient's batch-chunk loop against the whole batch at once."""
    x = _rand(33, (6, 10, 9, 5))
    w = _rand(34, (3, 3, 5, 4))
    ct = _rand(35, (6, 8, 7, 4))
    f = lambda a, b: convolution("cpu", a, b)  # noqa: E731
    ref = _value_and_grads(f, x, w, ct)
    monkeypatch.setattr(cpu_conv, "_CHUNK_BYTES", 1)  # one sample per chunk
    for force in ({}, {"fwd": "im2col", "wgrad": "im2col"}):
        for k, v in force.items():
            monkeypatch.setitem(cpu_conv._FORCE, k, v)
        got = _value_and_grads(lambda a, b: f(a, b), x, w, ct)
        for a, b in zip(got, ref):
            assert _rel(a, b) < 1e-5


def test_numpy_transposed_reference_is_the_adjoint_of_conv():
    """Guards the references themselves: <conv(u), v> == <u, convT(v)> for the same kernel."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 9, 7, 3))
    w = rng.normal(size=(3, 3, 3, 4))  # conv: 3 -> 4 channels
    y, _ = np_conv2d(u, w, 2, 1)
    v = rng.normal(size=y.shape)
    # The transposed conv maps 4 -> 3 channels with w[i, j, co, ci] and output padding
    # chosen to recover u's size.
    t, _ = np_conv_transpose2d(v, np.swapaxes(w, 2, 3), 2, 1, 0)
    assert t.shape == u.shape
    assert np.isclose((y * v).sum(), (u * t).sum())


# The models' layer shapes at a small batch: fast vs xla in float32.
MODEL_LAYERS = [
    ("conv", (2, 28, 28, 1), 8, 1, 0, 0),
    ("conv", (1, 22, 22, 32), 64, 1, 0, 0),
    ("conv", (1, 20, 20, 64), 128, 1, 0, 0),
    ("convT", (1, 18, 18, 128), 128, 1, 0, 0),
    ("convT", (2, 26, 26, 16), 8, 1, 0, 0),
    ("conv", (2, 32, 32, 3), 16, 2, 1, 0),
    ("conv", (1, 16, 16, 32), 32, 1, 1, 0),
    ("convT", (2, 4, 4, 64), 32, 2, 1, 1),
    ("convT", (1, 16, 16, 16), 3, 2, 1, 1),
]


@pytest.mark.parametrize("kind,xs,co,s,p,op", MODEL_LAYERS)
def test_cpu_matches_xla_on_model_shapes(kind, xs, co, s, p, op):
    x = _rand(6, xs)
    w = _rand(7, (3, 3, xs[3], co), scale=1 / np.sqrt(9 * xs[3]))
    ct = _rand(8, jax.eval_shape(_conv_fn("xla", kind == "convT", s, p, op), x, w).shape)
    ref = _shared_vg("xla", kind == "convT", s, p, op)(x, w, ct)
    got = _shared_vg("cpu", kind == "convT", s, p, op)(x, w, ct)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        assert _rel(a, b) < 1e-5


def test_auto_is_cpu_on_a_cpu_and_names_are_checked():
    assert jax.default_backend() == "cpu"
    assert CONV_IMPLS == ("auto", "xla", "cpu", "matmul")
    assert resolve_conv_impl("auto") == "cpu"
    assert resolve_conv_impl("xla") == "xla"
    with pytest.raises(ValueError, match="unknown conv_impl 'cudnn'; known: auto, xla, cpu, matmul"):
        ModelConfig(conv_impl="cudnn")
    for impl in IMPLS:
        with pytest.raises(ValueError, match="output_padding"):
            convolution(impl, jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1)), transpose=True, output_padding=1)
        with pytest.raises(ValueError, match="conv2d wants x"):
            convolution(impl, jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 1, 1)))


def test_model_reads_its_conv_impl():
    """``ModelConfig.conv_impl`` alone picks the implementation: the CPU path's
    custom VJP is in the model's program only where it asks for it."""
    from icrst_jax.models import make_model

    x = jnp.ones((2, 12, 12, 1))

    def has_custom_vjp(impl):
        model = make_model(ModelConfig(name="conv", width=1 / 32, conv_impl=impl), (12, 12, 1))
        # Abstract variables: the jaxpr is all this needs, and an eager init compiles every op.
        variables = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, train=False))
        return "custom_vjp" in str(jax.make_jaxpr(lambda v: model.apply(v, x, train=False))(variables))

    assert has_custom_vjp("cpu") and has_custom_vjp("auto") and not has_custom_vjp("xla")


def _stack(impl):
    """A small conv encoder/decoder (both stride-1 forms and a strided pair) as one loss."""

    def loss(ws, x):
        h = jax.nn.leaky_relu(convolution(impl, x, ws[0]))
        h = jax.nn.leaky_relu(convolution(impl, h, ws[1], stride=2, padding=1))
        h = jax.nn.leaky_relu(convolution(impl, h, ws[2], transpose=True, stride=2, padding=1, output_padding=1))
        h = convolution(impl, h, ws[3], transpose=True)
        return jnp.mean((h - x) ** 2)

    return loss


def _stack_params(key, cin=2):
    """The stack's weights as numpy arrays (stacked and sliced on the host: JAX compiles each op)."""
    shapes = [(3, 3, cin, 6), (3, 3, 6, 8), (3, 3, 8, 6), (3, 3, 6, cin)]
    return [np.asarray(_rand(100 * key + i, s, scale=1 / np.sqrt(9 * s[2]))) for i, s in enumerate(shapes)]


@functools.cache
def _one_stack(impl):
    """The stack's jitted loss and gradient on one run: the vmap, matmul and sharding tests share it."""
    return jax.jit(jax.value_and_grad(_stack(impl)))


def test_vmap_over_seed_axis_equals_loop():
    """vmap of the custom VJP over a leading seed axis of both inputs and weights."""
    seeds = 3
    ws_np = [np.stack(z) for z in zip(*[_stack_params(k) for k in range(seeds)])]
    xs_np = np.asarray(_rand(9, (seeds, 4, 10, 10, 2)))
    loss_v, grad_v = jax.jit(jax.vmap(jax.value_and_grad(_stack("cpu"))))([jnp.asarray(w) for w in ws_np], xs_np)
    one_fast, one_xla = _one_stack("cpu"), _one_stack("xla")
    for k in range(seeds):
        wk = [jnp.asarray(w[k]) for w in ws_np]
        xk = jnp.asarray(xs_np[k])
        loss_k, grad_k = one_fast(wk, xk)
        assert _rel(loss_v[k], loss_k) < 1e-6
        for a, b in zip(grad_v, grad_k):
            assert _rel(a[k], b) < 1e-5
        loss_x, grad_x = one_xla(wk, xk)  # and the loop over the reference
        assert _rel(loss_k, loss_x) < 1e-5
        for a, b in zip(grad_k, grad_x):
            assert _rel(a, b) < 1e-5


def test_matmul_vmapped_over_runs_is_a_batched_product_and_equals_loop():
    """The reason ``matmul`` exists: vmapped over runs with their own weights,
    XLA's convolution becomes a grouped convolution (``feature_group_count`` =
    runs), the matmul path a matrix product batched over the run axis, with
    the values and gradients of separate runs."""
    runs = 3
    ws_np = [np.stack(z) for z in zip(*[_stack_params(k) for k in range(runs)])]
    ws = [jnp.asarray(w) for w in ws_np]
    xs_np = np.asarray(_rand(12, (runs, 4, 10, 10, 2)))
    xs = jnp.asarray(xs_np)

    def program(impl):
        return str(jax.make_jaxpr(jax.vmap(jax.value_and_grad(_stack(impl))))(ws, xs))

    assert f"feature_group_count={runs}" in program("xla")
    mm = program("matmul")
    assert "conv_general_dilated" not in mm
    assert "dot_general" in mm and "([0], [0]))" in mm  # the run axis is a batch dimension
    loss_v, grad_v = jax.jit(jax.vmap(jax.value_and_grad(_stack("matmul"))))(ws, xs)
    one_xla = _one_stack("xla")
    for k in range(runs):
        loss_k, grad_k = one_xla([jnp.asarray(w[k]) for w in ws_np], jnp.asarray(xs_np[k]))
        assert _rel(loss_v[k], loss_k) < 1e-5
        for a, b in zip(grad_v, grad_k):
            assert _rel(a[k], b) < 1e-5


def test_jit_equals_eager():
    x = _rand(10, (2, 8, 7, 4))
    w = _rand(11, (3, 3, 4, 5))
    f = jax.value_and_grad(lambda a, b: jnp.sum(jnp.sin(convolution("cpu", a, b))), (0, 1))
    l0, g0 = f(x, w)
    l1, g1 = jax.jit(f)(x, w)
    assert _rel(l1, l0) < 1e-6
    for a, b in zip(g1, g0):
        assert _rel(a, b) < 1e-6


# Shapes and settings of CONV_CASES / CONVT_CASES: the float32 reference is the
# program test_conv2d_matches_numpy / test_conv_transpose2d_matches_scatter_definition
# compiled (a Winograd weight gradient; XLA's strided convolution; a stride-1 and a
# sub-pixel transposed one).
@pytest.mark.parametrize(
    "kind,xs,co,s,p,op",
    [("conv", (2, 12, 10, 8), 16, 1, 0, 0), ("conv", (2, 9, 6, 3), 5, 2, 1, 0),
     ("convT", (2, 6, 9, 16), 8, 1, 0, 0), ("convT", (2, 4, 5, 6), 4, 2, 1, 1)],
)
def test_bfloat16_runs_and_is_close(kind, xs, co, s, p, op):
    """bf16 in, bf16 out, float32 accumulation: close to float32 on the same (rounded) inputs."""
    bf = jnp.bfloat16
    x = _rand(20, xs, bf)
    w = _rand(21, (3, 3, xs[3], co), bf, scale=1 / np.sqrt(9 * xs[3]))
    vg = _shared_vg("cpu", kind == "convT", s, p, op)
    ct = _rand(22, jax.eval_shape(_conv_fn("cpu", kind == "convT", s, p, op), x, w).shape, bf)
    got = vg(x, w, ct)
    assert all(t.dtype == bf for t in got)
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731  (exact, on the host)
    ref = vg(f32(x), f32(w), f32(ct))
    for a, b in zip(got, ref):
        # bf16 keeps 8 bits: one rounding of the result is 2^-9 relative.
        assert _rel(a, b) < 1.5e-2


def test_sharded_data_parallel_jit_matches_single_device():
    devices = jax.devices()
    assert len(devices) == 4
    mesh = Mesh(np.array(devices), ("data",))
    ws = [jnp.asarray(w) for w in _stack_params(3)]
    x = _rand(12, (4, 10, 10, 2))  # one sample per device; the vmap test's shapes: its compiled reference
    f = jax.value_and_grad(_stack("cpu"))
    ref_l, ref_g = _one_stack("cpu")(ws, x)
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    wr = jax.device_put(ws, NamedSharding(mesh, P()))
    sharded = jax.jit(f, out_shardings=(NamedSharding(mesh, P()), NamedSharding(mesh, P())))
    l, g = sharded(wr, xs)
    assert _rel(l, ref_l) < 1e-6
    for a, b in zip(g, ref_g):
        assert _rel(a, b) < 1e-5
    # The forward keeps the batch sharding.
    y = jax.jit(lambda a, b: convolution("cpu", a, b))(xs, wr[0])
    assert y.sharding.spec[0] == "data"


def test_auto_on_a_cpu_picks_by_the_programs_step_count():
    """``auto`` is ``matmul`` for a program of fewer than ``AUTO_CPU_PATH_MIN_STEPS`` optimizer
    steps (epochs x steps per epoch x runs), ``cpu`` from there on; the engine's config keeps ``auto``."""
    from icrst_jax.conv import AUTO_CPU_PATH_MIN_STEPS
    from icrst_jax.config import TrainConfig
    from icrst_jax.train import make_engine

    assert resolve_conv_impl("auto", AUTO_CPU_PATH_MIN_STEPS - 1) == "matmul"
    assert resolve_conv_impl("auto", AUTO_CPU_PATH_MIN_STEPS) == "cpu"
    assert resolve_conv_impl("cpu", 1) == "cpu"

    def picked(epochs, runs, impl="auto"):
        cfg = TrainConfig(epochs=epochs, batch_size=16, model=ModelConfig(name="conv_tiny", width=1 / 8, conv_impl=impl))
        engine = make_engine(cfg, (12, 12, 1), 48, runs=runs)  # 3 steps per epoch
        assert engine.config.model.conv_impl == impl
        return engine.model.config.conv_impl

    assert picked(10, 6) == "matmul"  # 180 steps
    assert picked(10, 7) == "cpu"  # 210
    assert picked(200, 1) == "cpu"  # 600
    assert picked(10, 1, "cpu") == "cpu" and picked(1000, 1, "matmul") == "matmul"
