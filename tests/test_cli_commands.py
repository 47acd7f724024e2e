"""README promises about `crawlmix run`, `crawlmix ui` and what a run leaves in the instance, checked
as a user meets them: each command a subprocess on a throwaway CRAWLMIX_HOME.

* `crawlmix run --snapshots ROOT [--snapshot ID ...] [--refit]` registers every complete snapshot
  under the root (or only the named ones; a folder without `_SUCCESS` never), runs every stage for
  them, and fits the centroids only when none exist, or with `--refit`.
* `cluster_labels` has a non-blocking `centroid_drift` check that warns when a snapshot sits farther
  from the centroids than the sample they were fit on: a snapshot of cooking recipes labelled
  against centroids fit on software documentation warns, and its run goes on.
* Each check evaluation carries the Great Expectations result; plots sit in the materialization
  metadata (cluster sizes, the centroid map, the quality histogram, the mixture composition).
* Every Parquet file records what made it (code, config, centroid, classifier or model versions).
* `crawlmix ui [--port N]` serves the Dagster UI of this project on 127.0.0.1:N only, on the same
  Dagster instance the other commands use (`$CRAWLMIX_HOME/dagster`), with the stages as jobs.

What the commands print is checked in tests/test_cli_output.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance, EventRecordsFilter, RunsFilter

from crawlmix.quality import REFERENCE_SET_PATH, load_reference_texts
from curation_assets.partitions import split_partition_key
from tests.conftest import REPO_ROOT, _free_port, crawlmix_env

MIXTURES_YAML = """
mixtures:
  - name: cli-mix
    scope: all
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 8}
    policy: weighted
    options: {level: top, temperature: 1.0, max_repeats: 2}
    seed: 0
