"""Dirichlet candidates (CLIMB/RegMix) and the regressor-guided search."""

from __future__ import annotations

import numpy as np
import pytest

from crawlmix.mixture import dirichlet_candidates, search_mixture

PRIOR = np.array([0.30, 0.20, 0.12, 0.08, 0.08, 0.07, 0.05, 0.05, 0.03, 0.02])


def test_candidates_valid_and_seeded():
    c = dirichlet_candidates(PRIOR, 64, 123)
    assert c.shape == (64, 10)
    assert (c >= 0).all() and np.allclose(c.sum(axis=1), 1)
    assert ((c == 0) | (c >= 2e-4 - 1e-12)).all()  # floor
    assert (c <= np.minimum(15 * PRIOR, 1) + 1e-9).all()  # cap from the ORIGINAL prior
    d = np.abs(c[:, None, :] - c[None, :, :]).max(axis=2) + np.eye(64)
    assert d.min() >= 0.05  # near-duplicates rejected
    assert np.array_equal(c, dirichlet_candidates(PRIOR, 64, 123))
    assert not np.array_equal(c, dirichlet_candidates(PRIOR, 64, 124))


def test_cap_binds_with_tiny_prior():
    prior = np.array([0.9, 0.05, 0.03, 0.01, 0.01])
    c = dirichlet_candidates(prior, 200, 0, min_linf=0.0)
    cap = np.minimum(15 * prior, 1)
    assert (c <= cap + 1e-9).all() and np.allclose(c.sum(axis=1), 1)
    assert (c[:, 3] >= cap[3] - 1e-9).any()  # the cap is reached, i.e. it was needed
    # tempering spreads mass: small domains get more than their prior on average
    assert c[:, 3].mean() > prior[3]


def test_candidate_pool_zero_prior_entries_stay_zero():
    prior = np.array([0.5, 0.0, 0.5])
    c = dirichlet_candidates(prior, 50, 1, min_linf=0.0)
    assert (c[:, 1] == 0).all()


def test_search_recovers_planted_optimum():
    rng = np.random.default_rng(5)
    seen = []

    def evaluate(w):  # higher with cluster 3's weight, lower with cluster 7's, a little noise
        return float(3 * w[3] - 4 * w[7] - 0.5 * np.sum((w - PRIOR) ** 2) + rng.normal(0, 0.005))

    res = search_mixture(PRIOR, evaluate, scale=0.5, seed=0, pool_size=20_000, on_candidate=seen.append)
    assert len(res.history) == 32 + 16 + 8 == len(seen)
    assert [h.round for h in res.history].count(1) == 32
    assert all(h.predicted is None for h in res.history[:32])
    assert all(h.predicted is not None for h in res.history[32:])
    w = res.best_weights
    assert np.isclose(w.sum(), 1) and w[3] > PRIOR[3] and w[7] < PRIOR[7]
    # the later rounds (regressor proposals) beat round 1 on average
    s1 = np.mean([h.score for h in res.history if h.round == 1])
    s3 = np.mean([h.score for h in res.history if h.round == 3])
    assert s3 > s1


def test_search_rejects_non_finite_scores():
    with pytest.raises(ValueError, match="non-finite"):
        search_mixture(PRIOR, lambda w: float("nan"), rounds=(4,), seed=0)
