"""Document quality: language identification, heuristic rules (Gopher/C4/FineWeb) applied by
language, an embedding classifier against a reference set (CCNet/DCLM idea), and the final
combined score. Pure Python, no Dagster."""

from crawlmix.quality.classifier import (
    REFERENCE_SET_PATH,
    QualityClassifier,
    load_reference_texts,
)
from crawlmix.quality.heuristics import (
    RULE_FAMILIES,
    SIGNAL_COLUMNS,
    HeuristicThresholds,
    all_rule_columns,
    heuristic_signals,
    rule_applies,
    rule_columns,
    rules_applied,
)
from crawlmix.quality.language import UNDETERMINED, identify_languages
from crawlmix.quality.score import QualityWeights, combine_quality, heuristic_score

__all__ = [
    "REFERENCE_SET_PATH",
    "RULE_FAMILIES",
    "SIGNAL_COLUMNS",
    "HeuristicThresholds",
    "QualityClassifier",
    "QualityWeights",
    "all_rule_columns",
    "combine_quality",
    "heuristic_score",
    "heuristic_signals",
    "load_reference_texts",
    "identify_languages",
    "rule_applies",
    "rule_columns",
    "rules_applied",
    "UNDETERMINED",
]
