"""Embedding quality classifier: reference documents vs. raw crawl (the CCNet/DCLM idea).

DCLM trains a fastText classifier with curated positives against raw-web negatives and keeps the
top-scoring documents; CCNet scores documents by their likeness to Wikipedia. We do the same on the
sentence embeddings the pipeline already computes: a logistic regression (scikit-learn,
``class_weight="balanced"``, seeded) on

* positives: embeddings of a reference set of well-written documents
  (``crawlmix/sample/reference/reference.parquet`` by default, see ``REFERENCE_SET_PATH``),
* negatives: a random sample of crawl embeddings (the caller draws it, seeded).

Inputs are L2-normalised before fitting and scoring (the embeddings are unit vectors already; the
normalisation makes float16 rounding and other embedders harmless). ``predict`` returns
P(reference-like) in [0, 1] and streams in blocks, so memory-mapped float16 arrays of any length
work. The model serialises to a JSON-friendly dict (``to_dict``/``from_dict``) with metadata
(counts, train AUC, held-out AUC from a seeded stratified split) and a content-hash ``version``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_SET_PATH = (Path(__file__).resolve().parents[1] / "sample" / "reference"
                      / "reference.parquet")
_FORMAT = "crawlmix.quality.QualityClassifier/1"


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    if len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


class QualityClassifier:
    """Logistic regression on embeddings; positives = reference docs, negatives = crawl sample."""

    def __init__(self, C: float = 1.0, held_out_frac: float = 0.2, max_iter: int = 1000,
                 block_rows: int = 65_536) -> None:
        self.C = float(C)
        self.held_out_frac = float(held_out_frac)
        self.max_iter = int(max_iter)
        self.block_rows = int(block_rows)
        self.coef_: np.ndarray | None = None
        self.intercept_: float | None = None
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------------ fitting
    def _new_model(self, seed: int):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter,
                                  random_state=seed)

    def fit(self, ref_vectors: np.ndarray, crawl_vectors: np.ndarray, seed: int = 0
            ) -> QualityClassifier:
        pos = _normalise(np.atleast_2d(ref_vectors))
        neg = _normalise(np.atleast_2d(crawl_vectors))
        if len(pos) < 2 or len(neg) < 2:
            raise ValueError(f"need at least 2 reference and 2 crawl vectors, got {len(pos)} and "
                             f"{len(neg)}")
        if pos.shape[1] != neg.shape[1]:
            raise ValueError(f"dimension mismatch: reference {pos.shape[1]}, crawl {neg.shape[1]}")
        x = np.vstack([pos, neg])
        y = np.concatenate([np.ones(len(pos), np.int8), np.zeros(len(neg), np.int8)])

        # Held-out AUC: seeded stratified split, model fit on the train part only.
        held_out_auc = None
        n_test_pos = int(round(len(pos) * self.held_out_frac))
        n_test_neg = int(round(len(neg) * self.held_out_frac))
        if n_test_pos >= 1 and n_test_neg >= 1 and len(pos) - n_test_pos >= 1 \
                and len(neg) - n_test_neg >= 1:
            rng = np.random.default_rng(seed)
            test = np.zeros(len(y), bool)
            test[rng.permutation(len(pos))[:n_test_pos]] = True
            test[len(pos) + rng.permutation(len(neg))[:n_test_neg]] = True
            m = self._new_model(seed).fit(x[~test], y[~test])
            held_out_auc = _auc(y[test], m.decision_function(x[test]))

        model = self._new_model(seed).fit(x, y)
        self.coef_ = model.coef_.ravel().astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.metadata = {
            "n_pos": int(len(pos)),
            "n_neg": int(len(neg)),
            "dim": int(x.shape[1]),
            "seed": int(seed),
            "C": self.C,
            "held_out_frac": self.held_out_frac,
            "train_auc": _auc(y, x @ self.coef_ + self.intercept_),
            "held_out_auc": held_out_auc,
        }
        return self

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if self.coef_ is None or self.intercept_ is None:
            raise RuntimeError("QualityClassifier is not fitted")

    def decision_function(self, vectors: np.ndarray) -> np.ndarray:
        self._check_fitted()
        assert self.coef_ is not None and self.intercept_ is not None
        vectors = np.atleast_2d(vectors) if np.ndim(vectors) == 1 else vectors
        if len(vectors) and vectors.shape[1] != len(self.coef_):
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, classifier expects "
                             f"{len(self.coef_)}")
        out = np.empty(len(vectors), dtype=np.float64)
        for start in range(0, len(vectors), self.block_rows):
            block = _normalise(vectors[start:start + self.block_rows])
            out[start:start + len(block)] = block @ self.coef_ + self.intercept_
        return out

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """P(reference-like) per row, float64 in [0, 1]; streams ``block_rows`` rows at a time."""
        z = self.decision_function(vectors)
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # numerically stable logistic

    # ------------------------------------------------------------------ persistence
    def _payload(self) -> dict[str, Any]:
        self._check_fitted()
        assert self.coef_ is not None
        return {
            "format": _FORMAT,
            "coef": [float(v) for v in self.coef_],
            "intercept": float(self.intercept_),  # type: ignore[arg-type]
            "normalise_inputs": True,
            "params": {"C": self.C, "held_out_frac": self.held_out_frac,
                       "max_iter": self.max_iter},
            "metadata": dict(self.metadata),
        }

    @property
    def version(self) -> str:
        """Content hash (sha256, 16 hex) of the coefficients, intercept and parameters."""
        p = self._payload()
        body = json.dumps({k: p[k] for k in ("format", "coef", "intercept", "normalise_inputs",
                                             "params")}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = self._payload()
        d["version"] = self.version
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QualityClassifier:
        if d.get("format") != _FORMAT:
            raise ValueError(f"not a serialized QualityClassifier (format={d.get('format')!r})")
        params = d.get("params", {})
        obj = cls(C=params.get("C", 1.0), held_out_frac=params.get("held_out_frac", 0.2),
                  max_iter=params.get("max_iter", 1000))
        obj.coef_ = np.asarray(d["coef"], dtype=np.float64)
        obj.intercept_ = float(d["intercept"])
        obj.metadata = dict(d.get("metadata", {}))
        if "version" in d and d["version"] != obj.version:
            raise ValueError(f"classifier version mismatch: stored {d['version']}, "
                             f"computed {obj.version}")
        return obj


def load_reference_texts(path: str | Path, text_field: str = "text") -> list[str]:
    """Texts of a reference set: a Parquet file, a JSONL file (``.jsonl``/``.json``, optionally
    ``.gz``), or a directory of such files (read in sorted order). Empty/null texts are skipped.
    Errors name the file and the field."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"reference set not found: {p}")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and _kind(f) is not None)
        if not files:
            raise FileNotFoundError(f"no .parquet or .jsonl[.gz] files in reference dir {p}")
        return [t for f in files for t in load_reference_texts(f, text_field)]
    kind = _kind(p)
    if kind == "parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(p).names
        if text_field not in names:
            raise KeyError(f"{p}: no column {text_field!r} (columns: {names})")
        values = pq.read_table(p, columns=[text_field]).column(text_field).to_pylist()
        out = []
        for i, v in enumerate(values):
            if v is None:
                continue
            if not isinstance(v, str):
                raise TypeError(f"{p}: row {i} field {text_field!r} is {type(v).__name__}, "
                                "not a string")
            if v.strip():
                out.append(v)
        return out
    if kind == "jsonl":
        opener = gzip.open if p.name.endswith(".gz") else open
        out = []
        with opener(p, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p}:{lineno}: invalid JSON ({e})") from e
                if not isinstance(rec, dict) or text_field not in rec:
                    raise KeyError(f"{p}:{lineno}: record has no field {text_field!r}")
                v = rec[text_field]
                if v is None:
                    continue
                if not isinstance(v, str):
                    raise TypeError(f"{p}:{lineno}: field {text_field!r} is "
                                    f"{type(v).__name__}, not a string")
                if v.strip():
                    out.append(v)
        return out
    raise ValueError(f"{p}: unsupported reference file type (want .parquet, .jsonl, .jsonl.gz)")


def _kind(p: Path) -> str | None:
    name = p.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")):
        return "jsonl"
    return None
