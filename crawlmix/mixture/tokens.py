"""Exact token counts and ids with a Hugging Face ``tokenizers`` tokenizer (a local tokenizer.json).

A spec names a ``tokenizer``: a ``tokenizer.json`` file or a folder holding one (a model folder).
Counting uses the Rust batch API (``encode_batch``, its own thread pool), without the special tokens
a model adds around a sequence and without the truncation or padding a model's file may configure:
the count is the document's own tokens. Without a tokenizer, tokens are the approximate count
(characters / 4), and the data card says so.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["TokenizerRef", "count_tokens", "encode", "load_tokenizer", "prefix_chars", "resolve_tokenizer"]

BATCH = 512


@dataclass(frozen=True)
class TokenizerRef:
    path: str  # the tokenizer.json file
    digest: str  # sha256 of its bytes, first 16 hex digits

    def describe(self) -> str:
        return f"{self.path} (sha256 {self.digest})"


def resolve_tokenizer(path: str) -> TokenizerRef:
    """The tokenizer.json a spec names (a file, or a folder holding one)."""
    file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"no tokenizer.json at {path}")
    with open(file, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:16]
    return TokenizerRef(os.path.abspath(file), digest)


@lru_cache(maxsize=4)
def load_tokenizer(ref: TokenizerRef):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(ref.path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def encode(ref: TokenizerRef, texts: Sequence[str | None]) -> list[np.ndarray]:
    """Token ids of each text (its own tokens only), in order."""
    tokenizer = load_tokenizer(ref)
    out: list[np.ndarray] = []
    for start in range(0, len(texts), BATCH):
        batch = [t or "" for t in texts[start: start + BATCH]]
        out += [np.asarray(e.ids, dtype=np.int64) for e in tokenizer.encode_batch(batch, add_special_tokens=False)]
    return out


def count_tokens(ref: TokenizerRef, texts: Sequence[str | None]) -> np.ndarray:
    tokenizer = load_tokenizer(ref)
    counts = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), BATCH):
        batch = [t or "" for t in texts[start: start + BATCH]]
        counts[start: start + len(batch)] = [len(e.ids) for e in tokenizer.encode_batch(batch, add_special_tokens=False)]
    return counts


def prefix_chars(ref: TokenizerRef, text: str, n_tokens: int) -> int:
    """How many characters of ``text`` its first ``n_tokens`` tokens cover."""
    if n_tokens <= 0:
        return 0
    encoding = load_tokenizer(ref).encode(text, add_special_tokens=False)
    if n_tokens >= len(encoding.offsets):
        return len(text)
    return int(encoding.offsets[n_tokens - 1][1])
