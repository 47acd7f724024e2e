"""Duplicate groups from dedup output (pure Python, no Dagster).

Dedup (``semantic_duplicates/<snapshot>/all.parquet``) lists every removed document with the one it
duplicates: ``doc_id -> kept_doc_id``, with ``method`` "exact" (same content hash, within the
snapshot or against an earlier one) or "semantic" (SemDeDup); files written before ``method``
existed hold SemDeDup rows only. A kept document may itself be removed in favour of a third one
(a later snapshot re-holding an earlier one that was itself a copy), so copies are the connected
components of these links, not just the pairs: a *duplicate group*. A mixture treats a group as
one document and selects at most one of its members.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["EDGE_COLUMNS", "duplicate_groups", "edges_frame"]

EDGE_COLUMNS = ("doc_id", "kept_doc_id", "method")


def edges_frame(table: pd.DataFrame) -> pd.DataFrame:
    """``doc_id, kept_doc_id, method`` of a dedup table; a table without ``method`` is SemDeDup's."""
    if not {"doc_id", "kept_doc_id"} <= set(table.columns):
        raise ValueError("a dedup table needs doc_id and kept_doc_id columns")
    method = table["method"] if "method" in table.columns else pd.Series("semantic", index=table.index)
    bad = sorted(set(method.dropna().astype(str)) - {"exact", "semantic"})
    if bad or method.isna().any():
        raise ValueError(f"dedup method must be 'exact' or 'semantic', got {bad or [None]}")
    return pd.DataFrame({"doc_id": table["doc_id"].astype(str).to_numpy(),
                         "kept_doc_id": table["kept_doc_id"].astype(str).to_numpy(),
                         "method": method.astype(str).to_numpy()})


def duplicate_groups(doc_ids: Sequence[str], edges: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``doc_ids``: its duplicate group (the smallest doc id of the group, so the
    label is the same whichever snapshot is looked at) and how dedup removed it ("exact",
    "semantic", or None when dedup kept it).

    ``edges``: :func:`edges_frame` rows of every dedup file that may link these documents,
    including links through documents that are not in ``doc_ids`` (so two selected copies joined
    through an unselected third are still one group). Union-find with path halving over string ids.
    """
    ids = [str(d) for d in doc_ids]
    removed = dict(zip(edges["doc_id"].astype(str), edges["method"].astype(str))) if len(edges) else {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(edges["doc_id"].astype(str), edges["kept_doc_id"].astype(str)):
        ra, rb = find(a), find(b)
        if ra != rb:  # the smaller id becomes the root, so a group's label is its smallest member
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    group = np.array([find(d) for d in ids], dtype=object)
    method = np.array([removed.get(d) for d in ids], dtype=object)
    return group, method
