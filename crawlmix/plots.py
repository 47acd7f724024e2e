"""Small PNG charts for asset metadata, and the Markdown that embeds one in the Dagster UI.

Every function takes plain numpy / pandas values and returns PNG bytes of about 600 x 350 px. The
charts are drawn on a bare Agg `Figure` (no pyplot, so no global backend or figure registry is
touched) under matplotlib's default style, and saved without the software tag, so the same input
gives byte-identical PNGs on any machine with the same matplotlib. matplotlib is imported inside
the functions: importing crawlmix stays fast for code paths that draw nothing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import numpy as np

WIDTH_IN, HEIGHT_IN, DPI = 6.0, 3.5, 100
_LABEL_CHARS = 26  # longest cluster name shown on an axis before it is cut with an ellipsis

__all__ = [
    "centroid_projection",
    "centroid_projection_png",
    "cluster_sizes_png",
    "group_shares",
    "mixture_composition_png",
    "png_markdown",
    "quality_histogram_png",
]


def png_markdown(png: bytes, alt: str) -> str:
    """`![alt](data:image/png;base64,...)`: Markdown that `MetadataValue.md` shows as an image."""
    safe_alt = alt.replace("[", "(").replace("]", ")")
    return f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


@contextmanager
def _figure(**subplot_kw):
    """A fresh figure under the default style (a user's matplotlibrc does not change the bytes)."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _short(name: str) -> str:
    return name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1] + "…"


def _colors(n: int) -> list:
    """Qualitative colours, one per top-level cluster (tab10 up to 10, tab20 up to 20, then cycled)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _as_sizes(sizes: Mapping[int, int] | Sequence[int] | np.ndarray) -> dict[int, int]:
    if isinstance(sizes, Mapping):
        return {int(c): int(n) for c, n in sizes.items()}
    return {c: int(n) for c, n in enumerate(np.asarray(sizes).tolist())}


def cluster_sizes_png(
    leaf_sizes: Sequence[int] | np.ndarray,
    top_sizes: Mapping[int, int] | Sequence[int] | np.ndarray,
    top_names: Mapping[int, str] | None = None,
    title: str = "",
) -> bytes:
    """Left: every leaf cluster's size, largest first, on a log axis (how skewed the leaves are).
    Right: documents per top-level cluster as bars, labelled with the clusters' names."""
    leaves = np.sort(np.asarray(leaf_sizes, dtype=np.int64))[::-1]
    tops = sorted(_as_sizes(top_sizes).items(), key=lambda kv: (-kv[1], kv[0]))
    names = top_names or {}
    with _figure() as figure:
        left, right = figure.subplots(1, 2, width_ratios=[1, 1.25])
        ranks = np.arange(1, len(leaves) + 1)
        left.fill_between(ranks, np.maximum(leaves, 1), 1, step="mid", color="#4c72b0", alpha=0.35, linewidth=0)
        left.step(ranks, np.maximum(leaves, 1), where="mid", color="#4c72b0", linewidth=1.2)
        left.set_yscale("log")
        left.set_xlim(0.5, max(len(leaves), 1) + 0.5)
        left.set_xlabel("leaf clusters, largest first")
        left.set_ylabel("documents")
        if len(leaves):
            median = float(np.median(leaves))
            left.axhline(max(median, 1), color="#555555", linestyle=":", linewidth=1)
            left.set_title(f"{len(leaves)} leaves, median {median:g}, max {int(leaves[0])}", fontsize=9)
        else:  # an empty shard
            left.text(0.5, 0.5, "no documents", transform=left.transAxes, ha="center", va="center", color="#555555")
        left.grid(axis="y", which="major", alpha=0.3)

        colors = _colors(len(tops))
        positions = np.arange(len(tops))
        counts = [n for _, n in tops]
        right.barh(positions, counts, color=colors)
        right.set_yticks(positions, [_short(names.get(c, str(c))) for c, _ in tops], fontsize=7)
        right.invert_yaxis()
        right.set_xlabel("documents")
        total = max(sum(counts), 1)
        for y, n in zip(positions, counts):
            right.text(n, y, f" {100 * n / total:.0f}%", va="center", fontsize=7)
        right.set_xlim(0, max(counts, default=1) * 1.18)
        right.set_title(f"{len(tops)} top-level clusters", fontsize=9)
        if title:
            figure.suptitle(title, fontsize=10)
        return _png(figure)


