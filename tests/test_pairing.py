"""Statistical tests of the on-device pairing (paper sections 3, 4, 6)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from icrst_jax.pairing import build_pairing_table, pair_indices, partner_code

# Unbalanced like Caltech101 (31 to 800 per class), with arbitrary label values
# (negative, non-contiguous) and a singleton class.
COUNTS = {-5: 31, 3: 800, 17: 120, 100: 1, 42: 250}


def unbalanced_labels(seed=0):
    labels = np.concatenate([np.full(n, v) for v, n in COUNTS.items()])
    return np.random.default_rng(seed).permutation(labels)


def test_table_structure():
    labels = unbalanced_labels()
    t = build_pairing_table(labels)
    assert t.class_values.tolist() == sorted(COUNTS)
    assert t.class_count.tolist() == [COUNTS[v] for v in sorted(COUNTS)]
    sorted_labels = labels[np.asarray(t.sorted_indices)]
    # Each class's slice of the sorted table holds exactly that class.
    for c, v in enumerate(sorted(COUNTS)):
        s, n = int(t.class_start[c]), int(t.class_count[c])
        assert (sorted_labels[s : s + n] == v).all()
    assert (np.asarray(t.class_values)[np.asarray(t.sample_class)] == labels).all()
    assert t.num_samples == labels.size and t.num_classes == len(COUNTS)


def test_table_rejects_bad_labels():
    with pytest.raises(ValueError, match="integers"):
        build_pairing_table(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        build_pairing_table(np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="unknown mode"):
        pair_indices(jax.random.key(0), build_pairing_table(np.array([0, 1])), jnp.arange(2), mode="bogus", p=1.0)


@functools.partial(jax.jit, static_argnames=("mode", "p"))
def _draw_static(keys, table, idx, *, mode, p):
    return jax.vmap(lambda k: pair_indices(k, table, idx, mode=mode, p=p))(keys)


@jax.jit
def _draw_traced(keys, table, idx, codes, ps):
    return jax.vmap(lambda k, c, q: pair_indices(k, table, idx, mode=c, p=q))(keys, codes, ps)


# Draws per test: one number for all, so that tests of one mode and p (static), or of
# any mode and p (traced), share a compiled program.
N_DRAWS = 200


def _draw(mode, p, labels, n_draws=N_DRAWS, seed=0, traced=False):
    """n_draws batches over all anchors, under jit + vmap over keys (the seed axis).

    ``traced``: the mode and p are data, vmapped with the keys (as a study's
    run axis carries them), instead of static Python values. The table is an
    argument, so draws of one shape share a compiled program."""
    t = build_pairing_table(labels)
    keys = jax.random.split(jax.random.key(seed), n_draws)
    idx = jnp.arange(labels.size, dtype=jnp.int32)
    if traced:
        return np.asarray(_draw_traced(keys, t, idx, jnp.full(n_draws, partner_code(mode)),
                                       jnp.full(n_draws, p, jnp.float32)))
    return np.asarray(_draw_static(keys, t, idx, mode=mode, p=p))  # (n_draws, N)


def test_icrst_partner_has_anchor_label():
    labels = unbalanced_labels()
    partners = _draw("icrst", 1.0, labels)
    assert (labels[partners] == labels[None, :]).all()


def test_singleton_class_pairs_with_itself():
    labels = unbalanced_labels()
    lone = int(np.flatnonzero(labels == 100)[0])
    partners = _draw("icrst", 1.0, labels)
    assert (partners[:, lone] == lone).all()


def _within_class_pvalues(labels, partners, anchors_label):
    """Chi-square p-value of the partner counts inside each class (size >= 2)."""
    pvals = {}
    for v, n in COUNTS.items():
        if n < 2:
            continue
        members = np.flatnonzero(labels == v)
        chosen = partners[anchors_label == v]
        counts = np.bincount(np.searchsorted(members, chosen), minlength=n)
        pvals[v] = stats.chisquare(counts)[1]
    return pvals


@pytest.mark.parametrize("traced", [False, True])
def test_icrst_uniform_within_unbalanced_classes(traced):
    """Chi-square goodness of fit of partner counts inside each class, at a fixed seed."""
    labels = unbalanced_labels()
    partners = _draw("icrst", 1.0, labels, traced=traced).ravel()
    anchors_label = np.tile(labels, N_DRAWS)
    for v, pval in _within_class_pvalues(labels, partners, anchors_label).items():
        assert pval > 1e-3, (v, pval)
    # The same test rejects a subtly biased sampler (the last member of every
    # class never drawn), so it has the power to catch an off-by-one offset.
    rng = np.random.default_rng(0)
    biased = np.empty_like(partners)
    for v, n in COUNTS.items():
        members = np.flatnonzero(labels == v)
        sel = anchors_label == v
        biased[sel] = members[rng.integers(0, max(n - 1, 1), sel.sum())]
    assert min(_within_class_pvalues(labels, biased, anchors_label).values()) < 1e-6


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("mode", ["icrst", "trst"])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.7, 1.0])
def test_swap_fraction_matches_p(mode, p, traced):
    labels = unbalanced_labels()
    partners = _draw(mode, p, labels, traced=traced)
    anchors = np.arange(labels.size)[None, :]
    swapped = partners != anchors
    # A swap may draw the anchor itself (probability 1/class size); count the
    # swaps whose draw was a different sample, and compare with its expectation.
    if mode == "icrst":
        sizes = np.array([COUNTS[v] for v in labels])
    else:
        sizes = np.full(labels.size, labels.size)
    expected = p * np.mean(1 - 1 / sizes)
    n = swapped.size
    tol = 5 * np.sqrt(max(expected * (1 - expected), 1e-12) / n) + 1e-9
    assert abs(swapped.mean() - expected) <= tol, (swapped.mean(), expected)


@pytest.mark.parametrize("traced", [False, True])
def test_trst_uniform_over_dataset(traced):
    labels = unbalanced_labels()
    partners = _draw("trst", 1.0, labels, traced=traced).ravel()
    counts = np.bincount(partners, minlength=labels.size)
    _, pval = stats.chisquare(counts)
    assert pval > 1e-3
    # Labels of trst partners follow the data set's class proportions.
    frac = np.mean(labels[partners] == 3)
    assert abs(frac - 800 / labels.size) < 0.01


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("mode", ["standard", "dae"])
def test_standard_and_dae_keep_the_input(mode, traced):
    labels = unbalanced_labels()
    partners = _draw(mode, 1.0, labels, traced=traced)
    assert (partners == np.arange(labels.size)[None]).all()


def test_vmap_over_keys_equals_separate_calls():
    labels = unbalanced_labels()
    t = build_pairing_table(labels)
    idx = jnp.arange(64)
    keys = jax.random.split(jax.random.key(3), 4)
    # Both sides compiled (eager, every op of the draw compiles on its own).
    batched = np.asarray(jax.jit(jax.vmap(lambda k: pair_indices(k, t, idx, mode="icrst", p=0.5)))(keys))
    one = jax.jit(lambda keys, i: pair_indices(keys[i], t, idx, mode="icrst", p=0.5))
    for i in range(4):
        np.testing.assert_array_equal(batched[i], one(keys, i))


def test_traced_p_and_batch_indices():
    """p may be traced (a p sweep reuses one compiled program); indices any shape."""
    labels = unbalanced_labels()
    t = build_pairing_table(labels)
    f = jax.jit(lambda k, p, idx: pair_indices(k, t, idx, mode="icrst", p=p))
    idx = jnp.arange(120).reshape(3, 40)
    out0 = f(jax.random.key(0), jnp.float32(0.0), idx)
    out1 = f(jax.random.key(0), jnp.float32(1.0), idx)
    assert out0.shape == (3, 40)
    np.testing.assert_array_equal(out0, idx)
    assert (labels[np.asarray(out1)] == labels[np.asarray(idx)]).all()
    assert f._cache_size() == 1


def test_mode_as_data_equals_static_mode():
    """Every mode as a traced partner code, all four in one vmapped program,
    draws exactly the partners of the static mode with the same key: a study
    that carries the mode as data trains each grid point as its own run would."""
    labels = unbalanced_labels()
    t = build_pairing_table(labels)
    idx = jnp.arange(256, dtype=jnp.int32)
    modes = ["standard", "icrst", "trst", "dae"]
    keys = jax.random.split(jax.random.key(11), len(modes))
    codes = jnp.array([partner_code(m) for m in modes])
    ps = jnp.array([0.6, 0.6, 0.6, 0.6], jnp.float32)
    f = jax.jit(jax.vmap(lambda k, c, q: pair_indices(k, t, idx, mode=c, p=q)))
    together = np.asarray(f(keys, codes, ps))
    static = jax.jit(lambda keys, i, t, *, m: pair_indices(keys[i], t, idx, mode=m, p=0.6), static_argnames="m")
    for i, m in enumerate(modes):
        alone = np.asarray(static(keys, i, t, m=m))
        np.testing.assert_array_equal(together[i], alone)
    # The rows differ where they should: icrst and trst swap, standard/dae do not.
    assert (together[0] == np.asarray(idx)).all() and (together[3] == np.asarray(idx)).all()
    assert (together[1] != np.asarray(idx)).any() and (together[2] != np.asarray(idx)).any()
    assert f._cache_size() == 1
    with pytest.raises(ValueError, match="unknown mode"):
        partner_code("bogus")
    with pytest.raises(ValueError, match="scalar partner code"):
        pair_indices(keys[0], t, idx, mode=jnp.array([1, 2]), p=0.5)


# --- Domains (unsupervised domain adaptation, icrst_jax.adaptation) ---------------------------


def _two_domains(seed=0):
    """Two domains of 3 classes; in domain 1 a third of the samples have no known class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 900)
    domains = np.r_[np.zeros(400, int), np.ones(500, int)]
    known = np.r_[np.ones(400, bool), rng.random(500) > 1 / 3]
    return labels, domains, known


