"""Cluster tree and names on real labelled text: agreement with the labels, balance, name coverage.

    python benchmarks/labelled_corpora.py --out ~/.cache/crawlmix/labelled   # once (needs apt)
    python benchmarks/cluster_quality.py --corpora ~/.cache/crawlmix/labelled --sample [--seeds 0 1 2] \
        [--json out.json]

Each of CORPORA under --corpora (fields doc_id, label, text; see labelled_corpora.py) is embedded with
crawlmix's own embedder (bundled all-MiniLM-L6-v2, cached next to the corpus) and fitted with the
settings the `centroids` asset uses when none are given (`tree_config`), then named as the asset
names clusters (`fit_named_tree`). --sample adds the bundled sample crawl, labelled by package.

Per level it prints: NMI and ARI against the labels; the same for flat k-means with the same k on
the same vectors (same seed, same iterations); their NMI ratio; the largest cluster's share of the
documents (and the largest label's, which is what "unless the labels say so" refers to); and the
name coverage: the share of documents that contain at least one of their cluster's first three name
words (size-weighted over clusters). Targets: NMI ratio >= 0.8 at every level, largest top-level
cluster <= 40% unless the largest label is bigger, name coverage >= 0.5 at every level.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawlmix.cluster import fit_kmeans, name_coverage  # noqa: E402
from crawlmix.clustering_steps import fit_named_tree, tree_config  # noqa: E402

# the topical corpora of labelled_corpora.py (its `languages` corpus is labelled by language: for
# benchmarks/language_id.py, not for topic clusters of an English embedding model)
CORPORA = ("short_descriptions", "doc_pages")
TARGET_NMI_RATIO = 0.8
TARGET_TOP_SHARE = 0.4
TARGET_COVERAGE = 0.5


def log(msg: str = "") -> None:
    print(msg, flush=True)


def read_corpus(path: Path) -> tuple[list[str], list[str], list[str]]:
    doc_ids, labels, texts = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            doc_ids.append(record["doc_id"])
            labels.append(record["label"])
            texts.append(record["text"])
    return doc_ids, labels, texts


def bundled_sample() -> tuple[list[str], list[str], list[str]]:
    from cluster import sample_pages  # benchmarks/cluster.py: the sample crawl's pages by package

    pages = [(url, package, text) for url, package, text in sample_pages() if len(text.strip()) >= 200]
    return [p[0] for p in pages], [p[1] for p in pages], [p[2] for p in pages]


def embed(texts: list[str], cache: Path | None) -> np.ndarray:
    """Vectors from crawlmix's embedder, cached by the texts' digest and the model's fingerprint."""
    from crawlmix.embed import EmbedderSpec, load_model
    from crawlmix.embed.pipeline import embed_texts

    model = load_model(EmbedderSpec(device="cpu"))
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    path = cache.with_name(f"{cache.stem}.{model.weights_hash[:12]}.{digest}.npy") if cache else None
    if path and path.exists():
        return np.load(path).astype(np.float32)
    started = time.perf_counter()
    vectors = embed_texts(model, texts).astype(np.float32)
    log(f"  embedded {len(texts)} texts in {time.perf_counter() - started:.0f} s")
    if path:
        np.save(path, vectors)
    return vectors


def evaluate(name: str, doc_ids: list[str], labels: list[str], texts: list[str], vectors: np.ndarray,
             seed: int) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    classes = sorted(set(labels))
    y = np.asarray([classes.index(label) for label in labels])
    lengths = np.asarray([len(t) for t in texts])
    log(f"\n== {name}: {len(texts)} documents, {len(classes)} labels, median {int(np.median(lengths))} "
        f"characters; largest label {np.bincount(y).max() / len(y):.0%}")
    documents = pa.table({"doc_id": doc_ids, "url": [None] * len(doc_ids), "text": texts})
    config = tree_config(vectors, ks=None, n_iter=20, resampling_steps=None, seed=seed)
    started = time.perf_counter()
    named = fit_named_tree(vectors, documents, config)
    fit_seconds = time.perf_counter() - started
    tree = named.tree
    log(f"  levels {list(config.ks)}, resampling {list(config.resampling_steps)}, fit + names {fit_seconds:.1f} s")
    log("  level     k   NMI   ARI | flat NMI  ARI | NMI ratio | largest | coverage")
    levels = []
    largest_label = float(np.bincount(y).max() / len(y))
    for level, k in enumerate(config.ks):
        ours = tree.paths[:, level]
        flat = fit_kmeans(vectors, k, n_iter=config.n_iter, spherical=True, seed=seed).assignment
        row = {
            "level": level + 1,
            "k": k,
            "nmi": normalized_mutual_info_score(y, ours),
            "ari": adjusted_rand_score(y, ours),
            "flat_nmi": normalized_mutual_info_score(y, flat),
            "flat_ari": adjusted_rand_score(y, flat),
            "largest_share": float(np.bincount(ours).max() / len(ours)),
            "flat_largest_share": float(np.bincount(flat).max() / len(flat)),
            "coverage": name_coverage(ours.tolist(), texts, named.keywords[level]),
        }
        row["nmi_ratio"] = row["nmi"] / row["flat_nmi"] if row["flat_nmi"] > 0 else float("nan")
        levels.append(row)
        log(f"  {level + 1:5d} {k:5d} {row['nmi']:5.3f} {row['ari']:5.3f} | {row['flat_nmi']:5.3f} "
            f"{row['flat_ari']:5.3f} | {row['nmi_ratio']:9.2f} | {row['largest_share']:6.1%} | {row['coverage']:8.2f}")
    top = tree.levels - 1
    log("  top-level clusters: name, documents, majority label, closest document")
    for cluster in np.argsort(-tree.sizes[top], kind="stable"):
        members = y[tree.paths[:, top] == cluster]
        if not len(members):
            continue
        counts = np.bincount(members, minlength=len(classes))
        closest = named.representatives[top].get(int(cluster), [{}])[0]
        log(f"    {named.names[top][int(cluster)]:42s} {len(members):5d}  {counts.max() / len(members):4.0%} "
            f"{classes[int(counts.argmax())]:14s} {closest.get('snippet', '')[:60]!r}")
    verdict = {
        "nmi_ratio": all(r["nmi_ratio"] >= TARGET_NMI_RATIO for r in levels),
        "top_share": levels[-1]["largest_share"] <= max(TARGET_TOP_SHARE, largest_label),
        "coverage": all(r["coverage"] >= TARGET_COVERAGE for r in levels),
    }
    log("  targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in verdict.items()))
    return {"corpus": name, "documents": len(texts), "labels": len(classes), "largest_label": largest_label,
            "ks": list(config.ks), "fit_seconds": fit_seconds, "levels": levels,
            "top_names": {int(c): n for c, n in named.names[top].items()}, "targets_met": verdict}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, help="folder of labelled *.jsonl corpora")
    parser.add_argument("--sample", action="store_true", help="also the bundled sample crawl")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="fit seeds (one table each)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not args.corpora and not args.sample:
        parser.error("name --corpora and/or --sample")
    results = []
    paths = [args.corpora / f"{name}.jsonl" for name in CORPORA if (args.corpora / f"{name}.jsonl").exists()] \
        if args.corpora else []
    corpora = [(path.stem, read_corpus(path), path) for path in paths]
    if args.sample:
        corpora.append(("bundled sample", bundled_sample(), None))
    for name, corpus, cache in corpora:
        vectors = embed(corpus[2], cache)
        for seed in args.seeds:
            results.append(evaluate(f"{name}, seed {seed}", *corpus, vectors=vectors, seed=seed))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(all(r["targets_met"].values()) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
