"""Benchmark decontamination: documents sharing a long word n-gram with an evaluation item.

An evaluation set is a JSONL or Parquet file whose items have one or more text fields; an item's
text is its fields joined by spaces. Words are the runs of letters and digits of the NFKC-folded,
lower-cased text, so re-wrapped lines, changed case and punctuation do not hide a copy. Every run of
``n`` consecutive words (13 by default, as in GPT-3's and Llama 2's contamination studies) of every
item is hashed to 64 bits (blake2b of each word, combined polynomially); the index is the sorted,
de-duplicated array of those hashes: 8 bytes per distinct n-gram, so a 10M-word evaluation suite
needs at most 80 MB, and one built index serves every document. A document is contaminated when
any of its n-grams is in the index (a false match needs a 64-bit collision). Items shorter than
``n`` words cannot share an n-gram and are counted as unchecked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crawlmix.ngrams import WordHashes, ngram_hashes, words

__all__ = ["EvalSetIndex", "build_index", "item_texts", "set_version"]


def item_texts(path: str, fields: Sequence[str]) -> list[str]:
    """Each item's named fields joined by spaces, from a JSONL or Parquet file."""
    file = Path(path)
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(file, columns=list(fields))
        columns = [table.column(f).to_pylist() for f in fields]
        rows = zip(*columns)
    else:
        rows = []
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                missing = [f for f in fields if f not in record]
                if missing:
                    raise ValueError(f"{path}: line {number} has no field(s) {missing}")
                rows.append(tuple(record[f] for f in fields))
    return [" ".join(_as_text(v) for v in row if v is not None) for row in rows]


def _as_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_as_text(v) for v in value if v is not None)
    return str(value)


@dataclass
class EvalSetIndex:
    name: str
    version: str  # digest of the file, the fields and n
    n: int
    hashes: np.ndarray  # sorted unique uint64
    items: int
    unchecked_items: int  # shorter than n words

    def contains_any(self, text: str, word_hashes: WordHashes | None = None) -> bool:
        grams = ngram_hashes(words(text), self.n, word_hashes)
        if not len(grams) or not len(self.hashes):
            return False
        pos = np.searchsorted(self.hashes, grams)
        pos[pos == len(self.hashes)] = 0
        return bool((self.hashes[pos] == grams).any())


def set_version(path: str, fields: Sequence[str], n: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps({"fields": list(fields), "n": n}).encode())
    return digest.hexdigest()[:16]


def build_index(name: str, texts: Iterable[str], n: int, version: str) -> EvalSetIndex:
    word_hashes = WordHashes()
    parts, items, unchecked = [], 0, 0
    for text in texts:
        items += 1
        grams = ngram_hashes(words(text), n, word_hashes)
        if not len(grams):
            unchecked += 1
        parts.append(grams)
    hashes = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)
    return EvalSetIndex(name, version, n, hashes, items, unchecked)
