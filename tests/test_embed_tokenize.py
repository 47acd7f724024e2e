"""Tokenization is exact (same ids as the tokenizer's own truncation) and batching is sound."""

import os
import random

import numpy as np
import pytest

from crawlmix.embed.model import model_path
from crawlmix.embed.tokenize import TextTokenizer, collate, plan_batches, prepare_batches


@pytest.fixture(scope="module")
def tok_json():
    return os.path.join(model_path("bundled:all-MiniLM-L6-v2"), "tokenizer.json")


def _reference_ids(tok_json, texts, max_tokens):
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(tok_json)
    ref.no_padding()
    ref.enable_truncation(max_length=max_tokens)
    return [e.ids for e in ref.encode_batch([t if isinstance(t, str) else "" for t in texts])]


def _tricky_texts():
    rng = random.Random(3)
    words = ["crawl", "snapshot", "données", "über", "naïve", "https://example.com/a/b?c=d", "—", "東京", "x" * 40]
    texts = ["", "a", "Hello, world!", "   spaced   out   ", None]
    for n in (10, 200, 255, 256, 257, 400, 3000):
        texts.append(" ".join(rng.choice(words) for _ in range(n)))
    texts.append("y" * 5000)  # one enormous word: the cut lands inside it
    texts.append("z" * 1530 + " tail words after the cut " * 50)
    texts.append(("word " + " " * 40) * 200)  # whitespace-heavy: 6 chars/token is not enough
    texts.append("東京大学" * 700)  # CJK: one token per character
    texts.append("\n".join(f"line {i}: value={i * 3.14159:.5f}" for i in range(400)))
    return texts


@pytest.mark.parametrize("max_tokens", [16, 128, 256])
def test_ids_equal_the_tokenizers_own_truncation(tok_json, max_tokens):
    tok = TextTokenizer(tok_json, max_tokens=max_tokens)
    texts = _tricky_texts()
    got = tok.encode(texts)
    want = _reference_ids(tok_json, texts, max_tokens)
    assert [g.tolist() for g in got] == want
    assert all(g.dtype == np.int32 and len(g) <= max_tokens for g in got)
    assert tok.retokenized >= 1  # the whitespace-heavy text needed a wider cut


def test_tokenizer_pickles(tok_json):
    import pickle

    tok = TextTokenizer(tok_json, max_tokens=64)
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode(["pickled tokenizer"])[0].tolist() == tok.encode(["pickled tokenizer"])[0].tolist()


def test_plan_batches_budget_and_cover():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 257, size=1000)
    plan = plan_batches(lengths, token_budget=4096, max_batch=64)
    rows = np.concatenate(plan)
    assert sorted(rows.tolist()) == list(range(1000))
    for batch in plan:
        assert len(batch) <= 64
        assert len(batch) * lengths[batch].max() <= 4096 or len(batch) == 1
    maxima = [lengths[b].max() for b in plan]
    assert maxima == sorted(maxima, reverse=True)  # length-bucketed, longest first
    assert plan_batches(np.array([], dtype=np.int64), 100, 10) == []
    # pad_multiple rounds widths up and the budget counts the padded width
    for batch in plan_batches(lengths, 4096, 64, pad_multiple=8):
        assert len(batch) * (-(-lengths[batch].max() // 8) * 8) <= 4096


def test_collate_and_prepare(tok_json):
    tok = TextTokenizer(tok_json, max_tokens=32)
    texts = ["short", "a somewhat longer text with several words in it", "mid length text"]
    batches = prepare_batches(tok, texts, token_budget=10_000, max_batch=8, pad_multiple=8)
    assert len(batches) == 1
    pb = batches[0]
    assert pb.ids.shape[1] % 8 == 0 and pb.ids.dtype == np.int32
    ids = tok.encode(texts)
    for j, r in enumerate(pb.rows):
        assert pb.ids[j, : pb.lengths[j]].tolist() == ids[r].tolist()
        assert (pb.ids[j, pb.lengths[j] :] == tok.pad_id).all()
    mask = pb.attention_mask()
    assert mask.sum() == sum(len(i) for i in ids)
    single = collate(ids, np.array([1]), tok.pad_id)
    assert single.ids.shape == (1, len(ids[1]))
