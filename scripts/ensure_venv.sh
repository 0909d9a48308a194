#!/usr/bin/env bash
# Creates ./.venv on first use and re-installs when requirements.txt changes.
# Sourced by run_local_test.sh and run_tests.sh; leaves PY pointing at the venv's python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "autoclint: installing dependencies into $VENV (first run only, about a minute)..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || true
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt" >&2
  # torch's CUDA wheel pulls triton, whose LLVM clashes with TensorFlow's: importing tensorflow and
  # then torchvision segfaults (measured here). triton is only needed by torch.compile, unused here.
  "$VENV/bin/python" -m pip uninstall -q -y triton >&2 || true
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >&2
  echo "$want" > "$STAMP"
fi
PY="$VENV/bin/python"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
