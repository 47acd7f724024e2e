"""The Dagster UI on the materialized demo, in a real headless Chromium (Debian's package).

`dagster-webserver` runs as a user opens it (workspace.yaml, the demo's CRAWLMIX_HOME and its
DAGSTER_HOME = <home>/dagster) in its own process group, stopped at teardown. Playwright drives the
system Chromium; no browser is downloaded. Screenshots land in test-artifacts/ui/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT, _free_port, crawlmix_env

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}
LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message stack } } } } } }
"""


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail(
            "Chromium is not installed: the UI test drives Debian's `chromium` package "
            "(apt-get install chromium chromium-driver; .ci/run installs it)"
        )
    return found


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for_location(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until the webserver answers and the crawlmix code location has loaded (or failed to)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            entries = _graphql(url, LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, OSError, KeyError, TypeError) as exc:
            last = repr(exc)
        else:
            entry = next((e for e in entries if e["name"] == "crawlmix"), None)
            last = json.dumps(entries)[:2000]
            if entry and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"]
                assert loaded["__typename"] == "RepositoryLocation", f"code location failed to load: {loaded}"
                return
        time.sleep(0.5)
    raise AssertionError(f"code location not loaded after {timeout:.0f} s ({last}); log:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def _webserver(home: Path, dagster_home: Path, log: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**crawlmix_env(home), **OFFLINE_ENV, "DAGSTER_HOME": str(dagster_home), **(extra_env or {})}
    command = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as out:
        # Own session: the webserver and the code server it spawns form one group, stopped together.
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_location(url, proc, log, timeout=120)
        yield url
    finally:
        _stop_group(proc)


@pytest.fixture(scope="module")
def webserver(demo_home, tmp_path_factory) -> Iterator[str]:
    home, _ = demo_home
    log = tmp_path_factory.mktemp("webserver") / "dagster-webserver.log"
    with _webserver(home, home / "dagster", log) as url:
        yield url


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # The code server may outlive a webserver that was already gone; the group id is the webserver's pid.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module: Playwright's sync API allows one driver per thread at a time."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def _browser_page(browser, base_url: str):
    context = browser.new_context(viewport={"width": 1600, "height": 1400}, base_url=base_url)
    context.set_default_timeout(30_000)
    # The once-per-browser "join the community" dialog would cover the page; a user dismisses it once.
    context.add_init_script("window.localStorage.setItem('communityNux', 'true')")
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def page(browser, webserver):
    with _browser_page(browser, webserver) as opened:
        yield opened


@pytest.fixture(scope="module")
def definition_asset_keys() -> set[str]:
    from curation_assets.definitions import defs

    return {key.to_user_string() for key in defs.resolve_all_asset_keys()}


def _save(page, name: str, **options) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **options)
    print(f"screenshot: {path}")
    return path


def _open(page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")


def _shown_as(label: str, key: str) -> bool:
    """The graph's compact nodes cut long names in the middle (`semant…_duplicates`)."""
    if "…" not in label:
        return label == key
    head, tail = label.split("…", 1)
    return key.startswith(head) and key.endswith(tail) and len(head) + len(tail) < len(key)


def test_asset_catalog_lists_every_asset_materialized(page, definition_asset_keys):
    _open(page, "/assets")
    # One row per asset (a virtualized list: the tall viewport keeps every row rendered).
    row_links = '[class*="VirtualizedAssetRow_rowGrid"] a[href^="/assets/"]'
    expect(page.locator(row_links)).to_have_count(len(definition_asset_keys))
    hrefs = page.locator(row_links).evaluate_all("links => links.map(a => a.getAttribute('href'))")
    listed = {href.removeprefix("/assets/").split("?")[0] for href in hrefs}
    assert listed == definition_asset_keys
    # The UI reads the demo's instance (DAGSTER_HOME): every asset has a materialization there.
    assert page.get_by_text("Never materialized").count() == 0
    _save(page, "catalog.png")


def test_asset_graph_shows_every_asset_in_its_group(page, definition_asset_keys):
    from curation_assets.definitions import defs

    groups = sorted({spec.group_name for spec in defs.resolve_all_asset_specs()})
    _open(page, "/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in groups))
    names = page.locator('foreignObject [class*="AssetNode_assetName"]')
    expect(names).to_have_count(len(definition_asset_keys))
    labels = names.all_inner_texts()
    assert len(labels) == len(definition_asset_keys), labels
    for key in definition_asset_keys:
        assert sum(_shown_as(label, key) for label in labels) == 1, (key, labels)
    # Status colours arrive after the layout: every node turns green once the UI has read the demo's
    # materializations (all partitions of every asset, checks passed).
    expect(page.locator('foreignObject [class*="minimalAssetNodeBox"][style*="background-green"]')).to_have_count(
        len(definition_asset_keys)
    )
    texts = [t.strip() for t in page.locator("foreignObject").all_text_contents()]
    assert all(any(t.startswith(g) for t in texts) for g in groups), (groups, texts)
    path = _save(page, "asset-graph.png")
    assert path.stat().st_size > 20_000  # a drawn graph, not a blank page


@pytest.mark.parametrize(("asset", "entry", "size"), [
    ("centroids", "centroid_map", (600, 350)),
    ("centroids", "cluster_sizes", (600, 350)),
])
def test_centroids_metadata_shows_rendered_plots(page, asset, entry, size):
    _open(page, f"/assets/{asset}")
    row = page.locator("tr").filter(has=page.get_by_text(entry, exact=True)).filter(has_text="[Show Markdown]")
    row.first.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    image = dialog.locator('img[src^="data:image/png;base64,"]')
    image.wait_for()
    # decode() resolves once the PNG is decoded and rejects when it cannot be: naturalWidth > 0 is a real render.
    assert tuple(image.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")) == size
    assert image.bounding_box()["width"] > 100  # laid out on screen, not hidden
    _save(dialog, f"{asset}-{entry}.png")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


def test_asset_page_loads_with_200_snapshots_x_8_shards_registered(browser, tmp_path):
    """Load: the partition space of a long-running deployment (1,600 partitions) still renders."""
    from tests.load_fixtures import make_registered_instance

    deployment = make_registered_instance(tmp_path / "home", n_snapshots=200, n_shards=8)
    deployment.instance.dispose()
    with _webserver(deployment.home, deployment.home / "dagster", tmp_path / "webserver.log", deployment.env) as url:
        with _browser_page(browser, url) as page:
            started = time.monotonic()
            _open(page, "/assets/raw_corpus?view=partitions")
            expect(page.get_by_text("1,600 Partitions", exact=False).first).to_be_visible()
            expect(page.get_by_text("Missing (1600)").first).to_be_visible()
            elapsed = time.monotonic() - started
            _save(page, "raw_corpus-partitions-200x8.png")
    print(f"raw_corpus partitions page with 200 x 8 partitions: {elapsed:.1f} s")
    assert elapsed < 30
