"""README: which checks gate which asset, read from the one `Definitions` the code location loads.

Every asset computed in Python has a blocking Great Expectations check named `expectations`, every
dbt report model has its dbt tests as blocking checks, `cluster_labels` also has the non-blocking
`centroid_drift` check, and `mixture_publication` has none of its own (it follows the blocking gate
of `final_mixtures`). What the checks do when they fail is tested with the assets (ingestion,
embedding, clustering, quality and mixture asset tests) and in tests/test_cli_commands.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON_ASSETS = ["raw_corpus", "embeddings", "centroids", "cluster_labels", "semantic_duplicates",
                 "quality_scores", "final_mixtures"]


@pytest.fixture(scope="module")
def checks_by_asset() -> dict[str, dict[str, bool]]:
    """asset -> {check name: blocking} for every materializable asset of the code location."""
    from curation_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    out = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            out[key.to_user_string()] = {c.name: graph.get_check_spec(c).blocking for c in node.check_keys}
    return out


def test_every_python_asset_has_a_blocking_expectations_gate(checks_by_asset):
    assert set(PYTHON_ASSETS) <= set(checks_by_asset)
    ungated = [a for a in PYTHON_ASSETS if checks_by_asset[a].get("expectations") is not True]
    assert ungated == [], f"assets without a blocking `expectations` check: {ungated}"


def test_cluster_labels_drift_check_warns_without_blocking(checks_by_asset):
    assert checks_by_asset["cluster_labels"]["centroid_drift"] is False


def test_every_dbt_report_model_is_gated_by_its_dbt_tests(checks_by_asset):
    models = {p.stem for p in (REPO / "dbt_project" / "models").rglob("*.sql")}
    assert models and models <= set(checks_by_asset)
    for model in models:
        checks = checks_by_asset[model]
        assert checks and all(checks.values()), f"{model}: {checks}"


def test_every_materializable_asset_is_accounted_for(checks_by_asset):
    models = {p.stem for p in (REPO / "dbt_project" / "models").rglob("*.sql")}
    # the only asset without a check of its own: it moves a pointer once final_mixtures' gate passed
    assert set(checks_by_asset) - set(PYTHON_ASSETS) - models == {"mixture_publication"}
    assert checks_by_asset["mixture_publication"] == {}
