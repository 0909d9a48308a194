#!/usr/bin/env bash
# Runs the test suite (installs dependencies into ./.venv on first use). Extra arguments go to pytest,
# e.g. ./run_tests.sh -m "not slow" or ./run_tests.sh tests/harness.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/ensure_venv.sh"
cd "$ROOT"
# The shared-study test of `autoclint search` needs a PostgreSQL server: started here (installed if missing).
if [ -z "${AUTOCLINT_TEST_POSTGRES:-}" ]; then
  AUTOCLINT_TEST_POSTGRES="$("$ROOT/scripts/ensure_postgres.sh" 2>/dev/null || true)"
  export AUTOCLINT_TEST_POSTGRES
fi
exec "$PY" -m pytest -q "$@"
