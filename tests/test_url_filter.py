"""URL and domain blocklists: list formats, host normalisation, subdomains, and raw_corpus quarantine."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from crawlmix.ingest.url_filter import UrlBlocklist, normalise_host
from crawlmix.settings import Settings, SettingsError
from curation_assets.definitions import build_definitions
from tests.dagster_harness import make_snapshot, run_partition, settings_for


def _ut1(root):
    """A UT1-style tree: blacklists/<category>/domains and urls."""
    (root / "blacklists" / "gambling").mkdir(parents=True)
    (root / "blacklists" / "gambling" / "domains").write_text("casino.example\nbet.example\n")
    (root / "blacklists" / "gambling" / "urls").write_text("news.example/betting\n")
    (root / "blacklists" / "adult").mkdir()
    (root / "blacklists" / "adult" / "domains").write_text("xxx.example\n")
    return root / "blacklists"


def test_plain_list_entries_match_the_domain_and_its_subdomains_only(tmp_path):
    listing = tmp_path / "spam.txt"
    listing.write_text("# spam hosts\nspam.example\n0.0.0.0 tracker.example  # hosts-file line\n"
                       "https://bad.example/any/page\nBÜCHER.example\n\n")
    blocklist = UrlBlocklist.load([str(listing)])
    assert len(blocklist) == 4
    for url in ("https://spam.example/", "http://www.spam.example:8080/x", "https://a.b.spam.example/p?q=1",
                "https://tracker.example", "https://bad.example/any/page/2", "https://xn--bcher-kva.example/",
                "https://bücher.example/katalog", "spam.example/no-scheme", "HTTPS://SPAM.EXAMPLE./"):
        blocked = blocklist.match(url)
        assert blocked is not None and blocked.list_name == "spam", url
    for url in ("https://notspam.example/", "https://spam.example.org/", "https://example/", None, "", "mailto:x",
                "https://bad.example/other"):  # a URL entry blocks that URL and below, not its whole site
        assert blocklist.match(url) is None, url
    assert blocklist.match("https://a.b.spam.example/").describe() == "list spam: spam.example"
    assert normalise_host("WWW.Spam.Example:443.") == "spam.example"


def test_ut1_folders_are_one_list_per_category_with_url_prefixes_at_segment_boundaries(tmp_path):
    blocklist = UrlBlocklist.load([str(_ut1(tmp_path))])
    assert set(blocklist.sources) == {"gambling", "adult"}
    assert blocklist.match("https://eu.casino.example/poker").list_name == "gambling"
    assert blocklist.match("https://xxx.example/").list_name == "adult"
    assert blocklist.match("https://news.example/betting/odds").describe() == "list gambling: news.example/betting"
    assert blocklist.match("https://news.example/betting") is not None
    assert blocklist.match("https://news.example/bettingtips") is None  # not a path segment
    assert blocklist.match("https://news.example/politics") is None
    # the category folder itself works too
    assert UrlBlocklist.load([str(tmp_path / "blacklists" / "adult")]).match("https://xxx.example/").list_name == "adult"


def test_missing_lists_and_empty_folders_are_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        UrlBlocklist.load([str(tmp_path / "nope.txt")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="UT1"):
        UrlBlocklist.load([str(tmp_path / "empty")])
    with pytest.raises(SettingsError, match="CRAWLMIX_URL_BLOCKLISTS"):
        Settings.from_env({"CRAWLMIX_HOME": str(tmp_path / "home"), "CRAWLMIX_URL_BLOCKLISTS": str(tmp_path / "nope")})
    listing = tmp_path / "a.txt"
    listing.write_text("a.example\n")
    settings = Settings.from_env({"CRAWLMIX_HOME": str(tmp_path / "home"),
                                  "CRAWLMIX_URL_BLOCKLISTS": f"{listing}, {tmp_path / 'empty'}"})
    assert settings.url_blocklists == (str(listing.resolve()), str((tmp_path / "empty").resolve()))


def test_raw_corpus_quarantines_blocked_pages_with_the_list_and_the_gate_does_not_count_them(tmp_path):
    """Every page of one file is blocked (more than the gate's 30% of bad input): the pages land in
    quarantine as blocked_url naming the list, and the gate passes: a policy removal is not bad input."""
    blacklists = _ut1(tmp_path / "lists")
    (blacklists / "docs").mkdir()
    (blacklists / "docs" / "urls").write_text("docs.example.org/snap-a/1\n")  # all of file 1's pages
    settings = settings_for(tmp_path / "home", shards=1, CRAWLMIX_URL_BLOCKLISTS=str(blacklists))
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=2)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        result = run_partition(defs, instance, "snap-a", "000", "crawl_pipeline", assets=["raw_corpus"])
        assert result.success
        checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert checks and all(c.passed for c in checks)
        meta = result.asset_materializations_for_node("raw_corpus")[0].metadata
        assert meta["blocked_urls_removed"].value == 5
        assert set(meta["url_blocklists"].value) == {"adult", "docs", "gambling"}
    storage = tmp_path / "home" / "storage"
    quarantine = pq.read_table(storage / "quarantine" / "snap-a" / "000.parquet").to_pandas()
    blocked = quarantine[quarantine["reason"] == "blocked_url"]
    assert len(blocked) == 5 and set(blocked["detail"]) == {"list docs: docs.example.org/snap-a/1"}
    docs = pq.read_table(storage / "raw_corpus" / "snap-a" / "000.parquet").to_pandas()
    assert not docs["url"].str.contains("/snap-a/1/").any() and len(docs) == 5
