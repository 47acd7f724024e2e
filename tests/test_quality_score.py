"""combine_quality: range, monotonicity in each input, classifier-absent path, hard-fail cap."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from crawlmix.quality import (
    QualityWeights,
    all_rule_columns,
    combine_quality,
    heuristic_score,
    heuristic_signals,
)


def _signals(flags: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(flags.astype(bool), columns=all_rule_columns())


@pytest.fixture(scope="module")
def random_flags() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((300, len(all_rule_columns()))) < 0.7


def test_range_and_dtype(random_flags: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    sig = _signals(random_flags)
    for prob in (None, rng.random(len(sig)), np.zeros(len(sig)), np.ones(len(sig))):
        q = combine_quality(sig, prob)
        assert q.shape == (len(sig),) and q.dtype == np.float64
        assert np.all((q >= 0) & (q <= 1))


def test_monotone_in_classifier(random_flags: np.ndarray) -> None:
    sig = _signals(random_flags)
    prev = None
    for p in np.linspace(0, 1, 11):
        q = combine_quality(sig, np.full(len(sig), p))
        if prev is not None:
            assert np.all(q >= prev - 1e-12)
        prev = q
    # strictly increasing where no hard rule failed
    hard_ok = sig[list(QualityWeights().hard_fail_rules)].all(axis=1).to_numpy()
    lo = combine_quality(sig, np.zeros(len(sig)))
    hi = combine_quality(sig, np.ones(len(sig)))
    assert np.all(hi[hard_ok] > lo[hard_ok])


@pytest.mark.parametrize("rule", all_rule_columns())
def test_monotone_in_each_rule(rule: str, random_flags: np.ndarray) -> None:
    sig_off = _signals(random_flags)
    sig_off[rule] = False
    sig_on = sig_off.copy()
    sig_on[rule] = True
    prob = np.random.default_rng(2).random(len(sig_off))
    for p in (None, prob):
        off, on = combine_quality(sig_off, p), combine_quality(sig_on, p)
        assert np.all(on >= off - 1e-12)
        assert np.any(on > off)


def test_classifier_absent_is_heuristic_only(random_flags: np.ndarray) -> None:
    sig = _signals(random_flags)
    hard_ok = sig[list(QualityWeights().hard_fail_rules)].all(axis=1).to_numpy()
    q = combine_quality(sig, None)
    h = heuristic_score(sig)
    np.testing.assert_allclose(q[hard_ok], h[hard_ok])
    assert np.all(q[~hard_ok] <= QualityWeights().hard_fail_cap)
    # NaN probabilities fall back to the heuristic score row by row
    prob = np.full(len(sig), np.nan)
    np.testing.assert_allclose(combine_quality(sig, prob), q)


def test_formula_values() -> None:
    all_pass = _signals(np.ones((1, len(all_rule_columns()))))
    assert combine_quality(all_pass, None)[0] == pytest.approx(1.0)
    assert combine_quality(all_pass, np.array([0.0]))[0] == pytest.approx(0.5)
    assert combine_quality(all_pass, np.array([0.6]))[0] == pytest.approx(0.8)
    w = QualityWeights(classifier=3.0, heuristic=1.0)
    assert combine_quality(all_pass, np.array([0.0]), w)[0] == pytest.approx(0.25)
    # each family weighs the same: failing one of 3 C4 rules costs 1/9, one of 10 Gopher 1/30
    one_c4 = all_pass.copy()
    one_c4["pass_c4_min_sentences"] = False
    assert heuristic_score(one_c4)[0] == pytest.approx(1 - 1 / 9)
    one_g = all_pass.copy()
    one_g["pass_gopher_dup_lines"] = False
    assert heuristic_score(one_g)[0] == pytest.approx(1 - 1 / 30)
    hard = all_pass.copy()
    hard["pass_gopher_word_count"] = False
    assert combine_quality(hard, np.array([1.0]))[0] == pytest.approx(0.2)


def test_on_real_signals() -> None:
    sig = heuristic_signals(["", "Home\nAbout\nContact", "A sentence. " * 100])
    q = combine_quality(sig, np.array([0.9, 0.9, 0.9]))
    assert np.all((q >= 0) & (q <= 1))
    assert q[0] <= 0.2 and q[1] <= 0.2


def test_errors() -> None:
    sig = _signals(np.ones((2, len(all_rule_columns()))))
    with pytest.raises(ValueError):
        combine_quality(sig, np.ones(3))
    with pytest.raises(KeyError):
        combine_quality(sig.drop(columns=["pass_c4_bad_lines"]))
    with pytest.raises(ValueError):
        combine_quality(sig, None, QualityWeights(classifier=0, heuristic=0))
    for a, b in itertools.product([0.0, 1.0], repeat=2):
        assert 0 <= combine_quality(sig, np.array([a, b])).min() <= 1
