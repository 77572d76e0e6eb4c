"""On-device partner pairing for ICRST and TRST (paper sections 3, 4 and 6).

The authors' PyTorch code pairs on the host, one sample at a time: a scipy
Bernoulli draw, then ``np.random.choice`` from a Python list of same-class
indices (about 9,000 pairs/s here, which caps their whole pipeline). Here the
pairing is a handful of gathers on the accelerator:

* ``build_pairing_table`` (host, once per data set) sorts the sample indices by
  class and records each class's start and count in that sorted table.
* ``pair_indices`` (device, every step) draws one Bernoulli variable and one
  uniform offset inside the anchor's class per sample: O(batch) work, no loop
  over classes or samples, no host round trip. It is a pure function of its
  key, so it works under ``jax.jit``, ``jax.vmap`` over keys (seeds) and inside
  a sharded data-parallel step.

A partner is drawn uniformly from the *whole* class, the anchor included, as
the authors' ``np.random.choice`` over the class list does; a class with a
single sample therefore pairs with itself.

Domains (unsupervised domain adaptation, paper section 8,
:mod:`icrst_jax.adaptation`): a table may split every class by domain, so a
group is (class, domain). In-class pairing then stays inside the anchor's
domain, and cross-domain pairing (``cross_icrst``) draws from the anchor's
class in the other domain. A sample of unknown class (an unlabelled sample of
the target domain, or one whose pseudo-label is not confident) and an anchor whose group
is empty pair with themselves. With one domain (the default) groups are classes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from icrst_jax.config import CROSS_ICRST, MODES


class PairingTable(NamedTuple):
    """Label-sorted index table (a pytree of device arrays).

    A group is (class id ``c``, domain ``d``), numbered ``c * D + d`` for D
    domains; with one domain a group is a class.

    Attributes:
      sorted_indices: (N,) int32, sample indices sorted by group (stable);
        samples of unknown class come last, in no group.
      class_start: (M * D,) int32, where group ``g`` begins in ``sorted_indices``.
      class_count: (M * D,) int32, how many samples group ``g`` has.
      sample_class: (N,) int32, the class id (0..M-1) of every sample; -1 for
        a sample of unknown class (it pairs with itself).
      class_values: (M,) int32, the original label value of every class id.
      sample_domain: (N,) int32, the domain (0..D-1) of every sample.
    """

    sorted_indices: jax.Array
    class_start: jax.Array
    class_count: jax.Array
    sample_class: jax.Array
    class_values: jax.Array
    sample_domain: jax.Array

    @property
    def num_samples(self) -> int:
        return self.sample_class.shape[-1]

    @property
    def num_classes(self) -> int:
        return self.class_values.shape[-1]

    @property
    def num_domains(self) -> int:
        return self.class_count.shape[-1] // self.class_values.shape[-1]


def build_pairing_table(labels, domains=None, *, known=None, class_values=None, num_domains: int | None = None
                        ) -> PairingTable:
    """Builds the label-sorted index table used by :func:`pair_indices`.

    Args:
      labels: (N,) integer labels with any values (they need not be 0..M-1).
      domains: (N,) domain of every sample, 0..D-1; None: one domain.
      known: (N,) bool, whose labels are known (the others pair with
        themselves, their labels are ignored); None: all.
      class_values: the label values of the classes; None: those of the known
        labels. Fixing them (and ``num_domains``) keeps the table's shapes the
        same when the known labels change (pseudo-labels refreshed during
        training), so the compiled epoch is reused.
      num_domains: D; None: ``max(domains) + 1``.

    Returns:
      A :class:`PairingTable` of int32 device arrays.

    Example:
      >>> table = build_pairing_table(np.array([7, 3, 7, 7]))
      >>> table.class_values.tolist(), table.class_count.tolist()
      ([3, 7], [1, 3])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    n = labels.size
    known = np.ones(n, bool) if known is None else np.asarray(known, bool)
    domains = np.zeros(n, np.int64) if domains is None else np.asarray(domains).astype(np.int64)
    if known.shape != (n,) or domains.shape != (n,):
        raise ValueError(f"known and domains must be shaped like labels ({n},), got {known.shape} and {domains.shape}")
    num_domains = int(domains.max()) + 1 if num_domains is None else int(num_domains)
    if domains.min() < 0 or domains.max() >= num_domains:
        raise ValueError(f"domains must be in 0..{num_domains - 1}, got {domains.min()}..{domains.max()}")
    if class_values is None:
        if not known.any():
            raise ValueError("no known label: give class_values")
        class_values = np.unique(labels[known])
    class_values = np.asarray(class_values)
    sample_class = np.searchsorted(class_values, labels).clip(0, len(class_values) - 1)
    if (class_values[sample_class][known] != labels[known]).any():
        raise ValueError(f"known labels outside class_values {class_values.tolist()}")
    sample_class = np.where(known, sample_class, -1)
    num_groups = len(class_values) * num_domains
    group = np.where(known, sample_class * num_domains + domains, num_groups)  # unknown: after every group
    counts = np.bincount(group, minlength=num_groups + 1)[:num_groups]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_indices = np.argsort(group, kind="stable")
    as_i32 = lambda a: jnp.asarray(np.asarray(a, dtype=np.int32))  # noqa: E731
    return PairingTable(
        sorted_indices=as_i32(sorted_indices),
        class_start=as_i32(starts),
        class_count=as_i32(counts),
        sample_class=as_i32(sample_class),
        class_values=as_i32(class_values),
        sample_domain=as_i32(domains),
    )


