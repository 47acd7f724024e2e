"""c-TF-IDF keywords (BERTopic's formula) and cluster names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crawlmix.cluster.naming import (
    TermCounter,
    cluster_name,
    cluster_names,
    ctfidf,
    ctfidf_keywords,
    ctfidf_keywords_by_level,
    tokenize,
)


def test_hand_computed_two_clusters():
    docs = {0: ["Apple apple banana.", "the apple"], 1: ["banana cherry", "Cherry, 2024!"]}
    # counts after tokenisation (lower case, 'the' and '2024' dropped):
    #   cluster 0: apple 3, banana 1           (4 words)
    #   cluster 1: banana 1, cherry 2          (3 words)
    # A = int((4 + 3) / 2) = 3; f: apple 3, banana 2, cherry 2
    # idf = log(1 + A / f): apple log 2, banana log 2.5, cherry log 2.5
    kw = ctfidf_keywords(docs)
    expected0 = [("apple", 3 / 4 * math.log(2.0)), ("banana", 1 / 4 * math.log(2.5))]
    expected1 = [("cherry", 2 / 3 * math.log(2.5)), ("banana", 1 / 3 * math.log(2.5))]
    for (w, x), (ew, ex) in zip(kw[0], expected0):
        assert w == ew and x == pytest.approx(ex, rel=1e-12)
    for (w, x), (ew, ex) in zip(kw[1], expected1):
        assert w == ew and x == pytest.approx(ex, rel=1e-12)
    assert len(kw[0]) == 2 and len(kw[1]) == 2
    assert cluster_name(0, kw[0]) == "0_apple_banana"
    assert cluster_names(kw, n_words=1) == {0: "0_apple", 1: "1_cherry"}
    # the (labels, texts) form gives the same
    labels = [0, 0, 1, 1]
    texts = docs[0] + docs[1]
    assert ctfidf_keywords((labels, texts)) == kw


def test_ctfidf_matrix_formula():
    X = np.array([[2, 1, 0], [0, 1, 1]])
    W = ctfidf(X).toarray()
    A = int(X.sum() / 2)
    idf = np.log(1 + A / X.sum(0))
    np.testing.assert_allclose(W, X / X.sum(1, keepdims=True) * idf)


def test_tokenizer():
    toks = tokenize("The Quick-brown fox's 42 jumps over 3d models, x_y and an AI in 2024; naïve café")
    assert toks == ["quick", "brown", "fox", "jumps", "models", "naïve", "café"]
    assert "ai" in tokenize("an AI model", min_len=2)
    assert tokenize("COVID19 covid") == ["covid19", "covid"]


def test_streaming_counts_match_one_shot_and_roundtrip():
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(300)]
    labels = rng.integers(0, 5, size=300).tolist()
    one = TermCounter().add(labels, texts)
    a = TermCounter().add(labels[:100], texts[:100])
    b = TermCounter().add(labels[100:], texts[100:])
    a.merge(b)
    shard = TermCounter().add(labels[:150], texts[:150]).add(labels[150:], texts[150:])
    assert one.keywords() == a.keywords() == shard.keywords()
    restored = TermCounter.from_arrays(a.to_arrays())
    assert restored.keywords() == one.keywords()
    assert restored.n_docs == 300
    pre = TermCounter().add_counts(7, {"alpha": 3, "beta": 1}).add_counts(8, {"beta": 2})
    assert [w for w, _ in pre.keywords()[7]] == ["alpha", "beta"]


def test_keywords_per_level_roll_up_the_tree_and_max_vocab():
    leaf_docs = {
        0: ["python code compiler"] * 3,
        1: ["python interpreter bytecode"] * 2,
        2: ["football goal referee"] * 3,
        3: ["tennis racket referee"] * 2,
    }
    tc = TermCounter().add_docs(leaf_docs)
    parents = [np.array([0, 0, 1, 1])]
    levels = ctfidf_keywords_by_level(tc, parents, top_n=3)
    assert set(levels[0]) == {0, 1, 2, 3} and set(levels[1]) == {0, 1}
    assert levels[1][0][0][0] == "python" and levels[1][1][0][0] == "referee"
    direct = ctfidf_keywords({0: leaf_docs[0] + leaf_docs[1], 1: leaf_docs[2] + leaf_docs[3]}, top_n=3)
    assert levels[1] == direct
    small = tc.keywords(max_vocab=2)  # two most frequent terms: python (5), referee (5)
    assert {w for kws in small.values() for w, _ in kws} == {"python", "referee"}
    assert all(len(v) <= 10 for v in tc.keywords().values())
