"""Tests of the PyTorch benchmark reference and of the authors' host pairing.

The host-pairing tests need numpy/scipy only; every torch test starts with
``pytest.importorskip("torch")`` so the suite passes where torch is not installed.
"""

import numpy as np
import pytest

from benchmarks.baselines.host_pairing import HostPairing, host_pairs_per_second


def _labels(n=600, classes=5, seed=0):
    return np.random.default_rng(seed).integers(0, classes, n)


# ---------------------------------------------------------------- host pairing


def test_icrst_partner_shares_label():
    labels = _labels()
    pairing = HostPairing(labels, "icrst", p=1.0)
    np.random.seed(0)
    for i in range(len(labels)):
        j = pairing.pair(i)
        assert 0 <= j < len(labels)
        assert labels[j] == labels[i]


def test_class_lists_are_the_authors_distribution_dict():
    labels = _labels(50, 3)
    pairing = HostPairing(labels, "icrst", p=0.5)
    assert sorted(pairing.distribution_dict) == sorted(set(labels.tolist()))
    for label, idx in pairing.distribution_dict.items():
        assert isinstance(idx, list)
        assert idx == [i for i, v in enumerate(labels) if v == label]


@pytest.mark.parametrize("mode", ["icrst", "trst"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_swap_fraction_matches_p(mode, p):
    labels = _labels(2000, 10)
    pairing = HostPairing(labels, mode, p=p, rebuild_all_indices=False)
    np.random.seed(1)
    n = 4000
    # A swap can land on the anchor itself (probability 1/class size or 1/N), so
    # compare with the expected rate of "partner differs from anchor".
    changed = sum(pairing.pair(i % len(labels)) != i % len(labels) for i in range(n))
    expected = p * (1 - 10 / len(labels)) if mode == "icrst" else p * (1 - 1 / len(labels))
    sd = np.sqrt(max(expected * (1 - expected), 1e-12) / n)
    assert abs(changed / n - expected) <= 5 * sd + 1e-9


def test_trst_covers_the_set():
    labels = np.zeros(50, int)  # one class: only TRST's "all indices" pool matters
    labels[25:] = 1
    pairing = HostPairing(labels, "trst", p=1.0)
    np.random.seed(2)
    seen = {pairing.pair(0) for _ in range(1500)}
    assert seen == set(range(50))  # crosses classes too


def test_pairing_rejects_bad_arguments():
    with pytest.raises(ValueError):
        HostPairing(_labels(), "dae")
    with pytest.raises(ValueError):
        HostPairing(_labels(), "icrst", p=1.5)


def test_host_pairs_per_second_times_n_pairs_over_shuffled_anchors(monkeypatch):
    """n calls of ``pair`` between two clock readings, anchors in a shuffled
    order that cycles past the data-set size; the rate is n / elapsed."""
    import benchmarks.baselines.host_pairing as hp

    anchors = []
    real_pair = HostPairing.pair
    monkeypatch.setattr(HostPairing, "pair", lambda self, i: anchors.append(i) or real_pair(self, i))
    clock = iter([10.0, 10.5])  # the start and the end readings only
    monkeypatch.setattr(hp.time, "perf_counter", lambda: next(clock))
    labels = _labels()
    rate = host_pairs_per_second(labels, "icrst", p=0.5, n=900)
    assert rate == pytest.approx(900 / 0.5)
    assert len(anchors) == 900
    assert sorted(anchors[:600]) == list(range(600)) and anchors[600:] == anchors[:300]
    assert anchors[:600] != list(range(600))  # shuffled, as a DataLoader hands them out
    with pytest.raises(ValueError, match="n must be >= 1"):
        host_pairs_per_second(labels, "trst", n=0)


# ---------------------------------------------------------------- torch models


def _conv(cin, cout, k):
    """Conv2d / ConvTranspose2d parameters: k*k*cin*cout weights + cout biases."""
    return k * k * cin * cout + cout


def _bn(c):
    return 2 * c  # gamma, beta (running stats are buffers)


def _expected_conv_params(cin=1):
    enc = [32, 64, 128, 256, 512]
    dec = [512, 256, 128, 64, 32]
    total, c = 0, cin
    for h in enc + dec:
        total += _conv(c, h, 3) + _bn(h)
        c = h
    return total + _conv(32, cin, 1)


def _expected_conv_strided_params(cin=3):
    layers = [64, 64, 128, 128, 256, 256, 128, 128, 64]  # all 3x3 with BN
    total, c = 0, cin
    for h in layers:
        total += _conv(c, h, 3) + _bn(h)
        c = h
    return total + _conv(64, cin, 3)  # last ConvTranspose2d, no BN


def _expected_mlp_params():
    return (30 * 64 + 64) + (64 * 8 + 8) + (8 * 64 + 64) + (64 * 30 + 30)


@pytest.mark.parametrize(
    "name,shape,latent,params",
    [
        ("conv", (1, 28, 28), 512, _expected_conv_params()),
        ("conv_strided", (3, 32, 32), 256, _expected_conv_strided_params()),
        ("mlp", (30,), 8, _expected_mlp_params()),
    ],
)
def test_full_width_models(name, shape, latent, params):
    torch = pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import build_model, count_parameters

    model = build_model(name)
    assert count_parameters(model) == params
    x = torch.randn((2, *shape))
    out = model(x).detach()
    assert out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0  # Sigmoid output
    assert model.encode(x).shape == (2, latent)


@pytest.mark.parametrize("name,latent", [("conv", 128), ("conv_strided", 64), ("mlp", 2)])
def test_width_scales_latent_and_encode_torch(name, latent):
    pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import INPUT_SHAPES, build_model, encode_torch

    model = build_model(name, width=0.25)
    assert model.latent_dim == latent
    shape = INPUT_SHAPES[name]
    # encode_torch takes the JAX layout: NHWC images.
    nhwc = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape
    x = np.random.default_rng(0).normal(size=(5, *nhwc)).astype(np.float32)
    z = encode_torch(model, x, batch_size=2)
    assert z.shape == (5, latent) and z.dtype == np.float32
    assert model.training  # mode restored
    np.testing.assert_allclose(z, encode_torch(model, x), rtol=1e-5, atol=1e-6)  # eval: deterministic


def test_width_that_vanishes_is_an_error():
    pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import build_model

    with pytest.raises(ValueError):
        build_model("conv", width=0.01)  # round(32 * 0.01) == 0
    with pytest.raises(ValueError):
        build_model("mlp", width=0.0)


def test_paired_dataset_modes():
    torch = pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import PairedDataset

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    # Each sample's pixels all equal its label, so a target reveals its class.
    x = np.broadcast_to((labels / 4.0)[:, None, None, None], (40, 6, 6, 1)).copy()
    x += rng.uniform(0, 0.01, x.shape)
    np.random.seed(0)
    ds = PairedDataset(x, labels, mode="icrst", p=1.0)
    inp, tgt = ds[7]
    assert inp.shape == tgt.shape == (1, 6, 6)
    assert abs(float(tgt.mean()) - labels[7] / 4.0) < 0.02
    assert abs(float(ds.inputs.mean())) < 1e-4  # standardised input
    std = PairedDataset(x, labels, mode="standard")
    assert torch.equal(std[3][1], std.targets[3])
    dae = PairedDataset(x, labels, mode="dae", dae_sigma=0.5)
    noisy, clean = dae[3]
    assert torch.equal(clean, dae.targets[3])
    assert 0.2 < float((noisy - dae.inputs[3]).std()) < 0.9


@pytest.mark.parametrize("name,shape", [("conv", (16, 16, 1)), ("mlp", (30,))])
def test_train_torch_decreases_loss(name, shape):
    pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import train_torch

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (32, *shape)).astype(np.float32)
    y = rng.integers(0, 2, 32)
    r = train_torch(name, x, y, mode="standard", epochs=40, batch_size=32, width=0.125,
                    lr=1e-2, max_steps=25, dropout=0.0, num_threads=1)
    assert r["steps"] == 25 and r["samples"] == 25 * 32
    assert len(r["per_step_seconds"]) == 25 and r["seconds"] > 0 and r["samples_per_s"] > 0
    assert r["final_loss"] < r["losses"][0]


def test_train_torch_icrst_end_to_end():
    pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import train_torch

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 8)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    r = train_torch("mlp", x, y, mode="icrst", p=0.5, epochs=2, batch_size=16)
    assert r["steps"] == 6 and r["samples"] == 80  # 3 batches (16, 16, 8) per epoch
    assert np.isfinite(r["final_loss"])


def test_step_throughput_reports_per_step_times():
    pytest.importorskip("torch")
    from benchmarks.baselines.torch_reference import step_throughput

    r = step_throughput("mlp", 64, steps=3, warmup=1)
    assert len(r["per_step_seconds"]) == 3 and r["samples_per_s"] > 0
