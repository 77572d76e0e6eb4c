"""The CPU convolution path: ``ModelConfig(conv_impl="cpu")`` (``"auto"`` on a CPU).

``conv2d`` and ``conv_transpose2d`` have PyTorch's ``Conv2d`` /
``ConvTranspose2d`` semantics (no bias), NHWC activations and HWIO kernels,
like the XLA reference in :mod:`icrst_jax.models`. They exist because XLA's
CPU convolution emitter runs the Table D1 layers, and above all their weight
gradients, far below the speed of XLA's CPU matrix products; here every
convolution is rewritten as matrix products. The measurements behind each
choice below are in BENCHMARKS.md ("The CPU convolution path").

Everything reduces to one primitive, ``_conv(x, w, pads)``: a stride-1
correlation ``y[b,h,w,o] = sum x[b,h+i,w+j,c] w[i,j,c,o]`` of x zero-padded
by pads, whose custom VJP is

* ``dx = _conv(g, rot180(w) with in/out swapped)`` (a full convolution: the
  forward kernel again), and
* ``dw[i,j] = sum x[b,h+i,w+j]^T g[b,h,w]`` (``_wgrad_impl``).

3x3 kernels use Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray,
2016): each 2x2 output tile costs 16 multiply-adds per (Cin, Cout) pair
instead of 36, as 16 independent (tiles, Cin) x (Cin, Cout) matrix products
between an input transform and an output transform that are a few adds per
element. The weight gradient uses the dual F(3x3, 2x2) (or F(3x3, 4x4)):
products of the same input transform with a tile transform of ``g``. Both
are exact in exact arithmetic; in float32 their error is ~1e-6 relative,
about what summation order changes. Other kernel sizes use im2col (the k*k
shifted slices concatenated on the channel axis) and one matrix product.
Small layers, where the transforms' memory traffic costs more than the
products save, go to XLA's own convolution.

Strided convolutions are split into the s*s phases of the input
(``x[r::s, q::s]``), each convolved at stride 1 with the matching taps
``w[r::s, q::s]`` (no multiply by a zero); strided transposed convolutions
into the s*s phases of the output (sub-pixel convolution), interleaved.

Weight layout
-------------
``conv2d``: ``w[i, j, ci, co] == torch_conv.weight[co, ci, i, j]``.
``conv_transpose2d``: ``w[i, j, ci, co] == torch_convT.weight[ci, co, i, j]``
(PyTorch stores a transposed-convolution weight as (Cin, Cout, kh, kw)); the
kernel is used as PyTorch uses it, in scatter form
``out[s*y - p + i, s*x - p + j] += x[y, x] @ w[i, j]``, which is a
correlation with the spatially flipped kernel ``w[::-1, ::-1]``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["conv2d", "conv_transpose2d", "check_conv_args", "LAYOUT"]

# The layout of every implementation (lax.conv_general_dilated's dimension numbers).
LAYOUT = ("NHWC", "HWIO", "NHWC")
_F32 = jnp.float32


def _pad_hw(x, lo_h, hi_h, lo_w, hi_w):
    """Zero-pad (negative: crop) the two spatial axes of an NHWC array."""
    if lo_h == hi_h == lo_w == hi_w == 0:
        return x
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0)))


def _out_dtype(x, w):
    return jnp.result_type(x.dtype, w.dtype)


# --------------------------------------------------------------------------
# Winograd minimal filtering, F(m x m, 3 x 3) for m = 2 and 4.
#
# 1-D forward F(m, 3), n = m + 2 inputs d, 3 taps w, m outputs y:
#     y = A^T [(G w) * (B^T d)].
# 1-D weight gradient F(3, m): dw[u] = sum_{p<m} d[u+p] g[p], 3 outputs, with
# the same B^T on d:  dw = A2^T [(G2 g) * (B^T d)].
# Both from the Toom-Cook points 0, 1, -1 (, 2, -2), infinity; rows of B^T
# are scaled to integers and the scale moved into G (applied to the small
# kernel) and A2^T (applied to the small (n*n, Cin, Cout) gradient), so the
# transforms of the large activations are adds and small-integer multiplies.
# 2-D = the 1-D transform along each spatial axis. Products per output tile
# per (Cin, Cout) pair: n^2 = 16 (m = 2, 4 outputs) or 36 (m = 4, 16
# outputs) instead of 9 per output.
# --------------------------------------------------------------------------
_WINO = {
    2: dict(
        BT=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
        G=np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
        AT=np.array([[1, 1, 1, 0], [0, 1, -1, -1]]),
        G2=np.array([[1, 0], [1, 1], [1, -1], [0, -1]]),
        A2T=np.array([[1, 0.5, 0.5, 0], [0, 0.5, -0.5, 0], [0, 0.5, 0.5, 1]]),
    ),
    4: dict(
        BT=np.array(
            [
                [4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1],
            ]
        ),
        G=np.array(
            [
                [1 / 4, 0, 0],
                [-1 / 6, -1 / 6, -1 / 6],
                [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6],
                [0, 0, 1],
            ]
        ),
        AT=np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
        G2=np.array([[1, 0, 0, 0], [1, 1, 1, 1], [1, -1, 1, -1], [1, 2, 4, 8], [1, -2, 4, -8], [0, 0, 0, 1]]),
        A2T=np.array(
            [
                [1 / 4, -1 / 6, -1 / 6, 1 / 24, 1 / 24, 0],
                [0, -1 / 6, 1 / 6, 1 / 12, -1 / 12, 0],
                [0, -1 / 6, -1 / 6, 1 / 6, 1 / 6, 1],
            ]
        ),
    ),
}


def _lin(mat, xs):
    """[sum_j mat[i, j] * xs[j] for each row i], skipping zeros and unit multiplies."""
    out = []
    for row in np.asarray(mat, np.float64):
        acc = None
        for c, t in zip(row, xs):
            if c == 0:
                continue
            if acc is None:
                acc = t if c == 1 else (-t if c == -1 else t * float(c))
            elif c == 1:
                acc = acc + t
            elif c == -1:
                acc = acc - t
            else:
                acc = acc + t * float(c)
        out.append(acc)
    return out


_WINO_DIRECT = {2: True, 4: False}


def _lin2(a, b, sl):
    """[sum_{k,l} a[i, k] b[j, l] * sl(k, l) for i, j]: a separable 2-D transform
    written out term by term, so that each output is one expression of the
    inputs (XLA fuses it into one pass; the row-then-column form materialises
    the row stage because its results have several users)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cache = {}
    out = []
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            coef = np.outer(a[i], b[j])
            terms = []
            for k, l in zip(*np.nonzero(coef)):
                if (k, l) not in cache:
                    cache[(k, l)] = sl(int(k), int(l))
                terms.append((float(coef[k, l]), cache[(k, l)]))
            acc = None
            for c, t in terms:
                if acc is None:
                    acc = t if c == 1 else (-t if c == -1 else t * c)
                elif c == 1:
                    acc = acc + t
                elif c == -1:
                    acc = acc - t
                else:
                    acc = acc + t * c
            out.append(acc)
    return out


