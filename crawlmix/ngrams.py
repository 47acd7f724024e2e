"""Word n-grams as 64-bit hashes, the same in every process: shared by decontamination and
fuzzy deduplication.

Words are the runs of letters and digits of the NFKC-folded, lower-cased text, so line breaks,
case and punctuation do not change them. A word's hash is blake2b (8 bytes); an n-gram's is the
polynomial combination of its words' hashes (wrapping uint64 arithmetic, vectorized over a text).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["WordHashes", "ngram_hashes", "words"]

_WORD = re.compile(r"[^\W_]+")
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: a polynomial hash base


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


class WordHashes:
    """Stable 64-bit word hashes (the same in every process, unlike ``hash``), cached."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        cache = self._cache
        out = np.empty(len(tokens), dtype=np.uint64)
        for i, token in enumerate(tokens):
            h = cache.get(token)
            if h is None:
                h = cache[token] = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                if len(cache) > 2_000_000:
                    cache.clear()
            out[i] = h
        return out


def ngram_hashes(tokens: Sequence[str], n: int, word_hashes: WordHashes | None = None) -> np.ndarray:
    """Hashes of every run of ``n`` consecutive tokens (empty when there are fewer than ``n``)."""
    if len(tokens) < n:
        return np.empty(0, dtype=np.uint64)
    h = (word_hashes or WordHashes())(tokens)
    count = len(tokens) - n + 1
    out = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(n):
            out = out * _MULTIPLIER + h[i: i + count]
    return out
