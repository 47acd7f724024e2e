"""Fuzzy deduplication: crawlmix's MinHash LSH against datatrove's MinHash pipeline, same documents.

    pip install -e '.[bench]'     # datatrove (and spacy, its English word tokenizer)
    python benchmarks/dedup.py [--corpora ~/.cache/crawlmix/labelled] [--copies 300] [--json out.json]

Documents: real pages (the bundled sample crawl, plus `doc_pages.jsonl` of --corpora when given),
then planted near-duplicates of some of them (2% of the words replaced, a footer added or the
first paragraph dropped; kept only when their 5-gram Jaccard with the original is >= 0.8) and
planted non-duplicates: 200 other pages (not otherwise in the corpus) wrapped in the same
150-word header and footer.
Both methods use word 5-gram shingles and 14 bands x 8 rows (FineWeb's setting), keep the first
document of each group, and run in their own process pinned to one core; crawlmix also checks each
bucket's candidates against the signature agreement (>= 0.75) before grouping them.

Reported per method: documents per second (one core), peak memory (max RSS of its process), recall
(planted copies removed), precision (removed documents whose exact 5-gram Jaccard with the kept
document of their group is >= 0.8), planted non-duplicates removed, and the agreement of the two
removed sets (Jaccard). Target: faster than datatrove, the same duplicates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BOILERPLATE = ("Welcome to the documentation portal. Use the menu to find guides, references and tutorials. "
               "Sign in to save your preferences, subscribe to release announcements and join the community "
               "forum where users and maintainers answer questions every day. ") * 3


def log(msg: str = "") -> None:
    print(msg, flush=True)


def shingle_set(text: str) -> set[int]:
    from crawlmix.ngrams import ngram_hashes, words

    tokens = words(text)
    return set(ngram_hashes(tokens, min(5, len(tokens))).tolist()) if tokens else set()


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def build_corpus(corpora: Path | None, copies: int, seed: int) -> tuple[list[str], list[int], list[int]]:
    """(texts, planted copy indices, planted non-duplicate indices)."""
    from cluster import sample_pages

    base = [t for _, _, t in sample_pages()]
    if corpora and (corpora / "doc_pages.jsonl").exists():
        base += [json.loads(line)["text"] for line in (corpora / "doc_pages.jsonl").open(encoding="utf-8")]
    base = [t for t in dict.fromkeys(base) if len(t.split()) >= 100]
    rng = random.Random(seed)
    rng.shuffle(base)
    # pages set aside for the non-duplicates: they appear only inside the shared boilerplate
    wrapped, base = base[:200], base[200:]
    texts, planted = list(base), []
    for i in rng.sample(range(len(base)), min(copies, len(base))):
        original = base[i]
        tokens = original.split()
        kind = rng.randrange(3)
        if kind == 0:
            for _ in range(max(1, len(tokens) // 50)):
                tokens[rng.randrange(len(tokens))] = rng.choice(["changed", "edited", "new"])
            copy = " ".join(tokens)
        elif kind == 1:
            copy = original + "\n\nCopyright 2026 Example Mirror. All rights reserved. Hosted by Example."
        else:
            paragraphs = original.split("\n")
            copy = "\n".join(paragraphs[1:]) if len(paragraphs) > 3 else original + " (mirror)"
        if jaccard(shingle_set(original), shingle_set(copy)) >= 0.8:
            planted.append(len(texts))
            texts.append(copy)
    non_duplicates = []
    for body in wrapped:
        non_duplicates.append(len(texts))
        texts.append(BOILERPLATE + "\n" + body[:1500] + "\n" + BOILERPLATE)
    return texts, planted, non_duplicates


def run_crawlmix(texts: list[str]) -> dict:
    from crawlmix.dedup.minhash import PRESETS, fuzzy_groups

    started = time.perf_counter()
    groups = fuzzy_groups(texts, PRESETS["fineweb"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "groups": groups.tolist()}


def run_datatrove(texts: list[str]) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8,
                           hash_config=HashConfig(precision=64, hash_fc="sha1"))
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        (folder / "in").mkdir()
        with open(folder / "in" / "docs.jsonl", "w", encoding="utf-8") as out:
            for i, text in enumerate(texts):
                out.write(json.dumps({"id": str(i), "text": text}) + "\n")
        started = time.perf_counter()
        steps = [
            ([JsonlReader(str(folder / "in")), MinhashDedupSignature(str(folder / "sigs"), config=config)], 1),
            ([MinhashDedupBuckets(str(folder / "sigs"), str(folder / "buckets"), config=config)], config.num_buckets),
            ([MinhashDedupCluster(str(folder / "buckets"), str(folder / "remove"), config=config, save_cluster_id=True)], 1),
            ([JsonlReader(str(folder / "in")),
              MinhashDedupFilter(str(folder / "remove"), exclusion_writer=JsonlWriter(str(folder / "removed")),
                                 load_cluster_ids=True),
              JsonlWriter(str(folder / "kept"))], 1),
        ]
        for i, (pipeline, tasks) in enumerate(steps):
            LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=str(folder / f"logs{i}")).run()
        seconds = time.perf_counter() - started
        groups = list(range(len(texts)))
        cluster_first: dict = {}
        for name in ("kept", "removed"):
            for path in sorted((folder / name).glob("*.jsonl.gz")):
                import gzip

                for line in gzip.open(path, "rt", encoding="utf-8"):
                    doc = json.loads(line)
                    cluster = doc.get("metadata", {}).get("minhash_cluster_id", -1)
                    if cluster is not None and cluster != -1:
                        cluster_first.setdefault(cluster, []).append(int(doc["id"]))
        for members in cluster_first.values():
            for member in members:
                groups[member] = min(members)
    return {"seconds": seconds, "groups": groups}


def worker(method: str, corpus_file: str) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = json.loads(Path(corpus_file).read_text())["texts"]
    result = run_crawlmix(texts) if method == "crawlmix" else run_datatrove(texts)
    print("RESULT " + json.dumps(result))


def judge(texts, groups, planted, non_duplicates) -> dict:
    removed = [i for i, g in enumerate(groups) if g != i]
    shingles: dict[int, set] = {}

    def sh(i):
        if i not in shingles:
            shingles[i] = shingle_set(texts[i])
        return shingles[i]

    correct = sum(jaccard(sh(i), sh(groups[i])) >= 0.8 for i in removed)
    return {"removed": len(removed), "recall": sum(groups[i] != i for i in planted) / max(len(planted), 1),
            "precision": correct / max(len(removed), 1),
            "non_duplicates_removed": sum(groups[i] != i for i in non_duplicates), "removed_ids": removed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path)
    parser.add_argument("--copies", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=("crawlmix", "datatrove"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.corpus_file)
        return 0
    texts, planted, non_duplicates = build_corpus(args.corpora, args.copies, args.seed)
    log(f"{len(texts)} documents: {len(texts) - len(planted) - len(non_duplicates)} real pages, "
        f"{len(planted)} planted near-duplicates (5-gram Jaccard >= 0.8), {len(non_duplicates)} planted "
        "non-duplicates sharing 150 words of boilerplate")
    results = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"texts": texts}, handle)
    for method in ("crawlmix", "datatrove"):
        proc = subprocess.Popen([sys.executable, __file__, "--worker", method, "--corpus-file", handle.name],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        if status != 0:
            raise SystemExit(f"{method} run failed (exit status {status})")
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        run = json.loads(line[len("RESULT "):])
        verdict = judge(texts, run["groups"], planted, non_duplicates)
        results[method] = {"docs_per_second": len(texts) / run["seconds"], "seconds": run["seconds"],
                           "peak_rss_mb": usage.ru_maxrss / 1024, **verdict}
        log(f"{method:10s} {results[method]['docs_per_second']:8,.0f} docs/s (one core)  "
            f"peak RSS {results[method]['peak_rss_mb']:6.0f} MB  removed {verdict['removed']:5d}  "
            f"recall {verdict['recall']:.3f}  precision {verdict['precision']:.3f}  "
            f"non-duplicates removed {verdict['non_duplicates_removed']}")
    os.unlink(handle.name)
    ours, theirs = set(results["crawlmix"]["removed_ids"]), set(results["datatrove"]["removed_ids"])
    agreement = len(ours & theirs) / max(len(ours | theirs), 1)
    speed = results["crawlmix"]["docs_per_second"] / results["datatrove"]["docs_per_second"]
    log(f"agreement of the removed sets (Jaccard): {agreement:.3f}; crawlmix speed x{speed:.2f} of datatrove")
    if args.json:
        args.json.write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "removed_ids"}
                                         for k, v in results.items()} | {"agreement": agreement}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
