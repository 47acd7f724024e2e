"""Warehouse tests against a DuckDB file and the real local PostgreSQL, plus WarehouseResource."""

import datetime as dt
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from crawlmix.warehouse import (
    METADATA,
    TABLES,
    Warehouse,
    WarehouseError,
    WarehouseLockTimeout,
    default_duckdb_url,
    register_table,
)

NOW = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)


def stats_row(snapshot: str, shard: str, **over) -> dict:
    row = dict(
        snapshot=snapshot,
        shard=shard,
        n_input_files=3,
        n_records=100,
        n_docs=90,
        n_exact_duplicates=5,
        n_quarantined=5,
        input_bytes=5 * 2**32,  # needs BIGINT
        output_bytes=12345,
        quarantine_fraction=0.05,
        elapsed_s=1.25,
        config_hash="cfg-abc",
        code_version="0.1.0",
        materialized_at=NOW,
    )
    row.update(over)
    return row


def qrows(snapshot: str, shard: str, n: int = 3) -> list[dict]:
    return [dict(snapshot=snapshot, shard=shard, reason=f"reason_{i}", n=i + 1) for i in range(n)]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh_url(request) -> str:
    if request.param == "duckdb":
        return request.getfixturevalue("duckdb_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def wh(wh_url: str) -> Warehouse:
    w = Warehouse(wh_url, lock_timeout_s=30)
    yield w
    w.dispose()


def test_ensure_tables_idempotent(wh: Warehouse):
    wh.ensure_tables()
    wh.ensure_tables()
    names = set(sa.inspect(wh.engine).get_table_names())
    assert {"snapshot_shard_stats", "quarantine_counts"} <= names
    assert wh.count("snapshot_shard_stats") == 0
    # (SQLAlchemy 2.1's column reflection does not work through duckdb-engine; query instead.)
    cols = wh.read_frame("select * from snapshot_shard_stats limit 0").columns
    assert list(cols) == list(TABLES["snapshot_shard_stats"].c.keys())


def test_concurrent_ensure_tables(wh_url: str):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker():
        w = Warehouse(wh_url, lock_timeout_s=30)
        try:
            barrier.wait()
            w.ensure_tables()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            w.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert Warehouse(wh_url).count("quarantine_counts") == 0


def test_replace_partition_idempotent(wh: Warehouse):
    wh.ensure_tables()
    part = {"snapshot": "s1", "shard": "0000"}
    assert wh.replace_partition("snapshot_shard_stats", part, [stats_row("s1", "0000")]) == 1
    assert wh.replace_partition("snapshot_shard_stats", part, [stats_row("s1", "0000")]) == 1
    assert wh.count("snapshot_shard_stats") == 1
    assert wh.replace_partition("quarantine_counts", part, qrows("s1", "0000")) == 3
    assert wh.replace_partition("quarantine_counts", part, qrows("s1", "0000")) == 3
    assert wh.count("quarantine_counts", part) == 3
    df = wh.read_frame("select * from snapshot_shard_stats")
    row = df.iloc[0]
    assert row["input_bytes"] == 5 * 2**32
    assert row["quarantine_fraction"] == 0.05  # DOUBLE, not a 32-bit float
    assert pd.Timestamp(row["materialized_at"]) == pd.Timestamp(NOW)


def test_partitions_are_independent(wh: Warehouse):
    wh.ensure_tables()
    wh.replace_partition("quarantine_counts", {"snapshot": "s1", "shard": "0000"}, qrows("s1", "0000", 3))
    wh.replace_partition("quarantine_counts", {"snapshot": "s1", "shard": "0001"}, qrows("s1", "0001", 2))
    wh.replace_partition("quarantine_counts", {"snapshot": "s2", "shard": "0000"}, qrows("s2", "0000", 4))
    assert wh.count("quarantine_counts") == 9
    # shrink one partition, the others stay
    wh.replace_partition("quarantine_counts", {"snapshot": "s1", "shard": "0000"}, qrows("s1", "0000", 1))
    assert wh.count("quarantine_counts", {"snapshot": "s1", "shard": "0000"}) == 1
    assert wh.count("quarantine_counts", {"snapshot": "s1", "shard": "0001"}) == 2
    assert wh.count("quarantine_counts", {"snapshot": "s2"}) == 4
    # a coarser partition (whole snapshot) replaces all its shards
    wh.replace_partition("quarantine_counts", {"snapshot": "s1"}, qrows("s1", "0005", 2))
    assert wh.count("quarantine_counts", {"snapshot": "s1"}) == 2
    assert wh.count("quarantine_counts", {"snapshot": "s2"}) == 4
    # empty rows clear the partition
    assert wh.replace_partition("quarantine_counts", {"snapshot": "s2", "shard": "0000"}, []) == 0
    assert wh.count("quarantine_counts", {"snapshot": "s2"}) == 0


def test_failure_mid_insert_rolls_back_the_delete(wh: Warehouse):
    wh.ensure_tables()
    part = {"snapshot": "s1", "shard": "0000"}
    wh.replace_partition("snapshot_shard_stats", part, [stats_row("s1", "0000", n_docs=7)])
    wh.replace_partition("quarantine_counts", part, qrows("s1", "0000", 3))
    bad_stats = [stats_row("s1", "0000", n_docs=None)]  # NOT NULL violation
    with pytest.raises(WarehouseError, match="(?i)null"):
        wh.replace_partition("snapshot_shard_stats", part, bad_stats)
    bad_q = qrows("s1", "0000", 5)
    bad_q[3]["n"] = None  # fails after some rows went in
    with pytest.raises(WarehouseError, match="(?i)null"):
        wh.replace_partition("quarantine_counts", part, bad_q)
    dup = qrows("s1", "0000", 2) + qrows("s1", "0000", 1)  # primary key violation
    with pytest.raises(WarehouseError):
        wh.replace_partition("quarantine_counts", part, dup)
    assert wh.count("snapshot_shard_stats") == 1
    assert wh.read_frame("select n_docs from snapshot_shard_stats")["n_docs"].tolist() == [7]
    assert sorted(wh.read_frame("select n from quarantine_counts")["n"].tolist()) == [1, 2, 3]


def test_rows_are_validated_before_touching_the_table(wh: Warehouse):
    wh.ensure_tables()
    part = {"snapshot": "s1", "shard": "0000"}
    wh.replace_partition("quarantine_counts", part, qrows("s1", "0000", 2))
    with pytest.raises(ValueError, match="outside partition"):
        wh.replace_partition("quarantine_counts", part, qrows("s1", "0001", 1))
    with pytest.raises(ValueError, match="missing partition column 'shard'"):
        wh.replace_partition("quarantine_counts", part, [dict(snapshot="s1", reason="r", n=1)])
    with pytest.raises(ValueError, match="unknown columns"):
        wh.replace_partition("quarantine_counts", part, [dict(qrows("s1", "0000", 1)[0], bogus=1)])
    with pytest.raises(ValueError, match="unknown columns"):
        wh.replace_partition("quarantine_counts", {"nope": 1}, [])
    with pytest.raises(ValueError, match="unknown warehouse table"):
        wh.replace_partition("no_such_table", part, [])
    with pytest.raises(ValueError, match="at least one column"):
        wh.replace_partition("quarantine_counts", {}, [])
    with pytest.raises(ValueError, match="None"):
        wh.replace_partition("quarantine_counts", {"snapshot": None}, [])
    assert wh.count("quarantine_counts") == 2


def test_bound_parameters_quotes_in_values(wh: Warehouse):
    wh.ensure_tables()
    snap = "CC'MAIN\"; DROP TABLE quarantine_counts; --"
    part = {"snapshot": snap, "shard": "0'0"}
    assert wh.replace_partition("quarantine_counts", part, qrows(snap, "0'0", 2)) == 2
    assert wh.replace_partition("quarantine_counts", part, qrows(snap, "0'0", 2)) == 2
    assert wh.count("quarantine_counts", {"snapshot": snap}) == 2
    df = wh.read_frame(
        "select snapshot, shard, n from quarantine_counts where snapshot = :s order by n", {"s": snap}
    )
    assert df["snapshot"].tolist() == [snap, snap]
    assert df["n"].tolist() == [1, 2]
    assert wh.read_frame("select * from quarantine_counts where snapshot = :s", {"s": "x"}).empty


def test_dataframe_rows_with_numpy_types_and_nan(wh: Warehouse):
    wh.ensure_tables()
    df = pd.DataFrame(
        [stats_row("s1", f"{i:04d}", elapsed_s=(np.nan if i == 1 else 2.5), config_hash=None) for i in range(3)]
    )
    df["n_docs"] = df["n_docs"].astype(np.int32)
    df["materialized_at"] = pd.to_datetime(df["materialized_at"], utc=True)
    assert wh.replace_partition("snapshot_shard_stats", {"snapshot": "s1"}, df) == 3
    out = wh.read_frame("select shard, elapsed_s, config_hash from snapshot_shard_stats order by shard")
    assert out["shard"].tolist() == ["0000", "0001", "0002"]
    assert out["elapsed_s"].isna().tolist() == [False, True, False]
    assert out["config_hash"].isna().all()


def test_large_partition(wh: Warehouse):
    wh.ensure_tables()
    rows = [dict(snapshot="big", shard="0000", reason=f"r{i:06d}", n=i) for i in range(10000)]
    t0 = time.perf_counter()
    assert wh.replace_partition("quarantine_counts", {"snapshot": "big", "shard": "0000"}, rows) == 10000
    assert wh.replace_partition("quarantine_counts", {"snapshot": "big", "shard": "0000"}, rows) == 10000
    assert wh.count("quarantine_counts") == 10000
    assert time.perf_counter() - t0 < 30
    total = wh.read_frame("select sum(n) as s from quarantine_counts")["s"].iloc[0]
    assert int(total) == sum(range(10000))


def test_register_table_and_ensure(wh: Warehouse):
    name = "test_registered_extra"
    table = sa.Table(
        name,
        METADATA,
        sa.Column("mixture", sa.String, primary_key=True),
        sa.Column("domain", sa.String, primary_key=True),
        sa.Column("weight", sa.Double, nullable=False),
        sa.Column("ok", sa.Boolean),
        sa.Column("day", sa.Date),
    )
    try:
        register_table(table)
        register_table(table)  # same object: no-op
        with pytest.raises(ValueError, match="METADATA"):
            register_table(sa.Table(name, sa.MetaData(), sa.Column("x", sa.Integer)))
        wh.ensure_tables()
        rows = [dict(mixture="m1", domain=d, weight=w, ok=True, day=dt.date(2024, 1, 2)) for d, w in [("a", 0.5), ("b", 0.5)]]
        assert wh.replace_partition(name, {"mixture": "m1"}, rows) == 2
        assert wh.replace_partition(name, {"mixture": "m1"}, rows) == 2
        assert wh.count(name, {"mixture": "m1"}) == 2
    finally:
        TABLES.pop(name, None)
        METADATA.remove(table)


def test_ensure_tables_adds_a_nullable_column_a_newer_release_declares(wh_url: str):
    """A warehouse created before mixture_composition.built_at existed gains the column, rows intact."""
    engine = sa.create_engine(wh_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE mixture_composition (mixture VARCHAR, version VARCHAR, cluster_id INTEGER, "
            "centroid_version VARCHAR NOT NULL, name VARCHAR NOT NULL, docs BIGINT NOT NULL, "
            "tokens BIGINT NOT NULL, share DOUBLE PRECISION NOT NULL, PRIMARY KEY (mixture, version, cluster_id))"
        ))
        conn.execute(sa.text(
            "INSERT INTO mixture_composition VALUES ('old', 'v0', 0, 'c0', 'top-0', 5, 50, 1.0)"
        ))
    engine.dispose()

    wh = Warehouse(wh_url)
    try:
        wh.ensure_tables()
        wh.ensure_tables()  # idempotent once the column is there
        wh.replace_partition("mixture_composition", {"mixture": "new", "version": "v1"}, [dict(
            mixture="new", version="v1", cluster_id=0, centroid_version="c0", name="top-0",
            docs=3, tokens=30, share=1.0, built_at=NOW,
        )])
        frame = wh.read_frame("SELECT mixture, built_at FROM mixture_composition ORDER BY mixture")
    finally:
        wh.dispose()
    assert frame.mixture.tolist() == ["new", "old"]
    assert pd.Timestamp(frame.built_at[0]) == pd.Timestamp(NOW) and pd.isna(frame.built_at[1])


def test_register_table_requires_module_metadata():
    with pytest.raises(ValueError, match="METADATA"):
        register_table(sa.Table("elsewhere", sa.MetaData(), sa.Column("x", sa.Integer)))


def test_read_frame_with_no_rows_and_params(wh: Warehouse):
    wh.ensure_tables()
    df = wh.read_frame("select snapshot, n from quarantine_counts where n > :m", {"m": 5})
    assert list(df.columns) == ["snapshot", "n"] and df.empty


# ------------------------------------------------------------------------------------------------
# Concurrency
# ------------------------------------------------------------------------------------------------


def test_concurrent_writers_threads(wh_url: str):
    Warehouse(wh_url).ensure_tables()
    errors: list[BaseException] = []
    n_threads, n_iter = 4, 3
    barrier = threading.Barrier(n_threads)

    def worker(i: int):
        w = Warehouse(wh_url, lock_timeout_s=60)
        try:
            barrier.wait()
            for it in range(n_iter):
                # own partition, plus everyone fights over one shared partition
                w.replace_partition("quarantine_counts", {"snapshot": "s", "shard": f"{i:04d}"}, qrows("s", f"{i:04d}", 3))
                w.replace_partition("quarantine_counts", {"snapshot": "shared", "shard": "0"}, qrows("shared", "0", 2 + it))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            w.dispose()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    w = Warehouse(wh_url)
    assert w.count("quarantine_counts", {"snapshot": "s"}) == n_threads * 3
    assert w.count("quarantine_counts", {"snapshot": "shared"}) == 2 + n_iter - 1


def _duckdb_writer_process(url: str, shard: str, n_iter: int, queue, go) -> None:
    try:
        w = Warehouse(url, lock_timeout_s=60)
        queue.put((shard, "ready", 0))
        go.wait(60)
        # Prove the file is held by another process right now: a short-timeout call must give up.
        try:
            Warehouse(url, lock_timeout_s=0.2).count("quarantine_counts")
            probe = "not blocked"
        except WarehouseLockTimeout:
            probe = "blocked"
        queue.put((shard, probe, 0))
        w.ensure_tables()
        for it in range(n_iter):
            w.replace_partition(
                "snapshot_shard_stats",
                {"snapshot": "mp", "shard": shard},
                [stats_row("mp", shard, n_docs=it)],
            )
            w.replace_partition("quarantine_counts", {"snapshot": "mp", "shard": shard}, qrows("mp", shard, 4))
        queue.put((shard, "ok", w.lock_retries))
    except BaseException as exc:  # noqa: BLE001
        queue.put((shard, f"error: {type(exc).__name__}: {exc}", -1))


def _hold_duckdb_lock(path: str, seconds: float) -> subprocess.Popen:
    """Another process opens the DuckDB file (taking its lock) and keeps it for ``seconds`` or
    until its stdin is closed, whichever comes first."""
    code = (
        "import duckdb, select, sys\n"
        f"c = duckdb.connect({path!r})\n"
        "print('locked', flush=True)\n"
        f"select.select([sys.stdin], [], [], {seconds})\n"
        "c.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_duckdb_two_processes_write_concurrently(tmp_path: Path):
    path = str(tmp_path / "shared.duckdb")
    url = default_duckdb_url(path)
    assert url == "duckdb:///" + path and url.startswith("duckdb:////")
    ctx = multiprocessing.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_duckdb_writer_process, args=(url, s, 4, queue, go)) for s in ("0000", "0001")]
    holder = _hold_duckdb_lock(path, 60)  # a third process holds the file while both writers start
    try:
        for p in procs:
            p.start()
        ready = [queue.get(timeout=120) for _ in procs]
        assert all(status == "ready" for _, status, _ in ready), ready
        go.set()
        probes = [queue.get(timeout=120) for _ in procs]
        assert all(status == "blocked" for _, status, _ in probes), probes
        time.sleep(0.3)  # both writers are now retrying against the held lock
        holder.stdin.close()
        results = [queue.get(timeout=120) for _ in procs]
    finally:
        go.set()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
        holder.kill()
        holder.wait(30)
    assert all(status == "ok" for _, status, _ in results), results
    assert sum(retries for _, _, retries in results) > 0, results
    w = Warehouse(url)
    assert w.count("snapshot_shard_stats", {"snapshot": "mp"}) == 2
    assert w.count("quarantine_counts", {"snapshot": "mp"}) == 8
    assert w.read_frame("select n_docs from snapshot_shard_stats")["n_docs"].tolist() == [3, 3]


