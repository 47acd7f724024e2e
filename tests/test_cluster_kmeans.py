"""k-means contract: k-means++ init, fixed iterations, float64 sums, empty clusters, backends agree."""

from __future__ import annotations

import numpy as np
import pytest

from crawlmix.cluster.kmeans import assign, fit_kmeans, kmeans_plusplus, resolve_backend

CONTRACT_BACKENDS = ["numpy", "faiss", "torch"]


def blobs(n_per=200, k=5, d=8, sep=20.0, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * sep
    x = np.concatenate([m + rng.normal(size=(n_per, d)) for m in means]).astype(np.float32)
    return x, np.repeat(np.arange(k), n_per)


def same_partition(a, b):
    """True when two labelings define the same partition (up to renaming)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_plusplus_is_seeded_and_picks_distinct_data_points():
    x, _ = blobs()
    a = kmeans_plusplus(x, 5, spherical=False, seed=3)
    b = kmeans_plusplus(x, 5, spherical=False, seed=3)
    c = kmeans_plusplus(x, 5, spherical=False, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # every centre is a data point, no two alike
    d = ((a[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    assert (d.min(axis=1) == 0).all()
    assert len({tuple(r) for r in a}) == 5


def test_kmeans_plusplus_spreads_over_separated_blobs():
    # D^2 sampling puts one seed in each far-apart blob with overwhelming probability
    x, y = blobs(sep=100.0)
    c = kmeans_plusplus(x, 5, spherical=False, seed=0)
    lab, _ = assign(c, np.stack([x[y == i].mean(0) for i in range(5)]), spherical=False, backend="numpy")
    assert sorted(lab.tolist()) == [0, 1, 2, 3, 4]


def test_kmeans_plusplus_subsample_and_duplicates():
    x = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # only 3 distinct points, k = 5
    c = kmeans_plusplus(x, 5, spherical=False, seed=0)
    assert c.shape == (5, 3)
    assert {tuple(r) for r in c} == {tuple(r) for r in np.eye(3)}
    big = np.random.default_rng(0).normal(size=(5000, 4)).astype(np.float32)
    assert kmeans_plusplus(big, 10, max_points=100, seed=0).shape == (10, 4)
    with pytest.raises(ValueError):
        kmeans_plusplus(big[:3], 5)


@pytest.mark.parametrize("backend", CONTRACT_BACKENDS + ["faiss-kmeans"])
@pytest.mark.parametrize("spherical", [False, True])
def test_recovers_separated_blobs(backend, spherical):
    x, y = blobs()
    if spherical:
        x = x - x.mean(0)
    res = fit_kmeans(x, 5, n_iter=10, spherical=spherical, seed=0, backend=backend)
    assert res.centroids.dtype == np.float32 and res.centroids.shape == (5, 8)
    assert res.assignment.shape == (1000,) and res.distances.shape == (1000,)
    assert same_partition(res.assignment, y)
    lab, dist = assign(x, res.centroids, spherical=spherical, backend="numpy")
    np.testing.assert_array_equal(lab, res.assignment)
    np.testing.assert_allclose(dist, res.distances, atol=1e-3)
    if spherical:
        np.testing.assert_allclose(np.linalg.norm(res.centroids, axis=1), 1.0, atol=1e-5)
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        cos = (xn * res.centroids[res.assignment]).sum(1)
        np.testing.assert_allclose(res.distances, 1 - cos, atol=1e-5)
    else:
        sq = ((x - res.centroids[res.assignment]) ** 2).sum(1)
        np.testing.assert_allclose(res.distances, sq, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("backend", CONTRACT_BACKENDS)
def test_empty_cluster_keeps_its_centroid(backend):
    x, _ = blobs(k=3)
    init = np.concatenate([kmeans_plusplus(x, 3, spherical=False, seed=0), np.full((1, 8), 1e4, np.float32)])
    res = fit_kmeans(x, 4, n_iter=5, spherical=False, backend=backend, init_centroids=init)
    np.testing.assert_array_equal(res.centroids[3], init[3])
    assert res.n_empty == 1
    assert (res.assignment != 3).all()


def test_faiss_kmeans_wrapper_splits_instead_documented():
    # the plain faiss.Kmeans wrapper refills empty clusters by splitting: why it is not the default
    x, _ = blobs(k=3)
    init = np.concatenate([kmeans_plusplus(x, 3, spherical=False, seed=0), np.full((1, 8), 1e4, np.float32)])
    res = fit_kmeans(x, 4, n_iter=5, spherical=False, backend="faiss-kmeans", init_centroids=init)
    assert res.info["faiss_nsplit"] >= 1
    assert not np.array_equal(res.centroids[3], init[3])


@pytest.mark.parametrize("backend", CONTRACT_BACKENDS)
def test_sums_are_float64(backend):
    # 20k values near 4096: float32 running sums drift by whole units, float64 means are exact
    rng = np.random.default_rng(0)
    x = (4096.0 + rng.random((20000, 2))).astype(np.float32)
    res = fit_kmeans(x, 1, n_iter=1, spherical=False, backend=backend, init_centroids=x[:1])
    expected = x.astype(np.float64).mean(0).astype(np.float32)
    np.testing.assert_array_equal(res.centroids[0], expected)


def test_fixed_iterations_and_seed():
    x, _ = blobs(sep=2.0)  # overlapping: results depend on init and iteration count
    a = fit_kmeans(x, 7, n_iter=3, spherical=False, seed=1, backend="numpy")
    b = fit_kmeans(x, 7, n_iter=3, spherical=False, seed=1, backend="numpy")
    c = fit_kmeans(x, 7, n_iter=3, spherical=False, seed=2, backend="numpy")
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert not np.array_equal(a.centroids, c.centroids)
    z = fit_kmeans(x, 7, n_iter=0, spherical=False, seed=1, backend="numpy")
    np.testing.assert_array_equal(z.centroids, kmeans_plusplus(x, 7, spherical=False, seed=1))
    # one manual Lloyd step from the same start gives the 1-iteration result
    c0 = z.centroids
    lab, _ = assign(x, c0, spherical=False, backend="numpy")
    manual = np.stack([x[lab == j].astype(np.float64).mean(0) if (lab == j).any() else c0[j] for j in range(7)])
    one = fit_kmeans(x, 7, n_iter=1, spherical=False, seed=1, backend="numpy")
    np.testing.assert_allclose(one.centroids, manual.astype(np.float32), rtol=1e-6, atol=1e-6)
    assert one.n_iter == 1


@pytest.mark.parametrize("spherical", [False, True])
def test_faiss_and_torch_agree_from_the_same_init(spherical):
    x, y = blobs(n_per=300, k=6, d=16, sep=5.0, seed=1)
    init = kmeans_plusplus(x, 6, spherical=spherical, seed=0)
    outs = {b: fit_kmeans(x, 6, n_iter=15, spherical=spherical, backend=b, init_centroids=init)
            for b in ("faiss", "torch", "numpy")}
    for b in ("torch", "numpy"):
        np.testing.assert_array_equal(outs[b].assignment, outs["faiss"].assignment)
        np.testing.assert_allclose(outs[b].centroids, outs["faiss"].centroids, atol=2e-5)
        np.testing.assert_allclose(outs[b].distances, outs["faiss"].distances, atol=1e-3, rtol=1e-4)


def test_assign_streams_blocks_and_accepts_fp16_memmap_and_torch(tmp_path):
    import torch

    x, _ = blobs(sep=3.0)
    c = kmeans_plusplus(x, 9, spherical=True, seed=0)
    ref_l, ref_d = assign(x, c, spherical=True, backend="numpy", block_rows=10_000)
    for backend in ("numpy", "faiss", "torch"):
        lab, dist = assign(x, c, spherical=True, backend=backend, block_rows=37)
        np.testing.assert_array_equal(lab, ref_l)
        np.testing.assert_allclose(dist, ref_d, atol=1e-5)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float16, shape=x.shape)
    mm[:] = x
    mm.flush()
    x16 = np.load(tmp_path / "x.npy", mmap_mode="r")
    lab16, _ = assign(x16, c, spherical=True, backend="faiss", block_rows=100)
    assert (lab16 == ref_l).mean() > 0.99
    labt, _ = assign(torch.from_numpy(x), c, spherical=True, backend="torch", block_rows=64)
    np.testing.assert_array_equal(labt, ref_l)
    res = fit_kmeans(x16, 9, n_iter=3, backend="torch", block_rows=128, seed=0)
    assert res.centroids.shape == (9, 8)


def test_backend_resolution_and_errors():
    assert resolve_backend("auto", "cpu") == "faiss"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("auto", "cuda:1") == "torch"
    assert resolve_backend("numpy", "cuda") == "numpy"
    with pytest.raises(ValueError):
        resolve_backend("sklearn")
    x, _ = blobs()
    with pytest.raises(ValueError):
        fit_kmeans(x[:3], 5)
    with pytest.raises(ValueError):
        fit_kmeans(x, 5, init_centroids=np.zeros((4, 8)))


@pytest.mark.parametrize("spherical", [False, True])
def test_torch_half_precision_path_runs_on_cpu(spherical):
    # the CUDA configuration (float16 data and matmuls, float32 distances, float64 sums), on CPU
    import torch

    x, y = blobs(n_per=100, k=4, d=16, sep=8.0, seed=2)
    if spherical:
        x = x - x.mean(0)
    res = fit_kmeans(torch.from_numpy(x).half(), 4, n_iter=5, spherical=spherical, seed=0, backend="torch",
                     compute_dtype=torch.float16, block_rows=64)
    assert res.info["compute_dtype"] == "torch.float16"
    assert same_partition(res.assignment, y)
    ref = fit_kmeans(x, 4, n_iter=5, spherical=spherical, backend="numpy", init_centroids=res.centroids)
    np.testing.assert_array_equal(ref.assignment, res.assignment)
    lab, dist = assign(x, res.centroids, spherical=spherical, backend="torch", compute_dtype=torch.float16,
                       block_rows=50)
    np.testing.assert_array_equal(lab, res.assignment)


def test_auto_uses_numpy_for_small_problems():
    assert resolve_backend("auto", "cpu", work=1000) == "numpy"
    assert resolve_backend("auto", "cpu", work=10**9) == "faiss"
    x, _ = blobs()
    assert fit_kmeans(x, 5, n_iter=2).backend == "numpy"


@pytest.mark.parametrize("refresh", [1, 32])
def test_kmeans_plusplus_samples_the_exact_d2_distribution(refresh, monkeypatch):
    # the lazy (rejection-sampling) implementation must draw ordered triples with the k-means++
    # probabilities: first uniform, then proportional to the squared distance to the nearest centre
    from crawlmix.cluster import kmeans as km

    monkeypatch.setattr(km, "_KPP_REFRESH", refresh)
    pts = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)
    exact = {}
    for a in range(4):
        d_a = (pts[:, 0] - pts[a, 0]) ** 2
        for b in range(4):
            if b == a:
                continue
            d_ab = np.minimum(d_a, (pts[:, 0] - pts[b, 0]) ** 2)
            for c in range(4):
                if c in (a, b):
                    continue
                exact[(a, b, c)] = 0.25 * d_a[b] / d_a.sum() * d_ab[c] / d_ab.sum()
    runs = 4000
    counts = dict.fromkeys(exact, 0)
    for seed in range(runs):
        cen = kmeans_plusplus(pts, 3, spherical=False, seed=seed)
        key = tuple(int(np.flatnonzero(pts[:, 0] == v)[0]) for v in cen[:, 0])
        counts[key] += 1
    for key, p in exact.items():
        sd = np.sqrt(runs * p * (1 - p))
        assert abs(counts[key] - runs * p) <= 4.5 * sd + 2, (key, counts[key], runs * p)
