from pathlib import Path

import pytest

from crawlmix.settings import Settings, SettingsError, shard_keys


def test_defaults_live_under_home(tmp_path):
    settings = Settings.from_env({"CRAWLMIX_HOME": str(tmp_path / "home")})
    home = (tmp_path / "home").resolve()
    assert settings.home == home
    assert settings.snapshots_root == str(home / "snapshots")
    assert settings.storage_root == str(home / "storage")
    assert settings.warehouse_url == f"duckdb:///{home / 'warehouse.duckdb'}"
    assert settings.dagster_home == home / "dagster"
    assert settings.shards == 4
    assert settings.shard_keys == ["000", "001", "002", "003"]


def test_explicit_values_are_used(tmp_path):
    settings = Settings.from_env(
        {
            "CRAWLMIX_HOME": str(tmp_path),
            "CRAWLMIX_SNAPSHOTS": "s3://crawl-bucket/snapshots/",
            "CRAWLMIX_STORAGE": "s3://curated-bucket/out",
            "CRAWLMIX_SHARDS": "250",
            "CRAWLMIX_WAREHOUSE_URL": "postgresql://crawl@127.0.0.1:5432/test",
            "CRAWLMIX_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    assert settings.snapshots_root == "s3://crawl-bucket/snapshots"
    assert settings.storage_root == "s3://curated-bucket/out"
    assert settings.shards == 250
    assert settings.warehouse_url.startswith("postgresql://")
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("CRAWLMIX_SHARDS", "zero", "CRAWLMIX_SHARDS must be a whole number from 1 to 4096"),
        ("CRAWLMIX_SHARDS", "0", "CRAWLMIX_SHARDS must be a whole number from 1 to 4096"),
        ("CRAWLMIX_SHARDS", "5000", "CRAWLMIX_SHARDS must be a whole number from 1 to 4096"),
        ("CRAWLMIX_SNAPSHOTS", "gs://bucket/x", "CRAWLMIX_SNAPSHOTS must be a local folder or s3://"),
        ("CRAWLMIX_SNAPSHOTS", "s3://UPPER_case/x", "CRAWLMIX_SNAPSHOTS must be a local folder or s3://"),
        ("CRAWLMIX_STORAGE", "http://x/y", "CRAWLMIX_STORAGE must be a local folder or s3://"),
        ("CRAWLMIX_WAREHOUSE_URL", "not a url", "CRAWLMIX_WAREHOUSE_URL must be a SQLAlchemy URL"),
        ("CRAWLMIX_WAREHOUSE_URL", "mysql://u@h/db", "CRAWLMIX_WAREHOUSE_URL must use one of the dialects"),
        ("CRAWLMIX_WAREHOUSE_URL", "duckdb://", "CRAWLMIX_WAREHOUSE_URL for DuckDB must name a database file"),
        ("CRAWLMIX_S3_ENDPOINT_URL", "127.0.0.1:9000", "CRAWLMIX_S3_ENDPOINT_URL must be an http(s)://"),
        ("CRAWLMIX_SNAPSHOTS_PER_TICK", "-1", "CRAWLMIX_SNAPSHOTS_PER_TICK must be a whole number"),
    ],
)
def test_invalid_settings_name_the_setting(tmp_path, name, value, expected):
    with pytest.raises(SettingsError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({"CRAWLMIX_HOME": str(tmp_path), name: value})


def test_warehouse_error_never_echoes_the_password(tmp_path):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_WAREHOUSE_URL": "oracle://u:hunter2@h/db"})
    assert "hunter2" not in str(err.value)


def test_shard_keys_sort_as_text_and_number():
    keys = shard_keys(1200)
    assert keys[0] == "0000" and keys[-1] == "1199"
    assert keys == sorted(keys)


def test_definitions_fail_at_load_on_a_bad_setting(tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_SHARDS": "many"}
    proc = subprocess.run(
        [sys.executable, "-c", "import curation_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode != 0
    assert "CRAWLMIX_SHARDS must be a whole number" in proc.stderr
