{#- The centroid version the reports describe, as a scalar SQL expression (portable: DuckDB and
    PostgreSQL). var('centroid_version') pins it; otherwise the version that labelled the newest
    snapshot (ordered by snapshot id), falling back to the greatest version in `clusters`. -#}
{% macro current_centroid_version() -%}
  {%- if var('centroid_version', none) -%}
    '{{ var("centroid_version") }}'
  {%- else -%}
    coalesce(
      (select css.centroid_version from {{ source('crawlmix', 'cluster_shard_sizes') }} as css
        order by css.snapshot desc, css.centroid_version desc limit 1),
      (select max(c.centroid_version) from {{ source('crawlmix', 'clusters') }} as c)
    )
  {%- endif -%}
{%- endmacro %}
