"""Versioned centroid trees in storage, with a `current` pointer that labelling reads.

A fit writes `centroids/global/<version>.npz` (the tree) and `<version>.names.json` (keywords,
names and the documents closest to each centroid, per level), then moves
`centroids/global/current.json` to it. Labels record the version they were made with, so a refit
visibly makes older labels stale instead of silently mixing ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crawlmix.cluster import HierarchicalKMeans
from crawlmix.storage import Storage
from crawlmix.tables import (
    checked_write,
    open_verified,
    read_bytes_verified,
    write_bytes_checked,
)

_SCOPE = "global"


@dataclass
class CentroidTree:
    tree: HierarchicalKMeans
    version: str
    names: list[dict[int, str]]  # per level: cluster id -> readable name
    keywords: list[dict[int, list[tuple[str, float]]]]  # per level: cluster id -> top keywords
    fit_mean_distance: float  # mean leaf distance of the fit sample: the baseline for drift warnings
    fit_info: dict[str, Any]
    # per level: cluster id -> the fit-sample documents closest to its centroid (doc_id, url, snippet)
    representatives: list[dict[int, list[dict]]] = field(default_factory=list)


def short_version(version: str) -> str:
    return version[:16]


def tree_keys(store: Storage, version: str) -> tuple[str, str]:
    v = short_version(version)
    return store.key("centroids", _SCOPE, v, "npz"), store.key("centroids", _SCOPE, v, "names.json")


def current_key(store: Storage) -> str:
    return store.key("centroids", _SCOPE, "current", "json")


def save_tree(store: Storage, fitted: CentroidTree) -> dict[str, str]:
    """Write the tree and its names, then move the current pointer (last, so readers never see a
    pointer to files that are not there yet)."""
    npz_key, names_key = tree_keys(store, fitted.version)
    with checked_write(store, npz_key) as pending:
        np.savez(pending.path, **fitted.tree.to_arrays())
    write_bytes_checked(store, names_key, json.dumps(_names_payload(fitted), sort_keys=True).encode())
    pointer = {
        "version": fitted.version,
        "tree": npz_key,
        "names": names_key,
        "fit_mean_distance": fitted.fit_mean_distance,
        **fitted.fit_info,
    }
    write_bytes_checked(store, current_key(store), json.dumps(pointer, sort_keys=True).encode())
    return {"tree": store.uri(npz_key), "names": store.uri(names_key), "current": store.uri(current_key(store))}


def load_current(store: Storage) -> CentroidTree:
    if not store.exists(current_key(store)):
        raise FileNotFoundError(
            f"no centroids fitted yet under {store.uri(current_key(store))}: materialize the `centroids` "
            "asset (job fit_centroids) before labelling"
        )
    pointer = json.loads(read_bytes_verified(store, current_key(store)))
    with open_verified(store, pointer["tree"]) as handle, np.load(handle, allow_pickle=False) as arrays:
        tree = HierarchicalKMeans.from_arrays({k: arrays[k] for k in arrays.files})
    if tree.version != pointer["version"]:
        raise ValueError(
            f"{store.uri(pointer['tree'])} holds tree {tree.version[:12]} but current.json points at "
            f"{pointer['version'][:12]}: re-materialize `centroids`"
        )
    names_payload = json.loads(read_bytes_verified(store, pointer["names"]))
    info = {k: v for k, v in pointer.items() if k not in ("version", "tree", "names", "fit_mean_distance")}
    return CentroidTree(
        tree=tree,
        version=tree.version,
        names=[{int(c): n for c, n in level.items()} for level in names_payload["names"]],
        keywords=[{int(c): [tuple(k) for k in kws] for c, kws in level.items()} for level in names_payload["keywords"]],
        fit_mean_distance=float(pointer["fit_mean_distance"]),
        fit_info=info,
        representatives=[
            {int(c): docs for c, docs in level.items()} for level in names_payload.get("representatives", [])
        ],
    )


def _names_payload(fitted: CentroidTree) -> dict:
    return {
        "version": fitted.version,
        "names": [{str(c): n for c, n in level.items()} for level in fitted.names],
        "keywords": [{str(c): [list(k) for k in kws] for c, kws in level.items()} for level in fitted.keywords],
        "representatives": [{str(c): docs for c, docs in level.items()} for level in fitted.representatives],
    }
