"""The shape every blocking gate returns: a Great Expectations outcome as a Dagster check result."""

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from crawlmix.expectations import SuiteOutcome


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
