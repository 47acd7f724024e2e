"""Cluster names from the words a cluster's documents use (c-TF-IDF over document frequencies).

Counts: ``X[c, t]`` = how many documents of cluster c contain word t (a word counts once per
document, so a model number repeated 200 times on one long page weighs as much as any other word
of that page). Scores: BERTopic's class-based TF-IDF over X (rows L1-normalised, idf_t =
log(1 + A / f_t), A the mean row sum, f_t the column sum), then

* corpus frequency limits at both ends: a word in more than ``max_df_fraction`` of all documents
  (nearly every page) or in fewer than ``min_df`` documents (a name, a typo) is not a name word;
* a name word must be in at least ``min_share`` of the cluster's documents, so a name describes
  many of the documents it names rather than a few;
* and ``min_lift`` times more common in the cluster than in the corpus (capped at halfway to the
  most a cluster of that size allows): a word every kind of document uses ("package" in package
  descriptions) does not tell clusters apart, however common it is in one;
* identifier-like words (with digits, from camelCase or snake_case tokens, longer than
  ``max_plain_len``) and site navigation words ("prev", "contents", see ``stopwords``) are demoted
  by ``identifier_penalty``: they name a cluster only when no plain word does.

A word whose singular or plural is already a keyword of the cluster is skipped. Words failing a
limit are not dropped outright: they rank after every word that passes, so each
cluster still gets a name. Upper levels are scored from their member documents (leaf counts summed
up the tree: every document is in exactly one leaf, so the sums are exact document frequencies),
never from the leaf names.

Counting is separate from scoring so it can be done shard by shard: feed a :class:`TermCounter`
(``add(labels, texts)``), merge counters from several workers (``merge``), persist them
(``to_arrays``/``from_arrays``), roll leaf counts up a cluster tree (``rollup``), then score.
Tokens: runs of letters/digits; ``_`` splits a token (names stay parseable) and marks its parts as
identifier-like; stop words of every bundled language removed; at least ``min_len`` characters;
no pure numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from .stopwords import ALL_STOP_WORDS, ENGLISH_STOP_WORDS, NAVIGATION_WORDS

__all__ = [
    "ALL_STOP_WORDS",
    "ENGLISH_STOP_WORDS",
    "NamingConfig",
    "tokenize",
    "document_terms",
    "TermCounter",
    "ctfidf",
    "ctfidf_keywords",
    "ctfidf_keywords_by_level",
    "cluster_name",
    "cluster_names",
    "name_coverage",
]


@dataclass(frozen=True)
class NamingConfig:
    """How name words are chosen (module docstring)."""

    min_share: float = 0.1
    min_lift: float = 1.5
    min_df: int = 3
    max_df_fraction: float = 0.6
    identifier_penalty: float = 0.1
    max_plain_len: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.min_share <= 1 or not 0 < self.max_df_fraction <= 1:
            raise ValueError("min_share must be in [0, 1] and max_df_fraction in (0, 1]")
        if self.min_lift < 1:
            raise ValueError("min_lift must be >= 1")
        if self.min_df < 1 or not 0 <= self.identifier_penalty <= 1:
            raise ValueError("min_df must be >= 1 and identifier_penalty in [0, 1]")


_TOKEN = re.compile(r"\w+")
_CAMEL = re.compile(r"[a-z][A-Z]")


def _stop_set(stop_words: Iterable[str] | None) -> frozenset[str]:
    return stop_words if isinstance(stop_words, frozenset) else frozenset(stop_words or ())


def document_terms(
    text: str,
    *,
    min_len: int = 3,
    max_len: int = 40,
    max_plain_len: int = 16,
    stop_words: Iterable[str] | None = ALL_STOP_WORDS,
) -> dict[str, bool]:
    """The distinct words of ``text`` (lower-cased), each with whether it ever appears as a plain
    word: letters only, not part of a camelCase or snake_case token, at most ``max_plain_len`` long."""
    stop = _stop_set(stop_words)
    terms: dict[str, bool] = {}
    for raw in _TOKEN.findall(text):
        parts = [p for p in raw.split("_") if p]
        joined = len(parts) > 1 or _CAMEL.search(raw) is not None
        for part in parts:
            word = part.lower()
            if not min_len <= len(word) <= max_len or word.isdigit() or word in stop:
                continue
            plain = not joined and word.isalpha() and len(word) <= max_plain_len
            terms[word] = terms.get(word, False) or plain
    return terms


def tokenize(
    text: str,
    *,
    min_len: int = 3,
    max_len: int = 40,
    stop_words: Iterable[str] | None = ALL_STOP_WORDS,
) -> list[str]:
    """Lower-cased words in order (with repeats), as :func:`document_terms` keeps them."""
    stop = _stop_set(stop_words)
    return [
        w
        for raw in _TOKEN.findall(text.lower())
        for w in raw.split("_")
        if min_len <= len(w) <= max_len and not w.isdigit() and w not in stop
    ]


class TermCounter:
    """Per-cluster document frequencies, fed incrementally (sparse cluster x vocabulary matrix),
    with the documents per cluster and, per word, in how many documents it appears plainly."""

    def __init__(
        self,
        *,
        min_len: int = 3,
        max_len: int = 40,
        max_plain_len: int = 16,
        stop_words: Iterable[str] | None = ALL_STOP_WORDS,
    ) -> None:
        self.min_len = min_len
        self.max_len = max_len
        self.max_plain_len = max_plain_len
        self.stop_words = _stop_set(stop_words)
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.cluster_row: dict[int, int] = {}
        self.cluster_ids: list[int] = []
        self._docs: list[int] = []  # documents per cluster row
        self._plain: list[int] = []  # per term: documents where it appears plainly
        self._mat = sp.csr_matrix((0, 0), dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_n = 0
        self.n_docs = 0

    # -- feeding -------------------------------------------------------------------------------
    def _row(self, cluster: Any) -> int:
        c = int(cluster)
        r = self.cluster_row.get(c)
        if r is None:
            r = self.cluster_row[c] = len(self.cluster_ids)
            self.cluster_ids.append(c)
            self._docs.append(0)
        return r

    def _col(self, term: str) -> int:
        j = self.vocab.get(term)
        if j is None:
            j = self.vocab[term] = len(self.terms)
            self.terms.append(term)
            self._plain.append(0)
        return j

    def _add_coo(self, rows: Sequence[int], cols: Sequence[int], vals: Sequence[int]) -> None:
        """Buffer (row, col, count) triplets; they are summed into the matrix lazily (``_flush``),
        so many small ``add`` calls stay linear in the number of words."""
        self._pending.append((np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                              np.asarray(vals, dtype=np.int64)))
        self._pending_n += len(self._pending[-1][0])
        if self._pending_n > 5_000_000:
            self._flush()

    def _flush(self) -> sp.csr_matrix:
        shape = (len(self.cluster_ids), len(self.terms))
        if self._pending or self._mat.shape != shape:
            old = self._mat.copy()
            old.resize(shape)
            if self._pending:
                rows, cols, vals = (np.concatenate(a) for a in zip(*self._pending))
                old = old + sp.coo_matrix((vals, (rows, cols)), shape=shape).tocsr()
            self._mat = sp.csr_matrix(old, dtype=np.int64)
            self._pending, self._pending_n = [], 0
        return self._mat

    def terms_of(self, text: str) -> dict[str, bool]:
        return document_terms(text, min_len=self.min_len, max_len=self.max_len,
                              max_plain_len=self.max_plain_len, stop_words=self.stop_words)

    def add(self, labels: Iterable[Any], texts: Iterable[str]) -> "TermCounter":
        """Count the words of ``texts`` (once per document) into the clusters given by ``labels``."""
        rows: list[int] = []
        cols: list[int] = []
        for lab, text in zip(labels, texts, strict=True):
            r = self._row(lab)
            self._docs[r] += 1
            self.n_docs += 1
            for term, plain in self.terms_of(text or "").items():
                j = self._col(term)
                cols.append(j)
                self._plain[j] += plain
            rows.extend([r] * (len(cols) - len(rows)))
        if rows:
            self._add_coo(rows, cols, np.ones(len(rows), dtype=np.int64))
        return self

    def add_docs(self, docs_by_cluster: Mapping[Any, Iterable[str]]) -> "TermCounter":
        labels: list[Any] = []
        texts: list[str] = []
        for c, docs in docs_by_cluster.items():
            docs = list(docs)
            labels.extend([c] * len(docs))
            texts.extend(docs)
        return self.add(labels, texts)

    def merge(self, other: "TermCounter") -> "TermCounter":
        """Add another counter's counts (e.g. from another shard) into this one."""
        om = other._flush().tocoo()
        rmap = np.asarray([self._row(c) for c in other.cluster_ids], dtype=np.int64)
        cmap = np.asarray([self._col(t) for t in other.terms], dtype=np.int64)
        for r, n in zip(rmap, other._docs):
            self._docs[r] += n
        for j, n in zip(cmap, other._plain):
            self._plain[j] += n
        if om.nnz:
            self._add_coo(rmap[om.row], cmap[om.col], om.data)
        self.n_docs += other.n_docs
        return self

    def rollup(self, mapping: Mapping[int, int] | np.ndarray) -> "TermCounter":
        """Counts of parent clusters: ``mapping[child] = parent`` (dict or array indexed by child)."""
        out = TermCounter(min_len=self.min_len, max_len=self.max_len, max_plain_len=self.max_plain_len,
                          stop_words=self.stop_words)
        out.vocab = dict(self.vocab)
        out.terms = list(self.terms)
        out._plain = list(self._plain)
        parents = [int(mapping[c]) for c in self.cluster_ids]
        rows = np.asarray([out._row(p) for p in parents], dtype=np.int64)
        for r, n in zip(rows, self._docs):
            out._docs[r] += n
        agg = sp.coo_matrix(
            (np.ones(len(rows), dtype=np.int64), (rows, np.arange(len(rows)))),
            shape=(len(out.cluster_ids), len(self.cluster_ids)),
        ).tocsr()
        out._mat = (agg @ self._flush()).tocsr() if len(rows) else sp.csr_matrix((0, len(out.terms)), dtype=np.int64)
        out.n_docs = self.n_docs
        return out

    # -- persistence ---------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        m = self._flush()
        return {
            "terms": np.asarray(self.terms, dtype=str),
            "cluster_ids": np.asarray(self.cluster_ids, dtype=np.int64),
            "cluster_docs": np.asarray(self._docs, dtype=np.int64),
            "plain_docs": np.asarray(self._plain, dtype=np.int64),
            "data": m.data.astype(np.int64),
            "indices": m.indices.astype(np.int64),
            "indptr": m.indptr.astype(np.int64),
            "n_docs": np.asarray(self.n_docs, dtype=np.int64),
            "params": np.asarray([self.min_len, self.max_len, self.max_plain_len], dtype=np.int64),
        }

    @classmethod
    def from_arrays(
        cls, a: Mapping[str, np.ndarray], stop_words: Iterable[str] | None = ALL_STOP_WORDS
    ) -> "TermCounter":
        min_len, max_len, max_plain_len = (int(v) for v in a["params"])
        tc = cls(min_len=min_len, max_len=max_len, max_plain_len=max_plain_len, stop_words=stop_words)
        tc.terms = [str(t) for t in a["terms"]]
        tc.vocab = {t: i for i, t in enumerate(tc.terms)}
        tc.cluster_ids = [int(c) for c in a["cluster_ids"]]
        tc.cluster_row = {c: i for i, c in enumerate(tc.cluster_ids)}
        tc._docs = [int(n) for n in a["cluster_docs"]]
        tc._plain = [int(n) for n in a["plain_docs"]]
        tc._mat = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(len(tc.cluster_ids), len(tc.terms)))
        tc.n_docs = int(a["n_docs"])
        return tc

    # -- scoring -------------------------------------------------------------------------------
    def matrix(self) -> tuple[list[int], list[str], sp.csr_matrix]:
        return list(self.cluster_ids), list(self.terms), self._flush()

    def keywords(self, top_n: int = 10, config: NamingConfig | None = None) -> dict[int, list[tuple[str, float]]]:
        """Top ``top_n`` (word, score) per cluster, best first: words passing every limit by score,
        then the rest by score (module docstring); ties by word."""
        config = config or NamingConfig()
        ids, terms, X = self.matrix()
        terms_arr = np.asarray(terms, dtype=str)
        df = np.asarray(X.sum(axis=0)).ravel()
        plain = np.asarray(self._plain, dtype=np.float64)
        frequent = df > config.max_df_fraction * max(self.n_docs, 1)
        rare = df < min(config.min_df, max(self.n_docs, 1))
        demoted = (plain * 2 < df) | np.isin(terms_arr, sorted(NAVIGATION_WORDS))
        penalty = np.where(demoted, config.identifier_penalty, 1.0)
        inv_row, idf = _ctfidf_factors(X)
        docs = np.asarray(self._docs, dtype=np.float64)
        out: dict[int, list[tuple[str, float]]] = {}
        for r, c in enumerate(ids):
            a, b = X.indptr[r], X.indptr[r + 1]
            cols = X.indices[a:b]
            share = X.data[a:b] / max(docs[r], 1.0)
            fraction = docs[r] / max(self.n_docs, 1)
            lift = share / np.maximum(df[cols] / max(self.n_docs, 1), 1e-12)
            min_lift = min(config.min_lift, (1.0 + 1.0 / max(fraction, 1e-12)) / 2.0)
            score = X.data[a:b] * inv_row[r] * idf[cols] * penalty[cols]
            passes = (~frequent[cols] & ~rare[cols] & (share >= config.min_share) & (lift >= min_lift)
                      & (penalty[cols] == 1.0))
            tier = np.where(passes, 0, np.where(frequent[cols], 2, 1))
            kept: list[tuple[str, float]] = []
            stems: set[str] = set()
            for i in np.lexsort((terms_arr[cols], -score, tier)):
                word = str(terms_arr[cols[i]])
                if _stem(word) in stems:  # "function" after "functions" says nothing new
                    continue
                stems.add(_stem(word))
                kept.append((word, float(score[i])))
                if len(kept) == top_n:
                    break
            out[c] = kept
        return out