def test_duckdb_lock_timeout_names_the_warehouse(tmp_path: Path):
    path = str(tmp_path / "locked.duckdb")
    Warehouse(default_duckdb_url(path)).ensure_tables()
    holder = _hold_duckdb_lock(path, 5)
    try:
        w = Warehouse(default_duckdb_url(path), lock_timeout_s=0.5)
        t0 = time.monotonic()
        with pytest.raises(WarehouseLockTimeout) as info:
            w.replace_partition("quarantine_counts", {"snapshot": "s", "shard": "0"}, qrows("s", "0", 1))
        assert 0.4 < time.monotonic() - t0 < 5
        assert path in str(info.value) and "locked" in str(info.value)
        assert w.lock_retries > 0
    finally:
        holder.kill()
        holder.wait(10)


def test_duckdb_file_is_not_held_between_calls(tmp_path: Path):
    path = str(tmp_path / "free.duckdb")
    w = Warehouse(default_duckdb_url(path))
    w.ensure_tables()
    w.replace_partition("quarantine_counts", {"snapshot": "s", "shard": "0"}, qrows("s", "0", 1))
    # another process can open the file right away while `w` is still alive
    out = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect({path!r}).execute('select count(*) from quarantine_counts').fetchone()[0])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


# ------------------------------------------------------------------------------------------------
# Passwords
# ------------------------------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55word"


