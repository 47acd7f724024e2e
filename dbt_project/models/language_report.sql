-- Languages per (snapshot, centroid_version, level, cluster) across shards: documents, their share
-- of the cluster, the language's share of the whole snapshot, and the identifier's mean confidence.
with l as (
    select * from {{ source('crawlmix', 'language_by_cluster') }} where n > 0
),
agg as (
    select
        snapshot, centroid_version, level, cluster_id, language,
        sum(n) as docs,
        sum(n * mean_language_score) / sum(n) as mean_language_score
    from l
    group by snapshot, centroid_version, level, cluster_id, language
),
cluster_totals as (
    select snapshot, centroid_version, level, cluster_id, sum(docs) as cluster_docs
    from agg
    group by snapshot, centroid_version, level, cluster_id
),
snapshot_languages as (
    -- every document is in exactly one leaf, so level 1 counts each document once
    select snapshot, centroid_version, language, sum(docs) as language_docs
    from agg
    where level = 1
    group by snapshot, centroid_version, language
),
snapshot_totals as (
    select snapshot, centroid_version, sum(language_docs) as snapshot_docs
    from snapshot_languages
    group by snapshot, centroid_version
)
select
    a.snapshot, a.centroid_version, a.level, a.cluster_id, c.name, a.language, a.docs,
    cast(a.docs as double precision) / t.cluster_docs as cluster_share,
    cast(sl.language_docs as double precision) / st.snapshot_docs as snapshot_share,
    a.mean_language_score
from agg as a
join cluster_totals as t
    on t.snapshot = a.snapshot and t.centroid_version = a.centroid_version
    and t.level = a.level and t.cluster_id = a.cluster_id
join snapshot_languages as sl
    on sl.snapshot = a.snapshot and sl.centroid_version = a.centroid_version and sl.language = a.language
join snapshot_totals as st
    on st.snapshot = a.snapshot and st.centroid_version = a.centroid_version
left join {{ source('crawlmix', 'clusters') }} as c
    on c.centroid_version = a.centroid_version and c.level = a.level and c.cluster_id = a.cluster_id