@functools.partial(jax.jit, static_argnames="code")
def _draw_table_jit(keys, table, idx, p, *, code):
    return jax.vmap(lambda k: pair_indices(k, table, idx, mode=code, p=p))(keys)


def _draw_table(table, code, p, n_draws=40, seed=0):
    """n_draws batches over all anchors; the table and p are arguments: one compiled
    program per partner code and shape."""
    keys = jax.random.split(jax.random.key(seed), n_draws)
    idx = jnp.arange(table.num_samples, dtype=jnp.int32)
    return np.asarray(_draw_table_jit(keys, table, idx, jnp.float32(p), code=code))


def test_cross_domain_partner_is_of_the_anchors_class_in_the_other_domain():
    labels, domains, known = _two_domains()
    t = build_pairing_table(labels, domains, known=known)
    assert t.num_domains == 2 and t.num_classes == 3 and t.class_count.shape == (6,)
    partners = _draw_table(t, partner_code("cross_icrst"), 1.0)
    anchors = np.broadcast_to(np.arange(labels.size), partners.shape)
    paired = known[anchors]
    assert (labels[partners][paired] == labels[anchors][paired]).all()
    assert (domains[partners][paired] != domains[anchors][paired]).all()
    # ... and only known partners: an unknown sample is in no group.
    assert known[partners[paired]].all()
    # Unknown anchors reconstruct themselves.
    assert (partners[~paired] == anchors[~paired]).all()
    # Within the other domain's class the draw is uniform (chi-square over the partners of class 0 anchors).
    members = np.flatnonzero(known & (labels == 0) & (domains == 1))
    chosen = partners[(labels[anchors] == 0) & (domains[anchors] == 0)]
    assert stats.chisquare(np.bincount(np.searchsorted(members, chosen), minlength=members.size))[1] > 1e-3
    # The traced code draws what the static mode draws with the same key.
    draw = jax.jit(lambda c, t, *, static: pair_indices(jax.random.key(5), t, jnp.arange(900),
                                                          mode="cross_icrst" if static else c, p=1.0),
                   static_argnames="static")
    static = np.asarray(draw(jnp.int32(partner_code("cross_icrst")), t, static=True))
    traced = np.asarray(draw(jnp.int32(partner_code("cross_icrst")), t, static=False))
    np.testing.assert_array_equal(static, traced)


