-- Quality per (snapshot, centroid_version, level, cluster) across shards: documents summed, mean
-- quality and rule pass rates weighted by each shard's document count. (Named *_report because the
-- source table written by quality_scores is already called quality_by_cluster in the same schema.)
-- Percentiles cannot be combined exactly across shards, so p10/p50/p90 are left out.
with q as (
    select * from {{ source('crawlmix', 'quality_by_cluster') }} where n > 0
),
agg as (
    select
        snapshot, centroid_version, level, cluster_id,
        count(*) as shards,
        sum(n) as n,
        sum(n * mean_quality) / sum(n) as mean_quality,
        sum(n * pass_gopher_rate) / sum(n) as pass_gopher_rate,
        sum(n * pass_c4_rate) / sum(n) as pass_c4_rate,
        sum(n * pass_fineweb_rate) / sum(n) as pass_fineweb_rate,
        sum(n * pass_all_rate) / sum(n) as pass_all_rate,
        min(mean_quality) as min_shard_mean_quality,
        max(mean_quality) as max_shard_mean_quality
    from q
    group by snapshot, centroid_version, level, cluster_id
)
select a.*, c.name
from agg as a
left join {{ source('crawlmix', 'clusters') }} as c
    on c.centroid_version = a.centroid_version and c.level = a.level and c.cluster_id = a.cluster_id
