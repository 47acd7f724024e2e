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


def table_facts(**facts) -> pd.DataFrame:
    """One row of facts about the whole partition (counts, dimension, spread) for a suite of its own.

    Per-row expectations pass vacuously on a partition without rows, which is right for the rows
    (an empty shard has nothing wrong in it) but would wave through a wrong count or shape; a
    one-row frame of facts is judged whatever the partition's size."""
    return pd.DataFrame([facts])


def combined(*outcomes: SuiteOutcome) -> SuiteOutcome:
    """Several suites of one gate as one outcome: passed when all passed, statistics summed."""
    evaluated = sum(int(o.statistics.get("evaluated_expectations", 0)) for o in outcomes)
    successful = sum(int(o.statistics.get("successful_expectations", 0)) for o in outcomes)
    return SuiteOutcome(
        suite_name="+".join(o.suite_name for o in outcomes),
        success=all(o.success for o in outcomes),
        statistics={
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "unsuccessful_expectations": evaluated - successful,
            "success_percent": round(100.0 * successful / evaluated, 6) if evaluated else 100.0,
        },
        expectations=[e for o in outcomes for e in o.expectations],
    )


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
