"""The README's first command, as a new user runs it: `crawlmix demo` on the bundled sample."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from crawlmix.centroid_store import load_current
from crawlmix.storage import LocalStorage
from crawlmix.warehouse import Warehouse
from tests.conftest import run_crawlmix

# `demo_home` (tests/conftest.py) runs `crawlmix demo` once per session; tests/test_ui_browser.py shares it.
pytestmark = pytest.mark.e2e


def test_demo_materializes_every_sample_shard_with_passing_checks(demo_home):
    home, stdout = demo_home
    shards = sorted((home / "storage" / "raw_corpus" / "sample-2026-11").glob("*.parquet"))
    assert [p.stem for p in shards] == ["000", "001", "002", "003"]
    n_docs = sum(pq.read_metadata(p).num_rows for p in shards)
    assert 1000 < n_docs < 2000
    assert stdout.count(" ok") >= 4 and "FAILED" not in stdout
    assert "documents" in stdout and str(home / "storage") in stdout

    warehouse = Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}")
    stats = warehouse.read_frame("SELECT * FROM snapshot_shard_stats WHERE snapshot = :s", {"s": "sample-2026-11"})
    assert len(stats) == 4 and int(stats["n_docs"].sum()) == n_docs
    reasons = warehouse.read_frame("SELECT reason, SUM(n) AS n FROM quarantine_counts GROUP BY reason")
    by_reason = dict(zip(reasons["reason"], reasons["n"].astype(int)))
    # What the sample's builder planted (crawlmix/sample/SOURCES.md): 4 x 404, 3 x 301, 2 images, and
    # 3 exact duplicates: raw_corpus removes those sharing a shard, semantic_duplicates the others.
    assert by_reason["http_status"] == 7
    assert by_reason.get("non_html", 0) + by_reason.get("binary", 0) >= 2
    removed = pq.read_table(home / "storage" / "semantic_duplicates" / "sample-2026-11" / "all.parquet").to_pandas()
    assert by_reason.get("exact_duplicate", 0) + int((removed["method"] == "exact").sum()) >= 3


def test_demo_pages_in_other_encodings_are_decoded(demo_home):
    home, _ = demo_home
    tables = [pq.read_table(p, columns=["url", "text"]) for p in (home / "storage" / "raw_corpus" / "sample-2026-11").glob("*.parquet")]
    texts = {u: t for table in tables for u, t in zip(table.column("url").to_pylist(), table.column("text").to_pylist())}
    # The sample's re-encoded pages (crawlmix/sample/SOURCES.md): latin-1, cp1252, and cp1252 bytes
    # behind a header that says utf-8. Each must come out as clean text, not mojibake or U+FFFD.
    base = "https://docs.debian-mirror.example/"
    for path in (
        "lilypond-doc-html/Documentation/essay/index.html",
        "postgresql-doc-15/sql-alterrole.html",
        "lilypond-doc-html/Documentation/extending/mathematics-in-functions.html",
    ):
        text = texts[base + path]
        assert len(text) > 200
        assert "\ufffd" not in text and "Ã" not in text and "â€" not in text, path
        assert any(ord(c) > 127 for c in text), path


def test_demo_embeds_clusters_names_and_dedups_the_sample(demo_home):
    home, stdout = demo_home
    storage = home / "storage"
    import numpy as np

    for shard in ("000", "001", "002", "003"):
        rows = pq.read_metadata(storage / "raw_corpus" / "sample-2026-11" / f"{shard}.parquet").num_rows
        assert np.load(storage / "embeddings" / "sample-2026-11" / f"{shard}.npy", mmap_mode="r").shape == (rows, 384)
        assert pq.read_metadata(storage / "cluster_labels" / "sample-2026-11" / f"{shard}.parquet").num_rows == rows
    assert (storage / "centroids" / "global" / "current.json").exists()
    assert (storage / "semantic_duplicates" / "sample-2026-11" / "all.parquet").exists()
    assert "| cluster | name | docs | keywords |" in stdout and "semantic duplicates in sample-2026-11" in stdout
    names = Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}").read_frame("SELECT name FROM clusters WHERE level = 2")
    assert len(names) == 8 and all(n.count("_") >= 3 for n in names["name"])


def test_demo_ends_with_published_mixtures_and_their_data_cards(demo_home):
    import json

    home, stdout = demo_home
    for name in ("balanced-docs", "weighted-tokens", "quality-topk", "searched"):
        folder = home / "storage" / "final_mixtures" / name
        current = json.loads((folder / "current.json").read_text())
        card = folder / f"{current['version']}.card.md"
        assert card.exists() and str(card) in stdout
        assert "## Composition by top-level cluster" in card.read_text()
    warehouse = Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}")
    assert warehouse.count("mixture_search") >= 16
    assert warehouse.count("quality_by_cluster") > 0


def test_demo_searched_mixture_spans_at_least_three_top_level_clusters(demo_home):
    import json

    home, _ = demo_home
    folder = home / "storage" / "final_mixtures" / "searched"
    version = json.loads((folder / "current.json").read_text())["version"]
    manifest = pq.read_table(folder / f"{version}.manifest.parquet").to_pandas()
    tree = load_current(LocalStorage(str(home / "storage"))).tree
    top = manifest["cluster_l1"].to_numpy()
    for parents in tree.parents:  # leaf -> top level
        top = parents[top]
    shares = manifest["repeats"].groupby(top).sum() / manifest["repeats"].sum()
    assert len(shares) >= 3 and shares.max() <= 0.35 + 1e-9, shares.to_dict()
    assert "max_share" in (folder / f"{version}.card.md").read_text()


def test_status_lists_the_sample(demo_home):
    home, _ = demo_home
    proc = run_crawlmix(home, "status")
    assert proc.returncode == 0, proc.stderr
    assert "sample-2026-11" in proc.stdout and "4/4" in proc.stdout


def test_rerunning_the_demo_is_idempotent(demo_home):
    home, _ = demo_home
    proc = run_crawlmix(home, "demo")
    assert proc.returncode == 0, proc.stderr[-3000:]
    warehouse = Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}")
    assert warehouse.count("snapshot_shard_stats") == 4
