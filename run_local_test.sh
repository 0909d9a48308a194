#!/usr/bin/env bash
# Runs a model.py on an AutoDL dataset under the challenge protocol (ingestion + scoring in parallel).
#   ./run_local_test.sh                                  # this project's model on the bundled dataset, 60 s
#   ./run_local_test.sh -dataset_dir=DIR -code_dir=DIR -time_budget=300 -result_dir=DIR
# Installs its dependencies into ./.venv on first use. ./run_local_test.sh --help lists the flags.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/ensure_venv.sh"
exec "$PY" -m autoclint.harness.run_local "$@"
