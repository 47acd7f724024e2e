"""Final per-document ``quality`` in [0, 1] from heuristic signals and the embedding classifier.

Formula (defaults in ``QualityWeights``):

1. Heuristic score ``h``: for each rule family (gopher, c4, fineweb) the fraction of its individual
   ``pass_*`` rules that passed, averaged over the families (so the 10 Gopher rules do not outweigh
   the 3 C4 and 3 FineWeb rules)::

       h = mean_f ( passed_rules(f) / n_rules(f) )

2. Blend with the classifier probability ``p`` (P(reference-like), ``QualityClassifier.predict``)::

       q = (w_c * p + w_h * h) / (w_c + w_h)          w_c = 0.5, w_h = 0.5

   Without a classifier (``classifier_prob is None``), or for rows where ``p`` is NaN, ``q = h``.

3. Hard-fail cap: when any rule in ``hard_fail_rules`` fails, the document is not usable text
   whatever the classifier says, so ``q = min(q, hard_fail_cap)`` (0.2). Defaults: Gopher word
   count (too short / too long), Gopher alphabetic words (not prose), Gopher stop words (not
   English prose), C4 fatal patterns ("lorem ipsum" placeholder pages).

``q`` is clipped to [0, 1]. It is non-decreasing in ``p`` and in every pass flag, so passing one
more rule or a higher classifier probability never lowers a document's quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crawlmix.quality.heuristics import rule_columns


@dataclass(frozen=True)
class QualityWeights:
    classifier: float = 0.5
    heuristic: float = 0.5
    hard_fail_rules: tuple[str, ...] = (
        "pass_gopher_word_count", "pass_gopher_alpha_words", "pass_gopher_stop_words",
        "pass_c4_fatal_patterns")
    hard_fail_cap: float = 0.2


def heuristic_score(signals: pd.DataFrame) -> np.ndarray:
    """Mean over families of the fraction of that family's rules passed (float64 in [0, 1])."""
    per_family = []
    for cols in rule_columns().values():
        missing = [c for c in cols if c not in signals.columns]
        if missing:
            raise KeyError(f"signals lack rule columns {missing}; use heuristic_signals()")
        per_family.append(signals[cols].to_numpy(dtype=np.float64).mean(axis=1))
    if not per_family:
        return np.ones(len(signals))
    return np.mean(np.vstack(per_family), axis=0) if len(signals) else np.zeros(0)


def combine_quality(signals: pd.DataFrame, classifier_prob: np.ndarray | None = None,
                    weights: QualityWeights = QualityWeights()) -> np.ndarray:
    """Final ``quality`` per row of ``signals`` (see the module docstring for the formula)."""
    if weights.classifier < 0 or weights.heuristic < 0 or \
            weights.classifier + weights.heuristic <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    h = heuristic_score(signals)
    q = h.copy()
    if classifier_prob is not None:
        p = np.asarray(classifier_prob, dtype=np.float64).ravel()
        if len(p) != len(h):
            raise ValueError(f"classifier_prob has {len(p)} rows, signals {len(h)}")
        ok = ~np.isnan(p)
        blended = (weights.classifier * np.clip(p, 0.0, 1.0) + weights.heuristic * h) / (
            weights.classifier + weights.heuristic)
        q = np.where(ok, blended, h)
    if weights.hard_fail_rules and len(q):
        missing = [c for c in weights.hard_fail_rules if c not in signals.columns]
        if missing:
            raise KeyError(f"signals lack hard-fail rule columns {missing}")
        hard_ok = signals[list(weights.hard_fail_rules)].to_numpy(dtype=bool).all(axis=1)
        q = np.where(hard_ok, q, np.minimum(q, weights.hard_fail_cap))
    return np.clip(q, 0.0, 1.0)
