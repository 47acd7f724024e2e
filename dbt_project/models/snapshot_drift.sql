-- How each top-level cluster's share of documents moved between consecutive snapshots (snapshots
-- ordered by id; snapshot_seq numbers them 1, 2, ...). One row per (cluster, snapshot) except the
-- first snapshot, which has nothing to compare with.
with top as (
    select *
    from {{ ref('cluster_summary') }}
    where level = (select max(level) from {{ ref('cluster_summary') }})
),
seq as (
    select snapshot, row_number() over (order by snapshot) as snapshot_seq
    from (select distinct snapshot from top) as s
),
shares as (
    select
        t.centroid_version, t.level, t.cluster_id, t.name, t.snapshot, q.snapshot_seq,
        t.docs, coalesce(t.snapshot_share, 0) as share,
        lag(t.snapshot) over (partition by t.cluster_id order by q.snapshot_seq) as previous_snapshot,
        lag(t.docs) over (partition by t.cluster_id order by q.snapshot_seq) as previous_docs,
        lag(coalesce(t.snapshot_share, 0)) over (partition by t.cluster_id order by q.snapshot_seq)
            as previous_share
    from top as t
    join seq as q on q.snapshot = t.snapshot
)
select
    centroid_version,
    level,
    cluster_id,
    name,
    previous_snapshot,
    snapshot,
    snapshot_seq,
    previous_docs,
    docs,
    previous_share,
    share,
    share - previous_share as share_change,
    abs(share - previous_share) as abs_share_change
from shares
where previous_snapshot is not null
