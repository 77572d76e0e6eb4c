"""Micro-benchmark of the convolution implementations (``ModelConfig.conv_impl``) on the CPU.

Per layer of the Table D1 ``conv`` model (and the ``conv_strided`` layer
types), and for a whole conv autoencoder training step (forward + backward of
an MSE loss through conv -> bias -> LeakyReLU blocks, five unpadded 3x3
convolutions 28x28 -> 18x18, five unpadded 3x3 transposed convolutions back,
a 1x1 head), it times ``conv_impl`` = xla / cpu (:mod:`icrst_jax.cpu_conv`) and, when ``torch`` is
importable, the same layers and stack in PyTorch (``torch.set_num_threads``
= the JAX host's core count, channels_last and NCHW).

GF/s counts the nominal convolution FLOPs (2 * multiply-adds of a direct
convolution, x3 for forward + backward), whatever the algorithm does, so
Winograd's saving shows up as a higher rate. Times are the median of
``--repeats`` calls after ``--warmup`` calls (a layer that takes seconds per
call gets fewer repeats).

Run::

    python -m benchmarks.conv_micro                       # table
    python -m benchmarks.conv_micro --json conv.json
    python -m benchmarks.conv_micro --only stack --impls cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

# Table D1 `conv` model at width 1; the benchmark scales them by --width.
CONV_ENCODER = (32, 64, 128, 256, 512)
CONV_DECODER = (512, 256, 128, 64, 32)


def _scale(chs, width):
    return [max(1, int(round(c * width))) for c in chs]


def _timeit(fn, warmup, repeats, budget_s=20.0):
    """Median seconds of fn() (which must block) after warm-up; slow calls get fewer repeats."""
    for _ in range(max(1, warmup)):  # the first call compiles
        fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    n = max(1, min(repeats, int(budget_s / max(one, 1e-9))))
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), n


def conv_layers(width, hw=28):
    """(name, kind, H, Cin, Cout, stride, padding, output_padding) of the conv model."""
    enc, dec = _scale(CONV_ENCODER, width), _scale(CONV_DECODER, width)
    layers, h, cin = [], hw, 1
    for c in enc:
        layers.append((f"conv {h}->{h - 2} {cin}->{c}", "conv", h, cin, c, 1, 0, 0))
        h, cin = h - 2, c
    for c in dec:
        layers.append((f"convT {h}->{h + 2} {cin}->{c}", "convT", h, cin, c, 1, 0, 0))
        h, cin = h + 2, c
    return layers


def strided_layers(width, hw=32):
    """One of each conv_strided layer type (CIFAR-10 sizes)."""
    c1, c2 = _scale((64, 128), width)
    return [
        (f"conv s2p1 {hw}->{hw // 2} 3->{c1}", "conv", hw, 3, c1, 2, 1, 0),
        (f"conv s1p1 {hw // 2} {c1}->{c1}", "conv", hw // 2, c1, c1, 1, 1, 0),
        (f"convT s2p1o1 {hw // 4}->{hw // 2} {c2}->{c2}", "convT", hw // 4, c2, c2, 2, 1, 1),
    ]


def layer_flops(kind, batch, h, cin, cout, stride, padding, op):
    if kind == "conv":
        ho = (h + 2 * padding - 3) // stride + 1
        return 2 * batch * ho * ho * 9 * cin * cout
    return 2 * batch * h * h * 9 * cin * cout  # every input pixel scatters 9 taps


def stack_flops(batch, width, hw=28):
    total, h = 0, hw
    for name, kind, h, cin, cout, s, p, op in conv_layers(width, hw):
        total += layer_flops(kind, batch, h, cin, cout, s, p, op)
    last = _scale(CONV_DECODER, width)[-1]
    return total + 2 * batch * hw * hw * last  # 1x1 head


# ----------------------------------------------------------------------------
# JAX
# ----------------------------------------------------------------------------
def jax_layer(impl, kind, batch, h, cin, cout, s, p, op, warmup, repeats):
    import jax
    import jax.numpy as jnp

    from icrst_jax.conv import convolution

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, h, h, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin), jnp.float32)
    if kind == "conv":
        f = lambda a, b: convolution(impl, a, b, stride=s, padding=p)  # noqa: E731
    else:
        f = lambda a, b: convolution(impl, a, b, stride=s, padding=p, transpose=True, output_padding=op)  # noqa: E731
    ct = jnp.asarray(rng.standard_normal(jax.eval_shape(f, x, w).shape), jnp.float32)
    fwd = jax.jit(f)
    fb = jax.jit(jax.grad(lambda a, b: jnp.vdot(f(a, b), ct), (0, 1)))
    t_f, _ = _timeit(lambda: fwd(x, w).block_until_ready(), warmup, repeats)
    t_fb, _ = _timeit(lambda: jax.block_until_ready(fb(x, w)), warmup, repeats)
    return t_f, t_fb


def jax_stack_step(impl, batch, width, warmup, repeats, hw=28):
    import jax
    import jax.numpy as jnp

    from icrst_jax.conv import convolution

    rng = np.random.default_rng(0)
    params = []
    for name, kind, h, cin, cout, s, p, op in conv_layers(width, hw):
        params.append(
            (
                jnp.asarray(rng.uniform(-1, 1, (3, 3, cin, cout)) / np.sqrt(9 * cin), jnp.float32),
                jnp.zeros((cout,), jnp.float32),
            )
        )
    last = _scale(CONV_DECODER, width)[-1]
    head = jnp.asarray(rng.uniform(-1, 1, (1, 1, last, 1)) / np.sqrt(last), jnp.float32)
    x = jnp.asarray(rng.uniform(0, 1, (batch, hw, hw, 1)), jnp.float32)
    kinds = [k for _, k, *_ in conv_layers(width, hw)]

    def loss(params, head, x):
        h = x
        for (w, b), kind in zip(params, kinds):
            y = convolution(impl, h, w, transpose=kind != "conv")
            h = jax.nn.leaky_relu(y + b, 0.01)
        y = convolution(impl, h, head)
        return jnp.mean((y - x) ** 2)

    step = jax.jit(jax.value_and_grad(loss, (0, 1)))
    t, n = _timeit(lambda: jax.block_until_ready(step(params, head, x)), warmup, repeats, budget_s=60.0)
    return t, n


# ----------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------
def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_layer(kind, batch, h, cin, cout, s, p, op, warmup, repeats, channels_last):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cin, h, h, generator=g)
    if kind == "conv":
        m = torch.nn.Conv2d(cin, cout, 3, stride=s, padding=p, bias=False)
    else:
        m = torch.nn.ConvTranspose2d(cin, cout, 3, stride=s, padding=p, output_padding=op, bias=False)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
        m = m.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    with torch.no_grad():
        ct = torch.randn_like(m(x))

    def fwd():
        with torch.no_grad():
            m(x)

    def fb():
        m.zero_grad(set_to_none=True)
        x.grad = None
        m(x).backward(ct)

    t_f, _ = _timeit(fwd, warmup, repeats)
    t_fb, _ = _timeit(fb, warmup, repeats)
    return t_f, t_fb


def torch_stack_step(batch, width, warmup, repeats, channels_last, hw=28):
    import torch

    torch.manual_seed(0)
    mods = []
    for name, kind, h, cin, cout, s, p, op in conv_layers(width, hw):
        conv = torch.nn.Conv2d(cin, cout, 3) if kind == "conv" else torch.nn.ConvTranspose2d(cin, cout, 3)
        mods += [conv, torch.nn.LeakyReLU(0.01)]
    mods.append(torch.nn.Conv2d(_scale(CONV_DECODER, width)[-1], 1, 1))
    net = torch.nn.Sequential(*mods)
    x = torch.rand(batch, 1, hw, hw)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)

    def step():
        net.zero_grad(set_to_none=True)
        loss = torch.mean((net(x) - x) ** 2)
        loss.backward()

    return _timeit(step, warmup, repeats, budget_s=60.0)


# ----------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--impls", default="xla,cpu", help="comma-separated subset of xla,cpu")
    ap.add_argument("--only", choices=("all", "layers", "stack"), default="all")
    ap.add_argument("--no-strided", action="store_true", help="skip the conv_strided layer types")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    import jax

    threads = os.cpu_count() or 1
    use_torch = not args.no_torch and torch_available()
    if use_torch:
        import torch

        torch.set_num_threads(threads)
    impls = [i for i in args.impls.split(",") if i]
    for i in impls:
        if i not in ("xla", "cpu"):
            ap.error(f"--impls: unknown implementation {i!r}; known: xla, cpu")
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.processor() or platform.machine(),
        "cpus": threads,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "torch": torch.__version__ if use_torch else None,
        "batch": args.batch,
        "width": args.width,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    print(" ".join(f"{k}={v}" for k, v in meta.items()))
    results = {"meta": meta, "layers": [], "stack": []}

    if args.only in ("all", "layers"):
        layers = conv_layers(args.width) + ([] if args.no_strided else strided_layers(args.width))
        print(f"\n{'layer':34s} {'impl':14s} {'fwd ms':>9s} {'GF/s':>6s} {'f+b ms':>9s} {'GF/s':>6s}")
        for name, kind, h, cin, cout, s, p, op in layers:
            fl = layer_flops(kind, args.batch, h, cin, cout, s, p, op)
            rows = [(i, lambda i=i: jax_layer(i, kind, args.batch, h, cin, cout, s, p, op, args.warmup, args.repeats)) for i in impls]
            if use_torch:
                for cl in (True, False):
                    rows.append(
                        (
                            "torch " + ("NHWC" if cl else "NCHW"),
                            lambda cl=cl: torch_layer(kind, args.batch, h, cin, cout, s, p, op, args.warmup, args.repeats, cl),
                        )
                    )
            for label, run in rows:
                t_f, t_fb = run()
                print(f"{name:34s} {label:14s} {t_f * 1e3:9.2f} {fl / t_f / 1e9:6.0f} {t_fb * 1e3:9.2f} {3 * fl / t_fb / 1e9:6.0f}", flush=True)
                results["layers"].append(
                    {"layer": name, "impl": label, "fwd_ms": t_f * 1e3, "fwd_gflops": fl / t_f / 1e9,
                     "fwd_bwd_ms": t_fb * 1e3, "fwd_bwd_gflops": 3 * fl / t_fb / 1e9}
                )

    if args.only in ("all", "stack"):
        fl = 3 * stack_flops(args.batch, args.width)
        print(f"\nconv autoencoder step, width {args.width}, batch {args.batch} ({fl / 1e9:.1f} GFLOP nominal)")
        print(f"{'impl':14s} {'ms/step':>9s} {'samples/s':>10s} {'GF/s':>6s} {'calls':>5s}")
        rows = [(i, lambda i=i: jax_stack_step(i, args.batch, args.width, args.warmup, args.repeats)) for i in impls]
        if use_torch:
            for cl in (True, False):
                rows.append(
                    ("torch " + ("NHWC" if cl else "NCHW"),
                     lambda cl=cl: torch_stack_step(args.batch, args.width, args.warmup, args.repeats, cl))
                )
        for label, run in rows:
            t, n = run()
            print(f"{label:14s} {t * 1e3:9.1f} {args.batch / t:10.0f} {fl / t / 1e9:6.0f} {n:5d}", flush=True)
            results["stack"].append(
                {"impl": label, "ms_per_step": t * 1e3, "samples_per_s": args.batch / t, "gflops": fl / t / 1e9, "calls": n}
            )
        best_torch = min((r["ms_per_step"] for r in results["stack"] if r["impl"].startswith("torch")), default=None)
        if best_torch:
            for r in results["stack"]:
                if not r["impl"].startswith("torch"):
                    print(f"{r['impl']}: {best_torch / r['ms_per_step']:.2f}x PyTorch's best")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
