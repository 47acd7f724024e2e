"""Training-ready exports of a mixture: Megatron-LM / NeMo indexed dataset and a Hugging Face
``datasets`` folder.

Both hold one entry per copy of a document (a document selected with ``repeats: 2`` is there twice),
in one fixed order: the copies shuffled with the spec's seed, so the same spec gives the same files.

* Megatron (``<prefix>.bin`` + ``<prefix>.idx``, the ``MMIDIDX`` format that megatron-core's
  ``IndexedDataset`` reads): one sequence per document copy, the token ids of its text followed by
  the tokenizer's end-of-document token when it has one; every sequence is its own document, so
  document boundaries are exact. Ids are uint16 when the vocabulary has fewer than 65,500 entries,
  else int32 (Megatron's own rule).
* Hugging Face (``datasets.Dataset.save_to_disk``): columns ``doc_id``, ``text`` and the document's
  metadata, ``load_from_disk`` reads it back.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["END_OF_DOCUMENT_TOKENS", "end_of_document_id", "training_order", "write_hf_dataset", "write_megatron"]

_HEADER = b"MMIDIDX\x00\x00"
_DTYPE_CODES = {np.dtype(np.int32): 4, np.dtype(np.uint16): 8}
END_OF_DOCUMENT_TOKENS = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]")


def training_order(repeats: Sequence[int], seed: int) -> np.ndarray:
    """Row index of every copy (a row with ``repeats`` r appears r times), shuffled with ``seed``."""
    rows = np.repeat(np.arange(len(repeats)), np.asarray(repeats, dtype=np.int64))
    return np.random.default_rng(seed).permutation(rows)


def end_of_document_id(tokenizer) -> tuple[int | None, str | None]:
    for token in END_OF_DOCUMENT_TOKENS:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id, token
    return None, None


def write_megatron(bin_path: str | Path, idx_path: str | Path, sequences: Sequence[np.ndarray], vocab_size: int) -> dict:
    """Write the sequences (token ids) as one indexed dataset; returns counts for the card."""
    dtype = np.dtype(np.uint16 if vocab_size < 65_500 else np.int32)
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int32)
    with open(bin_path, "wb") as out:
        for sequence in sequences:
            out.write(np.asarray(sequence, dtype=dtype).tobytes(order="C"))
    pointers = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths):
        pointers[1:] = np.cumsum(lengths[:-1], dtype=np.int64) * dtype.itemsize
    documents = np.arange(len(lengths) + 1, dtype=np.int64)  # one sequence per document
    with open(idx_path, "wb") as out:
        out.write(_HEADER)
        out.write(struct.pack("<Q", 1))
        out.write(struct.pack("<B", _DTYPE_CODES[dtype]))
        out.write(struct.pack("<Q", len(lengths)))
        out.write(struct.pack("<Q", len(documents)))
        out.write(lengths.tobytes(order="C"))
        out.write(pointers.tobytes(order="C"))
        out.write(documents.tobytes(order="C"))
    return {"sequences": int(len(lengths)), "tokens": int(lengths.sum()), "dtype": dtype.name}


def write_hf_dataset(folder: str | Path, frame: pd.DataFrame) -> list[Path]:
    """``frame`` (one row per copy, in order) saved with ``datasets``; returns the files written."""
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()  # a step's log, not a terminal
    Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False).save_to_disk(str(folder))
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())
