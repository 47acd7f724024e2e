"""crawlmix.plots on a real (small) hierarchical k-means fit: valid small PNGs, byte-identical on
repeat, different when the data differ, and the PCA projection's numbers and sign convention."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from crawlmix import plots
from crawlmix.cluster import fit_hierarchical_kmeans

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 60_000


@pytest.fixture(scope="module")
def fitted_tree():
    """Eight well-separated Gaussian blobs of different sizes on the unit sphere in 16-D."""
    rng = np.random.default_rng(7)
    means = rng.normal(size=(8, 16))
    counts = [120, 80, 60, 40, 30, 20, 15, 10]
    points = np.concatenate([m + 0.15 * rng.normal(size=(n, 16)) for m, n in zip(means, counts)])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    tree = fit_hierarchical_kmeans(points.astype(np.float32), ks=[16, 4], n_iter=10, seed=0)
    names = {c: f"{c}_topic{c}_words_here_and_a_long_tail" for c in range(4)}
    return tree, names


def _decoded(png: bytes) -> Image.Image:
    assert png[:8] == PNG_SIGNATURE
    assert len(png) < MAX_PNG_BYTES, len(png)
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated or corrupt stream raises here
    assert image.size == (600, 350)
    return image


def _colors_present(image: Image.Image) -> set[tuple[int, int, int]]:
    return {rgba[:3] for _, rgba in image.convert("RGBA").getcolors(maxcolors=1 << 20)}


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))


def test_cluster_sizes_png_draws_one_bar_colour_per_top_cluster(fitted_tree):
    tree, names = fitted_tree
    png = plots.cluster_sizes_png(tree.sizes[0], tree.sizes[1], names, title="centroids")
    image = _decoded(png)
    import matplotlib

    tab10 = matplotlib.colormaps["tab10"]
    bar_colors = {tuple(round(255 * v) for v in tab10(i)[:3]) for i in range(4)}
    assert bar_colors <= _colors_present(image)
    assert png == plots.cluster_sizes_png(tree.sizes[0], tree.sizes[1], names, title="centroids")
    # A different top-level split (one doc moved) is a different picture.
    moved = tree.sizes[1].copy()
    moved[0] -= 1
    moved[1] += 1
    assert png != plots.cluster_sizes_png(tree.sizes[0], moved, names, title="centroids")


def test_cluster_sizes_accepts_a_mapping_of_observed_clusters_only(fitted_tree):
    _, names = fitted_tree
    observed = {2: 31, 0: 5}  # a shard where only two top-level clusters occur
    image = _decoded(plots.cluster_sizes_png([5, 9, 22], observed, names))
    assert len(_colors_present(image)) > 10


def test_centroid_projection_matches_the_covariance_eigenvectors_with_a_fixed_sign():
    rng = np.random.default_rng(3)
    # Spread 5.0 along axis 2 and 2.0 along axis 0: those are PC1 and PC2.
    x = np.zeros((200, 4))
    x[:, 2] = 5.0 * rng.normal(size=200)
    x[:, 0] = 2.0 * rng.normal(size=200)
    x[:, [1, 3]] = 0.1 * rng.normal(size=(200, 2))
    coords, ratio = plots.centroid_projection(x)
    centered = x - x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centered.T))
    order = np.argsort(eigenvalues)[::-1]
    expected = centered @ eigenvectors[:, order[:2]]
    # Same axes up to sign, and the sign chosen makes each component's largest loading positive.
    for j, axis in enumerate((2, 0)):
        assert np.allclose(np.abs(coords[:, j]), np.abs(expected[:, j]), atol=1e-8)
        assert np.corrcoef(coords[:, j], centered[:, axis])[0, 1] > 0.99
    assert np.allclose(ratio, eigenvalues[order[:2]] / eigenvalues.sum())
    # Row order does not change where a row lands.
    permutation = rng.permutation(len(x))
    permuted, _ = plots.centroid_projection(x[permutation])
    assert np.allclose(permuted, coords[permutation])


def test_centroid_projection_of_degenerate_inputs():
    coords, ratio = plots.centroid_projection(np.ones((1, 5)))
    assert coords.shape == (1, 2) and np.all(coords == 0) and np.all(ratio == 0)
    coords, _ = plots.centroid_projection(np.array([[0.0], [1.0], [3.0]]))
    assert coords.shape == (3, 2) and np.all(coords[:, 1] == 0)
    assert plots.centroid_projection(np.empty((0, 3)))[0].shape == (0, 2)


def test_centroid_projection_png_is_deterministic_and_data_dependent(fitted_tree):
    tree, names = fitted_tree
    args = (tree.centroids[0], tree.parents[0], names, tree.sizes[0])
    png = plots.centroid_projection_png(*args)
    _decoded(png)
    assert png == plots.centroid_projection_png(*args)
    shifted = tree.centroids[0].copy()
    shifted[0] += 0.3
    assert png != plots.centroid_projection_png(shifted, *args[1:])


def test_quality_histogram_splits_by_heuristics_and_overlays_the_classifier():
    rng = np.random.default_rng(11)
    quality = rng.beta(5, 2, size=400)
    passed = quality > 0.4
    probability = rng.beta(2, 5, size=400)
    with_classifier = plots.quality_histogram_png(quality, passed, probability)
    colors = _colors_present(_decoded(with_classifier))
    assert {_rgb("#55a868"), _rgb("#c44e52")} <= colors
    skipped_classifier = plots.quality_histogram_png(quality, passed, np.full(400, np.nan))
    _decoded(skipped_classifier)
    assert with_classifier != skipped_classifier
    assert with_classifier == plots.quality_histogram_png(quality, passed, probability)
    plain = _colors_present(_decoded(plots.quality_histogram_png(quality)))
    assert _rgb("#4c72b0") in plain and _rgb("#55a868") not in plain


def test_group_shares_counts_documents_or_weights():
    groups = np.array([3, 1, 3, 3, 0])
    assert plots.group_shares(groups) == {0: 0.2, 1: 0.2, 3: 0.6}
    weighted = plots.group_shares(groups, [10, 30, 10, 10, 40])
    assert weighted == pytest.approx({0: 0.4, 1: 0.3, 3: 0.3})
    assert plots.group_shares([]) == {}


def test_mixture_composition_png_shows_mixture_and_source_bars(fitted_tree):
    tree, names = fitted_tree
    source = plots.group_shares(tree.paths[:, 1])
    mixture = {c: 1 / len(source) for c in source}  # a balanced mixture: every domain equal
    png = plots.mixture_composition_png(mixture, source, names, unit="documents")
    assert {_rgb("#4c72b0"), _rgb("#bbbbbb")} <= _colors_present(_decoded(png))
    assert png == plots.mixture_composition_png(mixture, source, names, unit="documents")
    assert png != plots.mixture_composition_png(source, source, names, unit="documents")


def test_png_markdown_embeds_the_exact_bytes():
    png = plots.quality_histogram_png([0.1, 0.5, 0.9])
    markdown = plots.png_markdown(png, "quality [shard 000]")
    assert markdown.startswith("![quality (shard 000)](data:image/png;base64,") and markdown.endswith(")")
    encoded = markdown.split("base64,", 1)[1][:-1]
    assert base64.b64decode(encoded, validate=True) == png


def test_plots_ignore_the_users_matplotlib_style(fitted_tree):
    import matplotlib

    tree, names = fitted_tree
    reference = plots.cluster_sizes_png(tree.sizes[0], tree.sizes[1], names)
    with matplotlib.rc_context({"axes.facecolor": "black", "font.size": 20, "lines.linewidth": 5}):
        assert plots.cluster_sizes_png(tree.sizes[0], tree.sizes[1], names) == reference


def test_plots_of_an_empty_shard_and_of_a_one_cluster_tree_are_valid_images():
    """What an empty shard's cluster_labels and quality_scores metadata draw (no documents), and the
    centroid map of a tiny corpus's single leaf: valid images, no bars of data."""
    empty_sizes = _decoded(plots.cluster_sizes_png(np.empty(0, np.int64), {}, {}, title="snap / shard 003"))
    assert _rgb("#4c72b0") not in _colors_present(empty_sizes)
    no_scores = _decoded(plots.quality_histogram_png(np.empty(0), np.empty(0, bool), np.empty(0)))
    assert not {_rgb("#55a868"), _rgb("#c44e52")} & _colors_present(no_scores)
    _decoded(plots.centroid_projection_png(np.ones((1, 8)) / np.sqrt(8), [0], {0: "0_only_cluster"}, [3]))
    _decoded(plots.mixture_composition_png({}, {}, {}))
    assert plots.group_shares(np.empty(0, np.int64)) == {}
