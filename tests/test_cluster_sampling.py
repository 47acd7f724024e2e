"""Water-filling allocation and balanced hierarchical sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlmix.cluster.hierarchical import fit_hierarchical_kmeans
from crawlmix.cluster.sampling import TargetExceedsTotalWarning, allocate, balanced_sample

sizes_st = st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_st, data=st.data())
def test_allocation_properties(sizes, data):
    total = sum(sizes)
    target = data.draw(st.integers(min_value=0, max_value=total))
    seed = data.draw(st.integers(min_value=0, max_value=2**16))
    counts = allocate(sizes, target, np.random.default_rng(seed))
    s = np.asarray(sizes)
    assert counts.dtype == np.int64 and counts.shape == s.shape
    assert counts.sum() == target
    assert (counts >= 0).all() and (counts <= s).all()
    # max-min fair: a cluster with room left never has 2 less than any other cluster
    room = counts < s
    if room.any():
        assert counts[room].min() >= counts.max() - 1
    # water level: every cluster gets min(size, c) or c + 1 for the largest feasible c
    c = max(cc for cc in range(0, max(sizes) + 1) if np.minimum(s, cc).sum() <= target)
    assert (counts >= np.minimum(s, c)).all() and (counts <= np.minimum(s, c + 1)).all()


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=4), data=st.data())
def test_allocation_is_leximin_optimal_brute_force(sizes, data):
    target = data.draw(st.integers(min_value=0, max_value=sum(sizes)))
    counts = allocate(sizes, target, 0)
    feasible = [v for v in itertools.product(*[range(s + 1) for s in sizes]) if sum(v) == target]
    best = max(sorted(v) for v in feasible)  # leximin: maximise the sorted vector lexicographically
    assert sorted(counts.tolist()) == best


def test_allocation_examples_and_target_above_total():
    assert allocate([10, 2, 30, 5], 20, 0).tolist() in ([7, 2, 6, 5], [6, 2, 7, 5])
    np.testing.assert_array_equal(allocate([3, 3], 6), [3, 3])
    with pytest.warns(TargetExceedsTotalWarning):
        np.testing.assert_array_equal(allocate([3, 4], 100), [3, 4])
    np.testing.assert_array_equal(allocate([5, 5, 5], 0), [0, 0, 0])
    a = [allocate([4, 4, 4, 4], 5, seed).tolist() for seed in range(20)]
    assert all(sorted(v) == [1, 1, 1, 2] for v in a) and len({tuple(v) for v in a}) > 1


@pytest.fixture(scope="module")
def long_tail():
    sizes = [20000, 6000, 2000, 600, 200, 100, 60, 40]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(s, 8)) + 10 * np.eye(8)[i] for i, s in enumerate(sizes)]).astype(np.float32)
    y = np.repeat(np.arange(8), sizes)
    # plain hierarchy (no resampling): over seeds 0-7 its balanced samples have entropy >= 0.957
    model = fit_hierarchical_kmeans(x, ks=[100, 20, 8], n_iter=20, spherical=False, seed=0, backend="numpy")
    return x, y, model


def norm_entropy(labels, k=8):
    p = np.bincount(labels, minlength=k) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(k))


@pytest.mark.parametrize("strategy", ["random", "closest"])
def test_balanced_sampling_flattens_a_long_tail(long_tail, strategy):
    x, y, m = long_tail
    sel = balanced_sample(m.paths, 800, m.leaf_distances, strategy=strategy, seed=0)
    assert len(sel) == 800 and len(np.unique(sel)) == 800 and (np.diff(sel) > 0).all()
    counts = np.bincount(y[sel], minlength=8)
    assert norm_entropy(y[sel]) >= 0.9, counts
    assert counts[6] == 60 and counts[7] == 40  # the two smallest components are taken whole
    uniform = np.random.default_rng(0).choice(len(x), 800, replace=False)
    assert norm_entropy(y[uniform]) < 0.55  # plain random sampling: about 0.46


def test_balanced_sample_is_top_down_water_filling(long_tail):
    _, _, m = long_tail
    sel = balanced_sample(m.paths, 800, seed=1)
    top = np.bincount(m.paths[sel, 2], minlength=8)
    np.testing.assert_array_equal(np.sort(top), np.sort(allocate(m.sizes[2], 800, 0)))
    # inside each top cluster, its quota is water-filled over its children
    for c in range(8):
        kids = np.flatnonzero(m.parents[1] == c)
        got = np.bincount(m.paths[sel, 1], minlength=20)[kids]
        want = np.sort(allocate(m.sizes[1][kids], top[c], 0))
        np.testing.assert_array_equal(np.sort(got), want)
    np.testing.assert_array_equal(sel, balanced_sample(m.paths, 800, seed=1))
    assert not np.array_equal(sel, balanced_sample(m.paths, 800, seed=2))


def test_closest_strategy_takes_the_points_nearest_each_leaf_centroid():
    paths = np.array([[0, 0], [0, 0], [0, 0], [1, 0], [1, 0], [2, 1], [2, 1], [2, 1]])
    dist = np.array([0.5, 0.1, 0.3, 0.2, 0.9, 0.05, 0.6, 0.4])
    sel = balanced_sample(paths, 4, dist, strategy="closest")
    # top: 5 vs 3 points -> 2 + 2; cluster 0's two leaves get 1 each; leaf 2 gives its 2 closest
    np.testing.assert_array_equal(sel, [1, 3, 5, 7])
    np.testing.assert_array_equal(balanced_sample(paths[:, 0], 3, dist, strategy="closest"), [1, 3, 5])
    with pytest.warns(TargetExceedsTotalWarning):
        np.testing.assert_array_equal(balanced_sample(paths, 20), np.arange(8))
    with pytest.raises(ValueError):
        balanced_sample(paths, 3, strategy="closest")


def test_full_size_weights_would_give_the_dense_mode_several_top_clusters(long_tail):
    """Why the default upper-level weight is the square root of a centroid's documents: with full
    size weights the 20,000-point mode takes three of the eight top clusters and the balanced
    sample leans to it; square roots keep the long tail as flat as one vote per centroid."""
    x, y, _ = long_tail
    entropy = {}
    for weights in ("uniform", "sqrt", "sizes"):
        model = fit_hierarchical_kmeans(x, ks=[100, 20, 8], n_iter=20, spherical=False, seed=0, backend="numpy",
                                        upper_weights=weights)
        entropy[weights] = norm_entropy(y[balanced_sample(model.paths, 800, model.leaf_distances, seed=0)])
    assert entropy["sqrt"] >= 0.95 and entropy["uniform"] >= 0.95 and entropy["sizes"] < 0.9, entropy
