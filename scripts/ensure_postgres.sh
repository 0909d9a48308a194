#!/usr/bin/env bash
# A PostgreSQL server on loopback for the shared-study test of `autoclint search` (Debian's package):
# installs it when missing, starts the cluster, creates the role and database the test uses.
# Prints the URL the test reads from AUTOCLINT_TEST_POSTGRES.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq postgresql >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
fi
version="$(pg_lsclusters -h | awk 'NR==1{print $1}')"
cluster="$(pg_lsclusters -h | awk 'NR==1{print $2}')"
if [ -z "$version" ]; then
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  cluster=main
  pg_createcluster "$version" "$cluster" >/dev/null
fi
pg_ctlcluster "$version" "$cluster" start >/dev/null 2>&1 || true  # already running: fine
port="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $3}')"
as_postgres() { su postgres -c "$1" >/dev/null 2>&1; }
as_postgres "psql -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname='autoclint'\" | grep -q 1" \
  || as_postgres "psql -p $port -c \"CREATE ROLE autoclint LOGIN PASSWORD 'autoclint'\""
as_postgres "psql -p $port -tc \"SELECT 1 FROM pg_database WHERE datname='autoclint_test'\" | grep -q 1" \
  || as_postgres "createdb -p $port -O autoclint autoclint_test"
echo "postgresql://autoclint:autoclint@127.0.0.1:$port/autoclint_test"
