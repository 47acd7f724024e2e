"""SemDeDup: planted near-duplicates, eps monotonicity, chains, exact duplicates, blocking."""

from __future__ import annotations

import numpy as np
import pytest

from crawlmix.cluster.kmeans import fit_kmeans
from crawlmix.cluster.semdedup import semdedup, semdedup_all_scores, semdedup_cluster, semdedup_scores


def unit(a):
    a = np.asarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def planted():
    """50 originals with 4 jittered copies each (cos >= 0.995) + 500 unrelated vectors, 64-D."""
    rng = np.random.default_rng(0)
    orig = unit(rng.normal(size=(50, 64)))
    copies = unit(np.repeat(orig, 4, axis=0) + 0.06 * rng.normal(size=(200, 64)) / 8)
    other = unit(rng.normal(size=(500, 64)))
    x = np.concatenate([orig, copies, other])
    group = np.r_[np.arange(50), np.repeat(np.arange(50), 4), np.full(500, -1)]
    is_copy = np.r_[np.zeros(50, bool), np.ones(200, bool), np.zeros(500, bool)]
    cos = (copies * np.repeat(orig, 4, axis=0)).sum(1)
    assert cos.min() >= 0.995
    return x, group, is_copy


def check_groups(keep, dup, group):
    assert (~keep).sum() == 200
    assert keep[group == -1].all()
    for g in range(50):
        members = np.flatnonzero(group == g)
        survivors = members[keep[members]]
        assert len(survivors) == 1
        removed = members[~keep[members]]
        assert (dup[removed] == survivors[0]).all()
    assert (dup[keep] == -1).all()


@pytest.mark.parametrize("order", ["hard", "easy", "random"])
def test_planted_duplicates_one_survivor_per_group(planted, order):
    x, group, _ = planted
    keep, dup, sim = semdedup_cluster(x, None, eps=0.01, order=order, seed=0)
    check_groups(keep, dup, group)
    assert (sim[~keep] > 0.99).all() and (sim[keep] <= 0.99).all()


def test_originals_survive_when_processed_first(planted):
    x, group, is_copy = planted
    dist = np.where(is_copy, 0.1, 0.9)  # hard order = farthest first: originals come first
    keep, dup, _ = semdedup_cluster(x, dist, eps=0.01)
    np.testing.assert_array_equal(~keep, is_copy)
    np.testing.assert_array_equal(dup[is_copy], np.repeat(np.arange(50), 4))


def test_over_kmeans_clusters_and_block_sizes(planted):
    x, group, is_copy = planted
    km = fit_kmeans(x, 8, n_iter=10, seed=0, backend="numpy")
    for g in range(50):  # near-duplicates land in one cluster here
        assert len(set(km.assignment[group == g].tolist())) == 1
    keep, dup, sim = semdedup(km.assignment, x, km.distances, eps=0.01)
    check_groups(keep, dup, group)
    assert (km.assignment[dup[~keep]] == km.assignment[~keep]).all()
    small = semdedup(km.assignment, x, km.distances, eps=0.01, block=7, col_block=5)
    np.testing.assert_array_equal(small[0], keep)
    np.testing.assert_array_equal(small[1], dup)
    np.testing.assert_allclose(small[2], sim, atol=1e-6)  # BLAS blocking changes the last bit only


def test_removed_sets_grow_with_eps(planted):
    x, _, _ = planted
    rng = np.random.default_rng(1)
    y = unit(np.concatenate([x, x[:100] + 0.3 * rng.normal(size=(100, 64)) / 8]))
    labels = rng.integers(3, size=len(y))
    scores = semdedup_all_scores(labels, y, None, order="random", seed=5)
    prev = np.zeros(len(y), dtype=bool)
    sizes = []
    for eps in [0.0, 0.001, 0.005, 0.01, 0.03, 0.05, 0.1, 0.2, 0.5]:
        keep, dup, _ = scores.resolve(eps)
        removed = ~keep
        assert (removed >= prev).all()  # monotone: everything removed before is still removed
        assert keep[dup[removed]].all()  # and always points at a kept point
        prev = removed
        sizes.append(int(removed.sum()))
        direct = semdedup(labels, y, None, eps, order="random", seed=5)[0]
        np.testing.assert_array_equal(direct, keep)
    assert sizes[0] == 0 and sizes[-1] > sizes[3] > 0


def test_chain_removes_b_and_c_and_c_points_at_kept_a():
    th = 0.12  # cos(th) = 0.9928 > 0.99, cos(2 th) = 0.9713 < 0.99
    v = np.array([[1, 0], [np.cos(th), np.sin(th)], [np.cos(2 * th), np.sin(2 * th)]], dtype=np.float32)
    keep, dup, sim = semdedup_cluster(v, [3.0, 2.0, 1.0], eps=0.01, order="hard")  # order a, b, c
    np.testing.assert_array_equal(keep, [True, False, False])
    np.testing.assert_array_equal(dup, [-1, 0, 0])  # c -> b -> a: every removed doc names a kept doc
    assert sim[0] == -np.inf
    np.testing.assert_allclose(sim[1:], [np.cos(th), np.cos(th)], atol=1e-6)  # sim = cos(c, b): the trigger
    # reversed order (c, b, a): b and a removed, both pointing at c
    keep, dup, _ = semdedup_cluster(v, [1.0, 2.0, 3.0], eps=0.01, order="hard")
    np.testing.assert_array_equal(keep, [False, False, True])
    np.testing.assert_array_equal(dup, [2, 2, -1])


def test_exact_duplicates_at_eps_zero_and_cos_clipping():
    rng = np.random.default_rng(3)
    v = unit(rng.normal(size=(6, 384)))
    x = np.concatenate([v, v[[0, 0, 3]]])  # three exact copies
    x = x * np.float32(1.0000005)  # unnormalised on purpose; normalisation happens inside
    keep, dup, sim = semdedup_cluster(x, np.arange(9, 0, -1), eps=0.0)
    np.testing.assert_array_equal(np.flatnonzero(~keep), [6, 7, 8])
    np.testing.assert_array_equal(dup[6:], [0, 0, 3])
    assert sim.max() <= 1.0
    sc = semdedup_scores(x, np.arange(9, 0, -1))
    np.testing.assert_array_equal(sc.rank, np.arange(9))


def test_small_and_degenerate_inputs():
    keep, dup, sim = semdedup_cluster(np.ones((1, 4)), [0.0], eps=0.1)
    assert keep.tolist() == [True] and dup.tolist() == [-1]
    keep, dup, sim = semdedup(np.array([], dtype=int), np.zeros((0, 4)), np.zeros(0), 0.1)
    assert keep.shape == (0,)
    with pytest.raises(ValueError):
        semdedup_cluster(np.ones((2, 4)), [0.0, 1.0], eps=0.1, order="sideways")