def centroid_projection(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the rows to 2-D via SVD: (coordinates (n, 2), explained variance ratio (2,)).

    Each component's sign is fixed so its largest-magnitude loading is positive (sklearn's
    `svd_flip` rule), so the picture does not mirror between runs or machines."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        return np.zeros((0, 2)), np.zeros(2)
    centered = x - x.mean(axis=0)
    _, singular, components = np.linalg.svd(centered, full_matrices=False)
    top = min(2, components.shape[0])
    components = components[:top]
    strongest = np.argmax(np.abs(components), axis=1)
    components = components * np.sign(components[np.arange(top), strongest])[:, None]
    coords = np.zeros((x.shape[0], 2))
    coords[:, :top] = centered @ components.T
    variance = singular**2
    ratio = np.zeros(2)
    if variance.sum() > 0:
        ratio[:top] = variance[:top] / variance.sum()
    return coords, ratio


def centroid_projection_png(
    leaf_centroids: np.ndarray,
    leaf_top: Sequence[int] | np.ndarray,
    top_names: Mapping[int, str],
    leaf_sizes: Sequence[int] | np.ndarray | None = None,
    title: str = "",
) -> bytes:
    """Leaf centroids projected on their first two principal components, one colour per top-level
    cluster, marker area by leaf size, each top-level cluster's name at the size-weighted centre of
    its leaves: which domains sit near each other, and which are spread out."""
    coords, ratio = centroid_projection(leaf_centroids)
    top_of_leaf = np.asarray(leaf_top, dtype=np.int64)
    sizes = np.ones(len(coords)) if leaf_sizes is None else np.asarray(leaf_sizes, dtype=np.float64)
    tops = sorted(set(top_of_leaf.tolist()) | {int(c) for c in top_names})
    colors = dict(zip(tops, _colors(len(tops))))
    area = 8 + 120 * np.sqrt(sizes / sizes.max()) if len(sizes) and sizes.max() > 0 else np.full(len(coords), 20.0)
    with _figure() as figure:
        axes = figure.subplots()
        for cluster in tops:
            members = top_of_leaf == cluster
            if not members.any():
                continue
            axes.scatter(coords[members, 0], coords[members, 1], s=area[members], color=colors[cluster],
                         alpha=0.6, edgecolors="white", linewidths=0.4)
            weights = np.maximum(sizes[members], 1e-9)
            cx, cy = np.average(coords[members], axis=0, weights=weights)
            axes.annotate(_short(top_names.get(cluster, str(cluster))), (cx, cy), fontsize=7, ha="center",
                          va="center", color="black",
                          bbox={"boxstyle": "round,pad=0.2", "fc": colors[cluster], "alpha": 0.7, "lw": 0})
        axes.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% of variance)")
        axes.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)")
        axes.set_title(title or f"{len(coords)} leaf centroids in {len(tops)} top-level clusters", fontsize=9)
        axes.grid(alpha=0.25)
        return _png(figure)


