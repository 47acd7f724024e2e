"""Tokenization and length-bucketed batching (numpy + the Rust ``tokenizers`` library only).

Everything here is cheap to import and picklable, so tokenization can run in worker processes
that never import torch.

Exactness: the result equals the Hugging Face tokenizer with ``truncation=True,
max_length=max_tokens`` (what ``SentenceTransformer.encode`` does), but long texts are first cut
to ``char_factor * max_tokens`` characters so a 100 kB page is not tokenized in full. The cut is
checked: when the prefix did not yield enough tokens, or the word split by the cut reaches into
the kept tokens, the text is re-tokenized from a longer prefix (ultimately the whole text).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "TextTokenizer",
    "PreparedBatch",
    "plan_batches",
    "collate",
    "prepare_batches",
    "DEFAULT_CHAR_FACTOR",
]

# Web text averages ~4-5 characters per BERT token; code and markup fewer. 6x leaves room for
# nearly all text and the exactness check handles the rest.
DEFAULT_CHAR_FACTOR = 6


@dataclass
class PreparedBatch:
    """One padded batch: ``rows`` index into the window of texts it was built from."""

    rows: np.ndarray  # int64 [B]
    ids: np.ndarray  # int32 [B, L], right-padded with the pad id
    lengths: np.ndarray  # int32 [B], tokens incl. special tokens

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.ids.shape)  # type: ignore[return-value]

    def attention_mask(self, dtype=np.int64) -> np.ndarray:
        return (np.arange(self.ids.shape[1])[None, :] < self.lengths[:, None]).astype(dtype)


class TextTokenizer:
    """A fast (Rust) tokenizer loaded from ``tokenizer.json`` with exact, bounded-cost truncation."""

    def __init__(self, tokenizer_json: str, max_tokens: int, char_factor: int = DEFAULT_CHAR_FACTOR):
        from tokenizers import Tokenizer

        self.tokenizer_json = str(tokenizer_json)
        self.max_tokens = int(max_tokens)
        self.char_factor = int(char_factor)
        self._tok = Tokenizer.from_file(self.tokenizer_json)
        self._tok.no_padding()
        self._tok.no_truncation()
        probe = self._tok.encode("a")
        mask = probe.special_tokens_mask
        self.n_prefix = next((i for i, m in enumerate(mask) if not m), len(mask))
        self.n_suffix = len(mask) - 1 - max((i for i, m in enumerate(mask) if not m), default=-1)
        if self.max_tokens <= self.n_prefix + self.n_suffix:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text after special tokens")
        self.keep = self.max_tokens - self.n_prefix - self.n_suffix  # content tokens kept
        pad = self._tok.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else int(pad)
        self.max_chars = self.char_factor * self.max_tokens
        self.retokenized = 0  # texts whose character cut had to be widened (observability)

    def __getstate__(self):
        return {"tokenizer_json": self.tokenizer_json, "max_tokens": self.max_tokens, "char_factor": self.char_factor}

    def __setstate__(self, state):
        self.__init__(**state)

    def _truncate(self, enc, cut: bool) -> list[int] | None:
        """Token ids of ``enc`` truncated to max_tokens, or None when the character cut was too short."""
        ids = enc.ids
        n = len(ids)
        content = n - self.n_prefix - self.n_suffix
        if content <= self.keep:
            return None if cut else ids
        if cut:
            words = enc.word_ids
            last_kept = words[self.n_prefix + self.keep - 1]
            last_word = words[n - self.n_suffix - 1]
            if last_kept is not None and last_kept == last_word:
                return None  # the word split by the cut reaches into the kept tokens
        return ids[: self.n_prefix + self.keep] + (ids[n - self.n_suffix :] if self.n_suffix else [])

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids (int32, with special tokens, truncated to ``max_tokens``) for each text."""
        limit = self.max_chars
        prepared = []
        cut = []
        for text in texts:
            if not isinstance(text, str):
                text = "" if text is None else str(text)
            if len(text) > limit:
                prepared.append(text[:limit])
                cut.append(True)
            else:
                prepared.append(text)
                cut.append(False)
        encs = self._tok.encode_batch(prepared, add_special_tokens=True)
        out: list[np.ndarray | None] = []
        redo: list[int] = []
        for i, enc in enumerate(encs):
            ids = self._truncate(enc, cut[i])
            if ids is None:
                redo.append(i)
                out.append(None)
            else:
                out.append(np.asarray(ids, dtype=np.int32))
        factor = 4
        while redo:  # rare: widen the character cut until the prefix is provably long enough
            self.retokenized += len(redo)
            limit2 = limit * factor
            texts2, cut2 = [], []
            for i in redo:
                full = texts[i] if isinstance(texts[i], str) else str(texts[i])
                if len(full) > limit2:
                    texts2.append(full[:limit2])
                    cut2.append(True)
                else:
                    texts2.append(full)
                    cut2.append(False)
            encs2 = self._tok.encode_batch(texts2, add_special_tokens=True)
            still = []
            for i, enc, c in zip(redo, encs2, cut2):
                ids = self._truncate(enc, c)
                if ids is None:
                    still.append(i)
                else:
                    out[i] = np.asarray(ids, dtype=np.int32)
            redo = still
            factor *= 4
        return out  # type: ignore[return-value]


