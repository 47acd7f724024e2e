"""Exact deduplication by content hash, across a snapshot's shards and against every earlier snapshot.

Successive crawls re-fetch most pages: the same text under the same or a new URL. Per-shard dedup in
`raw_corpus` cannot see those copies, so this step compares a whole snapshot with a persistent index
of the content hashes that earlier snapshots introduced.

The index lives in storage, partitioned by the first hex digit of the hash:
``<root>/content_index/<prefix>/<snapshot>.parquet`` holds the hashes snapshot `<snapshot>` brought
in first (``content_hash, doc_id, shard``), and ``<root>/content_index/complete/<snapshot>.json``,
written last, says that snapshot's parts are all there. A snapshot only ever reads the parts of
snapshots registered before it and replaces its own, so reruns and backfills give the same result,
an earlier snapshot's documents are never removed, and each prefix can be looked up on its own
(one worker per prefix when an index outgrows one machine's memory).

No Dagster here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from crawlmix.storage import Storage
from crawlmix.tables import read_bytes_verified, read_table, write_bytes_checked, write_table

INDEX_ASSET = "content_index"
# 16 parts: small enough that a snapshot's index is a handful of files, large enough that one part
# of a billion-document index fits in memory.
INDEX_PREFIXES = tuple("0123456789abcdef")
_COMPLETE = "complete"

INDEX_SCHEMA = pa.schema([
    pa.field("content_hash", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("shard", pa.string(), nullable=False),
])

REMOVED_COLUMNS = ["doc_id", "snapshot", "shard", "kept_doc_id", "kept_snapshot", "kept_shard"]


class IndexNotReadyError(RuntimeError):
    """An earlier snapshot's content index is missing: it must be deduplicated first."""


@dataclass
class ExactDedupResult:
    removed: pd.DataFrame  # REMOVED_COLUMNS, one row per removed document of the snapshot
    index_parts: dict[str, pa.Table]  # prefix -> INDEX_SCHEMA rows the snapshot introduces
    n_docs: int
    n_within_snapshot: int  # copies of a document in another shard (or later in the same shard)
    n_against_earlier: int  # copies of a document of an earlier snapshot


def index_part_key(store: Storage, prefix: str, snapshot: str) -> str:
    return store.key(INDEX_ASSET, prefix, snapshot, "parquet")


def index_complete_key(store: Storage, snapshot: str) -> str:
    return store.key(INDEX_ASSET, _COMPLETE, snapshot, "json")


def has_complete_index(store: Storage, snapshot: str) -> bool:
    return store.exists(index_complete_key(store, snapshot))


def snapshot_hashes(store: Storage, snapshot: str, shards: Sequence[str]) -> pd.DataFrame:
    """doc_id, content_hash and shard of every document of the snapshot, in shard then row order."""
    frames = []
    for shard in shards:
        table = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id", "content_hash"])
        frame = table.to_pandas()
        frame["shard"] = shard
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"doc_id": [], "content_hash": [], "shard": []}, dtype=str)
    return pd.concat(frames, ignore_index=True)


def find_exact_duplicates(
    store: Storage, snapshot: str, shards: Sequence[str], earlier: Sequence[str]
) -> ExactDedupResult:
    """Every document of `snapshot` whose text an earlier document already has.

    Within the snapshot the first copy in (shard, row) order is kept; a copy of a document of an
    earlier snapshot (in `earlier`, registration order) is removed in favour of the earliest one,
    and so is every other copy of it in the snapshot.
    Raises IndexNotReadyError when an earlier snapshot has no complete index.
    """
    missing = [s for s in earlier if not has_complete_index(store, s)]
    if missing:
        raise IndexNotReadyError(
            f"snapshot(s) {missing} registered before {snapshot} have no content index yet: materialize "
            f"semantic_duplicates for them first (earlier snapshots are deduplicated before later ones)"
        )
    docs = snapshot_hashes(store, snapshot, shards)
    first_copy = ~docs.duplicated("content_hash", keep="first")
    firsts = docs[first_copy]
    within = docs[~first_copy].merge(
        firsts.rename(columns={"doc_id": "kept_doc_id", "shard": "kept_shard"}), on="content_hash", how="left"
    )
    within["kept_snapshot"] = snapshot

    against_parts, index_parts = [], {}
    prefix_of = firsts["content_hash"].str[0]
    for prefix in INDEX_PREFIXES:
        candidates = firsts[prefix_of == prefix]
        held = _earlier_hashes(store, prefix, earlier)
        matched = candidates.merge(held, on="content_hash", how="inner")
        against_parts.append(matched)
        new = candidates[~candidates["content_hash"].isin(held["content_hash"])]
        index_parts[prefix] = pa.Table.from_pandas(
            new[["content_hash", "doc_id", "shard"]].reset_index(drop=True), schema=INDEX_SCHEMA, preserve_index=False
        )
    against = pd.concat(against_parts, ignore_index=True)
    # A later copy inside the snapshot points at the snapshot's first copy; when an earlier snapshot
    # holds that text, the first copy goes too, so every copy points at the earlier document.
    earliest = against.set_index("content_hash")[["kept_doc_id", "kept_shard", "kept_snapshot"]]
    redirected = within["content_hash"].isin(earliest.index)
    if redirected.any():
        target = earliest.loc[within.loc[redirected, "content_hash"]]
        for column in ("kept_doc_id", "kept_shard", "kept_snapshot"):
            within.loc[redirected, column] = target[column].to_numpy()

    removed = pd.concat([within, against], ignore_index=True)
    removed["snapshot"] = snapshot
    removed = removed[REMOVED_COLUMNS].sort_values(["shard", "doc_id"], kind="stable").reset_index(drop=True)
    return ExactDedupResult(
        removed=removed,
        index_parts=index_parts,
        n_docs=len(docs),
        n_within_snapshot=len(within),
        n_against_earlier=len(against),
    )


def _earlier_hashes(store: Storage, prefix: str, earlier: Sequence[str]) -> pd.DataFrame:
    """content_hash -> the earliest snapshot's kept doc, over the index parts of `earlier`."""
    frames = []
    for snap in earlier:
        part = read_table(store, index_part_key(store, prefix, snap)).to_pandas()
        part["kept_snapshot"] = snap
        frames.append(part)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in ("content_hash", "kept_doc_id", "kept_shard", "kept_snapshot")})
    held = pd.concat(frames, ignore_index=True).drop_duplicates("content_hash", keep="first")
    return held.rename(columns={"doc_id": "kept_doc_id", "shard": "kept_shard"})


def write_index(store: Storage, snapshot: str, result: ExactDedupResult, provenance: dict) -> int:
    """Replace the snapshot's index parts, then mark them complete; returns the hashes indexed."""
    total = 0
    for prefix, table in result.index_parts.items():
        write_table(store, index_part_key(store, prefix, snapshot), table, {**provenance, "asset": INDEX_ASSET})
        total += table.num_rows
    marker = {"snapshot": snapshot, "n_hashes": total, "prefixes": list(INDEX_PREFIXES), **provenance}
    write_bytes_checked(store, index_complete_key(store, snapshot), json.dumps(marker, sort_keys=True).encode())
    return total


def read_index_marker(store: Storage, snapshot: str) -> dict:
    return json.loads(read_bytes_verified(store, index_complete_key(store, snapshot)))