def _tiles(n, m):
    """Tiles of m outputs covering n outputs."""
    return -(-n // m)


def _wino_in_list(x, m, th, tw, dtype, lo=(0, 0)):
    """Input transform: x (b, m*th+2, m*tw+2, C) -> n*n arrays V[n*i+j] of (b*th*tw, C).

    Overlapping n x n tiles at stride m, read as strided slices. Separate
    arrays feeding separate matrix products, not one (n*n, T, C) array and a
    batched product: XLA's CPU fusion leaves a concatenate of more than 8
    operands unfused (a copy of all of V), and even a fused one is a
    per-element select; separate arrays measured fastest.
    """
    v = _wino_in_terms(x, m, th, tw, lo)
    return [t.astype(dtype).reshape(-1, x.shape[-1]) for t in v]


def _vslice(x, axis, lo, k, m, t):
    """Elements k, k+m, ..., k+m(t-1) along axis of x zero-padded by lo in front
    (and by as much as needed behind), without materialising the padded array."""
    n = x.shape[axis]
    t0 = max(0, -(-(lo - k) // m))
    t1 = min(t - 1, (n - 1 - (k - lo)) // m)
    if t1 < t0:
        shape = list(x.shape)
        shape[axis] = t
        return jnp.zeros(shape, x.dtype)
    s0 = k - lo + m * t0
    y = lax.slice_in_dim(x, s0, s0 + m * (t1 - t0) + 1, m, axis)
    if t0 or t1 < t - 1:
        cfg = [(0, 0, 0)] * x.ndim
        cfg[axis] = (t0, t - 1 - t1, 0)
        y = lax.pad(y, jnp.zeros((), x.dtype), cfg)
    return y


def _wino_in_terms(x, m, th, tw, lo=(0, 0)):
    """The n*n transformed tiles B^T d B, each (b, th, tw, C) float32, of x
    zero-padded by lo = (top, left) (and at the bottom/right as the tiles need).

    The padding is folded into each strided read: a padded copy of x would be
    an extra pass, and XLA materialises it because it has n*n readers (a
    padded layer then costs well above the unpadded one of the same size).
    """
    x = x.astype(_F32)
    bt = _WINO[m]["BT"]
    if _WINO_DIRECT[m]:
        return _lin2(bt, bt, lambda k, l: _vslice(_vslice(x, 1, lo[0], k, m, th), 2, lo[1], l, m, tw))
    rows = _lin(bt, [_vslice(x, 1, lo[0], k, m, th) for k in range(m + 2)])
    v = []
    for r in rows:
        v += _lin(bt, [_vslice(r, 2, lo[1], k, m, tw) for k in range(m + 2)])
    return v


def _wino_in_stacked(x, m, th, tw, dtype, lo=(0, 0)):
    """The input transform as one array (n*n, b*th*tw, C), for the batched weight-gradient product.

    An n-stack of n-stacks (n <= 6), not one n*n-stack, so that XLA fuses it.
    """
    n, c = m + 2, x.shape[-1]
    v = _wino_in_terms(x, m, th, tw, lo)
    v = jnp.stack([jnp.stack(v[n * i : n * i + n], 0) for i in range(n)], 0)
    return v.astype(dtype).reshape(n * n, -1, c)


def _wino_filter_list(w, m, dtype):
    """Filter transform G w G^T: (3, 3, Ci, Co) -> n*n arrays (Ci, Co).

    Written out as adds: as an einsum with the small matrix, XLA emits a
    matrix product per term, each costing more than the adds.
    """
    g = _WINO[m]["G"]
    w = w.astype(_F32)
    u = []
    for r in _lin(g, [w[0], w[1], w[2]]):
        u += _lin(g, [r[0], r[1], r[2]])
    return [t.astype(dtype) for t in u]


def _wino_out_list(mm, m, b, th, tw):
    """Output transform A^T M A: n*n arrays (b*th*tw, Co) float32 -> (b, m*th, m*tw, Co)."""
    n, co = m + 2, mm[0].shape[-1]
    at = _WINO[m]["AT"]
    mm = [t.reshape(b, th, tw, co) for t in mm]
    if _WINO_DIRECT[m]:
        y = _lin2(at, at, lambda k, l: mm[n * k + l])
        out = [jnp.stack(y[m * i : m * i + m], axis=3) for i in range(m)]
        return jnp.stack(out, axis=2).reshape(b, m * th, m * tw, co)
    out = []
    for i in range(m):
        row = [_lin(at[i : i + 1], [mm[n * k + j] for k in range(n)])[0] for j in range(n)]
        out.append(jnp.stack(_lin(at, row), axis=3))  # (b, th, tw, m, Co)
    return jnp.stack(out, axis=2).reshape(b, m * th, m * tw, co)


def _wino_gtile(g, m, dtype):
    """Gradient tile transform G2 g G2^T: g (b, m*th, m*tw, Co) -> (n*n, b*th*tw, Co)."""
    b, h, w, co = g.shape
    n = m + 2
    g2 = _WINO[m]["G2"]
    g = g.astype(_F32).reshape(b, h // m, m, w // m, m, co)
    if _WINO_DIRECT[m]:
        v = _lin2(g2, g2, lambda k, l: g[:, :, k, :, l])
        v = jnp.stack([jnp.stack(v[n * i : n * i + n], 0) for i in range(n)], 0)
        return v.astype(dtype).reshape(n * n, -1, co)
    rows = _lin(g2, [g[:, :, k] for k in range(m)])  # n x (b, th, tw, m, Co)
    v = jnp.stack([jnp.stack(_lin(g2, [r[:, :, :, k] for k in range(m)]), 0) for r in rows], 0)
    return v.astype(dtype).reshape(n * n, -1, co)


def _wino_wout(mw, m):
    """Weight-gradient output transform A2^T M A2: (n*n, Ci, Co) -> (3, 3, Ci, Co)."""
    n = m + 2
    a2t = _WINO[m]["A2T"]
    rows = _lin(a2t, [mw[n * k : n * k + n] for k in range(n)])  # 3 x (n, Ci, Co)
    return jnp.stack([jnp.stack(_lin(a2t, [r[k] for k in range(n)]), 0) for r in rows], 0)


# Batch chunking of the weight gradient. Its transforms are 4x (F(2x2)) or
# 2.25x (F(4x4)) the activations and its product reduces over the batch, so
# it runs as a loop over batch chunks whose transforms stay under
# _CHUNK_BYTES and in cache; whole-batch buffers that large are also
# page-faulted in again by glibc's malloc on every call.
_CHUNK_BYTES = 16 * 2**20


def _num_chunks(b, per_sample_bytes):
    """Number of equal batch chunks (a divisor of b) with chunk intermediates <= _CHUNK_BYTES."""
    cs = max(1, _CHUNK_BYTES // max(1, per_sample_bytes))
    if cs >= b:
        return 1
    while b % cs:
        cs -= 1
    return b // cs


def _chunked_sum(f, x, g, nc):
    """sum over nc batch chunks of f(x_chunk, g_chunk), in a loop.

    Chunk j holds samples j, j + nc, j + 2nc, ...: a data-parallel sharding of
    the batch axis then stays on the chunk's own batch axis.
    """
    if nc == 1:
        return f(x, g)
    cs = x.shape[0] // nc
    xr = x.reshape(cs, nc, *x.shape[1:])
    gr = g.reshape(cs, nc, *g.shape[1:])
    out = jax.eval_shape(f, jax.ShapeDtypeStruct((cs, *x.shape[1:]), x.dtype), jax.ShapeDtypeStruct((cs, *g.shape[1:]), g.dtype))

    def body(j, acc):
        xj = lax.dynamic_index_in_dim(xr, j, axis=1, keepdims=False)
        gj = lax.dynamic_index_in_dim(gr, j, axis=1, keepdims=False)
        return acc + f(xj, gj)

    return lax.fori_loop(0, nc, body, jnp.zeros(out.shape, out.dtype))


def _wino_conv(x, w, m, pads=(0, 0, 0, 0)):
    """3x3 stride-1 correlation of x zero-padded by pads, by F(m x m, 3 x 3).

    Whole batch at once: processing it in cache-sized chunks (as the weight
    gradient does) measured slower inside a training step (the chunks'
    copies and loop carries).
    """
    b, h, wd, _ = x.shape
    ho, wo = h + pads[0] + pads[1] - 2, wd + pads[2] + pads[3] - 2
    th, tw = _tiles(ho, m), _tiles(wo, m)
    dt = _out_dtype(x, w)
    u = _wino_filter_list(w, m, dt)
    v = _wino_in_list(x, m, th, tw, dt, (pads[0], pads[2]))
    mm = [lax.dot_general(vi, ui, (((1,), (0,)), ((), ())), preferred_element_type=_F32) for vi, ui in zip(v, u)]
    y = _wino_out_list(mm, m, b, th, tw)
    return y[:, :ho, :wo].astype(dt)


def _wino_wgrad(x, g, m, pads=(0, 0, 0, 0)):
    """dw of a 3x3 stride-1 correlation of x zero-padded by pads, by F(3 x 3, m x m)."""
    b, ho, wo, co = g.shape
    ci = x.shape[-1]
    th, tw = _tiles(ho, m), _tiles(wo, m)
    g = _pad_hw(g, 0, m * th - ho, 0, m * tw - wo)
    dt = _out_dtype(x, g)
    n = m + 2

    def chunk(xc, gc):
        v = _wino_in_stacked(xc, m, th, tw, dt, (pads[0], pads[2]))
        gt = _wino_gtile(gc, m, dt)
        # A (tiles, Cin)^T x (tiles, Cout) product per position; transposing
        # either operand first (so that XLA's faster NN kernel takes it)
        # measured the same.
        return lax.dot_general(v, gt, (((1,), (1,)), ((0,), (0,))), preferred_element_type=_F32)

    mw = _chunked_sum(chunk, x, g, _num_chunks(b, n * n * th * tw * (ci + co) * 4))
    return _wino_wout(mw, m)


# --------------------------------------------------------------------------
# im2col building blocks (kernels other than 3x3, and tiny channel counts).
# --------------------------------------------------------------------------
def _patches(x, kh, kw, ho, wo):
    """(b, h, w, c) -> (b, ho, wo, kh*kw*c): the kh*kw shifted windows side by side."""
    if kh == kw == 1:
        return x[:, :ho, :wo]
    return jnp.concatenate([x[:, i : i + ho, j : j + wo] for i in range(kh) for j in range(kw)], axis=-1)


def _im2col_conv(x, w):
    kh, kw, ci, co = w.shape
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    dt = _out_dtype(x, w)
    wm = w.reshape(kh * kw * ci, co).astype(dt)

    p = _patches(x.astype(dt), kh, kw, ho, wo)
    return lax.dot_general(p, wm, (((3,), (0,)), ((), ())), preferred_element_type=_F32).astype(dt)


def _im2col_wgrad(x, g, kh, kw):
    ci, co = x.shape[-1], g.shape[-1]
    ho, wo = g.shape[1], g.shape[2]
    dt = _out_dtype(x, g)

    def chunk(xc, gc):
        p = _patches(xc.astype(dt), kh, kw, ho, wo).reshape(-1, kh * kw * ci)
        # 2-D operands: XLA's CPU DotThunk has no bf16 x bf16 -> f32 kernel
        # for a contraction over three collapsed axes.
        return lax.dot_general(gc.astype(dt).reshape(-1, co), p, (((0,), (0,)), ((), ())), preferred_element_type=_F32)

    dw = _chunked_sum(chunk, x, g, _num_chunks(x.shape[0], ho * wo * (kh * kw * ci + co) * 4))
    return dw.T.reshape(kh, kw, ci, co)


# --------------------------------------------------------------------------
# The custom-VJP primitive.
# --------------------------------------------------------------------------
def _fwd_method(ci, co, kh, kw, ho, wo):
    """Formulation of a stride-1 correlation (also used for the input gradient).

    * 3x3 with more than ``_XLA_MAX_COUT`` output channels: Winograd
      F(2x2, 3x3), which beats XLA's convolution there. F(4x4, 3x3) only ties
      it on the forward (its 36 transform arrays cost what its 2.25x fewer
      products save).
    * 3x3 with fewer output channels: XLA's own convolution, padding inside:
      the transforms' memory traffic, which a direct convolution does not
      have, costs more than the products save.
    * Other kernels (the 1x1 head, the sub-kernels of strided layers): one
      im2col product when it has a useful shape, else XLA's convolution.
    """
    if _FORCE.get("fwd") and kh == kw == 3 and min(ci, co) >= 4:
        return _FORCE["fwd"]
    if kh == kw == 3:
        return "wino2" if co > _XLA_MAX_COUT and ci >= 4 else "xla"
    return "im2col" if kh * kw * ci >= 64 and co >= 16 else "xla"


_XLA_MAX_COUT = 32
_STRIDED_PHASES_MIN_CIN = 64


def _wgrad_method(ci, co, kh, kw, ho, wo):
    """Formulation of the weight gradient of a stride-1 VALID correlation with output (ho, wo).

    F(3x3, 4x4) where the output tiles by 4 exactly (4x fewer products than
    direct, F(3x3, 2x2) 2.25x), else F(3x3, 2x2) (padding 18 or 22 to a
    multiple of 4 wastes the gain).
    """
    if kh != 3 or kw != 3 or min(ci, co) < 4:
        return "im2col"
    if _FORCE.get("wgrad"):
        return _FORCE["wgrad"]
    return "wino4" if ho % 4 == 0 and wo % 4 == 0 else "wino2"


# Test hook: {"fwd": "wino2" | "wino4" | "im2col", "wgrad": ...} forces a
# formulation, so that the tests reach each one on small, fast shapes.
_FORCE = {}


def _xla_conv(x, w, pads):
    """XLA's convolution with the zero padding inside it.

    XLA's CPU convolution is several times faster with padding than without,
    so an unpadded 3x3 one is computed with padding 1 and cropped.
    """
    kh, kw = w.shape[:2]
    crop = pads == (0, 0, 0, 0) and kh == kw == 3
    if crop:
        pads = (1, 1, 1, 1)
    y = lax.conv_general_dilated(
        x, w, (1, 1), [pads[:2], pads[2:]], dimension_numbers=LAYOUT, preferred_element_type=_F32
    ).astype(_out_dtype(x, w))
    if crop:
        y = y[:, 1 : 1 + x.shape[1] - kh + 1, 1 : 1 + x.shape[2] - kw + 1]
    return y


def _split_pads(x, pads):
    """Apply the negative part of pads (a crop) to x; return the non-negative rest."""
    neg = tuple(min(p, 0) for p in pads)
    if any(neg):
        x = _pad_hw(x, *neg)
    return x, tuple(max(p, 0) for p in pads)


def _conv_impl(x, w, pads):
    """Stride-1 correlation of x zero-padded by pads = (top, bottom, left, right)."""
    x, pads = _split_pads(x, pads)
    kh, kw, ci, co = w.shape
    ho = x.shape[1] + pads[0] + pads[1] - kh + 1
    wo = x.shape[2] + pads[2] + pads[3] - kw + 1
    method = _fwd_method(ci, co, kh, kw, ho, wo)
    if method == "xla":
        return _xla_conv(x, w, pads)
    if method.startswith("wino"):
        return _wino_conv(x, w, int(method[4:]), pads)
    return _im2col_conv(_pad_hw(x, *pads), w)


def _wgrad_impl(x, g, pads, kh, kw):
    x, pads = _split_pads(x, pads)
    method = _wgrad_method(x.shape[-1], g.shape[-1], kh, kw, g.shape[1], g.shape[2])
    if method.startswith("wino"):
        return _wino_wgrad(x, g, int(method[4:]), pads)
    return _im2col_wgrad(_pad_hw(x, *pads), g, kh, kw)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x, w, pads):
    """Stride-1 correlation of x zero-padded by pads, NHWC x HWIO -> NHWC, fast custom VJP."""
    return _conv_impl(x, w, pads)


def _conv_fwd(x, w, pads):
    return _conv_impl(x, w, pads), (x, w)


def _conv_bwd(pads, res, g):
    x, w = res
    kh, kw = w.shape[:2]
    g = g.astype(_out_dtype(x, w))
    # dx is the full convolution of g with the rotated, transposed kernel (the
    # forward kernel again), restricted to the unpadded input: padding k-1-p.
    dx = _conv_impl(g, jnp.swapaxes(w[::-1, ::-1], 2, 3), (kh - 1 - pads[0], kh - 1 - pads[1], kw - 1 - pads[2], kw - 1 - pads[3]))
    dw = _wgrad_impl(x, g, pads, kh, kw)
    return dx.astype(x.dtype), dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def _fast_conv2d(x, w, stride, padding):
    kh, kw = w.shape[:2]
    if stride == 1:
        return _conv(x, w, (padding,) * 4)
    if x.shape[-1] < _STRIDED_PHASES_MIN_CIN:
        # Few input channels: XLA's strided convolution and its own gradients
        # beat the phases (s*s small products); many: the other way round.
        return lax.conv_general_dilated(
            x, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=LAYOUT, preferred_element_type=_F32
        ).astype(_out_dtype(x, w))
    x = _pad_hw(x, padding, padding, padding, padding)
    s = stride
    ho, wo = (x.shape[1] - kh) // s + 1, (x.shape[2] - kw) // s + 1
    out = None
    # Phase (r, q) of the input sees the taps w[r::s, q::s] at stride 1.
    for r in range(min(s, kh)):
        for q in range(min(s, kw)):
            wk = w[r::s, q::s]
            nh, nw = ho + wk.shape[0] - 1, wo + wk.shape[1] - 1
            xs = lax.slice(
                x, (0, r, q, 0), (x.shape[0], r + s * (nh - 1) + 1, q + s * (nw - 1) + 1, x.shape[3]), (1, s, s, 1)
            )
            y = _conv(xs, wk, (0, 0, 0, 0))
            out = y if out is None else out + y
    return out


def _fast_conv_transpose2d(x, w, stride, padding, output_padding):
    kh, kw = w.shape[:2]
    s = stride
    if s == 1:
        # Scatter form = correlation of the input padded by k-1-p with the
        # flipped kernel.
        lo_h, lo_w = kh - 1 - padding, kw - 1 - padding
        return _conv(x, w[::-1, ::-1], (lo_h, lo_h + output_padding, lo_w, lo_w + output_padding))
    b, h, wd, _ = x.shape
    ho = (h - 1) * s - 2 * padding + kh + output_padding
    wo = (wd - 1) * s - 2 * padding + kw + output_padding
    # Sub-pixel form: z[s*m + r] = sum_q x[m - q] w[s*q + r], i.e. phase r of
    # the uncropped output z is a stride-1 transposed convolution of x with the
    # taps w[r::s]. Phases are padded to a common size, interleaved, cropped.
    lh, lw = h + -(-kh // s) - 1, wd + -(-kw // s) - 1
    phases = []
    for r in range(s):
        row = []
        for q in range(s):
            wk = w[r::s, q::s]
            if wk.shape[0] == 0 or wk.shape[1] == 0:
                z = jnp.zeros((b, lh, lw, w.shape[3]), _out_dtype(x, w))
            else:
                z = _fast_conv_transpose2d(x, wk, 1, 0, 0)
                z = _pad_hw(z, 0, lh - z.shape[1], 0, lw - z.shape[2])
            row.append(z)
        phases.append(jnp.stack(row, axis=3))  # (b, lh, lw, s, C)
    z = jnp.stack(phases, axis=2).reshape(b, lh * s, lw * s, w.shape[3])
    return _pad_hw(z, -padding, ho + padding - lh * s, -padding, wo + padding - lw * s)


# --------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------
def check_conv_args(x, w, *, stride: int, padding: int, transpose: bool = False, output_padding: int = 0) -> None:
    """The argument checks of every implementation, one line each."""
    name = "conv_transpose2d" if transpose else "conv2d"
    if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
        raise ValueError(f"{name} wants x (B,H,W,C) and w (kh,kw,C,O), got {x.shape} and {w.shape}")
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got {stride} and {padding}")
    if transpose:
        if not 0 <= output_padding < stride:
            raise ValueError(f"output_padding must be smaller than stride, got {output_padding} and {stride}")
        kh, kw = w.shape[:2]
        if padding > min(kh, kw) - 1:
            raise ValueError(f"padding {padding} too large for a {kh}x{kw} transposed convolution")


def conv2d(x, w, *, stride: int = 1, padding: int = 0) -> jax.Array:
    """``torch.nn.functional.conv2d`` in NHWC / HWIO, without bias.

    Args:
      x: (B, H, W, Cin).
      w: (kh, kw, Cin, Cout); ``w[i, j, ci, co] == torch_weight[co, ci, i, j]``.
      stride, padding: symmetric, as in ``torch.nn.Conv2d``.

    Returns:
      (B, (H + 2p - kh) // s + 1, (W + 2p - kw) // s + 1, Cout), in the
      promoted dtype of ``x`` and ``w``; products accumulate in float32.

    Example:
      >>> conv2d(jnp.ones((2, 28, 28, 1)), jnp.ones((3, 3, 1, 8))).shape
      (2, 26, 26, 8)
    """
    check_conv_args(x, w, stride=stride, padding=padding)
    return _fast_conv2d(x, w, stride, padding)


def conv_transpose2d(x, w, *, stride: int = 1, padding: int = 0, output_padding: int = 0) -> jax.Array:
    """``torch.nn.functional.conv_transpose2d`` in NHWC / HWIO, without bias.

    Args:
      x: (B, H, W, Cin).
      w: (kh, kw, Cin, Cout); ``w[i, j, ci, co] == torch_weight[ci, co, i, j]``
        for a PyTorch ``ConvTranspose2d`` weight of shape (Cin, Cout, kh, kw).
        As in PyTorch the kernel is applied in scatter form,
        ``out[b, y*s - p + i, x*s - p + j, co] += x[b, y, x, ci] * w[i, j, ci, co]``;
        as a correlation that is the flipped kernel ``w[::-1, ::-1]`` on the
        input dilated by ``s`` and padded by ``k - 1 - p``.
      stride, padding, output_padding: as in ``torch.nn.ConvTranspose2d``
        (``output_padding < stride``; it adds rows/columns at the bottom/right).

    Returns:
      (B, (H - 1) * s - 2p + kh + output_padding, (W - 1) * s - 2p + kw + output_padding, Cout).

    Example:
      >>> conv_transpose2d(jnp.ones((2, 4, 4, 8)), jnp.ones((3, 3, 8, 3)),
      ...                  stride=2, padding=1, output_padding=1).shape
      (2, 8, 8, 3)
    """
    check_conv_args(x, w, stride=stride, padding=padding, transpose=True, output_padding=output_padding)
    return _fast_conv_transpose2d(x, w, stride, padding, output_padding)