def plan_batches(lengths: np.ndarray, token_budget: int, max_batch: int, pad_multiple: int = 1) -> list[np.ndarray]:
    """Length-bucketed batches: rows sorted by token length (longest first, ties by position),
    cut so that ``rows x padded length <= token_budget`` and ``rows <= max_batch``.

    Deterministic for given lengths; each batch holds its rows in sorted order.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    if n == 0:
        return []
    order = np.argsort(-lengths, kind="stable")
    batches = []
    start = 0
    while start < n:
        longest = int(lengths[order[start]])
        padded = -(-max(longest, 1) // pad_multiple) * pad_multiple
        size = max(1, min(int(max_batch), int(token_budget) // padded, n - start))
        batches.append(order[start : start + size])
        start += size
    return batches


def collate(token_ids: Sequence[np.ndarray], rows: np.ndarray, pad_id: int = 0, pad_multiple: int = 1) -> PreparedBatch:
    """Right-pad the chosen rows into one int32 matrix."""
    lengths = np.fromiter((len(token_ids[r]) for r in rows), dtype=np.int32, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    width = -(-max(width, 1) // pad_multiple) * pad_multiple
    ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    for j, r in enumerate(rows):
        seq = token_ids[r]
        ids[j, : len(seq)] = seq
    return PreparedBatch(rows=np.asarray(rows, dtype=np.int64), ids=ids, lengths=lengths)


def prepare_batches(
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    token_budget: int,
    max_batch: int,
    pad_multiple: int = 1,
) -> list[PreparedBatch]:
    """Tokenize ``texts`` and cut them into padded, length-bucketed batches (rows refer to ``texts``)."""
    token_ids = tokenizer.encode(texts)
    lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
    plan = plan_batches(lengths, token_budget, max_batch, pad_multiple)
    return [collate(token_ids, rows, tokenizer.pad_id, pad_multiple) for rows in plan]


# --- worker-process side ----------------------------------------------------------------------

_WORKER_TOKENIZER: TextTokenizer | None = None


def _worker_init(tokenizer_json: str, max_tokens: int, char_factor: int) -> None:
    """Initializer for tokenization worker processes: one tokenizer per process, single-threaded
    (parallelism comes from the processes, not from the tokenizer's own thread pool)."""
    global _WORKER_TOKENIZER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER_TOKENIZER = TextTokenizer(tokenizer_json, max_tokens, char_factor)


def _worker_prepare(texts: list[str], token_budget: int, max_batch: int, pad_multiple: int) -> list[PreparedBatch]:
    assert _WORKER_TOKENIZER is not None, "worker not initialised"
    return prepare_batches(_WORKER_TOKENIZER, texts, token_budget, max_batch, pad_multiple)
