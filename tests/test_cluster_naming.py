"""Cluster names: c-TF-IDF over document frequencies, with the limits that keep names readable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crawlmix.cluster.naming import (
    NamingConfig,
    TermCounter,
    cluster_name,
    cluster_names,
    ctfidf,
    ctfidf_keywords,
    ctfidf_keywords_by_level,
    document_terms,
    name_coverage,
    tokenize,
)

PERMISSIVE = NamingConfig(min_share=0.0, min_lift=1.0, min_df=1, max_df_fraction=1.0)


def _words(keywords) -> list[str]:
    return [w for w, _ in keywords]


def test_hand_computed_document_frequencies():
    docs = {0: ["Apple apple banana.", "the apple"], 1: ["banana cherry", "Cherry, 2024!"]}
    # document frequencies (a word once per document; 'the' and '2024' dropped):
    #   cluster 0: apple 2, banana 1   (row sum 3)      cluster 1: banana 1, cherry 2   (row sum 3)
    # A = int((3 + 3) / 2) = 3; f: apple 2, banana 2, cherry 2; idf = log(1 + 3 / 2) for each
    kw = ctfidf_keywords(docs, config=PERMISSIVE)
    idf = math.log(2.5)
    assert kw[0] == [("apple", pytest.approx(2 / 3 * idf)), ("banana", pytest.approx(1 / 3 * idf))]
    assert kw[1] == [("cherry", pytest.approx(2 / 3 * idf)), ("banana", pytest.approx(1 / 3 * idf))]
    assert cluster_name(0, kw[0]) == "0_apple_banana"
    assert cluster_names(kw, n_words=1) == {0: "0_apple", 1: "1_cherry"}
    labels = [0, 0, 1, 1]
    assert ctfidf_keywords((labels, docs[0] + docs[1]), config=PERMISSIVE) == kw


def test_ctfidf_matrix_formula():
    X = np.array([[2, 1, 0], [0, 1, 1]])
    W = ctfidf(X).toarray()
    A = int(X.sum() / 2)
    idf = np.log(1 + A / X.sum(0))
    np.testing.assert_allclose(W, X / X.sum(1, keepdims=True) * idf)


def test_tokenizer_and_document_terms():
    toks = tokenize("The Quick-brown fox's 42 jumps over 3d models, x_y and an AI in 2024; naïve café")
    assert toks == ["quick", "brown", "fox", "jumps", "models", "naïve", "café"]
    assert "ai" in tokenize("an AI model", min_len=2)
    terms = document_terms("getValue returns the cluster_labels of x264 and an extraordinarilylongword, "
                           "labels again, plain words")
    assert terms["getvalue"] is False and terms["x264"] is False and terms["extraordinarilylongword"] is False
    assert terms["labels"] is True  # plain once is enough
    assert terms["cluster"] is False and terms["plain"] is True
    assert "the" not in terms and "and" not in terms


def test_a_word_repeated_on_one_page_counts_once():
    texts = ["zx81 " * 200 + "retro computer emulator"] + ["retro computer emulator for games"] * 9
    texts += ["garden flowers soil"] * 10
    kw = ctfidf_keywords(([0] * 10 + [1] * 10, texts))
    assert "zx81" not in _words(kw[0])[:3]
    assert set(_words(kw[0])[:3]) <= {"retro", "computer", "emulator", "games"}


def test_words_in_nearly_every_document_or_in_very_few_do_not_name_a_cluster():
    texts, labels = [], []
    for i in range(30):
        topic = ["python interpreter bytecode", "violin orchestra concert", "glacier ice climate"][i % 3]
        extra = " kowalczyk" if i == 0 else ""
        texts.append(f"package documentation {topic}{extra}")
        labels.append(i % 3)
    kw = ctfidf_keywords((labels, texts))
    for cluster in range(3):
        assert not {"package", "documentation", "kowalczyk"} & set(_words(kw[cluster])[:3])
    assert _words(kw[0])[:3] == ["bytecode", "interpreter", "python"]


def test_a_name_word_is_in_a_fair_share_of_the_cluster_and_rarer_outside_it():
    # 'zebra' is in 2 of 40 documents (5%): very distinctive, but it names few of them;
    # 'note' is in half the documents of every cluster: common, but it tells no cluster apart
    topics = ["database query records", "music guitar chord", "garden soil compost", "weather rain storm"]
    texts, labels = [], []
    for cluster, topic in enumerate(topics):
        for i in range(40):
            extra = " zebra" if cluster == 0 and i < 2 else ""
            texts.append(topic + extra + (" note" if i % 2 else ""))
            labels.append(cluster)
    kw = ctfidf_keywords((labels, texts))
    assert sorted(_words(kw[0])[:3]) == ["database", "query", "records"]
    for cluster in range(4):
        assert "note" not in _words(kw[cluster])[:3]
    assert _words(kw[0]).index("note") > _words(kw[0]).index("records")


def test_identifier_like_and_navigation_words_are_demoted_not_dropped():
    texts = ["getElementById x86_64 Prev Next Contents network socket"] * 10 + ["garden flowers soil"] * 10
    kw = ctfidf_keywords(([0] * 10 + [1] * 10, texts))
    assert _words(kw[0])[:2] == ["network", "socket"]
    assert {"getelementbyid", "prev"} <= set(_words(kw[0]))  # still keywords, after the plain ones
    only_code = ctfidf_keywords(([0] * 5 + [1] * 5, ["fooBar bazQux"] * 5 + ["garden flowers"] * 5))
    assert _words(only_code[0]) == ["bazqux", "foobar"]  # no plain word: identifiers name it


def test_stop_words_of_other_languages_and_plural_twins_stay_out_of_names():
    texts = ["die Katzen und nicht die Hunde avec les chats"] * 6 + ["garden flowers soil"] * 6
    words = set(_words(ctfidf_keywords(([0] * 6 + [1] * 6, texts))[0]))
    assert not {"die", "und", "nicht", "avec", "les"} & words and {"katzen", "hunde", "chats"} <= words
    kw = ctfidf_keywords(([0] * 6 + [1] * 6, ["font fonts typeface"] * 6 + ["garden soil"] * 6))
    assert sorted(_words(kw[0])) in (["font", "typeface"], ["fonts", "typeface"])


def test_streaming_counts_match_one_shot_and_roundtrip():
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "getValue", "x264"]
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


def test_upper_levels_are_named_from_their_member_documents():
    leaf_docs = {
        0: ["python code compiler"] * 3,
        1: ["python interpreter bytecode"] * 2,
        2: ["football goal referee"] * 3,
        3: ["tennis racket referee"] * 2,
    }
    tc = TermCounter().add_docs(leaf_docs)
    levels = ctfidf_keywords_by_level(tc, [np.array([0, 0, 1, 1])], top_n=3)
    assert set(levels[0]) == {0, 1, 2, 3} and set(levels[1]) == {0, 1}
    assert levels[1][0][0][0] == "python" and levels[1][1][0][0] == "referee"
    direct = ctfidf_keywords({0: leaf_docs[0] + leaf_docs[1], 1: leaf_docs[2] + leaf_docs[3]}, top_n=3)
    assert levels[1] == direct


def test_name_coverage_is_the_share_of_documents_holding_a_name_word():
    texts = ["kernel driver", "kernel module", "usb device", "violin", "violin bow", "cello"]
    labels = [0, 0, 0, 1, 1, 1]
    keywords = {0: [("kernel", 1.0)], 1: [("violin", 1.0), ("bow", 0.5)]}
    assert name_coverage(labels, texts, keywords) == pytest.approx(4 / 6)
    assert name_coverage(labels, texts, keywords, n_words=1) == pytest.approx(4 / 6)
    assert math.isnan(name_coverage([], [], keywords))


def test_config_is_validated():
    with pytest.raises(ValueError, match="min_share"):
        NamingConfig(min_share=1.5)
    with pytest.raises(ValueError, match="min_lift"):
        NamingConfig(min_lift=0.5)
    with pytest.raises(ValueError, match="min_df"):
        NamingConfig(min_df=0)


def test_names_of_real_documentation_pages_grouped_by_package():
    """The bundled sample's pages, one cluster per Debian package: names use the packages' own
    topic words, never site navigation, and name most documents of their cluster."""
    from crawlmix.cluster.stopwords import NAVIGATION_WORDS
    from tests.sample_pages import sample_documents

    documents = sample_documents()
    texts = [d.text for d in documents]
    packages = [d.url.split("/")[3] for d in documents]
    names = sorted(set(packages))
    labels = [names.index(p) for p in packages]
    keywords = {names[c]: kws for c, kws in ctfidf_keywords((labels, texts)).items()}
    first = {package: _words(kws)[:3] for package, kws in keywords.items()}
    for package, word in [("apache2-doc", "apache"), ("git-doc", "git"), ("octave-doc", "octave"),
                          ("python3.11-doc", "python"), ("debian-handbook", "debian")]:
        assert word in first[package], first
    assert {"sql", "database"} & set(first["postgresql-doc-15"]), first
    assert not NAVIGATION_WORDS & {w for words in first.values() for w in words}, first
    assert name_coverage(labels, texts, {names.index(p): k for p, k in keywords.items()}) >= 0.8
