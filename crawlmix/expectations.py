"""Run a Great Expectations 1.x suite on a DataFrame and summarise the result for check metadata.

GE is imported lazily: it costs seconds, and only the gate steps need it. Each call uses an
ephemeral context, so nothing is written to disk and runs never share state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Filled with GE expectation objects by the caller: (gx.expectations module) -> expectations.
SuiteBuilder = Callable[[Any], list[Any]]

_RESULT_KEYS = ("observed_value", "unexpected_count", "unexpected_percent", "partial_unexpected_list")


@dataclass
class SuiteOutcome:
    suite_name: str
    success: bool
    statistics: dict[str, Any]
    expectations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.expectations if not e["success"]]

    def describe_failures(self) -> str:
        return "; ".join(
            f"{e['expectation']}({_kwargs_text(e['kwargs'])}) observed {e['result']}" for e in self.failed
        )


def run_suite(frame: pd.DataFrame, suite_name: str, build: SuiteBuilder) -> SuiteOutcome:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(suite_name)
        .add_dataframe_asset(f"{suite_name}_frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=suite_name)
    for expectation in build(gx.expectations):
        suite.add_expectation(expectation)
    result = batch.validate(suite)
    return SuiteOutcome(
        suite_name=suite_name,
        success=bool(result.success),
        statistics={k: _plain(v) for k, v in result.statistics.items()},
        expectations=[_summarise(r) for r in result.results],
    )


def _summarise(validation_result: Any) -> dict[str, Any]:
    config = validation_result.expectation_config
    kwargs = {k: _plain(v) for k, v in config.kwargs.items() if k != "batch_id"}
    observed = {k: _plain(v) for k, v in (validation_result.result or {}).items() if k in _RESULT_KEYS}
    if "partial_unexpected_list" in observed:
        observed["partial_unexpected_list"] = [_short(v) for v in observed["partial_unexpected_list"][:5]]
    return {
        "expectation": config.type,
        "kwargs": kwargs,
        "success": bool(validation_result.success),
        "result": observed,
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


def _short(value: Any, limit: int = 80) -> Any:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())
