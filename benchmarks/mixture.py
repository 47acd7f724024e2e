"""Mixture benchmark: time and peak memory to build a mixture per policy, plus n-gram evaluator speed,
the token-fill error distribution, and a searched mixture's composition under the share cap.

    python benchmarks/mixture.py            # 1M scored documents, 3-level tree (1000/100/10)
    python benchmarks/mixture.py --quick    # 100k documents
    python benchmarks/mixture.py --sections fill,shares   # only the two small sections (seconds)
    python benchmarks/mixture.py --json out.json

Token fill: 300 seeded random pools (12-400 documents over 1-6 top-level clusters; short pages of
20-400 tokens, long ones of 3k-60k, or a mix), a policy each (weighted with max_repeats 1-3 and a
random temperature, balanced, quality_topk) and a random reachable token target (2-99.5% of what
the pool can supply); reports |achieved - target| / target (median, p95, max) and how often the
last pass had to cut a document at the boundary. Search shares: the default searched spec's
options (max_share 0.35, max_repeats 3) on an 8-cluster pool with long-tailed sizes and an
evaluator that only rewards the largest cluster; reports the top-level shares, with and without
the cap.

Pool: synthetic labels (long-tailed leaf sizes, random 3-level tree), quality ~ U(0, 1), 5%
semantic duplicates, n_tokens 50..2,000. Targets: 10% of the pool (documents) or 10% of its
tokens. ``search`` runs the full CLIMB schedule (64/32/16 candidates, 100k-candidate prediction
pool) with a cheap synthetic evaluator. Peak memory: tracemalloc peak during the call (numpy and
pandas allocations are traced) and the process's max RSS at the end.

Evaluator speed: NgramLMEvaluator (bigram KN, 200k-token budget) calls per minute on the texts of
the materialized raw_corpus when one exists under the storage root (``$CRAWLMIX_STORAGE`` or
``.crawlmix/storage``), else on synthetic topic-skewed Zipfian text.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawlmix.cluster import paths_from_leaves  # noqa: E402
from crawlmix.mixture import NgramLMEvaluator, build_mixture, parse_mixture_spec  # noqa: E402


def log(msg: str = "") -> None:
    print(msg, flush=True)


def make_pool(n: int, ks=(1000, 100, 10), seed: int = 0):
    rng = np.random.default_rng(seed)
    parents = [rng.integers(0, ks[t + 1], size=ks[t]) for t in range(len(ks) - 1)]
    for t in range(len(parents)):
        parents[t][: ks[t + 1]] = np.arange(ks[t + 1])
    p = 1.0 / np.arange(1, ks[0] + 1) ** 1.1
    leaves = rng.choice(ks[0], size=n, p=p / p.sum())
    paths = paths_from_leaves(leaves, parents)
    df = pd.DataFrame({
        "doc_id": pd.Series(np.char.add("d", np.arange(n).astype(str)), dtype=object),
        "snapshot": pd.Categorical(rng.choice(["CC-2024-10", "CC-2024-18"], size=n)),
        "shard": pd.Categorical(rng.integers(0, 16, size=n).astype(str)),
    })
    for t in range(len(ks)):
        df[f"cluster_l{t + 1}"] = paths[:, t]
    df["quality"] = rng.random(n).astype(np.float32)
    df["is_semantic_duplicate"] = rng.random(n) < 0.05
    df["n_tokens"] = rng.integers(50, 2000, size=n).astype(np.int32)
    df["distance"] = rng.random(n).astype(np.float32)
    return df, parents


def run_policy(pool, parents, spec_dict, evaluator=None):
    spec = parse_mixture_spec(spec_dict)
    tracemalloc.start()
    t0 = time.perf_counter()
    res = build_mixture(pool, spec, parents, evaluator=evaluator)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return res, dt, peak


def raw_corpus_texts(limit: int) -> list[str] | None:
    root = os.environ.get("CRAWLMIX_STORAGE") or str(ROOT / ".crawlmix" / "storage")
    files = sorted(glob.glob(os.path.join(root, "raw_corpus", "*", "*.parquet")))
    texts: list[str] = []
    for f in files:
        try:
            df = pd.read_parquet(f)
        except Exception:  # noqa: BLE001 - a half-written or foreign file: skip it
            continue
        col = next((c for c in ("text", "content", "body") if c in df.columns), None)
        if col:
            texts += [t for t in df[col].astype(str).tolist() if t]
        if len(texts) >= limit:
            break
    return texts[:limit] if texts else None


def synthetic_texts(n: int, n_topics: int = 10, vocab: int = 20_000, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    base = 1.0 / np.arange(1, vocab + 1) ** 1.05
    topics = rng.integers(0, n_topics, size=n)
    dists = []
    for t in range(n_topics):
        boost = np.ones(vocab)
        boost[rng.choice(vocab, size=500, replace=False)] = 40.0  # topic words
        q = base * boost
        dists.append(np.cumsum(q / q.sum()))
    out = []
    for i in range(n):
        length = int(rng.integers(150, 600))
        ids = np.searchsorted(dists[topics[i]], rng.random(length))
        out.append(" ".join(words[np.minimum(ids, vocab - 1)]))
    return out, topics


def bench_ngram(quick: bool) -> dict:
    n = 3000 if quick else 8000
    texts = raw_corpus_texts(n)
    source = "raw_corpus"
    if texts is None or len(texts) < 200:
        texts, topics = synthetic_texts(n)
        source = "synthetic"
    else:
        topics = np.arange(len(texts)) % 10
    ids = [f"t{i}" for i in range(len(texts))]
    mapping = dict(zip(ids, texts))
    target = [texts[i] for i in range(0, len(texts), 50)][:100]
    t0 = time.perf_counter()
    ev = NgramLMEvaluator(mapping, target, token_budget=200_000, seed=0)
    t_init = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    samples = []
    for _ in range(12):
        w = rng.dirichlet(np.full(10, 0.5))
        pick = []
        for t in range(10):
            members = np.flatnonzero(topics == t)
            k = int(round(w[t] * 2000))
            if k and len(members):
                pick += rng.choice(members, size=min(k, len(members)), replace=False).tolist()
        samples.append(pd.DataFrame({"doc_id": [ids[i] for i in pick], "repeats": 1}))
    t0 = time.perf_counter()
    ev(samples[0])  # first call also tokenizes the documents it uses
    t_first = time.perf_counter() - t0
    for s in samples:  # warm the token cache
        ev(s)
    t0 = time.perf_counter()
    reps = 0
    for s in samples:
        ev(s)
        reps += 1
    dt = time.perf_counter() - t0
    n_words = sum(len(t.split()) for t in texts)
    return {"source": source, "docs": len(texts), "words": n_words, "init_s": t_init, "first_call_s": t_first,
            "calls_per_min": 60 * reps / dt, "s_per_call": dt / reps}


def fill_pool(rng: np.random.Generator, n: int, k_top: int, long_share: float) -> pd.DataFrame:
    top = rng.integers(0, k_top, size=n)
    long = rng.random(n) < long_share
    return pd.DataFrame({
        "doc_id": [f"d{i}" for i in range(n)], "snapshot": "s", "shard": "0",
        "cluster_l1": top * 2 + rng.integers(0, 2, size=n), "cluster_l2": top, "quality": rng.random(n),
        "is_semantic_duplicate": False,
        "n_tokens": np.where(long, rng.integers(3_000, 60_000, size=n), rng.integers(20, 400, size=n)),
    })


def bench_token_fill(cases: int = 300, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for case in range(cases):
        kind = ["short", "mixed", "long"][case % 3]
        pool = fill_pool(rng, int(rng.integers(12, 400)), int(rng.integers(1, 7)), {"short": 0.0, "mixed": 0.3, "long": 1.0}[kind])
        policy = ["weighted", "balanced", "quality_topk"][(case // 3) % 3]
        reps = int(rng.integers(1, 4)) if policy == "weighted" else 1
        target = int(pool["n_tokens"].sum() * reps * rng.uniform(0.02, 0.995))
        options = {"max_repeats": reps, "temperature": float(rng.uniform(0.5, 3))} if policy == "weighted" else {}
        spec = parse_mixture_spec({"name": f"fill{case}", "policy": policy, "size": {"tokens": target}, "seed": case,
                                   "options": options})
        res = build_mixture(pool, spec)
        rows.append({"kind": kind, "policy": policy, "error": abs(res.achieved - target) / target,
                     "cut": res.details["cut_documents"]})
    frame = pd.DataFrame(rows)

    def summary(f: pd.DataFrame) -> dict:
        e = f["error"].to_numpy() * 100
        return {"cases": len(f), "median_pct": float(np.median(e)), "p95_pct": float(np.percentile(e, 95)),
                "max_pct": float(e.max()), "cut_rate": float((f["cut"] > 0).mean())}

    return {"all": summary(frame), **{k: summary(g) for k, g in frame.groupby("kind")}}


def bench_search_shares(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = 20_000
    sizes = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
    top = rng.choice(8, size=n, p=sizes)
    pool = pd.DataFrame({"doc_id": [f"d{i}" for i in range(n)], "snapshot": "s", "shard": "0",
                         "cluster_l1": top * 4 + rng.integers(0, 4, size=n), "cluster_l2": top,
                         "quality": rng.random(n), "is_semantic_duplicate": False,
                         "n_tokens": rng.integers(50, 2000, size=n)})

    def largest_only(sample, weights):
        return float((sample["cluster_l2"] == 0).mean())

    out = {"prior": {int(c): float(v) for c, v in enumerate(np.bincount(top, minlength=8) / n)}}
    for label, share in (("max_share 0.35", 0.35), ("no cap", 1.0)):
        spec = parse_mixture_spec({"name": "searched", "policy": "search", "size": {"documents": 3000}, "seed": 0,
                                   "options": {"scale": 0.25, "max_share": share, "max_repeats": 3,
                                               "pool_size": 20000, "eval_sample_documents": 300}})
        res = build_mixture(pool, spec, evaluator=largest_only)
        out[label] = {int(c): float(res.weights.get(c, 0.0)) for c in range(8)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k documents instead of 1M")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--policies", default="balanced,balanced_tokens,weighted,quality_topk,search")
    ap.add_argument("--sections", default="policies,ngram,fill,shares",
                    help="comma list of: policies (1M-doc pool), ngram, fill (token fill errors), shares (search)")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    results: dict = {}
    if "fill" in sections:
        t0 = time.perf_counter()
        fill = bench_token_fill()
        results["token_fill"] = fill
        log(f"token fill over {fill['all']['cases']} random pools ({time.perf_counter() - t0:.0f} s): |error| %")
        log("| pages | cases | median | p95 | max | cut rate |")
        log("|---|---:|---:|---:|---:|---:|")
        for kind in ("short", "mixed", "long", "all"):
            f = fill[kind]
            log(f"| {kind} | {f['cases']} | {f['median_pct']:.3f} | {f['p95_pct']:.3f} | {f['max_pct']:.3f} | "
                f"{100 * f['cut_rate']:.0f}% |")
    if "shares" in sections:
        shares = bench_search_shares()
        results["search_shares"] = shares
        log("\nsearched mixture, 8 top-level clusters, evaluator rewards cluster 0 only: top-level shares")
        log("| cluster | " + " | ".join(str(c) for c in range(8)) + " |")
        log("|---|" + "---:|" * 8)
        for label in ("prior", "max_share 0.35", "no cap"):
            log(f"| {label} | " + " | ".join(f"{shares[label][c]:.3f}" for c in range(8)) + " |")
    if not sections & {"policies", "ngram"}:
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=2)
        return
    n = 100_000 if args.quick else 1_000_000
    log(f"mixture benchmark: {n:,} documents, 3-level tree (1000/100/10), {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    pool, parents = make_pool(n)
    log(f"pool built in {time.perf_counter() - t0:.1f} s")
    tok_total = int(pool["n_tokens"].sum())
    docs_t, tok_t = n // 10, tok_total // 10

    def cheap_eval(sample, weights):  # favours top cluster 3, penalizes 7, rewards quality
        top = sample["cluster_l3"].to_numpy()
        r = sample["repeats"].to_numpy()
        return float(((top == 3) * r).sum() / r.sum() - ((top == 7) * r).sum() / r.sum()
                     + 0.1 * sample["quality"].mean())

    cases = {
        "balanced": {"policy": "balanced", "size": {"documents": docs_t}},
        "balanced_tokens": {"policy": "balanced", "size": {"tokens": tok_t}},
        "balanced_closest": {"policy": "balanced", "size": {"documents": docs_t},
                             "options": {"within_leaf": "closest"}},
        "weighted": {"policy": "weighted", "size": {"tokens": tok_t},
                     "options": {"temperature": 2.0, "max_repeats": 4, "weights": {0: 1, 1: 1, 9: 20}}},
        "quality_topk": {"policy": "quality_topk", "size": {"documents": docs_t},
                         "options": {"shares_from": "balanced", "level": 2, "gumbel_scale": 0.05}},
        "search": {"policy": "search", "size": {"tokens": tok_t},
                   "options": {"max_repeats": 2, "eval_sample_documents": 5000}},
    }
    wanted = args.policies.split(",")
    if "balanced" in wanted and "balanced_closest" not in wanted:
        wanted.append("balanced_closest")
    rows = []
    for name, d in cases.items():
        if name not in wanted or "policies" not in sections:
            continue
        spec = {"name": f"bench-{name}", "seed": 0, "filters": {"min_quality": 0.1}, **d}
        res, dt, peak = run_policy(pool, parents, spec, evaluator=cheap_eval if d["policy"] == "search" else None)
        extra = ""
        if d["policy"] == "search":
            extra = (f"{res.details['n_evaluated']} evals, w3 {res.details['prior'][3]:.3f}->{res.weights.get(3, 0):.3f}"
                     f" w7 {res.details['prior'][7]:.3f}->{res.weights.get(7, 0):.3f}")
        err = (res.achieved - res.target) / res.target * 100
        rows.append({"policy": name, "seconds": dt, "docs_per_s": n / dt, "peak_mib": peak / 2**20,
                     "unit": res.unit, "target": res.target, "achieved": res.achieved, "error_pct": err,
                     "selected_rows": len(res.selection), "note": extra})
        log(f"  {name}: {dt:.2f} s")
    ng = bench_ngram(args.quick) if "ngram" in sections else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log("")
    log("| policy | time (s) | pool docs/s | peak traced MiB | target | achieved | error % | rows | note |")
    log("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        log(f"| {r['policy']} | {r['seconds']:.2f} | {r['docs_per_s']:,.0f} | {r['peak_mib']:.0f} | "
            f"{r['target']:,} {r['unit']} | {r['achieved']:,} | {r['error_pct']:+.2f} | {r['selected_rows']:,} | "
            f"{r['note']} |")
    log(f"\nprocess max RSS: {rss:.0f} MiB (pool DataFrame included)")
    if ng is not None:
        log(f"NgramLMEvaluator ({ng['source']} text, {ng['docs']:,} docs, {ng['words']:,} words; 200k-token budget): "
            f"init {ng['init_s']:.2f} s, first call {ng['first_call_s']:.2f} s, "
            f"then {ng['calls_per_min']:.0f} calls/min ({ng['s_per_call'] * 1000:.0f} ms/call)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": n, "policies": rows, "ngram": ng, "max_rss_mib": rss, **results}, fh, indent=2)


if __name__ == "__main__":
    main()
