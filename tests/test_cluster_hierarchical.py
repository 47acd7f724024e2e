"""Hierarchical k-means: nesting, labelling new points, serialisation/version, Vo et al.'s 2-D toy."""

from __future__ import annotations

import numpy as np
import pytest

from crawlmix.cluster.hierarchical import (
    HierarchicalConfig,
    HierarchicalKMeans,
    assign_paths,
    closest_per_cluster,
    fit_hierarchical_kmeans,
)
from crawlmix.cluster.kmeans import fit_kmeans


@pytest.fixture(scope="module")
def small_tree():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(150, 6)) + 6 * rng.normal(size=(1, 6)) for _ in range(8)])
    x = x.astype(np.float32)
    model = fit_hierarchical_kmeans(
        x, ks=[40, 12, 4], n_iter=10, resampling_steps=[1, 3, 3], spherical=True, seed=3, backend="numpy"
    )
    return x, model


def test_tree_nesting(small_tree):
    x, m = small_tree
    assert m.paths.shape == (len(x), 3)
    for t in range(1, m.levels):
        assert m.parents[t - 1].shape == (m.config.ks[t - 1],)
        for c in range(m.config.ks[t]):
            members = set(np.flatnonzero(m.paths[:, t] == c).tolist())
            union = set()
            for ch in m.children(t, c).tolist():
                union |= set(np.flatnonzero(m.paths[:, t - 1] == ch).tolist())
            assert members == union
    for t in range(m.levels):
        np.testing.assert_array_equal(m.sizes[t], np.bincount(m.paths[:, t], minlength=m.config.ks[t]))
        assert m.sizes[t].sum() == len(x)
        assert m.centroids[t].shape == (m.config.ks[t], 6)
        np.testing.assert_allclose(np.linalg.norm(m.centroids[t], axis=1), 1, atol=1e-5)


def test_assign_paths_reproduces_training_paths(small_tree):
    x, m = small_tree
    paths, dist = assign_paths(x, m, backend="faiss", block_rows=100)
    np.testing.assert_array_equal(paths, m.paths)
    np.testing.assert_allclose(dist, m.leaf_distances, atol=1e-5)
    np.testing.assert_array_equal(m.leaf_ancestors()[m.paths[:, 0]], m.paths)


def test_roundtrip_and_version(small_tree, tmp_path):
    x, m = small_tree
    arrays = m.to_arrays()
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    m2 = HierarchicalKMeans.from_arrays(arrays)
    assert m2.version == m.version == str(arrays["version"])
    assert len(m.version) == 64
    m.save(tmp_path / "tree.npz")
    m3 = HierarchicalKMeans.load(tmp_path / "tree.npz")
    assert m3.version == m.version
    np.testing.assert_array_equal(assign_paths(x, m3, backend="numpy")[0], m.paths)
    tampered = dict(arrays)
    tampered["centroids_0"] = arrays["centroids_0"] + 1e-3
    with pytest.raises(ValueError):
        HierarchicalKMeans.from_arrays(tampered)
    # a different config or seed gives a different version; refitting with the same one does not
    again = fit_hierarchical_kmeans(x, m.config, backend="numpy")
    assert again.version == m.version
    other = fit_hierarchical_kmeans(x, ks=[40, 12, 4], n_iter=10, resampling_steps=[1, 3, 3], seed=4, backend="numpy")
    assert other.version != m.version
    with_paths = m.to_arrays(include_assignments=True)
    np.testing.assert_array_equal(HierarchicalKMeans.from_arrays(with_paths).paths, m.paths)


