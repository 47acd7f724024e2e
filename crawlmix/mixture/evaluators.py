"""Mixture evaluators for the search policy (higher is better).

An evaluator is a callable ``(sample, weights) -> float``: ``sample`` is a DataFrame with at least
``doc_id`` (the documents drawn with the candidate weights; a ``repeats`` column when present) or
a path to such a Parquet file; ``weights`` the candidate's weights (a dict cluster id -> weight,
or an array). Three kinds:

* :func:`python_evaluator` -- ``"package.module:function"``, called in-process.
* :func:`command_evaluator` -- an external command (argv, no shell) given the sample's Parquet
  path as its last argument and the weights as JSON in ``CRAWLMIX_WEIGHTS``; prints the score on
  its last stdout line.
* :class:`NgramLMEvaluator` -- the built-in cheap proxy: an interpolated Kneser-Ney word bigram LM
  trained on a fixed token budget of the sample, scored as minus the per-token cross-entropy
  (= -log perplexity) on a target set of texts.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "EvaluatorError",
    "NgramLMEvaluator",
    "command_evaluator",
    "evaluator_from_options",
    "python_evaluator",
]


class EvaluatorError(RuntimeError):
    """An evaluator failed (command exit status, timeout, unparseable output, bad import)."""


def _weights_json(weights: Any) -> str:
    if isinstance(weights, Mapping):
        return json.dumps({str(k): float(v) for k, v in weights.items()}, sort_keys=True)
    return json.dumps([float(v) for v in np.asarray(weights, dtype=np.float64).ravel()])


def python_evaluator(dotted: str) -> Callable[[Any, Any], float]:
    """Import ``package.module:function``; returns ``f(sample_frame_or_path, weights) -> float``."""
    if not isinstance(dotted, str) or dotted.count(":") != 1:
        raise EvaluatorError(f"python evaluator must look like 'package.module:function', got {dotted!r}")
    mod_name, fn_name = dotted.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - the message says which module
        raise EvaluatorError(f"python evaluator {dotted!r}: cannot import {mod_name!r}: {e}") from e
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise EvaluatorError(f"python evaluator {dotted!r}: {mod_name!r} has no callable {fn_name!r}")

    def evaluate(sample: Any, weights: Any) -> float:
        s = fn(sample, weights)
        try:
            v = float(s)
        except (TypeError, ValueError) as e:
            raise EvaluatorError(f"python evaluator {dotted!r} returned {s!r}, not a number") from e
        if not math.isfinite(v):
            raise EvaluatorError(f"python evaluator {dotted!r} returned a non-finite score {v!r}")
        return v

    evaluate.__name__ = f"python_evaluator[{dotted}]"
    return evaluate


def command_evaluator(argv: Sequence[str], timeout_s: float = 600.0) -> Callable[[Any, Any], float]:
    """Run ``argv + [sample.parquet]`` (no shell) with ``CRAWLMIX_WEIGHTS`` = weights as JSON; the
    last non-empty stdout line is the score. A DataFrame sample is written to a temporary Parquet
    file (removed afterwards); a path is passed as it is."""
    argv = [str(a) for a in argv]
    if not argv:
        raise EvaluatorError("command evaluator needs a non-empty argv")

    def evaluate(sample: Any, weights: Any) -> float:
        tmpdir = None
        if isinstance(sample, pd.DataFrame):
            tmpdir = tempfile.TemporaryDirectory(prefix="crawlmix-eval-")
            path = os.path.join(tmpdir.name, "sample.parquet")
            sample.to_parquet(path, index=False)
        else:
            path = os.fspath(sample)
        env = dict(os.environ, CRAWLMIX_WEIGHTS=_weights_json(weights))
        try:
            proc = subprocess.run(argv + [path], capture_output=True, text=True, timeout=timeout_s, env=env,
                                  check=False)
        except subprocess.TimeoutExpired as e:
            raise EvaluatorError(f"command evaluator {argv[0]!r} timed out after {timeout_s:g} s") from e
        except OSError as e:
            raise EvaluatorError(f"command evaluator {argv[0]!r} could not start: {e}") from e
        finally:
            if tmpdir is not None:
                tmpdir.cleanup()
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip()[-800:]
            raise EvaluatorError(f"command evaluator {argv[0]!r} exited with status {proc.returncode}: {tail}")
        lines = [ln.strip() for ln in (proc.stdout or "").splitlines() if ln.strip()]
        if not lines:
            raise EvaluatorError(f"command evaluator {argv[0]!r} printed nothing (expected a score on the last line)")
        try:
            v = float(lines[-1])
        except ValueError as e:
            raise EvaluatorError(f"command evaluator {argv[0]!r}: last stdout line {lines[-1][:200]!r} "
                                 "is not a number") from e
        if not math.isfinite(v):
            raise EvaluatorError(f"command evaluator {argv[0]!r} returned a non-finite score {v!r}")
        return v

    evaluate.__name__ = f"command_evaluator[{argv[0]}]"
    return evaluate


# ------------------------------------------------------------------------------------------------
# n-gram LM proxy

_WORD = re.compile(r"\w+", re.UNICODE)
_BOS = 0


class NgramLMEvaluator:
    """Cheap proxy: train an interpolated Kneser-Ney word bigram LM (``order=2``; ``order=1`` is a
    smoothed unigram) on the first ``token_budget`` tokens of the sample (in a seeded random
    document order, repeats honoured; a sample shorter than the budget is gone through again, so
    every candidate trains on the same token count) and return ``-cross_entropy`` in nats per token on the
    target texts (= ``-log(perplexity)``; higher is better: the training mix resembles the target).

    texts: ``{doc_id: text}`` mapping, or a callable ``doc_ids -> list[str]`` (documents are
    tokenized once and cached as word-id arrays). target_texts: the texts to score. The sample may
    also be a list of texts. Deterministic given ``seed``. Words are ``\\w+`` lower-cased; ids come
    from a growing dictionary (collision-free, independent of hash seeds); bigram counts are built
    with ``np.unique`` on ``prev * 2**32 + cur`` keys, so a call costs a few numpy passes over the
    budget rather than Python loops over tokens.
    """

    def __init__(
        self,
        texts: Mapping[str, str] | Callable[[list[str]], list[str]] | None,
        target_texts: Iterable[str],
        *,
        token_budget: int = 200_000,
        order: int = 2,
        discount: float = 0.75,
        seed: int = 0,
        max_target_tokens: int = 200_000,
    ) -> None:
        if order not in (1, 2):
            raise ValueError("order must be 1 or 2")
        self.texts = texts
        self.token_budget = int(token_budget)
        self.order = order
        self.discount = float(discount)
        self.seed = int(seed)
        self._vocab: dict[str, int] = {"<s>": _BOS}
        self._cache: dict[str, np.ndarray] = {}
        tgt = [self._encode(t) for t in target_texts]
        if not tgt:
            raise ValueError("target_texts is empty")
        arr = np.concatenate(tgt)[: int(max_target_tokens)]
        self._target = arr
        self.n_target_tokens = int((arr != _BOS).sum())
        if self.n_target_tokens == 0:
            raise ValueError("target_texts have no words")
        self.calls = 0

    def _encode(self, text: str) -> np.ndarray:
        v = self._vocab
        ids = [_BOS]
        for w in _WORD.findall(text.lower()):
            i = v.get(w)
            if i is None:
                i = v[w] = len(v)
            ids.append(i)
        return np.asarray(ids, dtype=np.int64)

    def _doc_arrays(self, doc_ids: list[str]) -> list[np.ndarray]:
        missing = [d for d in dict.fromkeys(doc_ids) if d not in self._cache]
        if missing:
            if self.texts is None:
                raise EvaluatorError("NgramLMEvaluator has no texts source for doc ids")
            if callable(self.texts) and not isinstance(self.texts, Mapping):
                got = list(self.texts(missing))
            else:
                try:
                    got = [self.texts[d] for d in missing]
                except KeyError as e:
                    raise EvaluatorError(f"NgramLMEvaluator: no text for doc id {e.args[0]!r}") from e
            if len(got) != len(missing):
                raise EvaluatorError("NgramLMEvaluator: the texts callable returned the wrong number of texts")
            for d, t in zip(missing, got):
                self._cache[d] = self._encode(t or "")
        return [self._cache[d] for d in doc_ids]

    def _training_tokens(self, sample: Any) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if isinstance(sample, (str, os.PathLike)):
            sample = pd.read_parquet(sample, columns=None)
        arrays: list[np.ndarray] = []
        total = 0
        if isinstance(sample, pd.DataFrame):
            ids = sample["doc_id"].astype(str).to_numpy()
            reps = sample["repeats"].to_numpy(dtype=np.int64) if "repeats" in sample else np.ones(len(ids), np.int64)
            flat = np.repeat(np.arange(len(ids)), np.maximum(reps, 1))

            def encoded(order: np.ndarray):
                step = 256  # tokenize lazily, only what is used
                for s in range(0, len(order), step):
                    yield from self._doc_arrays([ids[i] for i in order[s:s + step].tolist()])
        else:
            docs = list(sample)
            flat = np.arange(len(docs))

            def encoded(order: np.ndarray):
                for i in order.tolist():
                    yield self._encode(docs[i])
        if not len(flat):
            raise EvaluatorError("NgramLMEvaluator: the sample is empty")
        # Draw documents in a seeded random order until the budget is filled. A sample holding fewer
        # tokens than the budget is gone through again (a fresh order each pass): every candidate's
        # model then trains on the same token count, so a short sample is not scored as worse data.
        while total < self.token_budget:
            before = total
            for a in encoded(rng.permutation(flat)):
                arrays.append(a)
                total += len(a) - 1
                if total >= self.token_budget:
                    break
            if total == before:  # the sample has no words at all
                break
        toks = np.concatenate(arrays)
        # cut at the budget (count words only; BOS markers are free)
        words = np.cumsum(toks != _BOS)
        cut = int(np.searchsorted(words, self.token_budget, side="left")) + 1
        return toks[:cut]

    def score_tokens(self, train: np.ndarray) -> float:
        V = len(self._vocab) + 1  # + unknown mass for words seen in neither set
        tgt = self._target
        # unigram / continuation distribution
        if self.order == 1:
            words = train[train != _BOS]
            cnt = np.bincount(words, minlength=V).astype(np.float64)
            p_uni = (cnt + 0.01) / (cnt.sum() + 0.01 * V)
            tw = tgt[tgt != _BOS]
            return float(np.log(p_uni[tw]).mean())
        prev, cur = train[:-1], train[1:]
        m = cur != _BOS
        prev, cur = prev[m], cur[m]
        keys = prev * (1 << 32) + cur
        ukeys, kc = np.unique(keys, return_counts=True)
        up = ukeys >> 32
        uc = ukeys & ((1 << 32) - 1)
        # continuation counts N1+(. w) and N1+(..)
        cont = np.bincount(uc, minlength=V).astype(np.float64)
        n_types = float(len(ukeys))
        # interpolate the continuation distribution with a uniform floor so unseen words have mass
        lam = n_types / (n_types + 1.0 * np.count_nonzero(cont) + 1.0)
        p_cont = lam * cont / max(n_types, 1.0) + (1 - lam) / V
        c_prev = np.bincount(up, weights=kc, minlength=V)
        n1_prev = np.bincount(up, minlength=V).astype(np.float64)
        D = self.discount
        tp, tc = tgt[:-1], tgt[1:]
        mt = tc != _BOS
        tp, tc = tp[mt], tc[mt]
        tkeys = tp * (1 << 32) + tc
        pos = np.searchsorted(ukeys, tkeys)
        pos_c = np.minimum(pos, len(ukeys) - 1)
        found = ukeys[pos_c] == tkeys
        cvw = np.where(found, kc[pos_c], 0).astype(np.float64)
        cv = c_prev[tp]
        has = cv > 0
        safe = np.where(has, cv, 1.0)
        p = np.where(has, np.maximum(cvw - D, 0.0) / safe + D * n1_prev[tp] / safe * p_cont[tc], p_cont[tc])
        return float(np.log(p).mean())

    def __call__(self, sample: Any, weights: Any = None) -> float:
        self.calls += 1
        return self.score_tokens(self._training_tokens(sample))


def evaluator_from_options(
    options: Mapping[str, Any] | None,
    *,
    texts: Any = None,
    target_texts: Iterable[str] | None = None,
    seed: int = 0,
) -> Callable[[Any, Any], float]:
    """Build the evaluator a spec's ``options.evaluator`` names (default: ``ngram``). The n-gram
    proxy needs ``texts`` (doc id -> text, mapping or callable) and ``target_texts``."""
    o = dict(options or {"type": "ngram"})
    t = o.get("type", "ngram")
    if t == "python":
        return python_evaluator(o["function"])
    if t == "command":
        return command_evaluator(list(o["command"]), float(o.get("timeout_s", 600)))
    if t == "ngram":
        if target_texts is None:
            raise EvaluatorError("the ngram evaluator needs target_texts (the documents the mix should resemble)")
        return NgramLMEvaluator(texts, target_texts, token_budget=int(o.get("token_budget", 200_000)),
                                order=int(o.get("order", 2)), seed=seed)
    raise EvaluatorError(f"unknown evaluator type {t!r}")
