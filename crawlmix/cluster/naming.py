"""Cluster names from c-TF-IDF keywords (BERTopic's class-based TF-IDF).

X = cluster x term counts; tf = X with rows L1-normalised; idf_t = log(1 + A / f_t) with A the mean
number of words per cluster (truncated to an integer) and f_t the total count of term t over all
clusters; W = tf * idf. A cluster's keywords are its top terms by W, its name ``<id>_<w1>_<w2>_<w3>``.

Counting is separate from scoring so it can be done shard by shard: feed a :class:`TermCounter`
(``add(labels, texts)``), merge counters from several workers (``merge``), persist them
(``to_arrays``/``from_arrays``), roll leaf counts up a cluster tree (``rollup``), then score.
Tokens: lower-cased runs of letters/digits (``_`` splits words, so names stay parseable), English
stop words removed, at least ``min_len`` (default 3) characters, no pure numbers.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "ENGLISH_STOP_WORDS",
    "tokenize",
    "TermCounter",
    "ctfidf",
    "ctfidf_keywords",
    "ctfidf_keywords_by_level",
    "cluster_name",
    "cluster_names",
]

ENGLISH_STOP_WORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also although
    always am among amongst an and another any anyhow anyone anything anyway anywhere are aren around
    as at back be became because become becomes becoming been before beforehand behind being below
    beside besides between beyond both but by can cannot could couldn did didn do does doesn doing
    don done down due during each either else elsewhere enough etc even ever every everyone
    everything everywhere except few for former formerly from further get gets got had hadn has hasn
    have haven having he hence her here hereafter hereby herein hers herself him himself his how
    however i ie if in indeed instead into is isn it its itself just last later latter least less
    let like ll made make many may me meanwhile might mine more moreover most mostly much must my
    myself namely neither never nevertheless next no nobody none noone nor not nothing now nowhere of
    off often on once one only onto or other others otherwise our ours ourselves out over own per
    perhaps please put quite rather re really said same say says see seem seemed seeming seems several
    shall she should shouldn since so some somehow someone something sometime sometimes somewhere
    still such than that the their theirs them themselves then thence there thereafter thereby
    therefore therein thereupon these they this those though through throughout thru thus to together
    too toward towards under until up upon us use used using ve very via was wasn we well were weren
    what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without won would
    wouldn yet you your yours yourself yourselves
    """.split()
)

_WORD = re.compile(r"[^\W_]+")


def tokenize(
    text: str,
    *,
    min_len: int = 3,
    max_len: int = 40,
    stop_words: Iterable[str] | None = ENGLISH_STOP_WORDS,
) -> list[str]:
    """Lower-cased words (letters/digits), stop words, pure numbers and short/long tokens removed."""
    stop = stop_words if isinstance(stop_words, (set, frozenset)) else frozenset(stop_words or ())
    return [
        w
        for w in _WORD.findall(text.lower())
        if min_len <= len(w) <= max_len and not w.isdigit() and w not in stop
    ]


