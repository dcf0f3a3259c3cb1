#!/usr/bin/env bash
# test_venv.sh BUILD_DIR — prints the path of a Python with the reference libraries the tests
# compare against (tokenizers==0.23.3, numpy), creating BUILD_DIR/test-venv on first use.
#
# Idempotent and fast on re-run: a finished venv carries a stamp naming its requirements, and a
# venv with the stamp is reused without touching the network. Creation is serialised with
# flock so that tests run in parallel by ctest do not build it twice. Exit 77 (ctest's "skipped")
# when a venv cannot be made (no python3-venv, no network), with the reason on stderr.
set -euo pipefail
build=${1:?usage: test_venv.sh BUILD_DIR}
mkdir -p "$build"
build=$(cd "$build" && pwd)
reqs="tokenizers==0.23.3 numpy<3"
venv="$build/test-venv"
stamp="$venv/.qsweep-reqs"
py="$venv/bin/python"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ] && [ -x "$py" ]; then
  echo "$py"
  exit 0
fi
exec 9>"$build/.test-venv.lock"
flock 9
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ] && [ -x "$py" ]; }; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "test_venv.sh: python3 -m venv failed (install python3-venv)" >&2
    rm -rf "$venv"
    exit 77
  fi
  # shellcheck disable=SC2086  # $reqs is a list of requirement specifiers
  if ! "$venv/bin/pip" install -q --disable-pip-version-check $reqs >&2; then
    echo "test_venv.sh: pip install $reqs failed (is PyPI reachable?)" >&2
    rm -rf "$venv"
    exit 77
  fi
  echo "$reqs" >"$stamp"
fi
echo "$py"
