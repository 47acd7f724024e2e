-- The latest version of each mixture, cluster by cluster, with names. (Named *_report because the
-- source table written by final_mixtures is already called mixture_composition.)
-- "Latest": a version built on the current centroid version wins over older ones, then the one
-- built last (`built_at`; versions written before that column existed have none and rank below).
{%- set src = source('crawlmix', 'mixture_composition') %}
with versions as (
    select
        mixture,
        version,
        max(case when centroid_version = {{ current_centroid_version() }} then 1 else 0 end)
            as on_current_centroids,
        max(built_at) as built_at
    from {{ src }}
    group by mixture, version
),
ranked as (
    select
        mixture,
        version,
        row_number() over (
            partition by mixture
            order by on_current_centroids desc, built_at desc nulls last, version desc
        ) as recency
    from versions
),
latest as (
    select m.*
    from {{ src }} as m
    join ranked as r on r.mixture = m.mixture and r.version = m.version and r.recency = 1
)
select
    l.mixture,
    l.version,
    l.centroid_version,
    l.cluster_id,
    l.name,
    l.docs,
    l.tokens,
    l.share,
    l.built_at,
    cast(l.docs as double precision) / nullif(sum(l.docs) over (partition by l.mixture), 0)
        as docs_share,
    cast(l.tokens as double precision) / nullif(sum(l.tokens) over (partition by l.mixture), 0)
        as tokens_share
from latest as l
