-- Per (snapshot, centroid_version, level, cluster, rule): documents seen and removed by the rule,
-- summed across shards, and the removed fraction. (Named *_report because the source table written
-- by quality_scores is already called filter_impact in the same schema.)
with agg as (
    select
        snapshot, centroid_version, level, cluster_id, rule,
        sum(n) as n,
        sum(removed) as removed
    from {{ source('crawlmix', 'filter_impact') }}
    group by snapshot, centroid_version, level, cluster_id, rule
)
select
    a.snapshot, a.centroid_version, a.level, a.cluster_id, c.name, a.rule, a.n, a.removed,
    cast(a.removed as double precision) / nullif(a.n, 0) as removed_fraction
from agg as a
left join {{ source('crawlmix', 'clusters') }} as c
    on c.centroid_version = a.centroid_version and c.level = a.level and c.cluster_id = a.cluster_id