def _ctfidf_factors(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(1 / row sum, idf per term): W[c, t] = X[c, t] * inv_row[c] * idf[t]."""
    row = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    inv = np.divide(1.0, row, out=np.zeros_like(row), where=row > 0)
    A = int(X.sum() / max(X.shape[0], 1))  # mean words per cluster, integer as in BERTopic
    f = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
    idf = np.log(1.0 + np.divide(A, f, out=np.zeros_like(f), where=f > 0))
    return inv, idf


def _stem(word: str) -> str:
    """Plural and singular of a word share this (a plain trailing-s rule, enough for names)."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def ctfidf(X: Any) -> sp.csr_matrix:
    """c-TF-IDF weights of a cluster x term count matrix (BERTopic's formula, natural log)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    if X.shape[0] == 0 or X.shape[1] == 0:
        return X
    inv, idf = _ctfidf_factors(X)
    return (sp.diags(inv) @ X @ sp.diags(idf)).tocsr()


def ctfidf_keywords(
    docs: Mapping[Any, Iterable[str]] | tuple[Sequence[Any], Sequence[str]] | TermCounter,
    top_n: int = 10,
    *,
    config: NamingConfig | None = None,
    stop_words: Iterable[str] | None = ALL_STOP_WORDS,
) -> dict[int, list[tuple[str, float]]]:
    """Keywords per cluster from ``{cluster: texts}``, ``(labels, texts)`` or a :class:`TermCounter`."""
    if isinstance(docs, TermCounter):
        tc = docs
    else:
        tc = TermCounter(stop_words=stop_words)
        if isinstance(docs, Mapping):
            tc.add_docs(docs)
        else:
            labels, texts = docs
            tc.add(labels, texts)
    return tc.keywords(top_n=top_n, config=config)


def ctfidf_keywords_by_level(
    leaf_counter: TermCounter,
    parents: Sequence[np.ndarray],
    top_n: int = 10,
    config: NamingConfig | None = None,
) -> list[dict[int, list[tuple[str, float]]]]:
    """Keywords at every level of a cluster tree from leaf-level counts: level t's counts are the
    sums over all leaves under each level-t cluster, scored among the level-t clusters."""
    out = [leaf_counter.keywords(top_n, config)]
    counter = leaf_counter
    for p in parents:
        counter = counter.rollup(np.asarray(p))
        out.append(counter.keywords(top_n, config))
    return out


def cluster_name(cluster_id: Any, keywords: Sequence[Any], n_words: int = 3) -> str:
    """``"12_word1_word2_word3"`` from keywords given as words or (word, weight) pairs."""
    words = [k[0] if isinstance(k, (tuple, list)) else str(k) for k in keywords][:n_words]
    return "_".join([str(cluster_id), *words])


def cluster_names(keywords: Mapping[Any, Sequence[Any]], n_words: int = 3) -> dict[Any, str]:
    return {c: cluster_name(c, kw, n_words) for c, kw in keywords.items()}


def name_coverage(
    labels: Sequence[Any],
    texts: Sequence[str],
    keywords: Mapping[Any, Sequence[Any]],
    n_words: int = 3,
    stop_words: Iterable[str] | None = ALL_STOP_WORDS,
) -> float:
    """Share of documents containing at least one of their cluster's first ``n_words`` name words
    (the size-weighted mean over clusters of the per-cluster share)."""
    hits = 0
    total = 0
    first = {c: {k[0] if isinstance(k, (tuple, list)) else str(k) for k in kw[:n_words]} for c, kw in keywords.items()}
    for label, text in zip(labels, texts, strict=True):
        total += 1
        words = first.get(label if label in first else int(label), set())
        if words and not words.isdisjoint(document_terms(text or "", stop_words=stop_words)):
            hits += 1
    return hits / total if total else math.nan
