"""Embedding throughput: SentenceTransformer.encode vs crawlmix's path, same texts, one process.

    python benchmarks/embed.py [--docs N] [--max-tokens 256] [--device auto] [--st-batch-size 32]

Texts (mixed-length, web-like): the raw_corpus Parquet files under .crawlmix/storage/raw_corpus
when present, else text extracted from the sample WARCs under crawlmix/sample, else a synthetic
mix cut from local documentation (Python's own reference text and /usr/share/doc), lengths
log-normal around ~2,000 characters.

Figures (docs/s, wall clock; and docs per CPU-second, which is steadier on a shared machine):
  reference   SentenceTransformer.encode(batch_size=--st-batch-size, max_seq_length=--max-tokens)
  forward     the product's model on pre-tokenized, length-bucketed batches (the limit):
              forward + pooling + normalisation + copy back as float16
  product     end to end from texts: tokenize, bucket, forward, chunk files, final .npy + ids
and the mean / min cosine of the product's vectors to the reference's.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _from_raw_corpus(n: int) -> list[str]:
    import pyarrow.parquet as pq

    texts: list[str] = []
    for path in sorted(glob.glob(os.path.join(REPO, ".crawlmix", "storage", "raw_corpus", "**", "*.parquet"), recursive=True)):
        try:
            column = pq.read_table(path, columns=["text"]).column(0).to_pylist()
        except Exception:
            continue
        texts.extend(t for t in column if t)
        if len(texts) >= n:
            break
    return texts[:n]


def _from_sample_warcs(n: int) -> list[str]:
    files = sorted(glob.glob(os.path.join(REPO, "crawlmix", "sample", "**", "*.warc*"), recursive=True))
    if not files:
        return []
    try:
        from resiliparse.extract.html2text import extract_plain_text
        from warcio.archiveiterator import ArchiveIterator
    except ImportError:
        return []
    texts: list[str] = []
    for path in files:
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type != "response":
                    continue
                try:
                    html = record.content_stream().read().decode("utf-8", "replace")
                    text = extract_plain_text(html, main_content=True)
                except Exception:
                    continue
                if text and len(text) > 50:
                    texts.append(text)
                if len(texts) >= n:
                    return texts
    return texts


def _synthetic(n: int, seed: int) -> list[str]:
    parts = []
    try:
        import pydoc_data.topics as topics

        parts.extend(topics.topics[k] for k in sorted(topics.topics))
    except ImportError:
        pass
    for path in sorted(glob.glob("/usr/share/doc/**/*", recursive=True))[:4000]:
        if os.path.isfile(path) and not path.endswith((".gz", ".bz2", ".xz", ".png", ".jpg", ".svg")):
            try:
                with open(path, encoding="utf-8") as handle:
                    parts.append(handle.read(50_000))
            except (UnicodeDecodeError, OSError):
                continue
    source = "\n\n".join(parts)
    if len(source) < 100_000:
        raise SystemExit("no local text found to build a benchmark corpus")
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        length = int(min(20_000, max(40, rng.lognormvariate(math.log(2000), 1.0))))
        start = rng.randrange(0, len(source) - length)
        texts.append(source[start : start + length])
    return texts


def load_texts(n: int, seed: int) -> tuple[list[str], str]:
    for name, fn in (("raw_corpus parquet", _from_raw_corpus), ("sample WARCs", _from_sample_warcs)):
        texts = fn(n)
        if len(texts) >= min(n, 50):
            return texts[:n], name
    return _synthetic(n, seed), "synthetic mix from local documentation"


class Timer:
    def __enter__(self):
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cpu-backend", default="auto")
    parser.add_argument("--batch-size", type=int, default=256, help="product batch size (GPU)")
    parser.add_argument("--st-batch-size", type=int, default=32, help="SentenceTransformer.encode batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args(argv)

    from crawlmix.embed import EmbedderSpec, embed_shard_resumable, load_model
    from crawlmix.embed.device import cpu_threads, resolve_device
    from crawlmix.embed.model import model_path
    from crawlmix.embed.tokenize import prepare_batches

    texts, origin = load_texts(args.docs, args.seed)
    device, note = resolve_device(args.device)
    threads = cpu_threads()
    n = len(texts)
    chars = np.array([len(t) for t in texts])
    print(f"texts: {n} from {origin}; chars median {int(np.median(chars))}, mean {int(chars.mean())}, max {chars.max()}")
    print(f"device: {device}{' (' + note + ')' if note else ''}; threads {threads}; max_tokens {args.max_tokens}")

    with Timer() as t_load:
        model = load_model(EmbedderSpec(device=device, max_tokens=args.max_tokens, batch_size=args.batch_size,
                                        cpu_backend=args.cpu_backend))
    lengths = np.array([len(ids) for ids in model.tokenizer.encode(texts)])
    print(f"product: {model!r}, recipe {model.versions()['recipe']}, load {t_load.wall:.1f}s; tokens/doc mean "
          f"{lengths.mean():.0f}, {100 * (lengths >= args.max_tokens).mean():.0f}% truncated")
    rows = []

    reference = None
    if not args.skip_reference:
        import torch
        from sentence_transformers import SentenceTransformer

        if device == "cpu":
            torch.set_num_threads(threads)
        st = SentenceTransformer(model_path(model.spec.model), device=device)
        st.max_seq_length = args.max_tokens
        st.encode(texts[:8], batch_size=args.st_batch_size)  # warm-up
        _sync(device)
        with Timer() as t_ref:
            reference = st.encode(texts, batch_size=args.st_batch_size, normalize_embeddings=True, convert_to_numpy=True)
            _sync(device)
        rows.append(("reference  SentenceTransformer.encode", t_ref))
        del st

    # forward alone: pre-tokenized, length-bucketed batches (tokenization outside the timer)
    batches = prepare_batches(model.tokenizer, texts, model.token_budget, model.max_batch, model.pad_multiple)
    out = np.empty((n, model.dim), dtype=np.float16)
    model.embed_prepared(batches[-1:], out)  # warm-up
    _sync(device)
    with Timer() as t_fwd:
        model.embed_prepared(batches, out)
        _sync(device)
        if device.startswith("cuda"):
            with tempfile.TemporaryDirectory() as tmp:
                np.save(os.path.join(tmp, "e.npy"), out)
    label = "forward    pre-tokenized batches" + (" (+ .npy write: GPU part)" if device.startswith("cuda") else "")
    rows.append((label, t_fwd))

    # the product: end to end from texts to the final .npy + ids
    ids = [f"doc-{i}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        with Timer() as t_prod:
            embed_shard_resumable(model, lambda a, b: texts[a:b], n, ids, os.path.join(tmp, "work"),
                                  os.path.join(tmp, "e.npy"), os.path.join(tmp, "e.ids.parquet"))
        vectors = np.load(os.path.join(tmp, "e.npy")).astype(np.float32)
    rows.append(("product    texts -> .npy (end to end)", t_prod))

    print()
    print(f"{'path':45s} {'docs/s':>9s} {'docs/cpu-s':>11s} {'seconds':>8s}")
    for name, t in rows:
        print(f"{name:45s} {n / t.wall:9.1f} {n / max(t.cpu, 1e-9):11.2f} {t.wall:8.1f}")
    if reference is not None:
        ref_t = rows[0][1]
        print()
        for name, t in rows[1:]:
            print(f"ratio {name.split()[0]:10s} / reference: {ref_t.wall / t.wall:.2f}x wall, {ref_t.cpu / t.cpu:.2f}x cpu")
        cos = (vectors * reference.astype(np.float32)).sum(axis=1)
        print(f"cosine product vs reference: mean {cos.mean():.5f}, min {cos.min():.5f}, p1 {np.percentile(cos, 1):.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
