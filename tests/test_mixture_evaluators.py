"""Evaluators: python / command (no shell) and the n-gram LM proxy."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from crawlmix.mixture import EvaluatorError, NgramLMEvaluator, command_evaluator, python_evaluator


def score_rows(sample, weights):  # used through python_evaluator("tests.test_mixture_evaluators:score_rows")
    return float(len(sample)) + float(weights.get(0, 0.0))


def _domain_texts(vocab: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # a bigram-ish Markov chain over the domain's vocabulary, so word order carries signal
    k = len(vocab)
    trans = rng.dirichlet(np.full(k, 0.1), size=k)
    out = []
    for _ in range(n):
        w = rng.integers(k)
        words = []
        for _ in range(rng.integers(30, 80)):
            words.append(vocab[w])
            w = rng.choice(k, p=trans[w])
        out.append(" ".join(words))
    return out


def _pool(n_per: int = 300):
    a = _domain_texts([f"alpha{i}" for i in range(60)] + ["the", "of", "and"], n_per, 1)
    b = _domain_texts([f"beta{i}" for i in range(60)] + ["the", "of", "and"], n_per, 2)
    texts = {f"a{i}": t for i, t in enumerate(a)} | {f"b{i}": t for i, t in enumerate(b)}
    target = a[-40:]  # held-out domain-A documents (the mixes below use a0..a179)
    return texts, target


def _mix(frac_a: float, n: int = 200) -> pd.DataFrame:
    na = int(round(frac_a * n))
    ids = [f"a{i}" for i in range(na)] + [f"b{i}" for i in range(n - na)]
    return pd.DataFrame({"doc_id": ids, "repeats": 1})


def test_ngram_closer_mix_scores_higher_and_deterministic():
    texts, target = _pool()
    ev = NgramLMEvaluator(texts, target, token_budget=5000, seed=0)
    scores = [ev(_mix(f), None) for f in (0.1, 0.5, 0.9)]
    assert scores[0] < scores[1] < scores[2], scores
    assert ev(_mix(0.5), None) == scores[1]
    ev1 = NgramLMEvaluator(texts, target, token_budget=5000, order=1)
    assert ev1(_mix(0.1)) < ev1(_mix(0.9))
    # plain text lists work too; a callable text source as well
    assert np.isfinite(ev([texts["a1"], texts["b1"]]))
    ev2 = NgramLMEvaluator(lambda ids: [texts[i] for i in ids], target, token_budget=5000, seed=0)
    assert ev2(_mix(0.9)) == scores[2]


def test_ngram_missing_text_is_clear():
    texts, target = _pool(10)
    ev = NgramLMEvaluator(texts, target)
    with pytest.raises(EvaluatorError, match="no text for doc id 'zzz'"):
        ev(pd.DataFrame({"doc_id": ["zzz"]}))


def test_python_evaluator():
    f = python_evaluator("tests.test_mixture_evaluators:score_rows")
    assert f(pd.DataFrame({"doc_id": ["a", "b"]}), {0: 0.5}) == 2.5
    with pytest.raises(EvaluatorError, match="cannot import"):
        python_evaluator("no_such_module_xyz:f")
    with pytest.raises(EvaluatorError, match="no callable"):
        python_evaluator("tests.test_mixture_evaluators:nope")
    with pytest.raises(EvaluatorError, match="package.module:function"):
        python_evaluator("just_a_name")


def test_command_evaluator(tmp_path):
    script = ("import sys, os, json, pandas as pd; df = pd.read_parquet(sys.argv[-1]); "
              "w = json.loads(os.environ['CRAWLMIX_WEIGHTS']); print('log line'); print(len(df) + w['3'])")
    f = command_evaluator([sys.executable, "-c", script], timeout_s=60)
    assert f(pd.DataFrame({"doc_id": ["a", "b", "c"]}), {3: 0.25}) == 3.25
    p = tmp_path / "s.parquet"
    pd.DataFrame({"doc_id": ["a"]}).to_parquet(p)
    assert f(str(p), {3: 1.0}) == 2.0
    with pytest.raises(EvaluatorError, match="exited with status 3: boom"):
        command_evaluator([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])(str(p), {})
    with pytest.raises(EvaluatorError, match="not a number"):
        command_evaluator([sys.executable, "-c", "print('hello')"])(str(p), {})
    with pytest.raises(EvaluatorError, match="timed out"):
        command_evaluator([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.5)(str(p), {})
    with pytest.raises(EvaluatorError, match="could not start"):
        command_evaluator(["/nonexistent/binary"])(str(p), {})


def test_ngram_short_sample_trains_on_the_full_budget():
    """A sample shorter than the budget is gone through again, so it trains on as many tokens as a
    long one: one document taken once scores the same as that document repeated 50 times."""
    texts, target = _pool(10)
    ev = NgramLMEvaluator(texts, target, token_budget=1000, seed=0)
    once = pd.DataFrame({"doc_id": ["a1"], "repeats": [1]})
    many = pd.DataFrame({"doc_id": ["a1"], "repeats": [50]})
    assert len(texts["a1"].split()) < 200  # far under the budget
    assert ev(once) == ev(many)
    assert ev([texts["a1"]]) == ev(once)  # plain text lists cycle the same way