def _all_text(exc: BaseException) -> str:
    parts = []
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts += [str(cur), repr(cur), str(getattr(cur, "orig", ""))]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def test_password_masked_in_url_and_unreachable_server_errors():
    w = Warehouse(f"postgresql://crawler:{SECRET}@127.0.0.1:1/warehouse", lock_timeout_s=1)
    for text in (w.safe_url, w.url, repr(w), str(w.sa_url)):
        assert SECRET not in text and "***" in text
    with pytest.raises(WarehouseError) as info:
        w.count("quarantine_counts")
    text = _all_text(info.value)
    assert SECRET not in text
    assert "127.0.0.1:1" in str(info.value)


def test_unparsable_url_does_not_echo_password():
    with pytest.raises(ValueError) as info:
        Warehouse(f"postgresql://crawler:{SECRET}@host:notaport/db")
    assert SECRET not in _all_text(info.value)
    with pytest.raises(ValueError, match="unsupported warehouse backend"):
        Warehouse(f"mysql://crawler:{SECRET}@host/db")


@pytest.mark.postgres
def test_password_masked_in_postgres_errors(postgres_url: str):
    # The test server trusts local connections, so a password in the URL is accepted and unused.
    url = sa.engine.make_url(postgres_url).set(password=SECRET)
    good = Warehouse(url.render_as_string(hide_password=False))
    good.ensure_tables()
    assert SECRET not in good.safe_url
    with pytest.raises(WarehouseError) as info:
        good.read_frame("select * from no_such_table_here where x = :x", {"x": 1})
    assert SECRET not in _all_text(info.value) and "no_such_table_here" in str(info.value)

    missing_db = Warehouse(url.set(database="crawlmix_no_such_db").render_as_string(hide_password=False))
    with pytest.raises(WarehouseError) as info:
        missing_db.ensure_tables()
    assert SECRET not in _all_text(info.value)
    assert "crawlmix_no_such_db" in str(info.value)


