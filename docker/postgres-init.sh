#!/bin/sh
# Runs once, on the first start of an empty postgres_data volume: creates the crawlmix warehouse
# database next to the Dagster instance database, owned by the same user.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
SELECT 'CREATE DATABASE "${CRAWLMIX_WAREHOUSE_DB}" OWNER "${POSTGRES_USER}"'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${CRAWLMIX_WAREHOUSE_DB}')\gexec
SQL
