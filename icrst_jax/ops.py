"""Convolutions for the Table D1 models (NHWC activations, HWIO kernels).

``conv2d`` and ``conv_transpose2d`` have PyTorch's ``Conv2d`` /
``ConvTranspose2d`` semantics (no bias) and three implementations:

* ``impl="xla"``: ``lax.conv_general_dilated`` with the padding (and, for
  transposed convolutions, the input dilation) inside the convolution. The
  reference, and what cuDNN and the TPU compiler handle best.
* ``impl="padded"``: the zero padding (and dilation) done with ``jnp.pad``
  and a VALID ``lax.conv_general_dilated``. XLA's CPU weight gradient of a
  convolution with explicit padding is ~1 GF/s, and every stride-1 transposed
  convolution lowers to exactly such a convolution; VALID avoids that trap.
* ``impl="fast"``: a ``jax.custom_vjp`` stride-1 VALID convolution built from
  matrix products, which XLA's CPU backend runs near its peak (~320 GF/s
  here, 2 cores with AVX-512), instead of its convolution emitter (80-240
  GF/s forward, 40-55 GF/s weight gradient). Strided and transposed
  convolutions are rewritten in terms of it. See "Fast path" below.

``impl="auto"`` is ``fast`` when ``jax.default_backend() == "cpu"``, else
``xla``.

Fast path
---------
Everything reduces to one primitive, ``_conv_valid(x, w)``: a stride-1,
unpadded correlation ``y[b,h,w,o] = sum x[b,h+i,w+j,c] w[i,j,c,o]``, whose
custom VJP is

* ``dx = _conv_valid(pad(g, k-1), rot180(w) with in/out swapped)`` (a full
  convolution: the forward kernel again), and
* ``dw[i,j] = sum x[b,h+i,w+j]^T g[b,h,w]`` (``_wgrad``).

3x3 kernels use Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray,
2016): each 2x2 output tile costs 16 multiply-adds per (Cin, Cout) pair
instead of 36, as 16 independent (tiles, Cin) x (Cin, Cout) matrix products
between an input transform and an output transform that are a few adds per
element. The weight gradient uses the dual F(3x3, 2x2): 16 (Cin, tiles) x
(tiles, Cout) products of the same input transform with a 2x2-tile
transform of ``g``. Both are exact in exact arithmetic; in float32 their
error is ~1e-6 relative (measured against float64), about what summation
order changes. Other kernel sizes use im2col (the k*k shifted slices
concatenated on the channel axis) and one matrix product.

Strided convolutions are split into the s*s phases of the input
(``x[r::s, q::s]``), each convolved at stride 1 with the matching taps
``w[r::s, q::s]`` (no multiply by a zero); strided transposed convolutions
into the s*s phases of the output (sub-pixel convolution), interleaved.

Process-level settings matter as much as the formulation on this CPU: see
:func:`tune_cpu_allocator`.

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

import ctypes
import ctypes.util
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["IMPLS", "conv2d", "conv_transpose2d", "resolve_impl", "tune_cpu_allocator"]

_DN = ("NHWC", "HWIO", "NHWC")
IMPLS = ("auto", "xla", "padded", "fast")
_F32 = jnp.float32


def resolve_impl(impl: str) -> str:
    """``auto`` -> ``fast`` on the CPU backend, ``xla`` elsewhere; checks the name."""
    if impl not in IMPLS:
        raise ValueError(f"unknown conv impl {impl!r}; known: {', '.join(IMPLS)}")
    if impl == "auto":
        return "fast" if jax.default_backend() == "cpu" else "xla"
    return impl


def _pad_hw(x, lo_h, hi_h, lo_w, hi_w):
    """Zero-pad (negative: crop) the two spatial axes of an NHWC array."""
    if lo_h == hi_h == lo_w == hi_w == 0:
        return x
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0)))


def _out_dtype(x, w):
    return jnp.result_type(x.dtype, w.dtype)


# --------------------------------------------------------------------------
# Winograd F(2x2, 3x3) / F(3x3, 2x2) building blocks.
#
# 1-D forward F(2,3):  y = A^T [(G w) * (B^T d)],  d: 4 inputs, w: 3 taps, y: 2.
#   B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]
#   G   = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]]
#   A^T = [[1,1,1,0],[0,1,-1,-1]]
# 1-D weight gradient F(3,2): dw[u] = sum_p d[u+p] g[p] with the same B^T:
#   G2  = [[1,0],[1,1],[1,-1],[0,-1]],  A2^T = [[1,1/2,1/2,0],[0,1/2,-1/2,0],[0,1/2,1/2,1]]
# (the halves live in A2^T, which is applied to the small (16, Cin, Cout)
# result, so the large transforms are adds only). 2-D = the 1-D transform on
# each spatial axis; the 16 transformed positions are the leading axis.
# --------------------------------------------------------------------------
_WINO_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
_WINO_A2T = np.array([[1, 0.5, 0.5, 0], [0, 0.5, -0.5, 0], [0, 0.5, 0.5, 1]], np.float32)


def _bt4(r):
    """B^T applied to four rows/columns [d0, d1, d2, d3]."""
    return [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]]


def _wino_in(x, th, tw, dtype):
    """Input transform: x (b, 2th+2, 2tw+2, C) -> V (16, b*th*tw, C).

    Overlapping 4x4 tiles at stride 2, read as strided slices so that XLA
    fuses the whole transform into one pass that writes V once.
    """
    b, c = x.shape[0], x.shape[-1]
    x = x.astype(_F32)
    rows = _bt4([lax.slice_in_dim(x, k, k + 2 * th - 1, 2, axis=1) for k in range(4)])
    v = []
    for r in rows:
        v += _bt4([lax.slice_in_dim(r, k, k + 2 * tw - 1, 2, axis=2) for k in range(4)])
    return jnp.stack(v, 0).astype(dtype).reshape(16, b * th * tw, c)


def _wino_filter(w, dtype):
    """Filter transform G w G^T: (3, 3, Ci, Co) -> (16, Ci, Co)."""
    g = jnp.asarray(_WINO_G)
    u = jnp.einsum("ih,hwco,jw->ijco", g, w.astype(_F32), g, precision=lax.Precision.HIGHEST)
    return u.reshape(16, *w.shape[2:]).astype(dtype)


def _wino_out(m, b, th, tw):
    """Output transform A^T m A: (16, b*th*tw, Co) float32 -> (b, 2th, 2tw, Co)."""
    co = m.shape[-1]
    m = m.reshape(4, 4, b, th, tw, co)
    rows = [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
    out = [jnp.stack([r[0] + r[1] + r[2], r[1] - r[2] - r[3]], axis=3) for r in rows]
    return jnp.stack(out, axis=2).reshape(b, 2 * th, 2 * tw, co)


def _wino_gtile(g, dtype):
    """Gradient tile transform G2 g G2^T: g (b, 2th, 2tw, Co) -> (16, b*th*tw, Co)."""
    b, h, w, co = g.shape
    g = g.astype(_F32).reshape(b, h // 2, 2, w // 2, 2, co)
    r0, r1 = g[:, :, 0], g[:, :, 1]
    v = []
    for r in (r0, r0 + r1, r0 - r1, -r1):
        c0, c1 = r[:, :, :, 0], r[:, :, :, 1]
        v += [c0, c0 + c1, c0 - c1, -c1]
    return jnp.stack(v, 0).astype(dtype).reshape(16, -1, co)


def _wino_wout(m):
    """Weight-gradient output transform A2^T m A2: (16, Ci, Co) -> (3, 3, Ci, Co)."""
    a = jnp.asarray(_WINO_A2T)
    m = m.reshape(4, 4, *m.shape[1:])
    return jnp.einsum("ia,abco,jb->ijco", a, m, a, precision=lax.Precision.HIGHEST)


def _even_tiles(n):
    return (n + 1) // 2


def _wino_conv(x, w):
    """3x3 VALID stride-1 correlation by F(2x2, 3x3)."""
    b, h, wd, _ = x.shape
    ho, wo = h - 2, wd - 2
    th, tw = _even_tiles(ho), _even_tiles(wo)
    x = _pad_hw(x, 0, 2 * th - ho, 0, 2 * tw - wo)  # odd output sizes: one zero row/column
    dt = _out_dtype(x, w)
    v = _wino_in(x, th, tw, dt)
    u = _wino_filter(w, dt)
    m = lax.dot_general(v, u, (((2,), (1,)), ((0,), (0,))), preferred_element_type=_F32)
    y = _wino_out(m, b, th, tw)
    return y[:, :ho, :wo].astype(dt)


def _wino_wgrad(x, g):
    """dw of a 3x3 VALID stride-1 correlation by F(3x3, 2x2)."""
    _, ho, wo, _ = g.shape
    th, tw = _even_tiles(ho), _even_tiles(wo)
    x = _pad_hw(x, 0, 2 * th + 2 - x.shape[1], 0, 2 * tw + 2 - x.shape[2])
    g = _pad_hw(g, 0, 2 * th - ho, 0, 2 * tw - wo)
    dt = _out_dtype(x, g)
    v = _wino_in(x, th, tw, dt)
    gt = _wino_gtile(g, dt)
    m = lax.dot_general(v, gt, (((1,), (1,)), ((0,), (0,))), preferred_element_type=_F32)
    return _wino_wout(m)


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
    p = _patches(x, kh, kw, ho, wo)
    return lax.dot_general(
        p, w.reshape(kh * kw * ci, co), (((3,), (0,)), ((), ())), preferred_element_type=_F32
    ).astype(_out_dtype(x, w))


def _im2col_wgrad(x, g, kh, kw):
    ci, co = x.shape[-1], g.shape[-1]
    p = _patches(x, kh, kw, g.shape[1], g.shape[2]).reshape(-1, kh * kw * ci)
    # 2-D operands: XLA's CPU DotThunk has no bf16 x bf16 -> f32 kernel for a
    # contraction over three collapsed axes.
    dw = lax.dot_general(g.reshape(-1, co), p, (((0,), (0,)), ((), ())), preferred_element_type=_F32)
    return dw.T.reshape(kh, kw, ci, co)


# --------------------------------------------------------------------------
# The custom-VJP primitive.
# --------------------------------------------------------------------------
def _use_winograd(w):
    kh, kw, ci, co = w.shape
    return kh == kw == 3 and min(ci, co) >= 4


def _conv_valid_impl(x, w):
    if _use_winograd(w):
        return _wino_conv(x, w)
    return _im2col_conv(x, w)


def _wgrad_impl(x, g, kh, kw):
    if kh == kw == 3 and min(x.shape[-1], g.shape[-1]) >= 4:
        return _wino_wgrad(x, g)
    return _im2col_wgrad(x, g, kh, kw)


@jax.custom_vjp
def _conv_valid(x, w):
    """Stride-1 VALID correlation, NHWC x HWIO -> NHWC, fast custom VJP."""
    return _conv_valid_impl(x, w)


def _conv_valid_fwd(x, w):
    return _conv_valid_impl(x, w), (x, w)


def _conv_valid_bwd(res, g):
    x, w = res
    kh, kw = w.shape[:2]
    g = g.astype(_out_dtype(x, w))
    # dx is the full convolution of g with the rotated, transposed kernel:
    # the forward kernel again (no explicit-padding convolution anywhere).
    dx = _conv_valid_impl(_pad_hw(g, kh - 1, kh - 1, kw - 1, kw - 1), jnp.swapaxes(w[::-1, ::-1], 2, 3))
    dw = _wgrad_impl(x, g, kh, kw)
    return dx.astype(x.dtype), dw.astype(w.dtype)


_conv_valid.defvjp(_conv_valid_fwd, _conv_valid_bwd)


def _fast_conv2d(x, w, stride, padding):
    kh, kw = w.shape[:2]
    x = _pad_hw(x, padding, padding, padding, padding)
    if stride == 1:
        return _conv_valid(x, w)
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
            y = _conv_valid(xs, wk)
            out = y if out is None else out + y
    return out


def _fast_conv_transpose2d(x, w, stride, padding, output_padding):
    kh, kw = w.shape[:2]
    s = stride
    if s == 1:
        # Scatter form = correlation of the input padded by k-1-p with the
        # flipped kernel.
        xp = _pad_hw(x, kh - 1 - padding, kh - 1 - padding + output_padding, kw - 1 - padding, kw - 1 - padding + output_padding)
        return _conv_valid(xp, w[::-1, ::-1])
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
def conv2d(x, w, *, stride: int = 1, padding: int = 0, impl: str = "auto") -> jax.Array:
    """``torch.nn.functional.conv2d`` in NHWC / HWIO, without bias.

    Args:
      x: (B, H, W, Cin).
      w: (kh, kw, Cin, Cout); ``w[i, j, ci, co] == torch_weight[co, ci, i, j]``.
      stride, padding: symmetric, as in ``torch.nn.Conv2d``.
      impl: ``auto`` | ``xla`` | ``padded`` | ``fast`` (see the module docstring).

    Returns:
      (B, (H + 2p - kh) // s + 1, (W + 2p - kw) // s + 1, Cout), in the
      promoted dtype of ``x`` and ``w``; products accumulate in float32.

    Example:
      >>> conv2d(jnp.ones((2, 28, 28, 1)), jnp.ones((3, 3, 1, 8))).shape
      (2, 26, 26, 8)
    """
    if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
        raise ValueError(f"conv2d wants x (B,H,W,C) and w (kh,kw,C,O), got {x.shape} and {w.shape}")
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got {stride} and {padding}")
    impl = resolve_impl(impl)
    if impl == "fast":
        return _fast_conv2d(x, w, stride, padding)
    pads = [(padding, padding)] * 2
    if impl == "padded":
        x, pads = _pad_hw(x, padding, padding, padding, padding), "VALID"
    return lax.conv_general_dilated(
        x, w, (stride, stride), pads, dimension_numbers=_DN, preferred_element_type=_F32
    ).astype(_out_dtype(x, w))


def conv_transpose2d(
    x, w, *, stride: int = 1, padding: int = 0, output_padding: int = 0, impl: str = "auto"
) -> jax.Array:
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
      impl: ``auto`` | ``xla`` | ``padded`` | ``fast``.

    Returns:
      (B, (H - 1) * s - 2p + kh + output_padding, (W - 1) * s - 2p + kw + output_padding, Cout).

    Example:
      >>> conv_transpose2d(jnp.ones((2, 18, 18, 8)), jnp.ones((3, 3, 8, 4))).shape
      (2, 20, 20, 4)
      >>> conv_transpose2d(jnp.ones((2, 4, 4, 8)), jnp.ones((3, 3, 8, 3)),
      ...                  stride=2, padding=1, output_padding=1).shape
      (2, 8, 8, 3)
    """
    if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
        raise ValueError(f"conv_transpose2d wants x (B,H,W,C) and w (kh,kw,C,O), got {x.shape} and {w.shape}")
    kh, kw = w.shape[0], w.shape[1]
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got {stride} and {padding}")
    if not 0 <= output_padding < stride:
        raise ValueError(f"output_padding must be smaller than stride, got {output_padding} and {stride}")
    if padding > min(kh, kw) - 1:
        raise ValueError(f"padding {padding} too large for a {kh}x{kw} transposed convolution")
    impl = resolve_impl(impl)
    if impl == "fast":
        return _fast_conv_transpose2d(x, w, stride, padding, output_padding)
    w_flip = w[::-1, ::-1]
    lo_h, lo_w = kh - 1 - padding, kw - 1 - padding
    pads = [(lo_h, lo_h + output_padding), (lo_w, lo_w + output_padding)]
    if impl == "xla":
        y = lax.conv_general_dilated(
            x, w_flip, (1, 1), pads, lhs_dilation=(stride, stride), dimension_numbers=_DN, preferred_element_type=_F32
        )
        return y.astype(_out_dtype(x, w))
    if stride > 1:  # dilate with zeros by an interior pad
        x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (0, 0, stride - 1), (0, 0, stride - 1), (0, 0, 0)))
    x = _pad_hw(x, pads[0][0], pads[0][1], pads[1][0], pads[1][1])
    y = lax.conv_general_dilated(x, w_flip, (1, 1), "VALID", dimension_numbers=_DN, preferred_element_type=_F32)
    return y.astype(_out_dtype(x, w))


@functools.lru_cache(maxsize=None)
def tune_cpu_allocator() -> bool:
    """Keep freed host memory in the process instead of returning it to the OS.

    XLA's CPU runtime allocates its temporaries with ``malloc``. glibc serves
    requests above 32 MiB (and, by default, many smaller ones) with a fresh
    ``mmap`` and unmaps them on free, so every training step page-faults its
    large buffers in again; the kernel zeroes each 4 KiB page, which ran at
    2-3 GB/s on this machine (a (25600, 64) x (64, 1152) product writing 118
    MB: 47 ms, 3x slower than with the setting below; building a 48 MB im2col
    matrix: 23 ms vs 5 ms). ``mallopt(M_MMAP_MAX, 0)`` plus a large
    ``M_TRIM_THRESHOLD`` keeps the memory mapped after the first step.

    Process-wide and irreversible; idempotent. Call it once, early, in a
    process that trains on the CPU. Returns False where glibc's ``mallopt`` is
    unavailable (then it does nothing).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    ok = mallopt(m_mmap_max, 0) == 1
    ok = (mallopt(m_trim_threshold, ctypes.c_int(2**31 - 1)) == 1) and ok
    return ok
