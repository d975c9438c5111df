#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas up to
# the version of the temporal-sql-tool that runs this: `temporal` for
# persistence and `temporal_visibility` for visibility (no Elasticsearch).
# Every step is idempotent, so it runs before every server start: on a new
# database it creates everything, after a server upgrade it applies the new
# schema versions, otherwise it changes nothing.
#
# Used by the temporal-schema service of docker-compose.yml (in the
# temporalio/admin-tools image) and by `make test-cluster`.
#
# temporal-sql-tool reads its connection from the environment:
#   SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD   the PostgreSQL server
# and this script reads
#   TEMPORAL_SQL_TOOL   the tool (default: temporal-sql-tool on PATH)
#   TEMPORAL_DB, TEMPORAL_VISIBILITY_DB   database names (temporal, temporal_visibility)
set -eu

: "${SQL_HOST:?set SQL_HOST to the PostgreSQL host}"
: "${SQL_PORT:=5432}"
: "${SQL_USER:?set SQL_USER to a PostgreSQL role that may create databases}"
: "${SQL_PASSWORD:?set SQL_PASSWORD}"
export SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD
tool=${TEMPORAL_SQL_TOOL:-temporal-sql-tool}

setup() { # database, embedded schema
  echo "temporal schema: database $1 ($2) on $SQL_HOST:$SQL_PORT"
  "$tool" --plugin postgres12 --db "$1" create-database
  "$tool" --plugin postgres12 --db "$1" setup-schema -v 0.0
  "$tool" --plugin postgres12 --db "$1" update-schema --schema-name "$2"
}

setup "${TEMPORAL_DB:-temporal}" postgresql/v12/temporal
setup "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}" postgresql/v12/visibility
echo "temporal schema: up to date"