# ------------------------------------------------------------------------------------------------
# WarehouseResource
# ------------------------------------------------------------------------------------------------


def test_warehouse_resource_direct(duckdb_url: str):
    from resources import WarehouseResource

    res = WarehouseResource(url=duckdb_url)
    w = res.get_warehouse()
    assert isinstance(w, Warehouse) and res.get_warehouse() is w
    assert w.lock_timeout_s == 120.0 and w.is_duckdb
    w.ensure_tables()
    assert w.count("snapshot_shard_stats") == 0


def _materialize(storage, warehouse):
    # Imported here (not at module level) so spawned writer processes stay light to import.
    import dagster as dg

    from resources import StorageResource, WarehouseResource

    @dg.asset
    def stats_asset(storage: StorageResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
        st = storage.get_storage()
        key = st.key("raw_corpus", "snap-1", "0000", "txt")
        st.write_bytes(key, b"docs")
        wh = warehouse.get_warehouse()
        wh.ensure_tables()
        n = wh.replace_partition(
            "snapshot_shard_stats", {"snapshot": "snap-1", "shard": "0000"}, [stats_row("snap-1", "0000")]
        )
        return dg.MaterializeResult(
            metadata={"path": st.uri(key), "rows": n, "warehouse": wh.safe_url}
        )

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [stats_asset], resources={"storage": storage, "warehouse": warehouse}, instance=instance
    )
    return result, instance