"""
DOCS, RECIPES, INCOMPLETE = "crawl-docs", "crawl-recipes", "crawl-partial"

DISHES = ["lentil soup", "tomato sauce", "apple pie", "risotto", "flatbread", "vegetable curry", "pancakes",
          "roast potatoes", "bean chili", "lemon cake", "mushroom stew", "pumpkin soup", "omelette", "rice pudding",
          "onion tart", "carrot salad"]
STEPS = [
    "Chop the onions finely and soften them in butter over a low flame until they turn golden.",
    "Add two cloves of crushed garlic, a pinch of salt and a spoonful of sugar, and stir well.",
    "Pour in the stock, bring it to the boil, then let it simmer gently for twenty minutes.",
    "Whisk the eggs with the milk and the flour until the batter is smooth and free of lumps.",
    "Bake in a hot oven for forty minutes, until the top is brown and the middle is set.",
    "Season with pepper, fresh parsley and a squeeze of lemon just before serving.",
    "Leave the dough to rest under a damp cloth for an hour before you roll it out.",
    "Serve warm with crusty bread, a green salad and a glass of cold cider.",
]


def _recipes() -> list[str]:
    """Real English prose about cooking, far from the software documentation of the other snapshot."""
    return [
        f"How to make {dish} at home. " + " ".join(STEPS[(i + j) % len(STEPS)] for j in range(5))
        + f" This {dish} keeps for two days in a cool pantry."
        for i, dish in enumerate(DISHES)
    ]


def _write_snapshot(root: Path, snapshot: str, texts: list[str], complete: bool = True) -> None:
    folder = root / snapshot
    folder.mkdir(parents=True)
    lines = [json.dumps({"url": f"https://example.org/{snapshot}/{i}", "text": t}) for i, t in enumerate(texts)]
    (folder / "part-0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if complete:
        (folder / "_SUCCESS").touch()


def _crawlmix(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )


def _instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(home / "dagster"))


def _state(home: Path) -> dict:
    """What the home's instance and storage say: registered snapshots, fit runs, the current
    centroid version and the versions each snapshot's newest labels were made with."""
    instance = _instance(home)
    try:
        snapshots = sorted(instance.get_dynamic_partitions("crawl_snapshots"))
        fits = instance.get_run_records(RunsFilter(job_name="fit_centroids"))
        latest = {}  # partition -> centroid version of its newest labels (records come newest first)
        for record in instance.fetch_materializations(AssetKey("cluster_labels"), limit=100).records:
            latest.setdefault(record.partition_key, record.asset_materialization.metadata["centroid_version"].value)
    finally:
        instance.dispose()
    current = json.loads((home / "storage" / "centroids" / "global" / "current.json").read_text())["version"]
    labels = {}
    for partition, version in latest.items():
        labels.setdefault(split_partition_key(partition)[0], set()).add(version)
    return {"snapshots": snapshots, "fits": len(fits), "current": current, "labels": labels}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three `crawlmix run`s on one home: the documentation snapshot alone (first fit), then every
    complete snapshot (the recipes join, no refit), then every one with --refit."""
    root = tmp_path_factory.mktemp("cli-commands")
    snapshots = root / "snapshots"
    texts = [t[:600] for t in load_reference_texts(str(REFERENCE_SET_PATH))]
    _write_snapshot(snapshots, DOCS, texts[0:48:3])
    _write_snapshot(snapshots, RECIPES, _recipes())
    _write_snapshot(snapshots, INCOMPLETE, texts[60:64], complete=False)  # still being copied
    (root / "mixtures.yaml").write_text(MIXTURES_YAML)
    home = root / "home"
    env = crawlmix_env(home)
    env.update(CRAWLMIX_SHARDS="1", CRAWLMIX_DEVICE="cpu", CRAWLMIX_MIXTURES=str(root / "mixtures.yaml"))
    runs, states = [], []
    for args in (["--snapshot", DOCS], [], ["--refit"]):
        proc = _crawlmix(env, "run", "--snapshots", str(snapshots), *args)
        assert proc.returncode == 0, f"crawlmix run {args}:\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
        runs.append(proc)
        states.append(_state(home))
    return {"home": home, "runs": runs, "states": states}


@pytest.mark.e2e
def test_run_registers_complete_snapshots_and_fits_centroids_only_when_none_exist_or_asked(world):
    first, second, third = world["states"]
    # --snapshot: only the named snapshot; the first run fits the centroids (none existed)
    assert first["snapshots"] == [DOCS]
    assert first["fits"] == 1
    assert first["labels"] == {DOCS: {first["current"]}}
    # no --snapshot: every complete snapshot under the root; the centroids exist, so no refit
    assert second["snapshots"] == [DOCS, RECIPES], "an incomplete snapshot was registered, or one was missed"
    assert second["fits"] == 1 and second["current"] == first["current"]
    assert second["labels"] == {DOCS: {first["current"]}, RECIPES: {first["current"]}}
    # --refit: a new fit although centroids exist, and every snapshot is labelled against it
    assert third["fits"] == 2
    assert third["current"] != first["current"], "a refit on more data kept the old centroid version"
    assert third["labels"] == {DOCS: {third["current"]}, RECIPES: {third["current"]}}
    assert not (world["home"] / "storage" / "raw_corpus" / INCOMPLETE).exists()


def _check_evaluations(home: Path, check: str) -> list[tuple[str | None, object]]:
    """(partition, evaluation) of every evaluation of the check named `check`, newest first."""
    instance = _instance(home)
    try:
        records = instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=10_000
        )
        out = []
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            if evaluation.check_name != check:
                continue
            partition = evaluation.partition
            if partition is None:  # the run's partition, which the check was evaluated on
                run = instance.get_run_by_id(record.run_id)
                partition = run.tags.get("dagster/partition") if run else None
            out.append((partition, evaluation))
    finally:
        instance.dispose()
    return out


@pytest.mark.e2e
def test_centroid_drift_warns_for_a_snapshot_far_from_the_centroids_and_blocks_nothing(world):
    drift = {}
    for partition, evaluation in reversed(_check_evaluations(world["home"], "centroid_drift")):
        drift.setdefault(split_partition_key(partition)[0], []).append(evaluation)  # oldest first
    # the second run labelled the recipes against centroids fit on documentation alone
    recipes_then = drift[RECIPES][0]
    assert not recipes_then.passed and recipes_then.severity == AssetCheckSeverity.WARN
    assert recipes_then.metadata["drift_ratio"].value > recipes_then.metadata["max_drift_ratio"].value
    assert "consider refitting centroids" in recipes_then.description
    assert all(e.passed for e in drift[DOCS]), "the fit sample's own snapshot warned"
    # a warning, not a gate: that same run scored the recipes and built the mixture
    instance = _instance(world["home"])
    try:
        scored = instance.get_materialized_partitions(AssetKey("quality_scores"))
    finally:
        instance.dispose()
    assert any(split_partition_key(key)[0] == RECIPES for key in scored)
    # after the refit on both snapshots, the recipes sit near their centroids too
    assert drift[RECIPES][-1].passed


@pytest.mark.e2e
def test_every_gate_evaluation_carries_its_great_expectations_result(world):
    evaluations = _check_evaluations(world["home"], "expectations")
    assets = {e.asset_key.to_user_string() for _, e in evaluations}
    assert {"raw_corpus", "embeddings", "centroids", "cluster_labels", "semantic_duplicates",
            "quality_scores", "final_mixtures"} <= assets
    for _, evaluation in evaluations:
        results = evaluation.metadata["ge_results"].value
        statistics = evaluation.metadata["ge_statistics"].value
        assert results and all({"expectation", "success"} <= set(r) for r in results), evaluation
        assert statistics["evaluated_expectations"] == len(results)
        assert evaluation.passed == all(r["success"] for r in results)


def _png_size(markdown: str) -> tuple[int, int]:
    """(width, height) of the PNG a Markdown image embeds as a data URI; fails if it is not one."""
    match = re.search(r"\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:200]
    png = base64.b64decode(match.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest.mark.e2e
@pytest.mark.parametrize(("asset", "entry"), [
    ("centroids", "cluster_sizes"), ("centroids", "centroid_map"), ("cluster_labels", "cluster_sizes"),
    ("quality_scores", "quality_plot"), ("final_mixtures", "composition_plot"),
])
def test_plots_sit_in_the_materialization_metadata(world, asset, entry):
    instance = _instance(world["home"])
    try:
        event = instance.get_latest_materialization_event(AssetKey(asset))
    finally:
        instance.dispose()
    width, height = _png_size(event.asset_materialization.metadata[entry].value)
    assert width >= 300 and height >= 200


@pytest.mark.e2e
@pytest.mark.parametrize("asset", ["raw_corpus", "embeddings", "cluster_labels", "quality_scores"])
def test_each_partition_materialization_carries_path_rows_checksum_and_versions(world, asset):
    instance = _instance(world["home"])
    try:
        records = instance.fetch_materializations(AssetKey(asset), limit=100).records
    finally:
        instance.dispose()
    assert records
    for record in records:
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        snapshot, shard = split_partition_key(record.partition_key)
        assert meta["path"].endswith(f"/{asset}/{snapshot}/{shard}.{'npy' if asset == 'embeddings' else 'parquet'}")
        assert isinstance(meta["dagster/row_count"], int) and len(meta["sha256"]) == 64
        assert meta["code_version"]
        if asset == "raw_corpus":  # quarantine counts by reason, throughput and the config version
            assert isinstance(meta["quarantine_by_reason"], dict) and meta["docs_per_s"] > 0
            assert meta["config_hash"]
        if asset == "cluster_labels":
            assert meta["centroid_version"]
        if asset == "embeddings":  # the model that made the vectors (its files cannot say)
            assert meta["model_id"] and meta["weights_hash"]


# What each kind of Parquet file records about what made it (README, Outputs), by storage folder.
PROVENANCE = {
    "raw_corpus": {"code_version", "config_hash"},
    "quarantine": {"code_version", "config_hash"},
    "cluster_labels": {"code_version", "centroid_version"},
    "content_index": {"code_version", "centroid_version"},
    "semantic_duplicates": {"code_version", "centroid_version", "eps", "order", "scope"},
    "quality_scores": {"code_version", "classifier"},
    "final_mixtures": {"mixture", "version", "policy", "size", "centroid_version", "model_id", "embedding_version"},
}


@pytest.mark.e2e
def test_every_parquet_file_records_what_made_it(world):
    storage = world["home"] / "storage"
    files = sorted(storage.rglob("*.parquet"))
    kinds = {p.relative_to(storage).parts[0] for p in files}
    assert kinds == set(PROVENANCE) | {"embeddings"}, kinds
    missing = {}
    for path in files:
        raw = (pq.read_schema(path).metadata or {}).get(b"crawlmix")
        provenance = json.loads(raw) if raw else {}
        kind = path.relative_to(storage).parts[0]
        if kind == "embeddings":
            # the row ids beside the vectors: their versions are in the materialization metadata
            assert path.name.endswith(".ids.parquet"), path
            continue
        absent = sorted(PROVENANCE[kind] - set(provenance))  # (classifier is null when none was fit)
        if absent:
            missing[str(path.relative_to(storage))] = absent
    assert missing == {}, f"Parquet files not recording what made them: {missing}"


# ------------------------------------------------------------------------------------------------
# crawlmix ui


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(FileNotFoundError), open(table) as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                    continue
                if width == 8:
                    found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add("ipv6:" + address)
    return found


PARTITIONS_QUERY = """
{ assetNodeOrError(assetKey: {path: ["raw_corpus"]}) { __typename ... on AssetNode { partitionKeys } } }
"""
JOBS_QUERY = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name jobs { name } } } } }
"""
STAGE_JOBS = {"crawl_pipeline", "fit_centroids", "label_shards", "semantic_dedup", "score_shards", "build_mixture"}