def quality_histogram_png(
    quality: Sequence[float] | np.ndarray,
    heuristic_pass: Sequence[bool] | np.ndarray | None = None,
    classifier_prob: Sequence[float] | np.ndarray | None = None,
    bins: int = 20,
    title: str = "",
) -> bytes:
    """Histogram of the final quality score on [0, 1]; bars split by whether the document passed
    every heuristic rule, and the classifier's probability overlaid as a line when it ran."""
    q = np.asarray(quality, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    with _figure() as figure:
        axes = figure.subplots()
        if heuristic_pass is not None:
            passed = np.asarray(heuristic_pass, dtype=bool)
            pass_counts, _ = np.histogram(q[passed], bins=edges)
            fail_counts, _ = np.histogram(q[~passed], bins=edges)
            axes.bar(edges[:-1], pass_counts, width=np.diff(edges), align="edge", color="#55a868",
                     edgecolor="white", linewidth=0.5, label=f"passes all heuristics ({int(passed.sum())})")
            axes.bar(edges[:-1], fail_counts, width=np.diff(edges), align="edge", bottom=pass_counts,
                     color="#c44e52", edgecolor="white", linewidth=0.5, label=f"fails a heuristic ({int((~passed).sum())})")
        else:
            counts, _ = np.histogram(q, bins=edges)
            axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4c72b0",
                     edgecolor="white", linewidth=0.5, label="quality")
        if classifier_prob is not None:
            prob = np.asarray(classifier_prob, dtype=np.float64)
            prob = prob[np.isfinite(prob)]
            if len(prob):
                prob_counts, _ = np.histogram(prob, bins=edges)
                axes.stairs(prob_counts, edges, color="#333333", linewidth=1.4, label="classifier probability")
        if len(q):
            axes.axvline(float(q.mean()), color="#333333", linestyle="--", linewidth=1)
            axes.legend(fontsize=7, loc="best", frameon=False)
        else:  # an empty shard: say so rather than show a legend for bars that are not there
            axes.text(0.5, 0.5, "no documents", transform=axes.transAxes, ha="center", va="center", color="#555555")
        axes.set_xlim(0, 1)
        axes.set_xlabel("score")
        axes.set_ylabel("documents")
        axes.set_title(title or f"quality of {len(q)} documents, mean {q.mean() if len(q) else 0:.3f} (dashed)", fontsize=9)
        axes.grid(axis="y", alpha=0.3)
        return _png(figure)


def group_shares(groups: Sequence[int] | np.ndarray, weights: Sequence[float] | np.ndarray | None = None) -> dict[int, float]:
    """Share of the total weight (documents when no weights) per group id, summing to 1."""
    ids = np.asarray(groups, dtype=np.int64)
    w = np.ones(len(ids)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if not len(ids) or total <= 0:
        return {}
    unique, inverse = np.unique(ids, return_inverse=True)
    sums = np.bincount(inverse, weights=w)
    return {int(c): float(s / total) for c, s in zip(unique, sums)}


def mixture_composition_png(
    mixture_share: Mapping[int, float],
    source_share: Mapping[int, float],
    names: Mapping[int, str],
    unit: str = "tokens",
    title: str = "",
) -> bytes:
    """Share of each top-level cluster in the mixture next to its share in the source pool it was
    drawn from: what the policy up- and down-weighted."""
    clusters = sorted(set(mixture_share) | set(source_share),
                      key=lambda c: (-mixture_share.get(c, 0.0), -source_share.get(c, 0.0), c))
    positions = np.arange(len(clusters))
    mix = np.array([mixture_share.get(c, 0.0) for c in clusters])
    src = np.array([source_share.get(c, 0.0) for c in clusters])
    with _figure() as figure:
        axes = figure.subplots()
        height = 0.4
        axes.barh(positions - height / 2, 100 * mix, height=height, color="#4c72b0", label="mixture")
        axes.barh(positions + height / 2, 100 * src, height=height, color="#bbbbbb", label="source pool")
        axes.set_yticks(positions, [_short(names.get(c, str(c))) for c in clusters], fontsize=7)
        axes.invert_yaxis()
        axes.set_xlabel(f"share of {unit} (%)")
        axes.set_xlim(0, max(100 * max(mix.max(initial=0), src.max(initial=0)) * 1.12, 1))
        axes.set_title(title or f"composition by top-level cluster ({len(clusters)} clusters)", fontsize=9)
        axes.legend(fontsize=7, loc="lower right", frameon=False)
        axes.grid(axis="x", alpha=0.3)
        return _png(figure)
