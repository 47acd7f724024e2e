"""Texts in, float16 unit vectors out, in input order.

Each input sequence is cut into fixed windows (``model.window_docs`` texts, counted from the
start of that sequence); a window is tokenized, sorted by token length and cut into batches by a
token budget, so padding waste is small and batch composition depends only on the window's own
texts (never on what was embedded before: resumed runs give the same bytes).

With ``model.tokenize_workers > 0`` (the default on CUDA) windows are tokenized and padded in
worker processes, several windows ahead of the model, so the accelerator never waits on the
tokenizer; the main process only moves finished int32 batches to the device.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Iterable, Iterator, Sequence

import numpy as np

from crawlmix.embed.model import LoadedModel
from crawlmix.embed.tokenize import _worker_init, _worker_prepare, prepare_batches

__all__ = ["embed_texts", "embed_batches", "shutdown_workers"]


def embed_texts(model: LoadedModel, texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts``: float16 array [len(texts), model.dim] of unit rows, in input order."""
    if model.tokenize_workers > 0 and len(texts) > model.window_docs:
        return next(embed_batches(model, [texts]))
    return _embed_inline(model, texts)


def embed_batches(model: LoadedModel, texts_iter: Iterable[Sequence[str]]) -> Iterator[np.ndarray]:
    """Embed a stream of text sequences, yielding one float16 array per sequence, in order.

    Memory is bounded: at most a few windows of texts are read ahead of the model.
    """
    if model.tokenize_workers <= 0:
        for texts in texts_iter:
            yield _embed_inline(model, texts)
        return
    yield from _embed_with_workers(model, texts_iter)


def _embed_inline(model: LoadedModel, texts: Sequence[str]) -> np.ndarray:
    n = len(texts)
    out = np.empty((n, model.dim), dtype=np.float16)
    step = model.window_docs
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        window = texts[lo:hi]
        batches = prepare_batches(model.tokenizer, window, model.token_budget, model.max_batch, model.pad_multiple)
        model.embed_prepared(batches, out[lo:hi])
    return out


# --- tokenization worker processes --------------------------------------------------------------

_POOLS: dict[tuple, ProcessPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _pool_for(model: LoadedModel) -> ProcessPoolExecutor:
    tok = model.tokenizer
    key = (tok.tokenizer_json, tok.max_tokens, tok.char_factor, model.tokenize_workers)
    with _POOL_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            # spawn, not fork: the parent may hold CUDA state and tokenizer threads.
            pool = ProcessPoolExecutor(
                max_workers=model.tokenize_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(tok.tokenizer_json, tok.max_tokens, tok.char_factor),
            )
            _POOLS[key] = pool
        return pool


def shutdown_workers() -> None:
    """Stop the tokenization worker processes (they are restarted on demand)."""
    with _POOL_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_workers)


def _windows(model: LoadedModel, texts_iter: Iterable[Sequence[str]]):
    step = model.window_docs
    for texts in texts_iter:
        n = len(texts)
        if n == 0:
            yield n, 0, 0, True, None
            continue
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            yield n, lo, hi, hi == n, list(texts[lo:hi])


def _embed_with_workers(model: LoadedModel, texts_iter: Iterable[Sequence[str]]) -> Iterator[np.ndarray]:
    pool = _pool_for(model)
    source = _windows(model, texts_iter)
    depth = 2 * model.tokenize_workers + 1
    inflight: deque = deque()

    def refill() -> None:
        while len(inflight) < depth:
            item = next(source, None)
            if item is None:
                return
            n, lo, hi, last, chunk = item
            future = None
            if chunk:
                future = pool.submit(_worker_prepare, chunk, model.token_budget, model.max_batch, model.pad_multiple)
            inflight.append((n, lo, hi, last, future))

    out = None
    try:
        refill()
        while inflight:
            n, lo, hi, last, future = inflight.popleft()
            refill()  # keep the workers busy while the model runs this window
            if out is None:
                out = np.empty((n, model.dim), dtype=np.float16)
            if future is not None:
                model.embed_prepared(future.result(), out[lo:hi])
            if last:
                result, out = out, None
                yield result
    finally:
        for *_, future in inflight:
            if future is not None:
                future.cancel()
