#!/usr/bin/env bash
# Runs the test suite (installs dependencies into ./.venv on first use). Extra arguments go to pytest,
# e.g. ./run_tests.sh -m "not slow" or ./run_tests.sh tests/harness.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/ensure_venv.sh"
cd "$ROOT"
exec "$PY" -m pytest -q "$@"
