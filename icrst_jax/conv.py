"""The convolutions of the conv models, chosen by ``ModelConfig.conv_impl``.

Every implementation has ``torch.nn.functional.conv2d`` / ``conv_transpose2d``
semantics in NHWC / HWIO without bias (see :func:`icrst_jax.cpu_conv.conv2d`
for the layout), accumulates products in float32, and is checked against
float64 references in ``tests/test_conv.py``:

* ``xla``: XLA's own convolution (cuDNN on a GPU);
* ``cpu``: :mod:`icrst_jax.cpu_conv` (Winograd, im2col, strided phases, one
  custom VJP), for XLA's slow CPU convolutions;
* ``matmul``: im2col patches times the kernel matrix, gradients by autodiff;
* ``auto``: ``xla`` off a CPU (the GPU measurements behind that choice:
  BENCHMARKS.md, "GPU"); on a CPU, ``cpu`` for a program that trains long
  enough to pay back its compile, ``matmul`` for a short one (fewer than
  ``AUTO_CPU_PATH_MIN_STEPS`` optimizer steps, all runs together): the CPU
  path's steps are faster, but its Winograd and im2col terms compile about 3x
  longer (BENCHMARKS.md, "Cold start").

Example:
  >>> convolution("matmul", jnp.ones((2, 28, 28, 1)), jnp.ones((3, 3, 1, 8))).shape
  (2, 26, 26, 8)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from icrst_jax import cpu_conv


# ``auto`` on a CPU: a program of fewer optimizer steps than this (epochs x
# steps per epoch x runs) uses ``matmul``, whose compile is shorter by more
# than its slower steps cost. The break-even falls as a step's work grows
# (BENCHMARKS.md, "Cold start": ~210 steps for the width-1/4 conv at 28x28,
# ~500 for the width-1/8 one at 16x16); this is near the lower one, where
# picking wrongly costs least on either side.
AUTO_CPU_PATH_MIN_STEPS = 200


def resolve_conv_impl(impl: str, steps: int | None = None) -> str:
    """``ModelConfig.conv_impl`` for this process and a program of ``steps`` optimizer steps.

    ``auto`` is ``xla`` off a CPU; on a CPU it is ``matmul`` for fewer than
    ``AUTO_CPU_PATH_MIN_STEPS`` steps and ``cpu`` otherwise (``steps=None``:
    unknown, ``cpu``).
    """
    if impl != "auto":
        return impl
    if jax.default_backend() != "cpu":
        return "xla"
    return "matmul" if steps is not None and steps < AUTO_CPU_PATH_MIN_STEPS else "cpu"


def xla_conv2d(x, w, *, stride: int = 1, padding: int = 0) -> jax.Array:
    """XLA's convolution with ``torch.nn.functional.conv2d``'s semantics (see
    :func:`icrst_jax.cpu_conv.conv2d` for the layout); products accumulate in float32."""
    cpu_conv.check_conv_args(x, w, stride=stride, padding=padding)
    y = lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=cpu_conv.LAYOUT,
                                 preferred_element_type=jnp.float32)
    return y.astype(jnp.result_type(x.dtype, w.dtype))


def xla_conv_transpose2d(x, w, *, stride: int = 1, padding: int = 0, output_padding: int = 0) -> jax.Array:
    """XLA's convolution with ``torch.nn.functional.conv_transpose2d``'s semantics
    (see :func:`icrst_jax.cpu_conv.conv_transpose2d`): the flipped kernel over the
    input dilated by the stride and padded by ``k - 1 - p``."""
    cpu_conv.check_conv_args(x, w, stride=stride, padding=padding, transpose=True, output_padding=output_padding)
    kh, kw = w.shape[:2]
    lo_h, lo_w = kh - 1 - padding, kw - 1 - padding
    y = lax.conv_general_dilated(
        x, w[::-1, ::-1], (1, 1), [(lo_h, lo_h + output_padding), (lo_w, lo_w + output_padding)],
        lhs_dilation=(stride, stride), dimension_numbers=cpu_conv.LAYOUT, preferred_element_type=jnp.float32)
    return y.astype(jnp.result_type(x.dtype, w.dtype))


def matmul_conv2d(x, w, *, stride: int = 1, padding: int = 0) -> jax.Array:
    """``torch.nn.functional.conv2d``'s semantics (layout of
    :func:`icrst_jax.cpu_conv.conv2d`) as im2col patches times the kernel matrix.

    The kh*kw shifted (strided) windows of the padded input side by side,
    (B, Ho, Wo, kh*kw*Cin), contracted with ``w`` as a (kh*kw*Cin, Cout) matrix;
    gradients by autodiff (slices, pads and matrix products). Under ``jax.vmap``
    over runs with their own weights the contraction is one batched matrix
    product with the run axis as its batch dimension, where XLA's convolution
    becomes a grouped convolution (``feature_group_count`` = runs).
    """
    cpu_conv.check_conv_args(x, w, stride=stride, padding=padding)
    kh, kw, ci, co = w.shape
    if padding:
        x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    b, h, wd, _ = x.shape
    s = stride
    ho, wo = (h - kh) // s + 1, (wd - kw) // s + 1
    cols = [lax.slice(x, (0, i, j, 0), (b, i + s * (ho - 1) + 1, j + s * (wo - 1) + 1, ci), (1, s, s, 1))
            for i in range(kh) for j in range(kw)]
    patches = cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)
    y = lax.dot_general(patches, w.reshape(kh * kw * ci, co), (((3,), (0,)), ((), ())),
                        preferred_element_type=jnp.float32)
    return y.astype(jnp.result_type(x.dtype, w.dtype))


def matmul_conv_transpose2d(x, w, *, stride: int = 1, padding: int = 0, output_padding: int = 0) -> jax.Array:
    """``torch.nn.functional.conv_transpose2d``'s semantics by :func:`matmul_conv2d`:
    the flipped kernel over the input dilated by the stride and padded by ``k - 1 - p``."""
    cpu_conv.check_conv_args(x, w, stride=stride, padding=padding, transpose=True, output_padding=output_padding)
    kh, kw = w.shape[:2]
    lo_h, lo_w = kh - 1 - padding, kw - 1 - padding
    x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (lo_h, lo_h + output_padding, stride - 1),
                                           (lo_w, lo_w + output_padding, stride - 1), (0, 0, 0)))
    return matmul_conv2d(x, w[::-1, ::-1])


def convolution(impl: str, x, w, *, stride: int = 1, padding: int = 0, transpose: bool = False,
                output_padding: int = 0) -> jax.Array:
    """The convolution (or transposed convolution) of a :class:`Conv` layer by ``impl`` (``CONV_IMPLS``)."""
    impl = resolve_conv_impl(impl)
    if impl == "cpu":
        if transpose:
            return cpu_conv.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding)
        return cpu_conv.conv2d(x, w, stride=stride, padding=padding)
    if impl == "matmul":
        if transpose:
            return matmul_conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding)
        return matmul_conv2d(x, w, stride=stride, padding=padding)
    if transpose:
        return xla_conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding)
    return xla_conv2d(x, w, stride=stride, padding=padding)
