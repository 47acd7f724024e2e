"""The shape every blocking gate returns: a Great Expectations outcome as a Dagster check result."""

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from crawlmix.expectations import SuiteOutcome


def aligned_with(frame: pd.DataFrame, ids: list, column: str) -> pd.DataFrame:
    """`frame` with the expected `ids` beside it as `column`, both padded to the longer of the two,
    so a row-count mismatch shows up as unequal ids instead of a silently shorter comparison."""
    rows = max(len(frame), len(ids))
    out = frame.reindex(range(rows))
    out[column] = list(ids) + [None] * (rows - len(ids))
    return out


def gate_result(outcome: SuiteOutcome, **metadata) -> AssetCheckResult:
    """ERROR severity (blocking downstream when it fails), GE's statistics and per-expectation results
    in the metadata, and the failed expectations spelled out in the description."""
    return AssetCheckResult(
        passed=outcome.success,
        severity=AssetCheckSeverity.ERROR,
        description=None if outcome.success else outcome.describe_failures()[:2000],
        metadata={
            **metadata,
            "ge_statistics": MetadataValue.json(outcome.statistics),
            "ge_results": MetadataValue.json(outcome.expectations),
        },
    )