class TermCounter:
    """Per-cluster term counts, fed incrementally (sparse cluster x vocabulary matrix)."""

    def __init__(
        self,
        *,
        min_len: int = 3,
        max_len: int = 40,
        stop_words: Iterable[str] | None = ENGLISH_STOP_WORDS,
    ) -> None:
        self.min_len = min_len
        self.max_len = max_len
        self.stop_words = frozenset(stop_words or ())
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.cluster_row: dict[int, int] = {}
        self.cluster_ids: list[int] = []
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
        return r

    def _col(self, term: str) -> int:
        j = self.vocab.get(term)
        if j is None:
            j = self.vocab[term] = len(self.terms)
            self.terms.append(term)
        return j

    def _add_coo(self, rows: Sequence[int], cols: Sequence[int], vals: Sequence[int]) -> None:
        """Buffer (row, col, count) triplets; they are summed into the matrix lazily (``_flush``),
        so many small ``add``/``add_counts`` calls stay linear in the number of tokens."""
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

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, min_len=self.min_len, max_len=self.max_len, stop_words=self.stop_words)

    def add(self, labels: Iterable[Any], texts: Iterable[str]) -> "TermCounter":
        """Count the tokens of ``texts`` into the clusters given by ``labels`` (same length)."""
        rows: list[int] = []
        cols: list[int] = []
        for lab, text in zip(labels, texts, strict=True):
            r = self._row(lab)
            toks = self.tokenize(text or "")
            cols.extend(self._col(t) for t in toks)
            rows.extend([r] * len(toks))
            self.n_docs += 1
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

    def add_counts(self, cluster: Any, counts: Mapping[str, int]) -> "TermCounter":
        """Add pre-counted terms (taken as they are, not re-tokenized)."""
        r = self._row(cluster)
        cols = [self._col(t) for t in counts]
        self._add_coo([r] * len(cols), cols, list(counts.values()))
        return self

    def merge(self, other: "TermCounter") -> "TermCounter":
        """Add another counter's counts (e.g. from another shard) into this one."""
        om = other._flush().tocoo()
        rmap = np.asarray([self._row(c) for c in other.cluster_ids], dtype=np.int64)
        cmap = np.asarray([self._col(t) for t in other.terms], dtype=np.int64)
        if om.nnz:
            self._add_coo(rmap[om.row], cmap[om.col], om.data)
        self.n_docs += other.n_docs
        return self

    def rollup(self, mapping: Mapping[int, int] | np.ndarray) -> "TermCounter":
        """Counts of parent clusters: ``mapping[child] = parent`` (dict or array indexed by child)."""
        out = TermCounter(min_len=self.min_len, max_len=self.max_len, stop_words=self.stop_words)
        out.vocab = dict(self.vocab)
        out.terms = list(self.terms)
        parents = [int(mapping[c]) for c in self.cluster_ids]
        rows = np.asarray([out._row(p) for p in parents], dtype=np.int64)
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
            "data": m.data.astype(np.int64),
            "indices": m.indices.astype(np.int64),
            "indptr": m.indptr.astype(np.int64),
            "n_docs": np.asarray(self.n_docs, dtype=np.int64),
            "params": np.asarray([self.min_len, self.max_len], dtype=np.int64),
        }

    @classmethod
    def from_arrays(
        cls, a: Mapping[str, np.ndarray], stop_words: Iterable[str] | None = ENGLISH_STOP_WORDS
    ) -> "TermCounter":
        min_len, max_len = (int(v) for v in a["params"])
        tc = cls(min_len=min_len, max_len=max_len, stop_words=stop_words)
        tc.terms = [str(t) for t in a["terms"]]
        tc.vocab = {t: i for i, t in enumerate(tc.terms)}
        tc.cluster_ids = [int(c) for c in a["cluster_ids"]]
        tc.cluster_row = {c: i for i, c in enumerate(tc.cluster_ids)}
        tc._mat = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(len(tc.cluster_ids), len(tc.terms)))
        tc.n_docs = int(a["n_docs"])
        return tc

    # -- scoring -------------------------------------------------------------------------------
    def matrix(self) -> tuple[list[int], list[str], sp.csr_matrix]:
        return list(self.cluster_ids), list(self.terms), self._flush()

    def keywords(self, top_n: int = 10, max_vocab: int | None = None) -> dict[int, list[tuple[str, float]]]:
        """Top ``top_n`` (word, c-TF-IDF weight) per cluster, best first (ties by word)."""
        ids, terms, X = self.matrix()
        terms_arr = np.asarray(terms, dtype=object)
        if max_vocab is not None and X.shape[1] > max_vocab:
            freq = np.asarray(X.sum(axis=0)).ravel()
            keep = np.sort(np.lexsort((terms_arr.astype(str), -freq))[:max_vocab])
            X = X[:, keep]
            terms_arr = terms_arr[keep]
        W = ctfidf(X)
        out: dict[int, list[tuple[str, float]]] = {}
        for r, c in enumerate(ids):
            a, b = W.indptr[r], W.indptr[r + 1]
            cols, w = W.indices[a:b], W.data[a:b]
            pos = w > 0
            cols, w = cols[pos], w[pos]
            o = np.lexsort((terms_arr[cols].astype(str), -w))[:top_n]
            out[c] = [(str(terms_arr[cols[i]]), float(w[i])) for i in o]
        return out


def ctfidf(X: Any) -> sp.csr_matrix:
    """c-TF-IDF weights of a cluster x term count matrix (BERTopic's formula, natural log)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    n_clusters = X.shape[0]
    if n_clusters == 0 or X.shape[1] == 0:
        return X
    row = np.asarray(X.sum(axis=1)).ravel()
    inv = np.divide(1.0, row, out=np.zeros_like(row), where=row > 0)
    tf = sp.diags(inv) @ X
    A = int(X.sum() / n_clusters)  # mean words per cluster, integer as in BERTopic
    f = np.asarray(X.sum(axis=0)).ravel()
    idf = np.log(1.0 + np.divide(A, f, out=np.zeros_like(f), where=f > 0))
    return (tf @ sp.diags(idf)).tocsr()


def ctfidf_keywords(
    docs: Mapping[Any, Iterable[str]] | tuple[Sequence[Any], Sequence[str]] | TermCounter,
    top_n: int = 10,
    *,
    max_vocab: int | None = None,
    min_len: int = 3,
    stop_words: Iterable[str] | None = ENGLISH_STOP_WORDS,
) -> dict[int, list[tuple[str, float]]]:
    """Keywords per cluster from ``{cluster: texts}``, ``(labels, texts)`` or a :class:`TermCounter`."""
    if isinstance(docs, TermCounter):
        tc = docs
    else:
        tc = TermCounter(min_len=min_len, stop_words=stop_words)
        if isinstance(docs, Mapping):
            tc.add_docs(docs)
        else:
            labels, texts = docs
            tc.add(labels, texts)
    return tc.keywords(top_n=top_n, max_vocab=max_vocab)


def ctfidf_keywords_by_level(
    leaf_counter: TermCounter,
    parents: Sequence[np.ndarray],
    top_n: int = 10,
    max_vocab: int | None = None,
) -> list[dict[int, list[tuple[str, float]]]]:
    """Keywords at every level of a cluster tree from leaf-level counts: level t's counts are the
    sums over all leaves under each level-t cluster, scored among the level-t clusters."""
    out = [leaf_counter.keywords(top_n, max_vocab)]
    counter = leaf_counter
    for p in parents:
        counter = counter.rollup(np.asarray(p))
        out.append(counter.keywords(top_n, max_vocab))
    return out


def cluster_name(cluster_id: Any, keywords: Sequence[Any], n_words: int = 3) -> str:
    """``"12_word1_word2_word3"`` from keywords given as words or (word, weight) pairs."""
    words = [k[0] if isinstance(k, (tuple, list)) else str(k) for k in keywords][:n_words]
    return "_".join([str(cluster_id), *words])


def cluster_names(keywords: Mapping[Any, Sequence[Any]], n_words: int = 3) -> dict[Any, str]:
    return {c: cluster_name(c, kw, n_words) for c, kw in keywords.items()}