def test_config_validation_and_defaults():
    with pytest.raises(ValueError):
        HierarchicalConfig(ks=(10, 20))
    with pytest.raises(ValueError):
        HierarchicalConfig(ks=(10, 5), resampling_steps=(1, 2, 3))
    cfg = HierarchicalConfig(ks=[10, 5], resampling_steps=2)
    assert cfg.resampling_steps == (2, 2)
    assert cfg.upper_weights == "sqrt" and cfg.upper_restarts == 10
    assert HierarchicalConfig.from_dict(cfg.to_dict()) == cfg
    # a tree stored before upper-level weights existed was fitted one unweighted run per level
    legacy = {k: v for k, v in cfg.to_dict().items() if k not in ("upper_weights", "upper_restarts")}
    assert HierarchicalConfig.from_dict(legacy).upper_weights == "uniform"
    assert HierarchicalConfig.from_dict(legacy).upper_restarts == 1
    with pytest.raises(ValueError, match="upper_weights"):
        HierarchicalConfig(ks=[10, 5], upper_weights="votes")
    with pytest.raises(ValueError, match="upper_restarts"):
        HierarchicalConfig(ks=[10, 5], upper_restarts=0)
    x = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
    m = fit_hierarchical_kmeans(x, ks=[20, 4], n_iter=5, backend="numpy")
    assert m.config.sample_sizes == (10, 2)  # about half the mean cluster size of the level below


def test_closest_per_cluster():
    labels = np.array([0, 0, 0, 1, 1, 2])
    dist = np.array([0.3, 0.1, 0.2, 0.5, 0.4, 0.9])
    np.testing.assert_array_equal(closest_per_cluster(labels, dist, 2), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(closest_per_cluster(labels, dist, 1), [1, 4, 5])


def test_resampling_refits_on_the_closest_points_only():
    # level with resampling: its centroids are a fresh fit on the sample, all points reassigned
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    m = fit_hierarchical_kmeans(x, ks=[30], n_iter=8, resampling_steps=[1], sample_sizes=[4], spherical=False,
                                seed=0, backend="numpy")
    from crawlmix.cluster.hierarchical import _level_seed

    full = fit_kmeans(x, 30, n_iter=8, spherical=False, seed=_level_seed(0, 0, 0), backend="numpy")
    sel = closest_per_cluster(full.assignment, full.distances, 4)
    sub = fit_kmeans(x[sel], 30, n_iter=8, spherical=False, seed=_level_seed(0, 0, 1), backend="numpy")
    np.testing.assert_allclose(m.centroids[0], sub.centroids, atol=1e-6)
    assert m.sizes[0].sum() == 600


# ---- Vo et al.'s 2-D toy: centroid density gets closer to uniform ----------------------------

GRID = np.stack(np.meshgrid(np.linspace(-3, 3, 41), np.linspace(-3, 3, 41)), -1).reshape(-1, 2)


def kl_from_uniform(points, bandwidth=0.4):
    """KL(KDE of points on a 41x41 grid over [-3,3]^2 || uniform), fixed Gaussian bandwidth."""
    d2 = ((GRID[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    p = np.exp(-d2 / (2 * bandwidth**2)).sum(1)
    p /= p.sum()
    return float(np.sum(p * np.log(np.maximum(p, 1e-300) * len(GRID))))


def test_toy_2d_centroids_flatten_towards_uniform():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.normal([-1, -1], 0.5, size=(7000, 2)),
        rng.normal([1, -1], 0.5, size=(1000, 2)),
        rng.normal([0, 1], 0.5, size=(500, 2)),
        rng.uniform(-3, 3, size=(500, 2)),
    ]).astype(np.float32)
    common = dict(n_iter=20, spherical=False, seed=0, backend="numpy")
    raw = kl_from_uniform(x[rng.choice(len(x), 3000, replace=False)])
    flat = kl_from_uniform(fit_kmeans(x, 100, **common).centroids)
    # Vo et al.'s rule: one vote per centroid at the upper levels
    vo = dict(common, upper_weights="uniform", upper_restarts=1)
    hier = kl_from_uniform(fit_hierarchical_kmeans(x, ks=[1000, 300, 100], **vo).centroids[-1])
    resampled = kl_from_uniform(
        fit_hierarchical_kmeans(x, ks=[1000, 300, 100], resampling_steps=[0, 10, 10], sample_sizes=[5, 3, 3],
                                **vo).centroids[-1]
    )
    uniform = kl_from_uniform(rng.uniform(-3, 3, size=(100, 2)))
    print(f"KL raw {raw:.3f} flat {flat:.3f} hierarchical {hier:.3f} +resampling {resampled:.3f} "
          f"uniform sample {uniform:.3f}")
    assert raw > flat > hier > resampled
    assert raw > 2 * flat and flat > 2 * hier


# ---- size-weighted upper levels ------------------------------------------------------------


def test_weighted_lloyd_equals_kmeans_on_points_repeated_by_their_weights():
    from crawlmix.cluster.hierarchical import _weighted_lloyd

    rng = np.random.default_rng(5)
    points = rng.normal(size=(60, 8)).astype(np.float32)
    weights = rng.integers(1, 6, size=60)
    init = points[:5].copy()
    for spherical in (True, False):
        ours = _weighted_lloyd(points, weights.astype(np.float64), init, 7, spherical)
        repeated = fit_kmeans(np.repeat(points, weights, axis=0), 5, n_iter=7, spherical=spherical,
                              init_centroids=init, backend="numpy")
        np.testing.assert_allclose(ours, repeated.centroids, atol=1e-5)


def test_weighted_kmeanspp_draws_only_points_with_weight_and_is_seeded():
    from crawlmix.cluster.hierarchical import _weighted_kmeanspp

    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 4)).astype(np.float32)
    weights = np.where(np.arange(40) % 2 == 0, 3.0, 0.0)
    a = _weighted_kmeanspp(points, weights, 10, np.random.default_rng(1), spherical=False)
    b = _weighted_kmeanspp(points, weights, 10, np.random.default_rng(1), spherical=False)
    np.testing.assert_array_equal(a, b)
    drawn = {int(np.flatnonzero((points == row).all(axis=1))[0]) for row in a}
    assert len(drawn) == 10 and all(i % 2 == 0 for i in drawn)
    # more centres than weighted points: the rest come from the unweighted points, no repeats
    c = _weighted_kmeanspp(points, weights, 25, np.random.default_rng(1), spherical=False)
    assert len({row.tobytes() for row in c}) == 25