# How a mode picks the partner an anchor reconstructs: the partner kind of
# :func:`pair_indices` as an integer, so that the mode can be a traced value (one
# compiled program trains standard, ICRST, TRST and DAE runs side by side).
PARTNER_SELF, PARTNER_IN_CLASS, PARTNER_WHOLE_SET, PARTNER_OTHER_DOMAIN = 0, 1, 2, 3
PARTNER_OF_MODE = {"standard": PARTNER_SELF, "dae": PARTNER_SELF, "icrst": PARTNER_IN_CLASS, "trst": PARTNER_WHOLE_SET,
                   CROSS_ICRST: PARTNER_OTHER_DOMAIN}


def partner_code(mode: str) -> int:
    """The partner kind of a mode: 0 the anchor itself, 1 in-class, 2 whole set,
    3 the anchor's class in the other domain."""
    if mode not in PARTNER_OF_MODE:
        raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES + (CROSS_ICRST,))}")
    return PARTNER_OF_MODE[mode]


def pair_indices(key: jax.Array, table: PairingTable, indices: jax.Array, *, mode, p: float | jax.Array) -> jax.Array:
    """Returns the index of each anchor's partner (the sample it reconstructs).

    With probability ``p`` (one Bernoulli draw per sample, section 6) the anchor
    is swapped for a partner: a uniform sample of the anchor's class (``icrst``,
    eq. 7; in the anchor's domain), of the whole training set (``trst``, eq. 9)
    or of the anchor's class in the other domain (``cross_icrst``, domain
    ``(d + 1) % D``); otherwise it is the anchor itself. ``standard`` and
    ``dae`` always return ``indices``, and an anchor of unknown class (or whose
    group is empty) pairs with itself in ``icrst`` and ``cross_icrst``.

    ``mode`` may also be data: an integer scalar (traced or not) from
    :func:`partner_code`. Both partners are then drawn from the same key and
    one is selected, so a traced mode returns exactly what the static mode
    returns for the same key, and one compiled program serves every mode.

    Args:
      key: a JAX PRNG key.
      table: from :func:`build_pairing_table`.
      indices: (...,) int sample indices (the anchors); any shape.
      mode: ``standard``, ``dae``, ``icrst`` or ``trst`` (static), or an int
        scalar partner code (``partner_code(mode)``; may be traced).
      p: swap probability in [0, 1]; a Python float or a traced scalar.

    Returns:
      int32 array shaped like ``indices``.

    Example:
      >>> table = build_pairing_table(labels)
      >>> partners = jax.jit(pair_indices, static_argnames="mode")(
      ...     key, table, jnp.arange(512), mode="icrst", p=1.0)
      >>> bool((labels[partners] == labels[:512]).all())
      True
      >>> same = jax.jit(pair_indices)(key, table, jnp.arange(512), mode=partner_code("icrst"), p=1.0)
      >>> bool((same == partners).all())
      True
    """
    indices = jnp.asarray(indices, jnp.int32)
    if isinstance(mode, str):
        code = partner_code(mode)
        if code == PARTNER_SELF:
            return indices
    else:
        code = jnp.asarray(mode, jnp.int32)
        if code.shape != ():
            raise ValueError(f"a mode given as data must be a scalar partner code, got shape {code.shape}")
    static = isinstance(code, int)
    k_swap, k_partner = jax.random.split(key)
    swap = jax.random.bernoulli(k_swap, p, indices.shape)

    def in_group(domain_shift: int):
        cls = table.sample_class[indices]
        d = table.num_domains
        group = jnp.maximum(cls, 0) * d + (table.sample_domain[indices] + domain_shift) % d
        count = jnp.where(cls >= 0, table.class_count[group], 0)
        # A per-sample uniform offset inside the anchor's group: randint with an
        # array-valued maxval is exact-uniform up to JAX's 2x32-bit reduction.
        offset = jax.random.randint(k_partner, indices.shape, 0, count, dtype=jnp.int32)
        return jnp.where(count > 0, table.sorted_indices[table.class_start[group] + offset], indices)

    def in_class():
        return in_group(0)

    def other_domain():
        return in_group(1)

    def whole_set():  # trst: uniform over the whole training set.
        return jax.random.randint(k_partner, indices.shape, 0, table.num_samples, dtype=jnp.int32)

    if static:
        partner = {PARTNER_IN_CLASS: in_class, PARTNER_WHOLE_SET: whole_set, PARTNER_OTHER_DOMAIN: other_domain}[code]()
    else:
        # Each draw costs O(batch) integer work; selecting keeps one program.
        partner = jnp.select([code == PARTNER_IN_CLASS, code == PARTNER_OTHER_DOMAIN],
                             [in_class(), other_domain()], whole_set())
        swap = swap & (code != PARTNER_SELF)
    return jnp.where(swap, partner, indices)