@pytest.mark.e2e
def test_ui_serves_this_projects_instance_on_localhost_only(tmp_path):
    home = tmp_path / "home"
    # a snapshot registered in the instance the other commands use (`$CRAWLMIX_HOME/dagster`)
    (home / "dagster").mkdir(parents=True)
    instance = DagsterInstance.from_config(str(home / "dagster"))
    instance.add_dynamic_partitions("crawl_snapshots", ["ui-probe"])
    instance.dispose()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawlmix.cli", "ui", "--port", str(port)],
            env=crawlmix_env(home), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline, keys, last = time.monotonic() + 240, None, "no answer"
        while time.monotonic() < deadline and keys is None:
            assert proc.poll() is None, f"crawlmix ui exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            try:
                node = _graphql(url, PARTITIONS_QUERY)["data"]["assetNodeOrError"]
            except (urllib.error.URLError, ConnectionError, OSError, KeyError, TypeError) as exc:
                last = repr(exc)
            else:
                last = json.dumps(node)[:500]
                if node.get("__typename") == "AssetNode":
                    keys = node["partitionKeys"]
            time.sleep(0.5)
        assert keys is not None, f"the UI never served the crawlmix code location: {last}\n{log.read_text()[-3000:]}"
        assert "000|ui-probe" in keys, "the UI does not show the instance under $CRAWLMIX_HOME/dagster"
        # the stages are jobs the UI can launch
        repositories = _graphql(url, JOBS_QUERY)["data"]["repositoriesOrError"]["nodes"]
        assert STAGE_JOBS <= {job["name"] for repo in repositories for job in repo["jobs"]}
        assert _listening_addresses(port) == {"127.0.0.1"}, "the UI listens beyond localhost"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