def test_size_weights_keep_many_small_leaves_from_swallowing_the_top_level():
    """Three dense groups of 2,000 points and one sparse spread of 600: k-means puts many leaves
    in the spread. One vote per leaf lets those leaves claim most of the top clusters and lumps
    dense groups together; weighting each leaf by its points (`sizes`) gives every dense group its
    own. (The default square root sits between the two: tests/test_cluster_sampling.py shows why.)"""
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(0)
    centres = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    x = np.concatenate([rng.normal(c, 0.4, size=(2000, 2)) for c in centres]
                       + [rng.uniform(-30, 30, size=(600, 2))]).astype(np.float32)
    truth = np.repeat([0, 1, 2, 3], [2000, 2000, 2000, 600])
    common = dict(ks=[60, 4], n_iter=20, spherical=False, seed=0, backend="numpy")
    weighted = fit_hierarchical_kmeans(x, upper_weights="sizes", **common)
    uniform = fit_hierarchical_kmeans(x, upper_weights="uniform", upper_restarts=1, **common)
    largest = lambda m: np.bincount(m.paths[:, 1]).max() / len(x)  # noqa: E731
    nmi = lambda m: normalized_mutual_info_score(truth, m.paths[:, 1])  # noqa: E731
    print(f"top level: sizes NMI {nmi(weighted):.3f} largest {largest(weighted):.0%}; "
          f"uniform NMI {nmi(uniform):.3f} largest {largest(uniform):.0%}")
    dense_tops = lambda m: {int(np.bincount(m.paths[truth == g, 1]).argmax()) for g in range(3)}  # noqa: E731
    assert len(dense_tops(weighted)) == 3 and largest(weighted) < 0.35
    assert len(dense_tops(uniform)) < 3 and largest(uniform) > 0.5 and nmi(weighted) > nmi(uniform) + 0.1