def test_in_class_stays_in_the_domain_and_unknown_samples_pair_with_themselves():
    labels, domains, known = _two_domains(1)
    t = build_pairing_table(labels, domains, known=known)
    partners = _draw_table(t, partner_code("icrst"), 1.0)
    anchors = np.broadcast_to(np.arange(labels.size), partners.shape)
    paired = known[anchors]
    assert (labels[partners][paired] == labels[anchors][paired]).all()
    assert (domains[partners] == domains[anchors]).all()
    assert (partners[~paired] == anchors[~paired]).all()


def test_an_empty_group_pairs_with_itself():
    # Class 1 has no known sample in domain 1: its domain-0 anchors find no cross partner.
    labels = np.array([0, 1, 0, 1, 0, 1])
    domains = np.array([0, 0, 1, 1, 1, 1])
    known = np.array([True, True, True, False, True, False])
    t = build_pairing_table(labels, domains, known=known)
    partners = _draw_table(t, partner_code("cross_icrst"), 1.0, 50)
    assert (partners[:, 1] == 1).all()
    assert set(partners[:, 0]) == {2, 4} and set(partners[:, 2]) == {0} and (partners[:, 3] == 3).all()


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_cross_domain_swap_fraction_matches_p(p):
    # A cross-domain partner is never the anchor, so the share of known anchors swapped is p.
    labels, domains, known = _two_domains(2)
    t = build_pairing_table(labels, domains, known=known)
    partners = _draw_table(t, partner_code("cross_icrst"), p)
    swapped = (partners != np.arange(labels.size))[:, known]
    tol = 5 * np.sqrt(max(p * (1 - p), 1e-12) / swapped.size) + 1e-9
    assert abs(swapped.mean() - p) <= tol, (swapped.mean(), p)


def test_fixed_class_values_keep_the_shapes_when_the_known_labels_change():
    labels, domains, known = _two_domains(3)
    a = build_pairing_table(labels, domains, known=known, class_values=[0, 1, 2], num_domains=2)
    none_known = np.r_[np.ones(400, bool), np.zeros(500, bool)]
    b = build_pairing_table(np.where(none_known, labels, 0), domains, known=none_known, class_values=[0, 1, 2],
                            num_domains=2)
    assert [x.shape for x in a] == [x.shape for x in b]
    assert (np.asarray(b.sample_class)[400:] == -1).all() and int(np.asarray(b.class_count)[1::2].sum()) == 0
    with pytest.raises(ValueError, match="outside class_values"):
        build_pairing_table(np.array([0, 5]), class_values=[0, 1])