def test_resources_materialize_local_duckdb(tmp_path: Path, duckdb_url: str):
    from resources import StorageResource, WarehouseResource

    result, _ = _materialize(StorageResource(root=str(tmp_path / "data")), WarehouseResource(url=duckdb_url))
    assert result.success
    md = result.asset_materializations_for_node("stats_asset")[0].metadata
    assert md["rows"].value == 1
    assert Path(md["path"].value).read_bytes() == b"docs"
    assert Warehouse(duckdb_url).count("snapshot_shard_stats") == 1


@pytest.mark.postgres
def test_resources_materialize_s3_postgres_secret_from_env(
    moto_server, s3_client, s3_bucket, aws_credentials, postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    import dagster as dg
    from dagster_aws.s3 import S3Resource

    from resources import StorageResource, WarehouseResource

    url = sa.engine.make_url(postgres_url).set(password=SECRET).render_as_string(hide_password=False)
    monkeypatch.setenv("CRAWLMIX_TEST_WAREHOUSE_URL", url)
    storage = StorageResource(
        root=f"s3://{s3_bucket}/prod", s3=S3Resource(endpoint_url=moto_server, region_name="us-east-1")
    )
    warehouse = WarehouseResource(url=dg.EnvVar("CRAWLMIX_TEST_WAREHOUSE_URL"))
    result, instance = _materialize(storage, warehouse)
    assert result.success
    md = result.asset_materializations_for_node("stats_asset")[0].metadata
    assert md["path"].value == f"s3://{s3_bucket}/prod/raw_corpus/snap-1/0000.txt"
    assert SECRET not in md["warehouse"].value
    assert s3_client.get_object(Bucket=s3_bucket, Key="prod/raw_corpus/snap-1/0000.txt")["Body"].read() == b"docs"
    assert Warehouse(postgres_url).count("snapshot_shard_stats") == 1
    assert SECRET not in repr(result.dagster_run.run_config)
    assert all(SECRET not in repr(r) for r in instance.all_logs(result.run_id))
