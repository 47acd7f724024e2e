-- One row per (level, cluster, snapshot) of the current centroid version: the cluster's name and
-- parent, its documents in that snapshot (0 when it has none there), its share of the snapshot at
-- that level, and its documents / share over all snapshots together.
with current_version as (
    select {{ current_centroid_version() }} as centroid_version
),
clusters as (
    select c.centroid_version, c.level, c.cluster_id, c.parent_id, c.name, c.fit_size
    from {{ source('crawlmix', 'clusters') }} as c
    join current_version as v on c.centroid_version = v.centroid_version
),
sizes as (
    select s.snapshot, s.level, s.cluster_id, sum(s.n) as docs
    from {{ source('crawlmix', 'cluster_shard_sizes') }} as s
    join current_version as v on s.centroid_version = v.centroid_version
    group by s.snapshot, s.level, s.cluster_id
),
snapshots as (
    select distinct snapshot from sizes
),
grid as (
    select
        c.centroid_version, c.level, c.cluster_id, c.parent_id, c.name, c.fit_size, sn.snapshot,
        coalesce(s.docs, 0) as docs
    from clusters as c
    cross join snapshots as sn
    left join sizes as s
        on s.snapshot = sn.snapshot and s.level = c.level and s.cluster_id = c.cluster_id
),
totals as (
    select
        *,
        sum(docs) over (partition by snapshot, level) as snapshot_level_docs,
        sum(docs) over (partition by level, cluster_id) as total_docs,
        sum(docs) over (partition by level) as level_docs
    from grid
)
select
    centroid_version,
    level,
    cluster_id,
    name,
    parent_id,
    fit_size,
    snapshot,
    docs,
    cast(docs as double precision) / nullif(snapshot_level_docs, 0) as snapshot_share,
    total_docs,
    cast(total_docs as double precision) / nullif(level_docs, 0) as overall_share
from totals
